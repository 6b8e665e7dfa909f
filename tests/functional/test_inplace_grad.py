"""The fused backward writes dL/dX over the tensor its forward saved only when nothing can read that
tensor again (``_kernels/_inplace.py``): graph not retained, no outside reference to it."""
import pytest
import torch

import spikeflow as sf
from spikeflow.ops._cpu import _inplace

NEURONS = {
    "LIF": lambda: sf.neurons.LIF(tau=2.0, backend="fused"),
    "PLIF": lambda: sf.neurons.PLIF(init_tau=2.0, backend="fused"),
    "DecayLIF": lambda: sf.neurons.DecayLIF(backend="fused"),
    "IIRNeuron": lambda: sf.neurons.IIRNeuron(backend="fused"),
}
# large enough for the huge-page allocator (>= 4 MiB) in one case, a plain torch.empty in the other
SHAPES = [(6, 2, 50), (16, 4, 16384)]


def _setup(kind, shape):
    gen = torch.Generator().manual_seed(3)
    x = (torch.randn(*shape, generator=gen, dtype=torch.float32) * 0.8 + 0.6).requires_grad_()
    grad = torch.randn(*shape, generator=gen, dtype=torch.float32)
    return NEURONS[kind](), x, grad


def _reference_grads(kind, x, grad):
    module = NEURONS[kind]()
    module.backend = "reference"
    x = x.detach().clone().requires_grad_()
    module(x).backward(grad)
    return x.grad, [p.grad for p in module.parameters()]


def _saved_ptr(out):
    """data_ptr of the [T, N] tensor the fused Function saved (no reference kept)."""
    node = out.grad_fn
    while type(node).__name__ not in {"_EagerBackward"}:
        node = node.next_functions[0][0]
    return node.saved_tensors[0].data_ptr()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", list(NEURONS))
def test_gradient_written_over_the_saved_tensor(kind, shape):
    module, x, grad = _setup(kind, shape)
    # warm-up: the call that compiles a kernel may leave numba's compiler holding references to
    # its arrays (frames of handled exceptions, until Python's cycle collector runs), and the
    # backward then rightly takes the copy path
    module(x).backward(grad)
    x.grad = None
    for p in module.parameters():
        p.grad = None
    out = module(x)
    ptr = _saved_ptr(out)
    out.backward(grad)
    assert x.grad.data_ptr() == ptr  # no new [T, N] buffer
    gx, gp = _reference_grads(kind, x, grad)
    torch.testing.assert_close(x.grad, gx, atol=2e-5, rtol=2e-5)
    for a, b in zip((p.grad for p in module.parameters()), gp):
        torch.testing.assert_close(a, b, atol=2e-4, rtol=2e-5)


@pytest.mark.parametrize("kind", list(NEURONS))
def test_retained_graph_keeps_the_saved_tensor(kind):
    module, x, grad = _setup(kind, SHAPES[0])
    out = module(x)
    ptr = _saved_ptr(out)
    out.backward(grad, retain_graph=True)
    first = x.grad.clone()
    assert x.grad.data_ptr() != ptr
    x.grad = None
    out.backward(grad)  # the saved tensor is intact: the same gradient again
    torch.testing.assert_close(x.grad, first, atol=0, rtol=0)
    torch.testing.assert_close(first, _reference_grads(kind, x, grad)[0], atol=2e-5, rtol=2e-5)


@pytest.mark.parametrize("kind", ["LIF", "DecayLIF"])
def test_create_graph_keeps_the_saved_tensor(kind):
    module, x, grad = _setup(kind, SHAPES[0])
    out = module(x)
    ptr = _saved_ptr(out)
    (gx,) = torch.autograd.grad(out, x, grad, create_graph=True)
    assert gx.data_ptr() != ptr
    torch.testing.assert_close(gx, _reference_grads(kind, x, grad)[0], atol=2e-5, rtol=2e-5)


@pytest.mark.parametrize("kind", list(NEURONS))
def test_saved_tensor_referenced_elsewhere_is_not_overwritten(kind):
    module, x, grad = _setup(kind, SHAPES[0])
    kept = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: (kept.append(t), t)[1], lambda t: t):
        out = module(x)
    saved = [t for t in kept if t.shape == (x.shape[0], x[0].numel())]
    before = [t.clone() for t in saved]
    out.backward(grad)
    assert saved and all(torch.equal(a, b) for a, b in zip(saved, before))

    out = module(x)  # a reference taken from grad_fn.saved_tensors
    node = out.grad_fn
    while not node.__class__.__name__.startswith("_"):
        node = node.next_functions[0][0]
    held = node.saved_tensors[0]
    copy = held.clone()
    x.grad = None
    out.backward(grad)
    assert torch.equal(held, copy)
    torch.testing.assert_close(x.grad, _reference_grads(kind, x, grad)[0], atol=2e-5, rtol=2e-5)


def test_view_of_the_saved_tensor_is_detected():
    module, x, grad = _setup("DecayLIF", SHAPES[0])
    views = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: (views.append(t.view(-1)), t)[1],
                                                  lambda t: t):
        out = module(x)
    before = [v.clone() for v in views]
    out.backward(grad)
    assert all(torch.equal(a, b) for a, b in zip(views, before))


def test_graph_kept_outside_backward_and_baseline_needs_no_hooks(monkeypatch):
    assert _inplace.graph_kept()  # no backward running: assume retained
    monkeypatch.setattr(_inplace, "_BASELINE", [])
    with torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
        assert _inplace._baseline() is None  # counts under hooks would be wrong: not measured
    assert _inplace._BASELINE == []
    baseline = _inplace._baseline()
    assert baseline is not None and _inplace._BASELINE == [baseline]
    saved = torch.arange(4.0)
    copy = _inplace.grad_buffer(saved)  # outside a backward: always a copy
    assert copy.data_ptr() != saved.data_ptr() and torch.equal(copy, saved)


@pytest.mark.parametrize("reentrant", [False, True])
@pytest.mark.parametrize("kind", list(NEURONS))
def test_activation_checkpointing_gives_the_reference_gradient(kind, reentrant):
    from torch.utils.checkpoint import checkpoint

    module, x, grad = _setup(kind, SHAPES[0])
    checkpoint(module, x, use_reentrant=reentrant).backward(grad)
    gx, gp = _reference_grads(kind, x, grad)
    torch.testing.assert_close(x.grad, gx, atol=2e-5, rtol=2e-5)
    for a, b in zip((p.grad for p in module.parameters()), gp):
        torch.testing.assert_close(a, b, atol=2e-4, rtol=2e-5)
