"""train.compile's wrapper (train/compiled.py): one compile for the run's batch shape, other
shapes (a last partial batch) eagerly through the same parameters."""
import torch
from torch import nn

from spikeflow.train.compiled import CompiledForShape, compile_for_training


def _counting_backend(graphs):
    def backend(gm, example_inputs):
        graphs.append(tuple(tuple(t.shape) for t in example_inputs if isinstance(t, torch.Tensor)))
        return gm.forward
    return backend


def _batches():
    torch.manual_seed(0)
    return [torch.randn(3, 4, 5) for _ in range(3)] + [torch.randn(3, 2, 5)]  # [T, B, F]


def test_one_compile_for_full_batches_and_the_partial_batch_runs_eagerly():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))
    graphs = []
    net = compile_for_training(model, {"backend": _counting_backend(graphs)})
    for x in _batches():
        out = net(x)
        torch.testing.assert_close(out, model(x), rtol=0, atol=0)
    assert len(graphs) == 1 and net.shape == (3, 4, 5) and net.eager_calls == 1
    # without the wrapper torch.compile compiles again for the partial batch
    torch._dynamo.reset()
    plain_graphs = []
    plain = torch.compile(model, backend=_counting_backend(plain_graphs))
    for x in _batches():
        plain(x)
    assert len(plain_graphs) == 2
    torch._dynamo.reset()


def test_wrapper_is_the_module_for_parameters_modes_and_state_dict():
    model = nn.Sequential(nn.Linear(5, 3), nn.Dropout(0.5))
    calls = []
    net = CompiledForShape(model, lambda m: (calls.append(m), m)[1])
    assert calls == [model]
    assert list(net.parameters()) == list(model.parameters())
    assert net.state_dict().keys() == {"module." + k for k in model.state_dict()}
    net.eval()
    assert not model.training
    net.train()
    assert model.training
    # gradients reach the module's parameters through either path
    net(torch.randn(2, 4, 5)).sum().backward()
    net(torch.randn(2, 1, 5)).sum().backward()
    assert model[0].weight.grad is not None and net.eager_calls == 1
