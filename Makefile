# The two commands of the README. Both run scripts/setup.sh first (a no-op once .venv is complete).
.PHONY: setup train test peers bench gpu-check
setup:
	scripts/setup.sh
train: setup
	.venv/bin/spikeflow train
test: peers
	.venv/bin/python -m pytest -q -n 2
peers: setup
	scripts/setup.sh --peers
bench: peers
	.venv/bin/spikeflow bench
# The prepared GPU check (scripts/gpu_check.sh): CUDA parity tests + GPU benchmarks -> $$OUT.
# No setup: it runs on a machine's own python3 with its CUDA torch (GPU_CHECK_DRY=1: CPU dry run).
gpu-check:
	bash scripts/gpu_check.sh
