"""Private torch internals live in ``spikeflow/_compat.py`` only, each with a safe fallback: with
the internals removed (or raising), the fused neuron kernels give bit-identical spikes and gradients,
taking their copy path instead of writing over saved tensors."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import spikeflow as sf
from spikeflow import _compat

SRC = Path(sf.__file__).resolve().parent
# the internals _compat reads: (owner, attribute)
INTERNALS = [
    (torch._C._autograd, "_get_current_graph_task_keep_graph"),
    (torch._C._autograd, "_top_saved_tensors_default_hooks"),
    (torch._C, "_storage_Use_Count"),
    (torch._C, "_is_torch_function_mode_enabled"),
]
NEURONS = {
    "LIF": lambda backend: sf.neurons.LIF(tau=2.0, backend=backend),
    "PLIF": lambda backend: sf.neurons.PLIF(init_tau=2.0, backend=backend),
    "DecayLIF": lambda backend: sf.neurons.DecayLIF(backend=backend),
    "IIRNeuron": lambda backend: sf.neurons.IIRNeuron(backend=backend),
}


def _raise(*args, **kwargs):
    raise RuntimeError("changed in this torch version")


def _no_use_count(self):
    raise AttributeError("_use_count")


def remove_internals(monkeypatch, how: str) -> None:
    """``how="missing"``: delete every internal; ``"raising"``: replace each by a function that
    raises (an internal that exists but behaves differently)."""
    for owner, name in INTERNALS:
        assert hasattr(owner, name), f"torch no longer has {name}: update _compat and this test"
        if how == "missing":
            monkeypatch.delattr(owner, name)
        else:
            monkeypatch.setattr(owner, name, _raise)
    # Tensor._use_count lives on the immutable C base class: shadow it on torch.Tensor
    shadow = property(_no_use_count) if how == "missing" else _raise
    monkeypatch.setattr(torch.Tensor, "_use_count", shadow, raising=False)


def test_no_private_torch_use_outside_compat():
    pattern = re.compile(r"torch\._C\b|torch\._dynamo|torch\._subclasses|torch\.utils\._|"
                         r"_use_count|_storage_Use_Count|getrefcount\(\s*(t|saved|x)\b")
    offenders = [f"{p.relative_to(SRC)}:{i}" for p in SRC.rglob("*.py") if p.name != "_compat.py"
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if pattern.search(line.split("#")[0])]
    known: set = set()
    assert [o for o in offenders if o.split(":")[0] not in known] == []


# ----------------------------------------------------------------------------------- functions
def test_functions_with_the_internals():
    assert _compat.graph_kept() is True  # outside a backward: assume kept
    t = torch.zeros(3)
    refs, uses, storage_uses = _compat.use_counts(t)
    alias = t
    assert _compat.use_counts(t) == (refs + 1, uses, storage_uses)  # one more Python reference
    view = t.view(3)  # holds its base and shares its storage: every count goes up
    assert all(a > b for a, b in zip(_compat.use_counts(t), (refs + 1, uses, storage_uses)))
    del view, alias
    assert _compat.use_counts(t) == (refs, uses, storage_uses)
    assert _compat.saved_tensors_hooks() is None and not _compat.saved_tensors_hooks_active()
    pack, unpack = (lambda x: x), (lambda x: x)
    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        assert _compat.saved_tensors_hooks() == (pack, unpack)
        assert _compat.saved_tensors_hooks_active()
    assert not _compat.torch_function_mode_active()
    with torch.overrides.TorchFunctionMode():
        assert _compat.torch_function_mode_active()
    assert not _compat.is_compiling()


def test_graph_kept_inside_a_backward():
    seen = []

    class Probe(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, g):
            seen.append(_compat.graph_kept())
            return g

    x = torch.ones(2, requires_grad=True)
    Probe.apply(x).sum().backward(retain_graph=True)
    Probe.apply(x).sum().backward()
    assert seen == [True, False]


@pytest.mark.parametrize("how", ["missing", "raising"])
def test_fallbacks(monkeypatch, how):
    remove_internals(monkeypatch, how)
    assert _compat.graph_kept() is True
    assert _compat.use_counts(torch.zeros(3)) is None
    with pytest.raises(_compat.Unsupported):
        _compat.saved_tensors_hooks()
    assert _compat.saved_tensors_hooks_active() is True
    assert _compat.torch_function_mode_active() is True


def test_is_compiling_fallbacks(monkeypatch):
    import torch._dynamo

    monkeypatch.setattr(torch.compiler, "is_compiling", _raise)
    assert _compat.is_compiling() is False  # torch._dynamo.is_compiling answers
    monkeypatch.delattr(torch._dynamo, "is_compiling")
    monkeypatch.delattr(torch.compiler, "is_compiling")
    assert _compat.is_compiling() is False


def test_is_compiling_inside_torch_compile():
    torch._dynamo.reset()
    f = torch.compile(lambda x: x + 1 if _compat.is_compiling() else x - 1, backend="eager",
                      fullgraph=True)
    assert torch.equal(f(torch.zeros(2)), torch.ones(2))
    torch._dynamo.reset()


def test_is_fake():
    from torch._subclasses.fake_tensor import FakeTensorMode

    assert not _compat.is_fake(torch.zeros(2)) and not _compat.is_fake(3.0)
    assert _compat.is_fake(torch.empty(2, device="meta"))
    with FakeTensorMode():
        fake = torch.empty(2)
    assert _compat.is_fake(fake)


# ------------------------------------------------------------------------------ kernel results
def _saved_ptrs(out: torch.Tensor, shape: tuple[int, int]) -> set[int]:
    """data_ptr of every saved ``[T, N]`` tensor in the graph of ``out`` (no reference kept)."""
    ptrs, stack, seen = set(), [out.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        try:
            saved = getattr(node, "saved_tensors", ())
        except RuntimeError:
            saved = ()
        ptrs |= {t.data_ptr() for t in saved if isinstance(t, torch.Tensor) and t.shape == shape}
        stack.extend(n for n, _ in node.next_functions)
    return ptrs


def _run(kind: str, backend: str = "fused"):
    """Forward+backward twice (the first call compiles); spikes, dL/dX, parameter gradients and
    whether the last backward wrote dL/dX over the saved tensor."""
    gen = torch.Generator().manual_seed(7)
    shape = (6, 2, 50)
    x = (torch.randn(*shape, generator=gen) * 0.8 + 0.6).requires_grad_()
    grad = torch.randn(*shape, generator=gen)
    module = NEURONS[kind](backend)
    module(x).backward(grad)  # warm-up
    x.grad = None
    module.zero_grad()
    out = module(x)
    ptrs = _saved_ptrs(out, (shape[0], shape[1] * shape[2]))
    out.backward(grad)
    overwritten = x.grad.data_ptr() in ptrs
    return out.detach(), x.grad, [p.grad.clone() for p in module.parameters()], overwritten


@pytest.mark.parametrize("how", ["missing", "raising"])
@pytest.mark.parametrize("kind", list(NEURONS))
def test_kernels_identical_without_the_internals(monkeypatch, kind, how):
    spikes, gx, gp, overwritten = _run(kind)
    assert overwritten  # with the internals: dL/dX written over the saved tensor
    remove_internals(monkeypatch, how)
    spikes2, gx2, gp2, overwritten2 = _run(kind)
    assert not overwritten2  # without: the copy path
    assert torch.equal(spikes, spikes2) and torch.equal(gx, gx2)
    assert len(gp) == len(gp2) and all(torch.equal(a, b) for a, b in zip(gp, gp2))
    ref_spikes, ref_gx, ref_gp, _ = _run(kind, "reference")
    assert torch.equal(spikes2, ref_spikes)
    torch.testing.assert_close(gx2, ref_gx, atol=2e-5, rtol=2e-5)
    for a, b in zip(gp2, ref_gp):
        torch.testing.assert_close(a, b, atol=2e-4, rtol=2e-5)


@pytest.mark.parametrize("how", ["missing", "raising"])
def test_retained_graph_without_the_internals(monkeypatch, how):
    remove_internals(monkeypatch, how)
    x = (torch.randn(5, 3, 40, generator=torch.Generator().manual_seed(1)) + 0.6).requires_grad_()
    out = sf.neurons.LIF(backend="fused")(x)
    out.backward(torch.ones_like(out), retain_graph=True)
    first = x.grad.clone()
    x.grad = None
    out.backward(torch.ones_like(out))
    assert torch.equal(x.grad, first)


@pytest.mark.parametrize("how", ["missing", "raising"])
def test_sparse_linear_without_the_internals(monkeypatch, how):
    layer = sf.layers.SparseLinear(300, 80, threshold=0.5)
    x = (torch.rand(512, 300, generator=torch.Generator().manual_seed(2)) > 0.9).float()
    from spikeflow.layers import sparse_linear

    assert sparse_linear._sparse_capable(x, layer.weight, layer.bias)
    fast = layer(x)
    remove_internals(monkeypatch, how)
    assert not sparse_linear._sparse_capable(x, layer.weight, layer.bias)  # plain F.linear
    dense = layer(x)
    assert torch.equal(dense, F.linear(x, layer.weight, layer.bias))
    torch.testing.assert_close(fast, dense, atol=1e-5, rtol=1e-5)
