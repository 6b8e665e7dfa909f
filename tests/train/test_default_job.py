"""The built-in default job (configs/default.yaml): valid, and trains end to end on n_digits."""
from __future__ import annotations

import json

import pytest
import torch

from spikeflow.train import load_config, run
from spikeflow.train.config import default_config_path
from spikeflow.train.setup import build_model


def test_default_config_is_the_documented_job():
    cfg = load_config(None)
    assert default_config_path().name == "default.yaml"
    assert (cfg.data.name, cfg.model.name, cfg.train.loss) == ("n_digits", "plif_nmnist", "mse_rate")
    model = build_model(cfg)
    out = model(torch.zeros(cfg.data.T, 2, 2, 20, 20))
    assert out.shape == (cfg.data.T, 2, 10)


@pytest.mark.slow
def test_default_job_one_epoch(tmp_path):
    """One epoch of the default job (the full job reaches ~96% in 12 epochs, docs/training.md)."""
    cfg = load_config(None, ["train.epochs=1", "train.quiet=true", "run.tensorboard=false"])
    res = run(cfg, out=tmp_path / "run", echo=lambda _: None)
    assert res.history[0]["test_acc"] > 0.2  # chance is 0.1
    metrics = json.loads((tmp_path / "run" / "metrics_test.json").read_text())
    assert metrics["samples"] == 359 and 0 < metrics["nasfr"] < 1
    assert any(k.startswith("tau/") for k in res.history[0])


def test_channels_last_matches_contiguous_on_the_default_model():
    """train.channels_last: same outputs and gradients (float64, conv algorithms may round
    differently), spikes and conv activations stay channels-last."""
    import copy

    from spikeflow.train.data import BatchEncoder, steps_channels_last

    cfg = load_config(None)
    torch.manual_seed(0)
    model = build_model(cfg).double().train()
    fast = copy.deepcopy(model).to(memory_format=torch.channels_last)
    x = (torch.rand(cfg.data.T, 3, 2, 20, 20, dtype=torch.float64) < 0.3).double()
    xl = BatchEncoder("none", None, torch.device("cpu"), channels_last=True)(x)
    assert torch.equal(xl, x) and xl[0].is_contiguous(memory_format=torch.channels_last)
    assert steps_channels_last(torch.zeros(2, 3, 4)).shape == (2, 3, 4)  # other ranks untouched
    outs = []
    for net, inp in ((model, x), (fast, xl)):
        y = net(inp)
        y.square().sum().backward()
        outs.append((y.detach(), [p.grad for p in net.parameters()]))
    (y0, g0), (y1, g1) = outs
    torch.testing.assert_close(y1, y0, rtol=1e-12, atol=1e-12)
    for a, b in zip(g0, g1):
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-12)


def test_default_config_ships_as_package_data(tmp_path):
    """Issue 17 item 18: `default_config_path` looked only next to the source checkout and in the
    current folder, so `spikeflow train` failed from an installed wheel. The file is package data
    now: found by importlib.resources, inside a built wheel, and from that wheel's install."""
    import importlib.resources
    import shutil
    import subprocess
    import sys
    import zipfile
    from pathlib import Path

    res = importlib.resources.files("spikeflow").joinpath("configs", "default.yaml")
    assert res.is_file() and default_config_path() == Path(str(res))
    repo = Path(__file__).resolve().parents[2]
    assert (repo / "configs" / "default.yaml").read_bytes() == res.read_bytes()
    # build a wheel from a copy of the package with the project's backend and use it
    src = tmp_path / "src"
    shutil.copytree(repo / "src" / "spikeflow", src / "src" / "spikeflow",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(repo / name, src / name)
    built = subprocess.run([sys.executable, "-c", "import setuptools.build_meta as b, sys; "
                            "b.build_wheel(sys.argv[1])", str(tmp_path / "dist")], cwd=src,
                           capture_output=True, text=True, timeout=120)  # PEP 517, no network
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("spikeflow-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        assert "spikeflow/configs/default.yaml" in zf.namelist()
        zf.extractall(site)
    code = ("import spikeflow, sys; from spikeflow.train.config import default_config_path, "
            "load_config; p = default_config_path(); load_config(None); "
            "print(spikeflow.__file__); print(p)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, env={**__import__("os").environ,
                                                      "PYTHONPATH": str(site)})
    assert out.returncode == 0, out.stderr[-2000:]
    module, path = out.stdout.split()
    assert module.startswith(str(site)) and path == str(site / "spikeflow" / "configs" / "default.yaml")
