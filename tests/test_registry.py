import pytest

import spikeflow as sf
from spikeflow.registry import Registry


def test_register_create_and_list():
    reg = Registry("thing")

    @reg.register("a")
    def make(x=1, y=2):
        return (x, y)

    assert reg.create("a", x=5, y=None) == (5, 2)
    assert reg.names() == ["a"] and "a" in reg and len(reg) == 1


def test_unknown_name_lists_known():
    reg = Registry("thing")
    reg.register("alpha")(lambda: 1)
    with pytest.raises(ValueError, match="unknown thing 'alp'.*did you mean alpha"):
        reg.get("alp")


def test_duplicate_registration_rejected():
    reg = Registry("thing")
    reg.register("a")(lambda: 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(lambda: 2)


def test_lazy_subpackages():
    assert sf.__version__ == "0.1.0"
    assert sf.events.SensorSize(34, 34, 2).width == 34
    with pytest.raises(AttributeError):
        sf.not_a_module
