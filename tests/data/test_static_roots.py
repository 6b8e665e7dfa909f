"""Issue 17 item 17: mnist / fashion_mnist / cifar10 find their data by the rule of the event
datasets (root > $SPIKEFLOW_<NAME> > $SPIKEFLOW_DATA/<Dir>) and say "no root given" with the
same message instead of silently looking in the current folder."""
from __future__ import annotations

import numpy as np
import pytest

import spikeflow as sf
from spikeflow.data import mnist as M
from spikeflow.data.event_options import MissingDataError
from spikeflow.data.idx import write_idx

ENVS = ("SPIKEFLOW_DATA", "SPIKEFLOW_MNIST", "SPIKEFLOW_FASHION_MNIST", "SPIKEFLOW_CIFAR10",
        "SPIKEFLOW_NMNIST")


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    for env in ENVS:
        monkeypatch.delenv(env, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _mnist_test_files(folder, monkeypatch, n=100):
    monkeypatch.setattr(M, "COUNTS", {True: n, False: n})
    labels = (np.arange(n) % 10).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / M.FILES[False][0], np.zeros((n, 28, 28), np.uint8))
    write_idx(folder / M.FILES[False][1], labels)


@pytest.mark.parametrize("name,env", [("mnist", "SPIKEFLOW_MNIST"),
                                      ("cifar10", "SPIKEFLOW_CIFAR10"),
                                      ("nmnist", "SPIKEFLOW_NMNIST")])
def test_no_root_is_the_same_error_for_every_dataset(no_env, monkeypatch, name, env):
    if name == "mnist":  # MNIST files in the current folder were read silently before
        _mnist_test_files(no_env, monkeypatch)
    with pytest.raises(MissingDataError) as err:
        sf.data.create_dataset(name, split="test")
    text = str(err.value)
    assert text.startswith(f"{name}: missing files or folders:\n  - no root given (root=None, "
                           f"${env} and $SPIKEFLOW_DATA unset)")
    assert f"Pass root=<folder>, set ${env}, or put it at $SPIKEFLOW_DATA/" in text


def test_mnist_hint_names_a_maintained_mirror(no_env):
    with pytest.raises(MissingDataError, match="ossci-datasets.s3.amazonaws.com/mnist"):
        sf.data.create_dataset("mnist", split="test")
    (no_env / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"t10k-images.*ossci-datasets\.s3\.amazonaws\.com"
                                                r"/mnist/ \(PyTorch's maintained mirror\)"):
        sf.data.create_dataset("mnist", root=no_env / "empty", split="test")
    assert "yann.lecun.com/exdb" not in M.load_idx_pair.__code__.co_consts


def test_spikeflow_data_and_env_and_root_precedence(no_env, monkeypatch):
    _mnist_test_files(no_env / "data" / "MNIST", monkeypatch)
    monkeypatch.setenv("SPIKEFLOW_DATA", str(no_env / "data"))
    assert len(sf.data.create_dataset("mnist", split="test")) == 100
    monkeypatch.setenv("SPIKEFLOW_MNIST", str(no_env / "nowhere"))
    with pytest.raises(MissingDataError, match=r"root folder .*nowhere \(from \$SPIKEFLOW_MNIST\)"):
        sf.data.create_dataset("mnist", split="test")
    assert len(sf.data.create_dataset("mnist", root=no_env / "data" / "MNIST", split="test")) == 100
    monkeypatch.delenv("SPIKEFLOW_MNIST")
    monkeypatch.setenv("SPIKEFLOW_DATA", str(no_env / "elsewhere"))
    with pytest.raises(MissingDataError, match=r"root folder .*elsewhere/CIFAR10 "
                                               r"\(from \$SPIKEFLOW_DATA\)"):
        sf.data.create_dataset("cifar10", split="test")
