"""Training engine: typed configs, the loop, losses, optimizers, checkpoints, logging and DDP.

    >>> from spikeflow.train import load_config, run              # doctest: +SKIP
    >>> cfg = load_config("configs/default.yaml", ["train.epochs=2"])   # doctest: +SKIP
    >>> result = run(cfg)                                          # doctest: +SKIP
    >>> print(result.line())                                       # doctest: +SKIP

``spikeflow train`` / ``spikeflow test`` are thin wrappers around :func:`run` and
:func:`evaluate_checkpoint` (see docs/training.md).
"""
from spikeflow.train.checkpoint import CheckpointError, load_checkpoint
from spikeflow.train.config import Config, ConfigError, config_from_dict, load_config
from spikeflow.train.loop import NonFiniteLossError, Step, evaluate, train_one_epoch
from spikeflow.train.losses import build_loss, count_correct, predict
from spikeflow.train.optim import build_optimizer, build_scheduler
from spikeflow.train.run import RunResult, run
from spikeflow.train.testing import evaluate_checkpoint, write_test_metrics

__all__ = [
    "Config", "ConfigError", "load_config", "config_from_dict", "run", "RunResult",
    "train_one_epoch", "evaluate", "Step", "NonFiniteLossError", "build_loss", "predict",
    "count_correct", "build_optimizer", "build_scheduler", "CheckpointError", "load_checkpoint",
    "evaluate_checkpoint", "write_test_metrics",
]
