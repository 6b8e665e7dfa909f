# The two commands of the README. Both run scripts/setup.sh first (a no-op once .venv is complete).
.PHONY: setup train test peers bench
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
