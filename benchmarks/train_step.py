"""Whole training step: spikeflow vs SpikingJelly (multi-step, torch backend), snnTorch and Norse.

One step = forward over all T steps, loss ``MSE(mean_t out[t], one_hot)``, backward, Adam update,
for two reference nets (LIF tau 2, threshold 1, hard reset to 0, sigmoid surrogate alpha 4):

* ``conv``: input ``[T=10, B=16, 2, 34, 34]`` binary; Conv(2,32,3,p1)-BN-LIF-MaxPool2 -
  Conv(32,32,3,p1)-BN-LIF-MaxPool2 - Linear(2048,512)-LIF - Linear(512,10)-LIF;
* ``fc``: input ``[T=25, B=64, 784]`` binary; Linear(784,512)-LIF - Linear(512,10)-LIF.

Every implementation starts from the same weights (copied from the spikeflow net, scaled by
:func:`active_init` so that every layer spikes), so spikeflow and SpikingJelly (same dynamics) print
the same first loss. snnTorch's ``Leaky`` (beta 0.5, zero reset, same
sigmoid surrogate) adds the input without the ``1/tau`` factor; Norse's ``LIFBoxCell`` (dt 1,
tau_mem_inv 0.5) has no sigmoid surrogate, SuperSpike (alpha 4) stands in. Both run their
idiomatic per-step loop. Peers are imported lazily and skipped when missing. spikeflow runs the
conv net channels-last (``train.channels_last``), as a user would configure it on CPU.

Time: median wall time of a step over repeats; the implementations take turns inside every repeat,
so background load hits them alike. Memory ("step MB"): what a training step holds at its peak,
counted exactly from tensors -- the distinct storages autograd saves for backward during the
forward (``torch.autograd.graph.saved_tensors_hooks``; views and the parameters themselves are
counted once) + input + parameters + gradients + Adam state. With ``--rss`` every implementation
also runs alone in a subprocess and reports its peak RSS growth over 5 steps (resident set size
sampled every millisecond from ``/proc/self/statm``, minus the RSS before the first step; includes
allocator slack and per-step temporaries, Linux only).

    python benchmarks/train_step.py [--nets conv fc] [--repeats 15] [--threads N] [--rss]

On a GPU (``--device cuda``): the ``conv`` net at ``T=10, B=64`` and ``plif_fmnist``, the PLIF
Fashion-MNIST paper net (``plif_fashion_mnist``: static Conv(1,128)+BN, PLIF, MaxPool,
Conv(128,128)+BN, PLIF, MaxPool, Drop, Linear(6272,2048), PLIF, Drop, Linear(2048,100), PLIF,
voting; ATan(2), detach_reset; ``T=8``, ``B=16``, analog images repeated over T, the static conv
run once), against the same nets built by hand from SpikingJelly 2.0's layers, float32 and with
bfloat16 autocast (``--precision fp32 amp``, or ``--amp`` for ``amp`` alone)::

    python benchmarks/train_step.py --device cuda --precision fp32 amp --json train_step.json

Time: do_bench style (``benchmarks/_gpu.py``): warm-up steps, then ``--repeats`` steps each
bracketed by CUDA events, median (no host synchronisation inside a step: the loss stays on the
device). ``peak MB``: what one step allocates at its peak on top of what is held between steps
(parameters, Adam state, input): ``torch.cuda.max_memory_allocated`` delta. ``cudnn.benchmark`` is
on for every implementation. ``--mode gpu`` runs the same protocol on any device (the CPU dry run
of ``scripts/gpu_check.sh``); ``--json PATH`` writes the rows.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable, Optional

import spikeflow.runtime

spikeflow.runtime.configure()  # before torch: short OpenMP spin-wait, numba cache (docs/runtime.md)
import torch
import torch.nn.functional as F
from torch import Tensor, nn

if str(Path(__file__).resolve().parent) not in sys.path:  # benchmarks/_gpu.py
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import _gpu  # noqa: E402

NETS = {"conv": dict(T=10, B=16, shape=(2, 34, 34), density=0.15),
        "fc": dict(T=25, B=64, shape=(784,), density=0.2),
        # analog images (density None), repeated over T
        "plif_fmnist": dict(T=8, B=16, shape=(1, 28, 28), density=None)}
CPU_NETS = ("conv", "fc")
DEVICE_NETS = ("conv", "plif_fmnist")
DEVICE_BATCH = {"conv": 64}  # --device cuda: the conv net at B=64 (the GPU shape)
IMPLS = ("spikeflow", "spikeflow+pack", "spikeflow+graphs", "spikingjelly", "snntorch", "norse")
# spikeflow+graphs: the same net and step replayed as one CUDA graph (train.cuda_graphs; CUDA only)
DEVICE_IMPLS = ("spikeflow", "spikeflow+graphs", "spikingjelly")
OURS = ("spikeflow", "spikeflow+pack", "spikeflow+graphs")

__all__ = ["main", "build", "measure", "measure_device", "sj_plif_static"]


# ----------------------------------------------------------------------------- implementations
def _spikeflow(net: str) -> nn.Module:
    """spikeflow's net as configured for CPU training: the event-driven ``SparseLinear`` on the
    binary fc input, spikes saved as uint8 (``compact_spikes``) where the conversion is cheap
    (not for the first conv layer's 5.9M spikes), and (in :func:`make_trainer`) channels-last."""
    from spikeflow.layers import SeqToBatch, SparseLinear
    from spikeflow.neurons import LIF

    def lif() -> nn.Module:
        return LIF(tau=2.0, v_threshold=1.0, v_reset=0.0)  # Sigmoid(alpha=4) surrogate by default

    if net == "plif_fmnist":
        from spikeflow.models import create_model

        return create_model("plif_fashion_mnist")
    if net == "fc":
        return nn.Sequential(SeqToBatch(SparseLinear(784, 512)), lif(),
                             SeqToBatch(nn.Linear(512, 10), compact_spikes=True), lif())
    return nn.Sequential(
        SeqToBatch(nn.Conv2d(2, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32)), lif(),
        SeqToBatch(nn.MaxPool2d(2), nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32)),
        lif(), SeqToBatch(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2048, 512), compact_spikes=True),
        lif(), SeqToBatch(nn.Linear(512, 10), compact_spikes=True), lif())


def sj_plif_static(channels: int = 128, hidden: int = 2048, dropout: float = 0.5) -> nn.Module:
    """The PLIF Fashion-MNIST paper net from SpikingJelly 2.0's layers, multi-step, as its paper
    code runs it: the static Conv+BN once on the image, its output repeated over T as the input
    current of the spiking part; layer order as ``plif_fashion_mnist`` (weights copy over).
    Input ``[T, B, 1, 28, 28]`` (the same image at every step), output ``[T, B, 10]``."""
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    def plif() -> nn.Module:
        return neuron.ParametricLIFNode(init_tau=2.0, v_threshold=1.0, v_reset=0.0,
                                        detach_reset=True,
                                        surrogate_function=surrogate.ATan(alpha=2.0))

    static = nn.Sequential(nn.Conv2d(1, channels, 3, padding=1, bias=False),
                           nn.BatchNorm2d(channels))
    body = nn.Sequential(
        plif(), layer.MaxPool2d(2, 2),
        layer.Conv2d(channels, channels, 3, padding=1, bias=False), layer.BatchNorm2d(channels),
        plif(), layer.MaxPool2d(2, 2), layer.Flatten(),
        layer.Dropout(dropout), layer.Linear(channels * 49, hidden, bias=False), plif(),
        layer.Dropout(dropout), layer.Linear(hidden, 100, bias=False), plif())
    functional.set_step_mode(body, "m")

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.static, self.body = static, body

        def forward(self, x: Tensor) -> Tensor:
            functional.reset_net(self.body)
            current = self.static(x[0])
            out = self.body(current.unsqueeze(0).expand(x.shape[0], *current.shape))
            return out.unflatten(-1, (10, 10)).mean(-1)  # voting: 10 neurons per class
    return Net()


def _spikingjelly(net: str) -> nn.Module:
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    if net == "plif_fmnist":
        return sj_plif_static()

    def lif() -> nn.Module:
        return neuron.LIFNode(tau=2.0, v_threshold=1.0, v_reset=0.0,
                              surrogate_function=surrogate.Sigmoid(alpha=4.0))

    if net == "fc":
        body = nn.Sequential(layer.Linear(784, 512), lif(), layer.Linear(512, 10), lif())
    else:
        body = nn.Sequential(
            layer.Conv2d(2, 32, 3, padding=1, bias=False), layer.BatchNorm2d(32), lif(),
            layer.MaxPool2d(2), layer.Conv2d(32, 32, 3, padding=1, bias=False),
            layer.BatchNorm2d(32), lif(), layer.MaxPool2d(2), layer.Flatten(),
            layer.Linear(2048, 512), lif(), layer.Linear(512, 10), lif())
    functional.set_step_mode(body, "m")

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = body

        def forward(self, x: Tensor) -> Tensor:
            functional.reset_net(self.body)
            return self.body(x)
    return Net()


class _PerStep(nn.Module):
    """Stateless layers and per-step neurons, unrolled over T (snnTorch / Norse style)."""

    def __init__(self, layers: list[nn.Module], neurons: list[nn.Module],
                 step: Callable[[nn.Module, Tensor, object], tuple[Tensor, object]]) -> None:
        super().__init__()
        self.layers, self.neurons, self.step = nn.ModuleList(layers), nn.ModuleList(neurons), step

    def forward(self, x: Tensor) -> Tensor:
        states: list[object] = [None] * len(self.neurons)
        outs = []
        for xt in x:
            for i, (lay, neu) in enumerate(zip(self.layers, self.neurons)):
                xt, states[i] = self.step(neu, lay(xt), states[i])
            outs.append(xt)
        return torch.stack(outs)


def _stages(net: str) -> list[nn.Module]:
    if net not in ("conv", "fc"):
        raise NotImplementedError(f"no per-step version of the {net} net")
    if net == "fc":
        return [nn.Linear(784, 512), nn.Linear(512, 10)]
    return [nn.Sequential(nn.Conv2d(2, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32)),
            nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(32, 32, 3, padding=1, bias=False),
                          nn.BatchNorm2d(32)),
            nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2048, 512)),
            nn.Linear(512, 10)]


def _snntorch(net: str) -> nn.Module:
    import snntorch
    from snntorch import surrogate

    def step(neu: nn.Module, cur: Tensor, mem: object) -> tuple[Tensor, object]:
        if mem is None:
            mem = torch.zeros_like(cur)
        return neu(cur, mem)

    stages = _stages(net)
    neurons = [snntorch.Leaky(beta=0.5, threshold=1.0, spike_grad=surrogate.sigmoid(slope=4),
                              reset_mechanism="zero", reset_delay=False) for _ in stages]
    return _PerStep(stages, neurons, step)


def _norse(net: str) -> nn.Module:
    from norse.torch import LIFBoxCell, LIFBoxParameters

    p = LIFBoxParameters(tau_mem_inv=torch.tensor(0.5), v_leak=torch.tensor(0.0),
                         v_th=torch.tensor(1.0), v_reset=torch.tensor(0.0), method="super",
                         alpha=torch.tensor(4.0))
    stages = _stages(net)
    return _PerStep(stages, [LIFBoxCell(p, dt=1.0) for _ in stages],
                    lambda neu, cur, state: neu(cur, state))


BUILDERS = {"spikeflow": _spikeflow, "spikeflow+pack": _spikeflow, "spikeflow+graphs": _spikeflow,
            "spikingjelly": _spikingjelly, "snntorch": _snntorch, "norse": _norse}


def build(impl: str, net: str) -> Optional[nn.Module]:
    """The reference net ``net`` in library ``impl``; ``None`` when the library is missing."""
    try:
        return BUILDERS[impl](net)
    except (ImportError, NotImplementedError):
        return None


def active_init(model: nn.Module) -> nn.Module:
    """Scale the default init so that every layer spikes (BN gamma 2, Linear weights x8): rates of
    roughly 5-20%, so the printed first losses cross-check the dynamics of the libraries."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.fill_(2.0)
            elif isinstance(m, nn.Linear):
                m.weight.mul_(8.0)
    return model


def make_trainer(impl: str, net: str, ref: nn.Module, x: Tensor, y: Tensor,
                 device: Optional[torch.device] = None, amp: Optional[torch.dtype] = None,
                 channels_last: bool = True) -> Optional["Trainer"]:
    """``impl``'s net with ``ref``'s weights, ready to step on ``device`` (default: where ``x``
    is); spikeflow runs the conv net channels-last (``train.channels_last``: weights and every
    input step) unless ``channels_last`` is False; ``amp``: autocast dtype of forward + loss."""
    graphs = impl == "spikeflow+graphs"
    if graphs and (device or x.device).type != "cuda":
        return None  # CUDA graphs need CUDA (the CPU dry run skips this implementation)
    model = build(impl, net)
    if model is None:
        return None
    copy_weights(ref, model)
    if device is not None:
        model = model.to(device)
    if impl in OURS and net == "conv" and channels_last:
        from spikeflow.train.data import steps_channels_last

        model, x = model.to(memory_format=torch.channels_last), steps_channels_last(x)
    return Trainer(model, x, y, pack=impl == "spikeflow+pack", engine_optim=impl in OURS, amp=amp,
                   graphs=graphs)


def copy_weights(src: nn.Module, dst: nn.Module) -> None:
    """Copy Conv2d/BatchNorm2d/Linear weights in order (the nets list the same layers)."""
    kinds = (nn.Conv2d, nn.BatchNorm2d, nn.Linear)
    a = [m for m in src.modules() if isinstance(m, kinds)]
    b = [m for m in dst.modules() if isinstance(m, kinds)]
    def kind(m: nn.Module) -> type:
        return next(k for k in kinds if isinstance(m, k))

    if [kind(m) for m in a] != [kind(m) for m in b]:
        raise RuntimeError(f"{type(dst).__name__}: layers differ from the spikeflow net")
    for s, d in zip(a, b):
        d.load_state_dict(s.state_dict())


# ----------------------------------------------------------------------------- measurement
class Trainer:
    """One implementation with its optimizer; ``step()`` is one training step.

    ``pack``: spikeflow runs forward+loss inside ``spikeflow.train.memory.packed_saved_tensors``
    (``train.pack_saved``: spikes saved for backward are kept as bits, max-pool indices as int32).
    ``graphs``: the step runs through the engine's ``GraphedTrainStep`` (``train.cuda_graphs``:
    3 eager warm-up steps, one capture, then one graph replay per step after copying the batch
    into the static input), with a capturable Adam; ``capture`` replaces ``torch.cuda.graph``
    (tests on CPU pass a stand-in that runs the step eagerly at every replay, no side stream).
    """

    def __init__(self, model: nn.Module, x: Tensor, y: Tensor, pack: bool = False,
                 engine_optim: bool = False, amp: Optional[torch.dtype] = None,
                 graphs: bool = False, capture: Optional[Callable] = None) -> None:
        self.model, self.x, self.target = model, x, F.one_hot(y, 10).float()
        self.amp = amp
        if engine_optim:  # spikeflow's engine: fused Adam where supported (optim.fused)
            from spikeflow.train.config import OptimConfig
            from spikeflow.train.optim import build_optimizer

            self.opt = build_optimizer(model.parameters(), OptimConfig(name="adam", lr=1e-3),
                                       capturable=graphs)
        else:
            self.opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        self.pack = pack
        self.graph = None
        if graphs:
            from spikeflow.train.graphs import GraphedTrainStep

            def forward(x: Tensor, target: Tensor, capturing: bool) -> tuple[Tensor, Tensor]:
                loss = self._loss(x, target, cache=not capturing)
                return loss, loss.new_zeros(())

            def update(loss: Tensor) -> None:
                loss.backward()
                self.opt.step()

            extra = {} if capture is None else {"capture": capture, "side_stream": False}
            self.graph = GraphedTrainStep(forward, update,
                                          lambda: self.opt.zero_grad(set_to_none=True), **extra)

    def _loss(self, x: Tensor, target: Tensor, cache: bool = True) -> Tensor:
        if self.amp is None:
            return F.mse_loss(self.model(x).mean(0), target)
        with torch.autocast(x.device.type, dtype=self.amp, cache_enabled=cache):
            out = self.model(x)
        return F.mse_loss(out.float().mean(0), target)

    def loss(self) -> Tensor:
        return self._loss(self.x, self.target)

    def step(self) -> float:
        return float(self.step_async())

    def step_async(self) -> Tensor:
        """One step; the loss stays a device tensor (no host synchronisation)."""
        if self.graph is not None:
            return self.graph(self.x, self.target)[0]
        self.opt.zero_grad(set_to_none=True)
        if self.pack:
            from spikeflow.train.memory import packed_saved_tensors

            with packed_saved_tensors():
                loss = self.loss()
        else:
            loss = self.loss()
        loss.backward()
        self.opt.step()
        return loss.detach()

    def memory_mb(self) -> float:
        """Saved-for-backward storages (as stored, i.e. packed for spikeflow) + input + params +
        grads + Adam state, in MiB."""
        params = list(self.model.parameters())
        skip = {p.untyped_storage().data_ptr() for p in params}
        skip.add(self.x.untyped_storage().data_ptr())
        seen: dict[int, int] = {}
        inner, unpack = (lambda t: t), (lambda t: t)
        if self.pack:
            from spikeflow.train.memory import make_hooks

            inner, unpack = make_hooks()

        def pack(t: Tensor) -> object:
            kept = inner(t)
            if isinstance(kept, Tensor):
                st = kept.untyped_storage()
                if st.data_ptr() not in skip:
                    seen[st.data_ptr()] = st.nbytes()
            else:
                from spikeflow.train.memory import packed_nbytes

                seen[id(kept)] = packed_nbytes(kept)
            return kept

        # As in training: under train.pack_saved the spikes are bit-packed by its hooks; otherwise
        # SeqToBatch's uint8 compaction of saved spikes chains into this recorder.
        pack.packs_spikes = self.pack  # type: ignore[attr-defined]
        with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
            loss = self.loss()
        del loss
        p_bytes = sum(p.numel() * p.element_size() for p in params)
        state = sum(t.numel() * t.element_size() for s in self.opt.state.values()
                    for t in s.values() if isinstance(t, Tensor) and t.dim() > 0)
        x_bytes = self.x.numel() * self.x.element_size()
        return (sum(seen.values()) + x_bytes + 2 * p_bytes + state) / 2**20


def make_input(net: str, seed: int = 0, batch: Optional[int] = None,
               device: Optional[torch.device] = None) -> tuple[Tensor, Tensor]:
    """Input ``[T, B, ...]`` and labels ``[B]`` of ``net`` (``batch`` overrides ``B``): binary
    events at the net's density, or (``plif_fmnist``) one normalised analog image per sample
    repeated over T as a stride-0 view, on ``device``."""
    spec = NETS[net]
    B = batch or spec["B"]
    g = torch.Generator().manual_seed(seed)
    if spec["density"] is None:
        img = (torch.rand(B, *spec["shape"], generator=g) - 0.2860) / 0.3530
        x = img.to(device).unsqueeze(0).expand(spec["T"], *img.shape)
    else:
        x = (torch.rand(spec["T"], B, *spec["shape"], generator=g) < spec["density"]).float()
        x = x.to(device)
    return x, torch.randint(0, 10, (B,), generator=g).to(device)


def measure(net: str, repeats: int, impls: tuple[str, ...] = IMPLS) -> list[dict]:
    """Rows ``{net, impl, ms, step_mb, loss}`` for the installed implementations.

    ``spikeflow`` is the engine's default step (fused Adam); ``spikeflow+pack`` adds
    ``train.pack_saved`` (saved spikes as bits, pool indices as int32).
    """
    x, y = make_input(net)
    torch.manual_seed(0)
    ref = reference_net(net)
    trainers: dict[str, Trainer] = {}
    for impl in impls:
        trainer = make_trainer(impl, net, ref, x, y)
        if trainer is not None:
            trainers[impl] = trainer
    with torch.no_grad():
        first_loss = {impl: float(t.loss()) for impl, t in trainers.items()}
    for t in trainers.values():  # warm-up: numba, allocator, Adam state
        t.step(), t.step()
    times: dict[str, list[float]] = {impl: [] for impl in trainers}
    for _ in range(repeats):
        for impl, t in trainers.items():
            start = time.perf_counter()
            t.step()
            times[impl].append(time.perf_counter() - start)
    return [dict(net=net, impl=impl, ms=1e3 * statistics.median(times[impl]),
                 step_mb=t.memory_mb(), loss=first_loss[impl]) for impl, t in trainers.items()]


def reference_net(net: str) -> nn.Module:
    """The spikeflow net whose weights every implementation starts from: :func:`active_init`
    for the reference nets, the paper's own init for ``plif_fmnist``."""
    model = _spikeflow(net)
    return model if net == "plif_fmnist" else active_init(model)


def measure_device(net: str, device: torch.device, amp: Optional[torch.dtype] = None,
                   repeats: int = 30, impls: tuple[str, ...] = DEVICE_IMPLS,
                   batch: Optional[int] = None, channels_last: bool = True,
                   warmup: int = 3) -> list[dict]:
    """Rows ``{net, precision, impl, B, T, ms (median), min_ms, reps, peak_mb, step_mb, loss}``
    on ``device`` (do_bench style, see the module docstring); an implementation that fails gets a
    row with ``error``. ``amp``: autocast dtype (``None``: float32)."""
    precision = "fp32" if amp is None else f"{str(amp).split('.')[-1]} autocast"
    x, y = make_input(net, batch=batch, device=device)
    torch.manual_seed(0)
    ref = reference_net(net)
    rows = []
    for impl in impls:
        base = dict(net=net, precision=precision, impl=impl, B=x.shape[1], T=x.shape[0],
                    device=str(device))
        try:
            trainer = make_trainer(impl, net, ref, x, y, device, amp, channels_last)
            if trainer is None:
                continue
            with torch.no_grad():
                loss0 = float(trainer.loss())
            # warm-up: compile, cudnn.benchmark, allocator, Adam state (graphs: + the graph's own
            # eager warm-up steps and the capture)
            for _ in range(warmup + (trainer.graph.warmup + 1 if trainer.graph is not None else 0)):
                trainer.step_async()
            row = {**base, **_gpu.summary(_gpu.time_ms(trainer.step_async, device, reps=repeats,
                                                       flush=False, prime=False))}
            # a replay allocates nothing: the step's memory sits in the graph's pool
            row["peak_mb"] = (None if trainer.graph is not None
                              else _gpu.peak_mb(trainer.step_async, device))
            try:
                row["step_mb"] = trainer.memory_mb()
            except Exception as err:  # noqa: BLE001 - the count is optional
                row["step_mb"] = None
                row["step_mb_error"] = f"{type(err).__name__}: {err}"
            row["loss"] = loss0
            if impl == "spikingjelly":
                row["sj_impl"] = ",".join(f"{k}:{v}" for k, v in _gpu.sj_implementations().items())
        except Exception as err:  # noqa: BLE001 - report and go on
            rows.append({**base, "error": f"{type(err).__name__}: {err}"})
            continue
        finally:
            trainer = None
        rows.append(row)
    return rows


def _device_lines(rows: list[dict]) -> list[str]:
    lines = []
    by = {(r["net"], r["precision"], r["impl"]): r for r in rows if "ms" in r}
    for (net, precision, impl), r in by.items():
        if impl not in OURS:
            continue
        text = f"{net} {precision} {impl}: {r['ms']:.2f} ms"
        sj = by.get((net, precision, "spikingjelly"))
        if sj:
            text += f", x{sj['ms'] / r['ms']:.2f} vs SpikingJelly ({sj['ms']:.2f} ms)"
            if r.get("peak_mb") is not None and sj.get("peak_mb"):
                text += f", peak memory {r['peak_mb'] / sj['peak_mb']:.2f}x SpikingJelly"
        lines.append(text)
    return lines


def main_device(args: argparse.Namespace) -> list[dict]:
    """``--device cuda`` / ``--mode gpu``: nets x precisions on the device."""
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: CUDA is not available")
        torch.backends.cudnn.benchmark = True
    nets = args.nets or list(DEVICE_NETS)
    impls = tuple(args.impls or DEVICE_IMPLS)
    precisions = ["amp"] if args.amp else args.precision
    info = _gpu.device_info(device)
    print(f"device: {info.get('gpu', info['cpu'])}, torch {info['torch']} (CUDA {info['cuda']}), "
          f"triton {info['triton']}, SpikingJelly {info['spikingjelly'] or 'not installed'}; "
          f"median of {args.repeats} steps", flush=True)
    print(f"{'net':11s} {'precision':>17s} {'impl':>13s} {'B':>3s} {'ms/step':>9s} {'min ms':>8s} "
          f"{'peak MB':>8s} {'step MB':>8s} {'loss(0)':>9s}")
    rows = []
    for net in nets:
        batch = args.batch or (DEVICE_BATCH.get(net) if device.type == "cuda" else None)
        for prec in precisions:
            amp = None if prec == "fp32" else torch.bfloat16
            for row in measure_device(net, device, amp, args.repeats, impls, batch,
                                      not args.no_channels_last, args.warmup):
                rows.append(row)
                if "error" in row:
                    print(f"{net:11s} {row['precision']:>17s} {row['impl']:>13s}  ERROR "
                          f"{row['error']}", flush=True)
                    continue
                peak = "-" if row["peak_mb"] is None else f"{row['peak_mb']:8.1f}"
                step_mb = "-" if row["step_mb"] is None else f"{row['step_mb']:8.1f}"
                print(f"{net:11s} {row['precision']:>17s} {row['impl']:>13s} {row['B']:3d} "
                      f"{row['ms']:9.2f} {row['min_ms']:8.2f} {peak:>8s} {step_mb:>8s} "
                      f"{row['loss']:9.5f}" + (f"  [{row['sj_impl']}]" if row.get("sj_impl")
                                               else ""), flush=True)
    print()
    lines = _device_lines(rows)
    for line in lines:
        print(line)
    _gpu.write_json(args.json, dict(benchmark="train_step", info=info, repeats=args.repeats,
                                    rows=rows, lines=lines))
    return rows


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child_rss(net: str, impl: str, steps: int = 5) -> float:
    """Peak RSS growth (MiB) over ``steps`` training steps of one implementation, sampled every
    millisecond from ``/proc/self/statm`` by a background thread (Linux). spikeflow's numba
    kernels are loaded before the baseline (tens of MB of LLVM code, once per process)."""
    import threading

    x, y = make_input(net)
    torch.manual_seed(0)
    ref = active_init(_spikeflow(net))
    trainer = make_trainer(impl, net, ref, x, y)
    if impl in OURS:  # load numba and its compiled kernels first: a one-time cost, not a step's
        from spikeflow.neurons import LIF
        from spikeflow.train.memory import narrow_int64, pack_binary, unpack_binary

        LIF()(torch.ones(2, 1, 16, requires_grad=True)).sum().backward()
        unpack_binary(pack_binary(torch.ones(16, requires_grad=True) * 1.0))
        narrow_int64(torch.zeros(16, dtype=torch.long))
    base = peak = _rss_bytes()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_bytes())
            time.sleep(0.001)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    for _ in range(steps):
        trainer.step()
    done.set()
    thread.join()
    return (max(peak, _rss_bytes()) - base) / 2**20


def rss_in_subprocess(net: str, impl: str) -> float:
    cmd = [sys.executable, __file__, "--child", net, impl, "--threads", str(torch.get_num_threads())]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=os.environ.copy())
    return float(out.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- report
def _report(rows: list[dict], rss: dict[tuple[str, str], float]) -> list[str]:
    lines = []
    for net in dict.fromkeys(r["net"] for r in rows):
        peers = [r for r in rows if r["net"] == net and r["impl"] not in OURS]
        if not peers:
            lines.append(f"{net}: no peer installed")
            continue
        fast = min(peers, key=lambda r: r["ms"])
        lean = min(peers, key=lambda r: r["step_mb"])
        for mine in (r for r in rows if r["net"] == net and r["impl"] in OURS):
            text = (f"{net} {mine['impl']}: {fast['ms'] / mine['ms']:.2f}x faster than the fastest "
                    f"peer ({fast['impl']}), step memory {mine['step_mb'] / fast['step_mb']:.2f}x "
                    f"of it ({mine['step_mb'] / lean['step_mb']:.2f}x of the leanest, "
                    f"{lean['impl']})")
            if rss:
                text += (f"; peak RSS growth {rss[(net, mine['impl'])]:.0f} MB vs "
                         f"{rss[(net, fast['impl'])]:.0f} MB")
            lines.append(text)
    return lines


def main(argv: Optional[list[str]] = None) -> list[dict]:
    """Run the benchmark, print the table and the ratios, return the rows."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nets", nargs="+", default=None, choices=list(NETS),
                        help="nets (default conv fc on CPU, conv plif_fmnist with --device cuda)")
    parser.add_argument("--repeats", type=int, default=None, help="timed steps (default 15 on "
                        "CPU, 30 with --device cuda)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--rss", action="store_true", help="also measure peak RSS per subprocess")
    parser.add_argument("--child", nargs=2, metavar=("NET", "IMPL"), help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    parser.add_argument("--mode", choices=["auto", "cpu", "gpu"], default="auto",
                        help="protocol: cpu (turns, wall clock, --rss) or gpu (do_bench style, "
                             "peak memory, precisions); auto: gpu on CUDA, cpu otherwise")
    parser.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "amp"],
                        help="gpu protocol: float32 and/or bfloat16 autocast (amp)")
    parser.add_argument("--amp", action="store_true", help="gpu protocol: bfloat16 autocast only")
    parser.add_argument("--batch", type=int, default=None,
                        help="gpu protocol: batch of every net (default: conv 64 on CUDA, else "
                             "the net's own)")
    parser.add_argument("--impls", nargs="+", default=None, choices=list(IMPLS),
                        help="gpu protocol: implementations (default spikeflow spikingjelly)")
    parser.add_argument("--warmup", type=int, default=3,
                        help="gpu protocol: untimed steps before the timed ones")
    parser.add_argument("--no-channels-last", action="store_true",
                        help="gpu protocol: run spikeflow's conv net in the default memory format")
    parser.add_argument("--json", default=None, help="also write the rows as JSON to this path")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        print(child_rss(*args.child))
        return []
    if args.mode == "gpu" or (args.mode == "auto" and args.device.startswith("cuda")):
        args.repeats = args.repeats or 30
        return main_device(args)
    repeats = args.repeats or 15
    nets = args.nets or list(CPU_NETS)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads; median of {repeats} steps")
    print(f"{'net':5s} {'impl':>15s} {'ms/step':>9s} {'step MB':>8s} {'loss(0)':>9s}"
          + (f" {'RSS MB':>7s}" if args.rss else ""))
    rows, rss = [], {}
    for net in nets:
        for row in measure(net, repeats):
            if args.rss:
                rss[(net, row["impl"])] = rss_in_subprocess(net, row["impl"])
            rows.append(row)
            print(f"{net:5s} {row['impl']:>15s} {row['ms']:9.1f} {row['step_mb']:8.1f} "
                  f"{row['loss']:9.5f}" + (f" {rss[(net, row['impl'])]:7.0f}" if args.rss else ""),
                  flush=True)
    print()
    lines = _report(rows, rss)
    for line in lines:
        print(line)
    if args.json:
        _gpu.write_json(args.json, dict(benchmark="train_step",
                                        info=_gpu.device_info(torch.device("cpu")),
                                        repeats=repeats, rows=rows, lines=lines))
    return rows


if __name__ == "__main__":
    main()
