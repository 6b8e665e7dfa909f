"""spikeflow shortens torch's OpenMP spin-wait only before torch is loaded, never over the user's
settings."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from spikeflow._openmp import SPIN_COUNT, shorten_openmp_spin


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "SPIKEFLOW_OMP_SPIN"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_does_nothing_once_torch_is_loaded(clean_env):
    assert "torch" in sys.modules  # conftest imports torch
    assert shorten_openmp_spin() is False
    assert "GOMP_SPINCOUNT" not in os.environ


def test_sets_the_spin_count_before_torch(clean_env):
    clean_env.delitem(sys.modules, "torch")
    assert shorten_openmp_spin() is True
    assert os.environ["GOMP_SPINCOUNT"] == SPIN_COUNT == "30000"


@pytest.mark.parametrize("name, value", [("GOMP_SPINCOUNT", "123"), ("OMP_WAIT_POLICY", "active"),
                                         ("SPIKEFLOW_OMP_SPIN", "keep")])
def test_user_settings_win(clean_env, name, value):
    clean_env.delitem(sys.modules, "torch")
    clean_env.setenv(name, value)
    assert shorten_openmp_spin() is False
    assert os.environ.get("GOMP_SPINCOUNT") == (value if name == "GOMP_SPINCOUNT" else None)


def test_import_spikeflow_before_torch_in_a_fresh_process():
    env = {k: v for k, v in os.environ.items()
           if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "SPIKEFLOW_OMP_SPIN")}
    code = "import os, spikeflow, torch; print(os.environ.get('GOMP_SPINCOUNT'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True).stdout.split()
    assert out[-1] == "30000"
