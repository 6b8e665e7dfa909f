#!/usr/bin/env bash
# Self-contained setup: a virtual environment in .venv with torch==2.13.0 (installed first, so that
# nothing pulls a CUDA build), then spikeflow with its test extras. Safe to re-run (it is a no-op
# when .venv is already complete). Usage: scripts/setup.sh [--peers]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.spikeflow-installed
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
    [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q "torch==2.13.0"
    "$VENV/bin/python" -m pip install -q -e ".[dev,onnx]"
    touch "$STAMP"
fi
if [ "${1:-}" = "--peers" ]; then
    # Peers without their heavy dependencies (torchvision/torchaudio/CUDA torch), plus their light ones.
    "$VENV/bin/python" -m pip install -q --no-deps spikingjelly==2.0.0 snntorch==1.0.0 norse==1.1.0 tonic==1.7.0 \
        && "$VENV/bin/python" -m pip install -q loguru scienceplots nir nirtorch requests importRosbag \
        || echo "note: peer libraries not installed; parity tests and peer benchmarks are skipped"
fi
