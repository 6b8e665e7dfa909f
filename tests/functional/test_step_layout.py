"""Fused neurons on sequences whose steps are stored in another dense order (channels-last)."""
from __future__ import annotations

import pytest
import torch

import spikeflow as sf
from spikeflow.functional._common import StepLayout

NEURONS = {
    "lif": lambda: sf.neurons.LIF(tau=2.0),
    "plif": lambda: sf.neurons.PLIF(init_tau=3.0),
    "decay_lif": lambda: sf.neurons.DecayLIF(),
    "iir": lambda: sf.neurons.IIRNeuron(tau_m=4.0, membrane_filter=True),
}


def channels_last_seq(x: torch.Tensor) -> torch.Tensor:
    """``[T, B, C, H, W]`` whose every step is a channels-last batch (as SeqToBatch produces)."""
    T, B = x.shape[:2]
    return x.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, (T, B))


def test_layout_is_a_view_for_channels_last_and_identity_for_contiguous():
    x = channels_last_seq(torch.rand(3, 2, 4, 5, 6))
    lay = StepLayout(x)
    assert lay.order == [0, 1, 3, 4, 2]
    assert lay.flat(x).data_ptr() == x.data_ptr()          # no copy
    assert torch.equal(lay.unflat(lay.flat(x)), x)
    assert lay.unflat(lay.flat(x)).stride() == x.stride()
    v = torch.rand(2, 4, 5, 6)
    assert torch.equal(lay.unflat_state(lay.flat_state(v)), v)
    assert StepLayout(torch.rand(3, 2, 4)).order == [0, 1, 2]
    batch_major = torch.rand(2, 3, 4).transpose(0, 1)      # T not outermost: copied, still correct
    assert StepLayout(batch_major).order == [0, 1, 2]


@pytest.mark.parametrize("name", sorted(NEURONS))
def test_channels_last_equals_contiguous_bitwise(name):
    torch.manual_seed(0)
    x = torch.rand(6, 2, 3, 4, 5, dtype=torch.float64) * 2
    g = torch.rand_like(x)
    results = []
    for inp in (x.clone(), channels_last_seq(x)):
        neuron = NEURONS[name]().double()
        inp.requires_grad_(True)
        s = neuron(inp)
        (s * g).sum().backward()
        grads = [inp.grad] + [p.grad for p in neuron.parameters()]
        results.append((s.detach(), grads, s.stride()))
    (s0, g0, _), (s1, g1, stride1) = results
    assert torch.equal(s0, s1)
    assert stride1 == channels_last_seq(x).stride()         # spikes keep the memory format
    assert torch.equal(g0[0], g1[0])                         # input gradient: elementwise, exact
    for a, b in zip(g0[1:], g1[1:]):                         # parameter sums: another element order
        torch.testing.assert_close(a, b, rtol=1e-12, atol=0)


def test_state_round_trip_with_channels_last_steps():
    x = channels_last_seq(torch.rand(8, 2, 3, 4, 4, dtype=torch.float64) * 2)
    lif = sf.neurons.LIF().double()
    whole, state_whole = lif.run(x)
    first, state = lif.run(x[:4])
    second, state = lif.run(x[4:], state)
    assert torch.equal(torch.cat([first, second]), whole)
    assert torch.equal(state.v, state_whole.v)
