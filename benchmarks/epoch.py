"""One epoch of the PLIF Fashion-MNIST recipe end to end: ``spikeflow train`` vs a hand-written
SpikingJelly 2.0 loop with the data on the GPU, measured in one run.

* ``spikeflow``: ``python -m spikeflow train configs/plif/fashion_mnist.yaml --set train.epochs=1
  data.root=ROOT train.device=DEVICE`` in a subprocess (the recipe as a user runs it: PLIF net
  C=128, FC 2048, T=8, batch 16, Adam lr 1e-3, MSE of the firing rate, no augmentation); the
  epoch's seconds (training + test evaluation, as the loop measures them), its training seconds,
  the test accuracy and the wall time of the whole command (start-up, data loading, compiles) are
  read from the run folder's ``metrics.jsonl``. On CUDA the run adds ``train.cuda_graphs=true``
  (every full training batch replayed as one CUDA graph; ``--graphs off`` to measure eager steps;
  when the graph run fails it is repeated without, and both rows are kept).
* ``spikingjelly``: the same net from SpikingJelly's layers (``train_step.sj_plif_static``, the
  static conv once per image), the whole normalised training set as one float32 tensor on the
  device, a ``torch.randperm`` order, batch 16 (last partial batch dropped), Adam lr 1e-3, the same
  loss; then the test set in batches of 256. No host synchronisation inside the epoch.

Both start cold (compiles and autotuning count, as for a user). Fashion-MNIST comes from
``--data-root`` (the four IDX ``.gz`` files; default ``$SPIKEFLOW_FASHION_MNIST``, else the Debian
package's ``/usr/share/datasets/fashion-mnist``, else ``.gpu/fashion-mnist`` of the repository).

    python benchmarks/epoch.py --device cuda --json epoch.json
    python benchmarks/epoch.py --device cpu --max-steps 2 --max-eval 64 --mini    # smoke run

``--max-steps N`` trains N batches (spikeflow: a random N*16-image part of the training set, via
``data.train_split=val`` + ``holdout: random``), ``--max-eval M`` tests on M images (spikeflow:
M training images held out the same way, so the accuracy is only a smoke check), ``--mini`` uses
the recipe's mini net (16 channels, FC 128). ``--set KEY=VALUE ...`` passes more overrides to
``spikeflow train`` (e.g. ``train.amp=true``); ``--amp`` runs both with bfloat16 autocast
(spikeflow: ``train.amp=true``). Without CUDA and without ``--device`` it prints a note and
measures nothing (so ``spikeflow bench`` stays quick on a CPU machine).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import spikeflow.runtime

spikeflow.runtime.configure()  # before torch: short OpenMP spin-wait, numba cache (docs/runtime.md)
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

if str(Path(__file__).resolve().parent) not in sys.path:  # benchmarks/_gpu.py, train_step.py
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import _gpu  # noqa: E402

__all__ = ["main", "run_spikeflow", "run_spikingjelly", "load_fashion_mnist"]

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "plif" / "fashion_mnist.yaml"
MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST normalisation of the recipe
FILES = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def default_root() -> Optional[Path]:
    """``$SPIKEFLOW_FASHION_MNIST``, the Debian package's folder or the repo's ``.gpu/`` copy."""
    cands = [os.environ.get("SPIKEFLOW_FASHION_MNIST"), "/usr/share/datasets/fashion-mnist",
             str(REPO / ".gpu" / "fashion-mnist")]
    for cand in cands:
        if cand and (Path(cand) / (FILES[True][0] + ".gz")).is_file():
            return Path(cand)
    return None


def _read_idx(path: Path) -> np.ndarray:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(int)
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion_mnist(root: Path, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 [N, 28, 28], labels [N])`` of one split from the IDX files under ``root``."""
    out = []
    for stem in FILES[train]:
        path = next((p for p in (root / (stem + ".gz"), root / stem) if p.is_file()), None)
        if path is None:
            raise FileNotFoundError(f"{root}: missing {stem}[.gz] (Fashion-MNIST IDX files)")
        out.append(_read_idx(path))
    return out[0], out[1].astype(np.int64)


# ----------------------------------------------------------------------------- spikeflow train
def run_spikeflow(root: Path, device: str, max_steps: Optional[int], max_eval: Optional[int],
                  mini: bool, amp: bool, extra: list[str], timeout: float,
                  out_dir: Path) -> dict[str, Any]:
    """One epoch through ``python -m spikeflow train`` in a subprocess; its numbers."""
    sets = ["train.epochs=1", f"data.root={root}", f"train.device={device}"]
    if max_steps:
        sets += ["data.train_split=val", "data.options.holdout=random",
                 f"data.options.val_size={16 * max_steps}", "data.options.seed=0"]
    if max_eval:
        sets += ["data.test_split=val", "data.eval_options.holdout=random",
                 f"data.eval_options.val_size={max_eval}", "data.eval_options.seed=1"]
    if mini:
        sets += ["model.options.channels=16", "model.options.hidden=128"]
    if amp:
        sets += ["train.amp=true"]
    sets += extra
    out_dir.mkdir(parents=True, exist_ok=True)
    run_dir = out_dir / "spikeflow-run"
    cmd = [sys.executable, "-m", "spikeflow", "train", str(CONFIG), "--out", str(run_dir),
           "--set", *sets]
    env = os.environ.copy()
    src = str(Path(spikeflow.__file__).resolve().parents[1])  # the spikeflow this script imports
    env["PYTHONPATH"] = os.pathsep.join([src] + [p for p in env.get("PYTHONPATH", "").split(
        os.pathsep) if p])
    env.setdefault("PYTHONUNBUFFERED", "1")
    log = out_dir / "spikeflow-train.log"
    print("$ " + " ".join(cmd), flush=True)
    start = time.perf_counter()
    with open(log, "w") as fh:
        try:
            proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                  timeout=timeout, cwd=REPO)
            rc: Optional[int] = proc.returncode
        except subprocess.TimeoutExpired:
            rc = None
    wall = time.perf_counter() - start
    tail = log.read_text(errors="replace").replace("\r", "\n").splitlines()
    tail = [line for line in tail if line.strip()][-12:]
    for line in tail:
        print(f"  | {line}")
    row: dict[str, Any] = {"impl": "spikeflow", "wall_s": wall, "command": " ".join(cmd)}
    if rc != 0:
        row["error"] = (f"timed out after {timeout:.0f} s" if rc is None else f"exit code {rc}")
        row["log_tail"] = tail
        return row
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
               if line.strip()]
    last = metrics[-1]
    n_train = 16 * max_steps if max_steps else 60000 // 16 * 16
    row.update(epoch_s=last.get("epoch_seconds"), test_acc=last.get("test_acc"),
               train_acc=last.get("train_acc"), train_loss=last.get("train_loss"),
               train_samples=n_train)
    if last.get("train_samples_per_s"):
        row["train_s"] = n_train / last["train_samples_per_s"]
    try:
        import yaml

        cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
        row["config"] = {k: cfg["train"].get(k) for k in ("device", "amp", "cuda_graphs",
                                                          "compile", "batch_size",
                                                          "channels_last")}
        row["config"]["T"] = cfg["data"].get("T")
    except Exception as err:  # noqa: BLE001 - informative only
        row["config_error"] = str(err)
    return row


# ----------------------------------------------------------------------------- SpikingJelly loop
def run_spikingjelly(root: Path, device: torch.device, max_steps: Optional[int],
                     max_eval: Optional[int], mini: bool, amp: bool, T: int = 8, batch: int = 16,
                     eval_batch: int = 256, seed: int = 2020) -> dict[str, Any]:
    """One epoch of the hand-written SpikingJelly loop (see the module docstring); its numbers."""
    from train_step import sj_plif_static  # noqa: PLC0415 (benchmarks/ is on sys.path)

    start = time.perf_counter()
    torch.manual_seed(seed)
    data = {}
    for train in (True, False):
        images, labels = load_fashion_mnist(root, train)
        x = torch.from_numpy(images.copy()).to(device).float().div_(255).sub_(MEAN).div_(STD)
        data[train] = (x.unsqueeze(1), torch.from_numpy(labels).to(device))
    model = sj_plif_static(*((16, 128) if mini else (128, 2048))).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if amp else None

    def forward(xb: torch.Tensor) -> torch.Tensor:
        inp = xb.unsqueeze(0).expand(T, *xb.shape)
        if autocast is None:
            return model(inp).float()
        with autocast():
            return model(inp).float()

    x, y = data[True]
    steps = len(x) // batch if not max_steps else min(max_steps, len(x) // batch)
    _sync(device)
    loaded = time.perf_counter()
    model.train()
    order = torch.randperm(len(x), device=device)
    correct = torch.zeros((), device=device)
    loss_sum = torch.zeros((), device=device)
    for i in range(steps):
        idx = order[i * batch:(i + 1) * batch]
        xb, yb = x[idx], y[idx]
        rate = forward(xb).mean(0)
        loss = F.mse_loss(rate, F.one_hot(yb, 10).float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        correct += (rate.detach().argmax(1) == yb).sum()
        loss_sum += loss.detach()
    _sync(device)
    trained = time.perf_counter()
    xt, yt = data[False]
    if max_eval:
        xt, yt = xt[:max_eval], yt[:max_eval]
    model.eval()
    test_correct = torch.zeros((), device=device)
    with torch.no_grad():
        for i in range(0, len(xt), eval_batch):
            rate = forward(xt[i:i + eval_batch]).mean(0)
            test_correct += (rate.argmax(1) == yt[i:i + eval_batch]).sum()
    _sync(device)
    done = time.perf_counter()
    row = {"impl": "spikingjelly", "train_s": trained - loaded, "eval_s": done - trained,
           "epoch_s": done - loaded, "wall_s": done - start, "train_samples": steps * batch,
           "train_acc": float(correct) / (steps * batch), "train_loss": float(loss_sum) / steps,
           "test_acc": float(test_correct) / len(xt), "amp": amp}
    if device.type == "cuda":
        row["sj_impl"] = ",".join(f"{k}:{v}" for k, v in _gpu.sj_implementations().items())
        row["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return row


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------- main
def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def main(argv: Optional[list[str]] = None) -> list[dict]:
    """Run the epoch benchmark, print one line per implementation, return the rows."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    parser.add_argument("--data-root", default=None, help="folder of the Fashion-MNIST IDX files")
    parser.add_argument("--max-steps", type=int, default=None, help="train only N batches")
    parser.add_argument("--max-eval", type=int, default=None, help="test on M images only")
    parser.add_argument("--mini", action="store_true", help="the recipe's mini net (16 ch, FC 128)")
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast for both")
    parser.add_argument("--impls", nargs="+", default=["spikeflow", "spikingjelly"],
                        choices=["spikeflow", "spikingjelly"])
    parser.add_argument("--graphs", choices=["auto", "on", "off"], default="auto",
                        help="spikeflow with train.cuda_graphs=true (auto: on CUDA; if that run "
                             "fails, it is repeated without)")
    parser.add_argument("--set", dest="sets", nargs="+", default=[], metavar="KEY=VALUE",
                        help="more overrides for spikeflow train")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds before the spikeflow train subprocess is stopped")
    parser.add_argument("--out", default=None, help="folder for the run and its log (default: "
                        "a temporary folder)")
    parser.add_argument("--json", default=None, help="also write the rows as JSON to this path")
    args = parser.parse_args(argv)
    if args.device is None:
        if not torch.cuda.is_available():
            print("epoch benchmark: no CUDA device; pass --device cpu (with --max-steps) to run "
                  "it on the CPU")
            return []
        args.device = "cuda"
    device = torch.device(args.device)
    root = Path(args.data_root) if args.data_root else default_root()
    if root is None:
        raise SystemExit("Fashion-MNIST not found: pass --data-root (a folder with the four "
                         "IDX .gz files) or install the Debian package dataset-fashion-mnist")
    info = _gpu.device_info(device)
    print(f"device: {info.get('gpu', info['cpu'])}, torch {info['torch']} (CUDA {info['cuda']}), "
          f"SpikingJelly {info['spikingjelly'] or 'not installed'}; data {root}; "
          f"{'max ' + str(args.max_steps) + ' steps' if args.max_steps else 'one full epoch'}",
          flush=True)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="spikeflow-epoch-") as tmp:
        out_dir = Path(args.out) if args.out else Path(tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        for impl in args.impls:
            try:
                if impl == "spikeflow":
                    def attempt(sets: list[str], folder: Path) -> dict[str, Any]:
                        return run_spikeflow(root, args.device, args.max_steps, args.max_eval,
                                             args.mini, args.amp, sets, args.timeout, folder)

                    graphs = args.graphs == "on" or (args.graphs == "auto"
                                                     and device.type == "cuda")
                    row = attempt(args.sets + ["train.cuda_graphs=true"] if graphs else args.sets,
                                  out_dir)
                    if graphs and "error" in row and args.graphs == "auto":
                        row["impl"] = "spikeflow (train.cuda_graphs=true)"
                        rows.append({**row, "device": str(device)})
                        print(f"{row['impl']} ERROR {row['error']}; again without CUDA graphs",
                              flush=True)
                        row = attempt(args.sets, out_dir / "eager")
                else:
                    row = run_spikingjelly(root, device, args.max_steps, args.max_eval,
                                           args.mini, args.amp)
            except Exception as err:  # noqa: BLE001 - report and go on
                row = {"impl": impl, "error": f"{type(err).__name__}: {err}"}
            row["device"] = str(device)
            rows.append(row)
            if "error" in row:
                print(f"{impl:12s} ERROR {row['error']}", flush=True)
            else:
                acc = None if row.get("test_acc") is None else 100 * row["test_acc"]
                print(f"{impl:12s} epoch {_fmt(row.get('epoch_s'), '.1f')} s (train "
                      f"{_fmt(row.get('train_s'), '.1f')} s, {row['train_samples']} samples), "
                      f"test acc {_fmt(acc, '.2f')}%, wall {row['wall_s']:.1f} s", flush=True)
    by = {r["impl"]: r for r in rows if "error" not in r}
    lines = []
    if "spikeflow" in by and "spikingjelly" in by and by["spikeflow"].get("epoch_s"):
        sf_row, sj_row = by["spikeflow"], by["spikingjelly"]
        lines.append(f"epoch: spikeflow x{sj_row['epoch_s'] / sf_row['epoch_s']:.2f} vs "
                     f"SpikingJelly ({sf_row['epoch_s']:.1f} s vs {sj_row['epoch_s']:.1f} s)")
        if sf_row.get("train_s"):
            lines.append(f"training part: x{sj_row['train_s'] / sf_row['train_s']:.2f} "
                         f"({sf_row['train_s']:.1f} s vs {sj_row['train_s']:.1f} s)")
    for line in lines:
        print(line)
    _gpu.write_json(args.json, dict(benchmark="epoch", info=info, data_root=str(root),
                                    max_steps=args.max_steps, max_eval=args.max_eval,
                                    mini=args.mini, amp=args.amp, rows=rows, lines=lines))
    return rows


if __name__ == "__main__":
    main()
