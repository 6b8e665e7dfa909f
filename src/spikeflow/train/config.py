"""Typed run configuration: dataclasses loaded from YAML and overridden with ``--set a.b=value``.

A config has six sections (``data``, ``model``, ``optim``, ``schedule``, ``train``, ``run``). Every
key is typed; unknown keys, wrong types and impossible values raise :class:`ConfigError` naming the
dotted key path and what is allowed, before anything runs.

Example:
    >>> cfg = load_config(None, ["data.name=digits", "model.name=mlp", "optim.lr=0.01"], base={})
    >>> cfg.optim.lr, cfg.train.epochs
    (0.01, 10)
    >>> try:
    ...     load_config(None, ["data.name=digits", "model.name=mlp", "optim.lrr=1"], base={})
    ... except ConfigError as err:
    ...     print(str(err).split(";")[0])
    unknown config key 'optim.lrr' (did you mean 'optim.lr'?)
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

from spikeflow.train.typed import ConfigError, build_dataclass, safe_load_yaml

LOSSES = ("mse_rate", "ce_count", "ce_mean", "ce_per_step", "mse_sequence")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "multistep", "cosine_restarts")
COMPILE_OPTIONS = ("mode", "backend", "dynamic", "fullgraph", "options")


@dataclass
class DataConfig:
    """``data.*``: which dataset, where its files are, and how it is split.

    ``encoding``: ``none`` when dataset items are already sequences ``[T, ...]`` (event frames,
    pre-encoded data); ``repeat``/``poisson`` encode static items ``[C, H, W]`` to ``T`` steps
    per batch (:mod:`spikeflow.data.encoders`; needs ``T``).

    ``val_split`` > 0 (or ``val_size``) holds out part of the training split as validation
    (accuracy-B): ``val_method`` ``accuracy_b`` takes the last ``val_split`` of every class (PLIF,
    seeds_spec R2.4), ``random`` a random subset seeded with ``split_seed`` (snn-iir R1.3). The
    split is saved as ``split.json`` in the run folder and reused on resume.

    ``on_device``: hold the whole dataset on the training device and batch it there by index
    (:mod:`spikeflow.train.device_data`); ``auto`` = on CUDA for datasets that can be held (static
    images with a deterministic transform, cached event frames without a random transform) when
    they take at most ``on_device_max_gb`` GiB and half of the free device memory; ``true`` also
    on CPU (an error when the training set cannot be held); ``false`` never.
    """

    name: Optional[str] = None
    root: Optional[str] = None
    T: Optional[int] = None
    options: dict = field(default_factory=dict)
    train_split: str = "train"
    test_split: str = "test"
    encoding: Literal["none", "repeat", "poisson"] = "none"
    val_split: float = 0.0
    val_size: Optional[int] = None
    val_method: Literal["accuracy_b", "random"] = "accuracy_b"
    split_seed: int = 42
    eval_options: dict = field(default_factory=dict)
    on_device: Union[Literal["auto"], bool] = "auto"
    on_device_max_gb: float = 4.0

    def check(self) -> None:
        _require(self.name, "data.name", "a registered dataset name (see `spikeflow data list`)")
        _positive(self.on_device_max_gb, "data.on_device_max_gb")
        _positive(self.T, "data.T", allow_none=True)
        if not 0.0 <= self.val_split < 1.0:
            raise ConfigError(f"data.val_split must be in [0, 1), got {self.val_split}")
        _positive(self.val_size, "data.val_size", allow_none=True)
        if self.val_size is not None and self.val_method != "random":
            raise ConfigError("data.val_size needs data.val_method=random (accuracy_b uses "
                              "data.val_split, a fraction per class)")
        if self.encoding != "none" and self.T is None:
            raise ConfigError(f"data.encoding={self.encoding} needs data.T (number of steps)")

    @property
    def has_val(self) -> bool:
        return self.val_split > 0 or self.val_size is not None


@dataclass
class ModelConfig:
    """``model.*``: a registered model name and keyword options for its factory."""

    name: Optional[str] = None
    options: dict = field(default_factory=dict)

    def check(self) -> None:
        _require(self.name, "model.name", "a registered model name")


@dataclass
class OptimConfig:
    """``optim.*``: optimizer and its hyper-parameters (``betas`` for Adam/AdamW, ``momentum`` for SGD).

    ``fused``: PyTorch's fused (single-kernel) update; ``null`` = wherever supported (CPU and CUDA
    float parameters), about 10x faster than the per-tensor update on CPU.
    """

    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    momentum: float = 0.0
    nesterov: bool = False
    fused: Optional[bool] = None

    def check(self) -> None:
        _positive(self.lr, "optim.lr")
        _nonneg(self.weight_decay, "optim.weight_decay")
        _positive(self.eps, "optim.eps")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"optim.betas must be two numbers in [0, 1), got {self.betas}")
        if not 0.0 <= self.momentum < 1.0:
            raise ConfigError(f"optim.momentum must be in [0, 1), got {self.momentum}")
        if self.nesterov and (self.name != "sgd" or self.momentum == 0):
            raise ConfigError("optim.nesterov needs optim.name=sgd and optim.momentum > 0")


@dataclass
class ScheduleConfig:
    """``schedule.*``: learning-rate schedule, stepped once per epoch.

    ``cosine``: CosineAnnealingLR(T_max, eta_min) (T_max defaults to train.epochs);
    ``multistep``: MultiStepLR(milestones, gamma); ``cosine_restarts``:
    CosineAnnealingWarmRestarts(T_0, T_mult, eta_min) (T_0 defaults to train.epochs); ``constant``.
    """

    name: Literal["constant", "cosine", "multistep", "cosine_restarts"] = "constant"
    T_max: Optional[int] = None
    eta_min: float = 0.0
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1
    T_0: Optional[int] = None
    T_mult: int = 1

    def check(self) -> None:
        _positive(self.T_max, "schedule.T_max", allow_none=True)
        _positive(self.T_0, "schedule.T_0", allow_none=True)
        _positive(self.T_mult, "schedule.T_mult")
        _nonneg(self.eta_min, "schedule.eta_min")
        _positive(self.gamma, "schedule.gamma")
        if any(m <= 0 for m in self.milestones) or self.milestones != sorted(self.milestones):
            raise ConfigError(
                f"schedule.milestones must be increasing positive epochs, got {self.milestones}")


@dataclass
class TrainConfig:
    """``train.*``: the loop. ``batch_size`` is the GLOBAL batch (split evenly over DDP ranks).

    ``loss``: ``mse_rate`` MSE(mean_T out, one-hot) (PLIF/ASA/He2020), ``ce_count`` CE(sum_T out)
    (snn-iir), ``ce_mean`` CE(mean_T out), ``ce_per_step`` mean_t CE(out[t]), ``mse_sequence``
    MSE on the (optionally dual-exp filtered) output sequence (associative memory).
    ``accuracy``: ``mean`` argmax of the mean over T (= of the sum), ``last`` of the last step,
    ``none`` for regression (the best epoch is then the lowest loss).
    ``pack_saved``: keep spikes saved for backward as bits and max-pool indices as int32
    (:mod:`spikeflow.train.memory`; lossless, bit-identical gradients, costs some time).
    ``channels_last``: 4-D weights and every step of 5-D ``[T, B, C, H, W]`` inputs in
    channels-last memory format (faster convolution / BatchNorm on CPU; the fused neurons keep it).

    GPU (docs/training.md, "GPU"): ``device`` ``auto`` = CUDA when available; ``amp`` ``auto`` =
    bfloat16 autocast on CUDA, off on CPU (``fp16`` adds a GradScaler; ``true``/``false`` are
    read as ``auto``/``off``; autocast is never used on CPU); ``log_interval`` = steps between the
    host reads of the running loss/accuracy (null: 1 on CPU, 50 on CUDA); ``cuda_graphs``
    captures the whole training step in a CUDA graph (CUDA only); ``compile_options`` are
    keyword arguments of ``torch.compile`` (``mode``, ``backend``, ``dynamic``, ``fullgraph``,
    ``options``).
    """

    epochs: int = 10
    batch_size: int = 32
    eval_batch_size: Optional[int] = None
    seed: int = 0
    quiet: bool = False
    device: str = "auto"
    loss: Literal["mse_rate", "ce_count", "ce_mean", "ce_per_step", "mse_sequence"] = "ce_mean"
    loss_options: dict = field(default_factory=dict)
    accuracy: Literal["mean", "last", "none"] = "mean"
    grad_clip: Optional[float] = None
    amp: Union[Literal["auto", "off", "bf16", "fp16"], bool] = "auto"
    compile: bool = False
    compile_options: dict = field(default_factory=dict)
    cuda_graphs: bool = False
    log_interval: Optional[int] = None
    deterministic: bool = False
    num_workers: int = 0
    drop_last: bool = False
    threads: Optional[int] = None
    pack_saved: bool = False
    channels_last: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.amp, bool):  # older configs: amp true/false (YAML on/off)
            self.amp = "auto" if self.amp else "off"

    def check(self) -> None:
        _positive(self.epochs, "train.epochs")
        _positive(self.log_interval, "train.log_interval", allow_none=True)
        unknown = sorted(set(self.compile_options) - set(COMPILE_OPTIONS))
        if unknown:
            raise ConfigError(f"unknown config key 'train.compile_options.{unknown[0]}'; allowed: "
                              f"{', '.join(COMPILE_OPTIONS)} (keyword arguments of torch.compile)")
        if self.cuda_graphs:
            clash = [key for key, bad in (("train.amp=fp16", self.amp == "fp16"),
                                          ("train.compile=true", self.compile),
                                          ("train.pack_saved=true", self.pack_saved)) if bad]
            if clash:
                raise ConfigError(f"train.cuda_graphs=true cannot be combined with {clash[0]} "
                                  "(GradScaler and pack_saved read values on the host; compile "
                                  "has its own graphs: train.compile_options={mode: "
                                  "reduce-overhead})")
        _positive(self.batch_size, "train.batch_size")
        _positive(self.eval_batch_size, "train.eval_batch_size", allow_none=True)
        _positive(self.grad_clip, "train.grad_clip", allow_none=True)
        _nonneg(self.num_workers, "train.num_workers")
        _positive(self.threads, "train.threads", allow_none=True)
        if self.seed < 0:
            raise ConfigError(f"train.seed must be >= 0, got {self.seed}")
        dev = self.device
        if not (dev in ("auto", "cpu", "cuda") or dev.startswith("cuda:") and dev[5:].isdigit()):
            raise ConfigError(f"train.device must be auto, cpu, cuda or cuda:N, got {dev!r}")
        from spikeflow.train.losses import check_loss_options  # noqa: PLC0415

        try:
            check_loss_options(self.loss, self.loss_options)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        if self.loss == "mse_sequence" and self.accuracy != "none":
            raise ConfigError("train.loss=mse_sequence is a regression loss: set train.accuracy=none")


@dataclass
class RunConfig:
    """``run.*``: naming and where run folders go; ``imports`` are extra modules or ``.py`` files
    imported before building (user models/datasets that register themselves)."""

    name: Optional[str] = None
    dir: str = "runs"
    imports: list[str] = field(default_factory=list)
    tensorboard: bool = True
    log_firing_rates: bool = True

    def check(self) -> None:
        if self.name is not None and (not self.name or "/" in self.name or self.name in (".", "..")):
            raise ConfigError(f"run.name must be a plain folder name, got {self.name!r}")


@dataclass
class Config:
    """The whole resolved configuration of one run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def check(self) -> None:
        for f in dataclasses.fields(self):
            getattr(self, f.name).check()

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/JSON/``torch.save(weights_only)`` safe)."""
        return copy.deepcopy(dataclasses.asdict(self))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)


# ----------------------------------------------------------------------------- building / checks


def _require(value: Any, key: str, what: str) -> None:
    if value in (None, ""):
        raise ConfigError(f"config key {key} is required ({what})")


def _positive(value: Any, key: str, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if value is None or value <= 0:
        raise ConfigError(f"{key} must be > 0, got {value}")


def _nonneg(value: Any, key: str) -> None:
    if value < 0:
        raise ConfigError(f"{key} must be >= 0, got {value}")


#: top-level metadata blocks of the paper configs (configs/<paper>/*.yaml) that training ignores:
#: ``paper:`` (the published row) and ``mini:`` (overrides for ``spikeflow reproduce --scale mini``)
META_KEYS = ("paper", "mini")


def config_from_dict(data: dict[str, Any]) -> Config:
    """Build and validate a :class:`Config` from a nested dict (``META_KEYS`` blocks are ignored)."""
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in META_KEYS}
    cfg = build_dataclass(Config, data, "")
    cfg.check()
    return cfg


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"a.b=value"`` -> (["a", "b"], YAML-parsed value). ``a.b=`` sets null."""
    if "=" not in item:
        raise ConfigError(f"--set expects key=value (e.g. optim.lr=0.01), got {item!r}")
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"--set: bad key {key!r} (expected dotted path like train.epochs)")
    try:
        value = safe_load_yaml(raw, f"--set {key}") if raw.strip() else None
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {key}: cannot parse value {raw!r} as YAML ({err})") from None
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set dotted-path overrides into a (copied) nested dict."""
    data = copy.deepcopy(data)
    for item in overrides:
        parts, value = parse_override(item)
        node = data
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item}: {'.'.join(parts[:i + 1])} is not a section")
            node = child
        node[parts[-1]] = value
    return data


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = safe_load_yaml(path.read_bytes(), f"config file {path}")
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def default_config_path() -> Path:
    """The built-in default job: ``spikeflow/configs/default.yaml``, shipped as package data (so it
    is found from an installed wheel; ``configs/default.yaml`` of the checkout links to it)."""
    import importlib.resources  # noqa: PLC0415

    try:
        packaged = importlib.resources.files("spikeflow").joinpath("configs", "default.yaml")
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - spikeflow always importable
        packaged = None
    if isinstance(packaged, Path) and packaged.is_file():
        return packaged
    checkout = Path(__file__).resolve().parents[3] / "configs" / "default.yaml"
    if checkout.is_file():
        return checkout
    raise ConfigError("the built-in default config spikeflow/configs/default.yaml is missing from "
                      f"the installed package ({Path(__file__).resolve().parents[1]}); reinstall "
                      "spikeflow or pass a CONFIG file")


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = (),
                base: dict[str, Any] | None = None) -> Config:
    """Load ``path`` (``None``: ``base``, or the built-in default job), apply ``--set`` overrides,
    validate and return the typed config."""
    if path is not None:
        data = read_yaml(path)
    elif base is not None:
        data = copy.deepcopy(base)
    else:
        data = read_yaml(default_config_path())
    return config_from_dict(apply_overrides(data, list(overrides)))


__all__ = ["Config", "ConfigError", "DataConfig", "ModelConfig", "OptimConfig", "ScheduleConfig",
           "TrainConfig", "RunConfig", "LOSSES", "OPTIMIZERS", "SCHEDULES", "load_config",
           "config_from_dict", "apply_overrides", "parse_override", "read_yaml",
           "default_config_path"]
