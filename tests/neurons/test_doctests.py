"""The usage examples in the neuron and surrogate docstrings run and print what they claim."""
import doctest
import importlib

import pytest

MODULES = ["spikeflow.surrogate", "spikeflow.neurons.lif", "spikeflow.neurons.plif",
           "spikeflow.neurons.if_", "spikeflow.neurons.decay_lif", "spikeflow.neurons.iir"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
