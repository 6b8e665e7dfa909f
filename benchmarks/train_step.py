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
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Callable, Optional

import spikeflow.runtime

spikeflow.runtime.configure()  # before torch: short OpenMP spin-wait, numba cache (docs/runtime.md)
import torch
import torch.nn.functional as F
from torch import Tensor, nn

NETS = {"conv": dict(T=10, B=16, shape=(2, 34, 34), density=0.15),
        "fc": dict(T=25, B=64, shape=(784,), density=0.2)}
IMPLS = ("spikeflow", "spikeflow+pack", "spikingjelly", "snntorch", "norse")
OURS = ("spikeflow", "spikeflow+pack")

__all__ = ["main", "build", "measure"]


# ----------------------------------------------------------------------------- implementations
def _spikeflow(net: str) -> nn.Module:
    """spikeflow's net as configured for CPU training: the event-driven ``SparseLinear`` on the
    binary fc input, spikes saved as uint8 (``compact_spikes``) where the conversion is cheap
    (not for the first conv layer's 5.9M spikes), and (in :func:`make_trainer`) channels-last."""
    from spikeflow.layers import SeqToBatch, SparseLinear
    from spikeflow.neurons import LIF

    def lif() -> nn.Module:
        return LIF(tau=2.0, v_threshold=1.0, v_reset=0.0)  # Sigmoid(alpha=4) surrogate by default

    if net == "fc":
        return nn.Sequential(SeqToBatch(SparseLinear(784, 512)), lif(),
                             SeqToBatch(nn.Linear(512, 10), compact_spikes=True), lif())
    return nn.Sequential(
        SeqToBatch(nn.Conv2d(2, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32)), lif(),
        SeqToBatch(nn.MaxPool2d(2), nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32)),
        lif(), SeqToBatch(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2048, 512), compact_spikes=True),
        lif(), SeqToBatch(nn.Linear(512, 10), compact_spikes=True), lif())


def _spikingjelly(net: str) -> nn.Module:
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

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


BUILDERS = {"spikeflow": _spikeflow, "spikeflow+pack": _spikeflow, "spikingjelly": _spikingjelly,
            "snntorch": _snntorch, "norse": _norse}


def build(impl: str, net: str) -> Optional[nn.Module]:
    """The reference net ``net`` in library ``impl``; ``None`` when the library is missing."""
    try:
        return BUILDERS[impl](net)
    except ImportError:
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


def make_trainer(impl: str, net: str, ref: nn.Module, x: Tensor, y: Tensor) -> Optional["Trainer"]:
    """``impl``'s net with ``ref``'s weights, ready to step; spikeflow runs the conv net
    channels-last (``train.channels_last``: weights and every input step)."""
    model = build(impl, net)
    if model is None:
        return None
    copy_weights(ref, model)
    if impl in OURS and net == "conv":
        from spikeflow.train.data import steps_channels_last

        model, x = model.to(memory_format=torch.channels_last), steps_channels_last(x)
    return Trainer(model, x, y, pack=impl == "spikeflow+pack", engine_optim=impl in OURS)


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
    """

    def __init__(self, model: nn.Module, x: Tensor, y: Tensor, pack: bool = False,
                 engine_optim: bool = False) -> None:
        self.model, self.x, self.target = model, x, F.one_hot(y, 10).float()
        if engine_optim:  # spikeflow's engine: fused Adam where supported (optim.fused)
            from spikeflow.train.config import OptimConfig
            from spikeflow.train.optim import build_optimizer

            self.opt = build_optimizer(model.parameters(), OptimConfig(name="adam", lr=1e-3))
        else:
            self.opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        self.pack = pack

    def loss(self) -> Tensor:
        return F.mse_loss(self.model(self.x).mean(0), self.target)

    def step(self) -> float:
        self.opt.zero_grad(set_to_none=True)
        if self.pack:
            from spikeflow.train.memory import packed_saved_tensors

            with packed_saved_tensors():
                loss = self.loss()
        else:
            loss = self.loss()
        loss.backward()
        self.opt.step()
        return float(loss.detach())

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


def make_input(net: str, seed: int = 0) -> tuple[Tensor, Tensor]:
    spec = NETS[net]
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(spec["T"], spec["B"], *spec["shape"], generator=g) < spec["density"]).float()
    return x, torch.randint(0, 10, (spec["B"],), generator=g)


def measure(net: str, repeats: int, impls: tuple[str, ...] = IMPLS) -> list[dict]:
    """Rows ``{net, impl, ms, step_mb, loss}`` for the installed implementations.

    ``spikeflow`` is the engine's default step (fused Adam); ``spikeflow+pack`` adds
    ``train.pack_saved`` (saved spikes as bits, pool indices as int32).
    """
    x, y = make_input(net)
    torch.manual_seed(0)
    ref = active_init(_spikeflow(net))
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
    parser.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS))
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--rss", action="store_true", help="also measure peak RSS per subprocess")
    parser.add_argument("--child", nargs=2, metavar=("NET", "IMPL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        print(child_rss(*args.child))
        return []
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads; median of {args.repeats} steps")
    print(f"{'net':5s} {'impl':>15s} {'ms/step':>9s} {'step MB':>8s} {'loss(0)':>9s}"
          + (f" {'RSS MB':>7s}" if args.rss else ""))
    rows, rss = [], {}
    for net in args.nets:
        for row in measure(net, args.repeats):
            if args.rss:
                rss[(net, row["impl"])] = rss_in_subprocess(net, row["impl"])
            rows.append(row)
            print(f"{net:5s} {row['impl']:>15s} {row['ms']:9.1f} {row['step_mb']:8.1f} "
                  f"{row['loss']:9.5f}" + (f" {rss[(net, row['impl'])]:7.0f}" if args.rss else ""),
                  flush=True)
    print()
    for line in _report(rows, rss):
        print(line)
    return rows


if __name__ == "__main__":
    main()
