"""``run(cfg)``: one training run end to end, resumable, single- or multi-process.

Per epoch: re-seed from ``(seed, epoch, rank)``, train (BPTT), step the schedule, evaluate the
validation and test sets, append a metrics row, write ``checkpoint_last.pt`` (and
``checkpoint_best.pt`` at a new best) atomically, rewrite ``metrics.csv``/``metrics.jsonl`` and
log TensorBoard scalars. A killed run resumed from its folder replays the interrupted epoch
exactly, so it ends with the same metrics and weights as an uninterrupted run; a resume first
finishes what the epoch of its checkpoint may not have written after ``checkpoint_last.pt``
(``checkpoint_best.pt``, the metric files, its TensorBoard scalars), and a complete run without
``metrics_test.json`` writes it (docs/training.md, "Resume guarantees").

``run`` restores what it changes in the process (torch's thread count, the deterministic-algorithms
flags, cuDNN flags and ``$CUBLAS_WORKSPACE_CONFIG``) when it returns or raises.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch import nn

from spikeflow.train import checkpoint as ck
from spikeflow.train.config import Config, ConfigError
from spikeflow.train.compiled import compile_for_training
from spikeflow.train.data import (EVAL_SEED, BatchEncoder, build_datasets, check_dataset_options,
                                  dataset_options, make_run_loader, set_loader_epoch)
from spikeflow.train.distributed import (DistInfo, barrier, env_dist_info, init_distributed,
                                         shutdown_distributed)
from spikeflow.train.logging import TensorBoard, epoch_scalars, versions, write_metrics
from spikeflow.train.model_info import summarize_model, write_model_summary
from spikeflow.train.loop import NonFiniteLossError, Step, evaluate, train_one_epoch
from spikeflow.train.losses import build_loss
from spikeflow.train.optim import build_optimizer, build_scheduler, current_lr
from spikeflow.train.progress import Progress, format_row, is_terminal
from spikeflow.train.seed import (derive_seed, get_rng_state, seed_everything, set_deterministic,
                                  set_rng_state)
from spikeflow.train.setup import (BEST, LAST, build_model, check_run_folder, count_params,
                                   format_seconds, import_plugins, resolve_amp, resolve_device,
                                   resolve_run_dir, summarize)
from spikeflow.train.testing import write_test_metrics
from spikeflow.utils.atomic import atomic_path, atomic_write_text

@dataclass
class RunResult:
    """What a finished (or already complete) run reports."""

    run_dir: Path
    history: list[dict[str, Any]]
    summary: dict[str, Any]
    seconds: float
    start_epoch: int = 0
    metrics: dict[str, Any] | None = field(default=None, repr=False)

    def line(self) -> str:
        """One-line summary: accuracy-A/B, run folder, time."""
        s = self.summary
        if s.get("acc_A") is not None:
            parts = [f"acc-A {100 * s['acc_A']:.2f}%"]
            if s.get("acc_B") is not None:
                parts.append(f"acc-B {100 * s['acc_B']:.2f}% (best val epoch {s['best_epoch']})")
        else:
            parts = [f"best test loss {s.get('best_test_loss', float('nan')):.5g} "
                     f"(epoch {s.get('best_epoch')})"]
        return (" | ".join(parts) + f" | {len(self.history)} epochs | run folder {self.run_dir} | "
                f"{format_seconds(self.seconds)}")


def run(cfg: Config, out: str | Path | None = None, resume: bool = False,
        echo: Callable[[str], None] = print) -> RunResult:
    """Train ``cfg`` into a run folder (see :mod:`spikeflow.train.setup` for the folder rules).

    Torch's thread count (``train.threads``), the deterministic-algorithms and cuDNN flags and
    ``$CUBLAS_WORKSPACE_CONFIG`` (``train.deterministic``) are restored on return."""
    saved = _process_state()
    try:
        import_plugins(cfg.run.imports)
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        if cfg.train.deterministic:
            set_deterministic(True)
        device = resolve_device(cfg.train.device, env_dist_info().local_rank)
        info = init_distributed(device)
        try:
            result = _run(cfg, out, resume, device, info,
                          echo if info.is_main else (lambda _: None))
        except BaseException:
            shutdown_distributed()
            raise
        shutdown_distributed(meet=True)
        return result
    finally:
        _restore_process_state(saved)


def _process_state() -> dict[str, Any]:
    """What :func:`run` may change in the process (restored by :func:`_restore_process_state`)."""
    return {"threads": torch.get_num_threads(),
            "deterministic": torch.are_deterministic_algorithms_enabled(),
            "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
            "cudnn_deterministic": torch.backends.cudnn.deterministic,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "cublas": os.environ.get("CUBLAS_WORKSPACE_CONFIG")}


def _restore_process_state(state: dict[str, Any]) -> None:
    if torch.get_num_threads() != state["threads"]:
        torch.set_num_threads(state["threads"])
    torch.use_deterministic_algorithms(state["deterministic"], warn_only=state["warn_only"])
    torch.backends.cudnn.deterministic = state["cudnn_deterministic"]
    torch.backends.cudnn.benchmark = state["cudnn_benchmark"]
    if state["cublas"] is None:
        os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    else:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = state["cublas"]


def _shared_run_dir(cfg: Config, out: Any, resume: bool, info: DistInfo) -> Path:
    path = [str(resolve_run_dir(cfg, out, resume))] if info.is_main else [""]
    if info.enabled:
        dist.broadcast_object_list(path, src=0)
    return Path(path[0])


def _existing_checkpoint(run_dir: Path, cfg: Config, resume: bool) -> dict[str, Any] | None:
    path = run_dir / LAST
    if not path.is_file():
        if resume:
            raise ck.CheckpointError(f"--resume: there is no {LAST} in {run_dir} to resume from")
        return None
    ckpt = ck.load_checkpoint(path)
    ck.check_resumable(ckpt, path)
    ck.check_compatible(ckpt, cfg.to_dict(), path)
    return ckpt


def _restore_training_state(ckpt: dict[str, Any], path: Path, cfg: Config, model: nn.Module,
                            opt: Any, sched: Any, scaler: Any) -> Any:
    """Load the checkpoint's model/optimizer/schedule/scaler/RNG states; returns the schedule.

    When ``train.epochs`` changed (``--resume --set train.epochs=N``) the schedule is rebuilt for
    the new length and stepped over the finished epochs from its start: every later epoch gets
    the learning rate a fresh N-epoch run has at that epoch (a ``T_max``/``T_0`` that defaults
    to ``train.epochs`` follows the new length; explicit ones and other schedules are
    unchanged)."""
    ck.load_model_state(model, ckpt["model"], path)
    try:
        opt.load_state_dict(ckpt["optimizer"])
        old_epochs = ckpt["config"].get("train", {}).get("epochs")
        if old_epochs != cfg.train.epochs:
            for group in opt.param_groups:
                group["lr"] = group.get("initial_lr", cfg.optim.lr)
            sched = build_scheduler(opt, cfg.schedule, cfg.train.epochs)
            with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()"
                warnings.simplefilter("ignore", UserWarning)
                for _ in range(int(ckpt["epoch"])):
                    sched.step()
        else:
            sched.load_state_dict(ckpt["scheduler"])
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"])
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as err:
        raise ck.CheckpointError(f"{path}: the optimizer/schedule/RNG states do not fit this run "
                                 f"({type(err).__name__}: {err})") from None
    return sched


def _finish_epoch_files(run_dir: Path, history: list[dict[str, Any]], board: Any,
                        is_main: bool) -> None:
    """Redo what the epoch of ``checkpoint_last.pt`` writes after it (a kill may have cut it
    short): ``checkpoint_best.pt`` when that epoch was the best, the metric files, its
    TensorBoard scalars. Idempotent."""
    if not is_main or not history:
        return
    epoch = int(history[-1]["epoch"])
    if summarize(history)["best_epoch"] == epoch:
        _copy_atomic(run_dir / LAST, run_dir / BEST)
    write_metrics(run_dir, history)
    board.scalars(epoch_scalars(history[-1]), epoch)


def _checkpoint(cfg: Config, model: nn.Module, opt: Any, sched: Any, scaler: Any, epoch: int,
                history: list[dict[str, Any]], split_id: str | None) -> dict[str, Any]:
    return {
        "format": ck.FORMAT, "version": ck.VERSION, "model_name": cfg.model.name,
        "config": cfg.to_dict(), "model": model.state_dict(), "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(), "scaler": scaler.state_dict() if scaler else None,
        "epoch": epoch, "history": history, "rng": get_rng_state(), "split": split_id,
    }


def _copy_atomic(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def _build_data(cfg: Config, run_dir: Path, info: DistInfo):
    # rank 0 first: it writes split.json and any dataset cache the others then read
    if not info.is_main:
        barrier()
    data = build_datasets(cfg, run_dir)
    if info.is_main:
        barrier()
    return data


def _run(cfg: Config, out: Any, resume: bool, device: torch.device, info: DistInfo,
         echo: Callable[[str], None]) -> RunResult:
    started = time.perf_counter()
    run_dir = _shared_run_dir(cfg, out, resume, info)
    if info.is_main:
        check_run_folder(run_dir)
    opts = dataset_options(cfg)  # unknown option names fail before the folder is made
    check_dataset_options(cfg, opts)
    check_dataset_options(cfg, {**opts, **cfg.data.eval_options}, "data.options/data.eval_options")
    ckpt = _existing_checkpoint(run_dir, cfg, resume)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if ckpt is None:  # a fresh start: forget a split of an attempt that never checkpointed
            (run_dir / "split.json").unlink(missing_ok=True)
        # first, so an interrupted start still leaves a folder recognised as a run folder
        atomic_write_text(run_dir / "config.yaml", cfg.to_yaml())
        atomic_write_text(run_dir / "versions.json",
                          json.dumps(versions(cfg.train.seed), indent=2) + "\n")
    barrier()
    data = _build_data(cfg, run_dir, info)
    seed_everything(cfg.train.seed)
    model = build_model(cfg).to(device)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    amp = resolve_amp(cfg.train.amp, device)
    scaler = torch.amp.GradScaler("cuda") if amp == torch.float16 else None
    graphs = _cuda_graphs(cfg, device, info, scaler is not None)
    opt = build_optimizer(model.parameters(), cfg.optim, capturable=graphs)
    sched = build_scheduler(opt, cfg.schedule, cfg.train.epochs)
    history: list[dict[str, Any]] = []
    start = 0
    if ckpt is not None:
        if ckpt.get("split") != data.split_id:
            raise ck.CheckpointError(f"{run_dir / LAST}: the train/val split changed "
                                     f"(checkpoint {ckpt.get('split')}, now {data.split_id})")
        sched = _restore_training_state(ckpt, run_dir / LAST, cfg, model, opt, sched, scaler)
        history, start = list(ckpt["history"]), int(ckpt["epoch"])
    # evaluation runs the (DDP-wrapped) model eagerly; train.compile compiles the training
    # forward only (no recompiles for eval mode, the eval batch size or the firing-rate hooks),
    # for the shape of the first batch (a last smaller batch runs eagerly: no second compile)
    eval_net: nn.Module = model
    if info.enabled:
        eval_net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    net = compile_for_training(eval_net, cfg.train.compile_options) if cfg.train.compile \
        else eval_net
    train_loader = make_run_loader(data.train, cfg, info, True, device)
    eval_loaders = {"val": make_run_loader(data.val, cfg, info, False, device)} if data.val else {}
    eval_loaders["test"] = make_run_loader(data.test, cfg, info, False, device)
    encoder = BatchEncoder(cfg.data.encoding, cfg.data.T, device, cfg.train.channels_last)
    interval = cfg.train.log_interval or (CUDA_LOG_INTERVAL if device.type == "cuda" else 1)
    step = Step(build_loss(cfg.train.loss, cfg.train.loss_options), encoder, device,
                cfg.train.accuracy, amp, scaler, cfg.train.grad_clip, info.enabled,
                cfg.train.pack_saved, log_interval=interval, cuda_graphs=graphs)
    if start == 0:
        echo(f"run folder: {run_dir}")
    else:
        echo(f"resuming {run_dir} after epoch {start}/{cfg.train.epochs}")
    procs = f" x{info.world} processes ({dist.get_backend()})" if info.enabled else ""
    echo(f"model {cfg.model.name} ({count_params(model):,} parameters) on {device}{procs}, "
         f"{_precision(amp, graphs, cfg.train.compile)} | data {cfg.data.name}: "
         f"train {len(data.train)}, {'val ' + str(len(data.val)) + ', ' if data.val else ''}"
         f"test {len(data.test)}{_placement(train_loader, device)}")
    complete = start >= cfg.train.epochs
    if complete:
        echo(f"run already complete ({start} epochs)")
    if info.is_main and not complete:
        # one forward pass on one training sample; model_summary.json for reports
        model_summary = summarize_model(cfg, model, data.train, device)
        write_model_summary(run_dir, model_summary)
        echo(model_summary.line())
    bars = not cfg.train.quiet and info.is_main and not complete and is_terminal()
    # purge_step=start: the scalars of the checkpoint's epoch are rewritten by _finish_epoch_files
    board = TensorBoard(run_dir, cfg.run.tensorboard and info.is_main, purge_step=start or None)
    progress = Progress(cfg.train.epochs, start, len(train_loader), bars, echo)
    step.on_batch = progress.batch
    try:
        _finish_epoch_files(run_dir, history, board, info.is_main)
        for epoch in range(start, cfg.train.epochs):
            seed_everything(derive_seed(cfg.train.seed, epoch, info.rank))
            set_loader_epoch(train_loader, epoch, cfg.train.seed, info.rank)
            encoder.reseed(derive_seed(cfg.train.seed, epoch, info.rank, 3))
            progress.start_epoch(epoch)
            t0 = time.perf_counter()
            try:
                tr = train_one_epoch(net, train_loader, opt, step, epoch)
            except NonFiniteLossError as err:
                last = run_dir / LAST
                keep = (f"the last good checkpoint is {last} (epoch {len(history)})"
                        if last.is_file() else "no checkpoint was written yet")
                raise NonFiniteLossError(f"{err}; training stopped, {keep}") from None
            row: dict[str, Any] = {"epoch": epoch + 1, "lr": current_lr(opt)}
            sched.step()
            row.update({f"train_{k}": v for k, v in tr.items() if k in ("loss", "acc")})
            row.update(_evaluate_all(eval_net, model, eval_loaders, step, encoder, cfg))
            row["epoch_seconds"] = time.perf_counter() - t0
            row["train_samples_per_s"] = tr["samples_per_s"]
            history.append(row)
            summary = summarize(history)
            row.update({"acc_A": summary["acc_A"], "acc_B": summary["acc_B"],
                        "best_epoch": summary["best_epoch"]})
            if info.is_main:
                state = _checkpoint(cfg, model, opt, sched, scaler, epoch + 1, history,
                                    data.split_id)
                ck.atomic_save(state, run_dir / LAST)
                if summary["best_epoch"] == epoch + 1:
                    _copy_atomic(run_dir / LAST, run_dir / BEST)
                write_metrics(run_dir, history)
                board.scalars(epoch_scalars(row), epoch + 1)
            progress.end_epoch(format_row(row, cfg.train.epochs))
    finally:
        progress.close()
        board.close()
    barrier()
    result = RunResult(run_dir, history, summarize(history), time.perf_counter() - started, start)
    done = run_dir / "metrics_test.json"
    if complete and done.is_file():  # written at the end of the run that completed it
        result.metrics = json.loads(done.read_text(encoding="utf-8"))
        return result
    best = run_dir / BEST if (run_dir / BEST).is_file() else run_dir / LAST
    ck.load_model_state(model, ck.load_checkpoint(best, device)["model"], best)
    seed_everything(cfg.train.seed)  # the same RNG state whether or not the run was resumed
    encoder.reseed(EVAL_SEED)
    result.metrics = write_test_metrics(model, eval_loaders["test"], step, run_dir, info.is_main)
    return result


#: steps between host reads of the running loss/accuracy on CUDA (train.log_interval: null)
CUDA_LOG_INTERVAL = 50


def _cuda_graphs(cfg: Config, device: torch.device, info: DistInfo, scaler: bool) -> bool:
    """Whether the training step runs as a CUDA graph (``train.cuda_graphs`` on CUDA)."""
    if not (cfg.train.cuda_graphs and device.type == "cuda"):
        return False
    if info.enabled:
        raise ConfigError("train.cuda_graphs=true is not supported with several processes (DDP); "
                          "set train.cuda_graphs=false")
    if scaler:
        raise ConfigError("train.cuda_graphs=true needs bfloat16 or no autocast (this GPU has no "
                          "bfloat16, so train.amp=auto chose float16 with a GradScaler); set "
                          "train.amp=off")
    return True


def _precision(amp: torch.dtype | None, graphs: bool, compiled: bool) -> str:
    text = {torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast + GradScaler"}.get(
        amp, "float32")
    return text + (", CUDA graphs" if graphs else "") + (", compiled" if compiled else "")


def _placement(loader: Any, device: torch.device) -> str:
    if getattr(loader, "on_device", False):
        mib = loader.nbytes / 2**20
        return f" (held on {device.type}, {mib:.{0 if mib >= 10 else 1}f} MiB)"
    return ""


def _evaluate_all(net: nn.Module, model: nn.Module, loaders: dict[str, Any], step: Step,
                  encoder: BatchEncoder, cfg: Config) -> dict[str, Any]:
    """Validation and test metrics (+ per-layer firing rates and learnable taus on test)."""
    row: dict[str, Any] = {}
    for name, loader in loaders.items():
        encoder.reseed(EVAL_SEED)
        if name == "test" and cfg.run.log_firing_rates:
            from spikeflow.metrics import SpikeRecorder, firing_rates  # noqa: PLC0415

            with SpikeRecorder(model) as rec:
                res = evaluate(net, loader, step)
            rec.all_reduce()
            row.update({f"rate/{k}": v for k, v in firing_rates(rec).items()})
        else:
            res = evaluate(net, loader, step)
        row[f"{name}_loss"] = res["loss"]
        if "acc" in res:
            row[f"{name}_acc"] = res["acc"]
    if cfg.run.log_firing_rates:
        from spikeflow.metrics import neuron_taus  # noqa: PLC0415

        modules = dict(model.named_modules())
        row.update({f"tau/{k}": v for k, v in neuron_taus(model).items()
                    if any(p.requires_grad for p in modules[k].parameters(recurse=False))})
    return row


__all__ = ["run", "RunResult"]
