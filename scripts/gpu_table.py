"""Assemble the Markdown table of a ``scripts/gpu_check.sh`` run from the JSON the benchmarks wrote.

    python scripts/gpu_table.py OUT_DIR            # reads OUT_DIR/{neurons,train_step,epoch}.json,
                                                   # pytest.log, train_tests.log, ddp.log;
                                                   # writes OUT_DIR/gpu_table.md

Sections: the machine and versions, the neuron fwd+bwd table (with the memory-traffic floor), the
training-step table, the epoch table, the CUDA tests' summary lines, the DDP line, and the targets
of issue 14 (item 5), each with the measured value and whether it is met. Missing inputs are named
in the output instead of failing, so a partial run still gives a partial table.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Optional

__all__ = ["build_table", "main"]


def _load(path: Path) -> Optional[dict[str, Any]]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _f(v: Any, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return None if not a or not b else a / b


def _machine(docs: list[dict]) -> list[str]:
    info = next((d["info"] for d in docs if d and d.get("info")), None)
    if info is None:
        return ["machine: unknown (no benchmark JSON)"]
    where = info.get("gpu") or f"CPU {info.get('cpu')} (dry run, no GPU)"
    return [f"**{where}**" + (f" (compute capability {info['capability']}, {info['sms']} SMs, "
                              f"{info['gpu_memory_gib']} GiB)" if info.get("gpu") else "")
            + f"; Python {info.get('python')}, torch {info.get('torch')} (CUDA {info.get('cuda')}),"
            f" Triton {info.get('triton')}, SpikingJelly {info.get('spikingjelly')}."]


def _neurons(doc: dict) -> tuple[list[str], dict]:
    rows = [r for r in doc["rows"] if "ms" in r or "error" in r]
    by = {(r["neuron"], r["dtype"], r["T"], r["impl"]): r for r in rows if "ms" in r}
    floors = doc.get("floors", {})
    shape = f"{doc.get('batch')} x {doc.get('neurons')}"
    out = [f"### Neuron fwd+bwd ({shape} neurons; median of do_bench-style repeats)", "",
           "| neuron | dtype | T | impl | ms | vs SpikingJelly | x traffic floor | peak MB | "
           "saved MB | spikes = reference | grad rel. err |",
           "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['neuron']} | {r['dtype']} | {r['T']} | {r['impl']} | error: "
                       f"{r['error'][:80]} | | | | | | |")
            continue
        sj = by.get((r["neuron"], r["dtype"], r["T"], "spikingjelly"))
        floor = floors.get(f"{r['dtype']}/T{r['T']}", {}).get("floor_ms")
        impl = r["impl"] + (f" ({r['sj_impl']})" if r.get("sj_impl") else "")
        out.append(f"| {r['neuron']} | {r['dtype']} | {r['T']} | {impl} | {_f(r['ms'])} | "
                   f"{_f(_ratio(sj and sj['ms'], r['ms']), '.2f')}x | "
                   f"{_f(_ratio(r['ms'], floor), '.2f')} | {_f(r.get('peak_mb'), '.0f')} | "
                   f"{_f(r.get('saved_mb'), '.0f')} | {_f(r.get('spikes_equal'), '.4f')} | "
                   f"{_f(r.get('grad_rel_err'), '.1e')} |")
    out.append("")
    for key, fl in floors.items():
        out.append(f"- traffic floor {key}: copy of one [T, B, N] tensor {_f(fl['copy_ms'])} ms; "
                   f"fwd+bwd moves >= 6 such tensors: 3 x copy = {_f(fl['floor_ms'])} ms")
    return out, by


def _train_step(doc: dict) -> tuple[list[str], dict]:
    rows = doc["rows"]
    by = {(r["net"], r["precision"], r["impl"]): r for r in rows if "ms" in r}
    out = [f"### Training step (median of {doc.get('repeats')} steps; Adam; peak = "
           "max_memory_allocated over one step minus what is held between steps)", "",
           "| net | precision | impl | B | ms/step | vs SpikingJelly | peak MB | step MB | loss(0) |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['net']} | {r['precision']} | {r['impl']} | {r.get('B', '')} | "
                       f"error: {r['error'][:80]} | | | | |")
            continue
        sj = by.get((r["net"], r["precision"], "spikingjelly"))
        out.append(f"| {r['net']} | {r['precision']} | {r['impl']} | {r['B']} | {_f(r['ms'], '.2f')}"
                   f" | {_f(_ratio(sj and sj['ms'], r['ms']), '.2f')}x | "
                   f"{_f(r.get('peak_mb'), '.0f')} | {_f(r.get('step_mb'), '.0f')} | "
                   f"{_f(r.get('loss'), '.5f')} |")
    return out, by


def _epoch(doc: dict) -> tuple[list[str], dict]:
    what = ("one full epoch" if not doc.get("max_steps") else f"{doc['max_steps']} steps")
    out = [f"### PLIF Fashion-MNIST recipe, {what} (batch 16, T=8)"
           + (" -- smoke run, accuracy not meaningful" if doc.get("max_steps") else ""), "",
           "| impl | epoch s (train + test) | train s | test acc % | wall s | settings |",
           "|---|---:|---:|---:|---:|---|"]
    by = {}
    for r in doc["rows"]:
        if "error" in r:
            out.append(f"| {r['impl']} | error: {r['error'][:80]} | | | | |")
            continue
        by[r["impl"]] = r
        acc = None if r.get("test_acc") is None else 100 * r["test_acc"]
        settings = r.get("config") or ({"sj_impl": r.get("sj_impl"), "amp": r.get("amp")})
        out.append(f"| {r['impl']} | {_f(r.get('epoch_s'), '.1f')} | {_f(r.get('train_s'), '.1f')} "
                   f"| {_f(acc, '.2f')} | {_f(r.get('wall_s'), '.1f')} | "
                   f"{', '.join(f'{k}={v}' for k, v in settings.items())} |")
    return out, by


def _targets(neu: dict, step: dict, epoch: dict, ddp: Optional[str]) -> list[str]:
    out = ["### Targets (issue 14, item 5)", "", "| target | measured | met |", "|---|---|---|"]

    def add(name: str, measured: str, ok: Optional[bool]) -> None:
        out.append(f"| {name} | {measured} | {'-' if ok is None else ('yes' if ok else '**no**')} |")

    for kind in ("LIF", "PLIF"):
        for dtype, limit in (("float32", 0.5), ("bfloat16", 0.3)):
            mine = neu.get((kind, dtype, 32, "spikeflow"))
            sj = neu.get((kind, dtype, 32, "spikingjelly"))
            if mine is None:
                add(f"{kind} {dtype} fwd+bwd <= {limit} ms", "not measured", None)
                continue
            add(f"{kind} {dtype} fwd+bwd <= {limit} ms", f"{mine['ms']:.3f} ms", mine["ms"] <= limit)
            if dtype == "float32":
                ratio = _ratio(sj and sj["ms"], mine["ms"])
                add(f"{kind} float32 >= 2.4x SpikingJelly", f"{_f(ratio, '.2f')}x",
                    None if ratio is None else ratio >= 2.4)
                if sj and mine.get("peak_mb") is not None and sj.get("peak_mb") is not None:
                    add(f"{kind} float32 peak memory <= SpikingJelly's",
                        f"{mine['peak_mb']:.0f} MB vs {sj['peak_mb']:.0f} MB",
                        mine["peak_mb"] <= sj["peak_mb"])
    for prec, want in (("fp32", 1.5), ("bfloat16 autocast", 2.5)):
        # the engine's step, eager or replayed as a CUDA graph (train.cuda_graphs): the faster
        sj = step.get(("conv", prec, "spikingjelly"))
        ours = [(impl, step[("conv", prec, impl)]) for impl in ("spikeflow", "spikeflow+graphs")
                if ("conv", prec, impl) in step]
        impl, mine = min(ours, key=lambda c: c[1]["ms"]) if ours else (None, None)
        ratio = _ratio(sj and sj["ms"], mine and mine["ms"])
        text = "not measured"
        if ratio is not None:
            text = f"{ratio:.2f}x ({impl} {mine['ms']:.2f} vs {sj['ms']:.2f} ms)"
            eager = step.get(("conv", prec, "spikeflow"))
            if impl != "spikeflow" and eager:
                text += f"; eager {_ratio(sj['ms'], eager['ms']):.2f}x"
        add(f"conv train step {prec} >= {want}x SpikingJelly", text,
            None if ratio is None else ratio >= want)
    sf_row = epoch.get("spikeflow")
    if sf_row and sf_row.get("epoch_s") is not None:
        acc = 100 * (sf_row.get("test_acc") or 0.0)
        add("F-MNIST epoch via spikeflow train <= 15 s, acc >= 88.5%",
            f"{sf_row['epoch_s']:.1f} s, {acc:.2f}%", sf_row["epoch_s"] <= 15 and acc >= 88.5)
    else:
        add("F-MNIST epoch via spikeflow train <= 15 s, acc >= 88.5%", "not measured", None)
    if ddp is None:
        add("DDP (NCCL) default job under torchrun --nproc_per_node=1", "no ddp.log", None)
    else:
        done = re.search(r"acc-A ([0-9.]+%) \| (\d+) epochs", ddp)
        backend = re.search(r"\((nccl|gloo)\)", ddp)
        add("DDP (NCCL) default job under torchrun --nproc_per_node=1",
            (f"finished: {done.group(2)} epoch(s), acc-A {done.group(1)}" if done
             else "did not finish")
            + (f"; backend {backend.group(1)}" if backend else "; backend not reported"),
            bool(done) and bool(backend) and backend.group(1) == "nccl")
    return out


def build_table(folder: Path) -> str:
    """The Markdown document for the outputs in ``folder``."""
    docs = {name: _load(folder / f"{name}.json") for name in ("neurons", "train_step", "epoch")}
    out = ["## GPU measurements (scripts/gpu_check.sh)", ""] + _machine(list(docs.values())) + [""]
    neu = step = epoch = {}
    for name, fn in (("neurons", _neurons), ("train_step", _train_step), ("epoch", _epoch)):
        if docs[name] is None:
            out += [f"### {name}: no {name}.json (the step failed or timed out; see log.txt)", ""]
            continue
        lines, by = fn(docs[name])
        out += lines + [""]
        for line in docs[name].get("lines", []):
            out.append(f"- {line}")
        out.append("")
        if name == "neurons":
            neu = by
        elif name == "train_step":
            step = by
        else:
            epoch = by
    for log_name, what in (("pytest.log", "`pytest tests/ops`, SPIKEFLOW_TEST_DEVICE=cuda"),
                           ("train_tests.log", "`pytest tests/train/test_gpu_path.py -k "
                                               "test_cuda_`")):
        summary = _pytest_summary(folder / log_name)
        if summary is not None:
            out += [f"Tests ({what} on the GPU): `{summary}`", ""]
    ddp_log = folder / "ddp.log"
    ddp = ddp_log.read_text(errors="replace") if ddp_log.is_file() else None
    out += _targets(neu, step, epoch, ddp) + [""]
    return "\n".join(out)


def _pytest_summary(path: Path) -> Optional[str]:
    """The summary line of a pytest log (``None`` when there is no log)."""
    if not path.is_file():
        return None
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    summary = next((ln for ln in reversed(lines) if re.search(
        r"\b(passed|failed|error|no tests ran|skipped|tests? collected|selected)\b", ln)),
        lines[-1] if lines else "empty log")
    return summary.strip("= ")


def main(argv: Optional[list[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python scripts/gpu_table.py OUT_DIR", file=sys.stderr)
        return 2
    folder = Path(args[0])
    text = build_table(folder)
    (folder / "gpu_table.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
