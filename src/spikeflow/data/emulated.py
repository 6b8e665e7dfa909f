"""Event datasets emulated from static images (no download): ``n_digits`` and ``n_fashion_mnist``.

On first use the images are turned into an N-MNIST-format folder by the DVS emulator
(:mod:`spikeflow.events.emulator`: three saccades, log-intensity threshold crossings) in the
cache (``cache_dir`` > ``$SPIKEFLOW_CACHE_DIR`` > ``~/.cache/spikeflow``, under
``emulated/<name>-<hash of every option>``), with a progress bar, in several processes, and
atomically (a temp folder renamed at the end). The folder is then read by the ``nmnist``
dataset class, so every frame option of ``nmnist`` works (``T``, ``split_by``, ``holdout``, ...).

Defaults of ``n_digits`` (chosen so a small PLIF conv SNN trains in minutes on 2 CPU cores):
scikit-learn digits 8x8 upscaled bilinearly to 16x16, on a 20x20 sensor (the N-MNIST ratio
28 -> 34), saccade amplitude 4 px, contrast threshold 0.3 (mismatch sigma 3%), dark level 0.2, no
refractory period, no noise; about 1500 events per sample (1080..1900); the fixed 1438 / 359
train/test split of ``digits``; frames ``[T, 2, 20, 20]`` (default T = 10). Generation of all
1797 samples takes a few seconds.

``n_fashion_mnist``: Fashion-MNIST 28x28 on 34x34 like N-MNIST (60000 / 10000), threshold 0.3,
about 4600 events per sample; needs the IDX files (Debian ``dataset-fashion-mnist``).

    >>> import spikeflow as sf
    >>> ds = sf.data.create_dataset("n_digits", split="test", T=10)     # doctest: +SKIP
    >>> x, y = ds[0]; tuple(x.shape)                                      # doctest: +SKIP
    (10, 2, 20, 20)
"""
from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from spikeflow.data import register_dataset
from spikeflow.data.digits import digits_split_arrays
from spikeflow.data.frame_cache import default_cache_root, stable_hash
from spikeflow.data.mnist import DEBIAN_FASHION_MNIST, load_idx_pair, resolve_root
from spikeflow.data.nmnist import nmnist_dataset
from spikeflow.events import SensorSize
from spikeflow.events.emulator import EmulatorConfig, emulate_dataset

FORMAT_VERSION = 1


def _digits_source(root: Any, size: int | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {"Train": digits_split_arrays(True, size), "Test": digits_split_arrays(False, size)}


def _idx_source(dataset: str, env: str, defaults: tuple[Path, ...]
                ) -> Callable[[Any, int | None], dict[str, tuple[np.ndarray, np.ndarray]]]:
    def load(root: Any, size: int | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        if size not in (None, 28):
            raise ValueError(f"{dataset}: images are 28x28, size={size} is not supported")
        base = resolve_root(root, env, defaults, dataset=dataset,  # the rule of every dataset
                            dirname={"mnist": "MNIST"}.get(dataset, "FashionMNIST"))
        return {"Train": load_idx_pair(base, True, dataset, dataset == "fashion_mnist"),
                "Test": load_idx_pair(base, False, dataset, dataset == "fashion_mnist")}
    return load


# Static sources the emulator can read by name: loader(root, size) -> {"Train": ..., "Test": ...}.
SOURCES: dict[str, Callable[[Any, int | None], dict[str, tuple[np.ndarray, np.ndarray]]]] = {
    "digits": _digits_source,
    "fashion_mnist": _idx_source("fashion_mnist", "SPIKEFLOW_FASHION_MNIST", (DEBIAN_FASHION_MNIST,)),
    "mnist": _idx_source("mnist", "SPIKEFLOW_MNIST", ()),
}


def emulate_source(source: str, out_dir: str | os.PathLike, *, root: str | os.PathLike | None = None,
                   size: int | None = None, config: EmulatorConfig = EmulatorConfig(),
                   workers: int | None = None, progress: bool = True, overwrite: bool = False) -> Path:
    """Emulate the static dataset ``source`` ("digits", "fashion_mnist", "mnist") into an
    N-MNIST-format folder ``out_dir`` (``Train/<class>/*.bin``, ``Test/<class>/*.bin``).

    ``root``: where the source's files are (ignored for digits); ``size``: upscale digits to
    ``size x size`` first. This is what ``spikeflow data emulate`` calls.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown emulation source {source!r}; expected one of {sorted(SOURCES)}")
    return emulate_dataset(out_dir, SOURCES[source](root, size), config, workers=workers,
                           progress=progress, overwrite=overwrite)


class NotGeneratedError(FileNotFoundError):
    """An emulated dataset asked for with ``generate=False`` is not in the cache yet."""


def emulated_folder(name: str, source: str, *, root: Any = None, size: int | None = None,
                    config: EmulatorConfig, cache_dir: str | os.PathLike | None = None,
                    workers: int | None = None, progress: bool = True, generate: bool = True) -> Path:
    """The cached emulated folder for these options, generated on first use.

    ``generate=False`` raises :class:`MissingDataError` instead of generating (``spikeflow data list``).
    """
    key = stable_hash({"name": name, "source": source, "size": size, "config": asdict(config),
                       "version": FORMAT_VERSION})
    folder = default_cache_root(cache_dir) / "emulated" / f"{name}-{key}"
    if not (folder / "meta.json").is_file():
        if not generate:
            raise NotGeneratedError(f"{name}: not generated yet; it is emulated from {source} into "
                                    f"{folder} on first use (or run `spikeflow data check {name}`)")
        try:
            emulate_source(source, folder, root=root, size=size, config=config, workers=workers,
                           progress=progress)
        except FileExistsError:
            if not (folder / "meta.json").is_file():
                raise
    return folder


def _emulated_dataset(name: str, source: str, split: str, *, root: Any, size: int | None,
                      image_hw: int, sensor: int, counts: dict[str, int] | None, defaults: dict[str, Any],
                      options: dict[str, Any]) -> Any:
    emu = {k: options.pop(k, v) for k, v in defaults.items()}
    sensor = int(options.pop("sensor", sensor))
    size = options.pop("size", size)
    if not options.pop("check_counts", True):
        counts = None
    config = EmulatorConfig(sensor_size=(sensor, sensor), **emu)
    config.validate((size or image_hw, size or image_hw))
    folder = emulated_folder(name, source, root=root, size=size, config=config,
                             cache_dir=options.get("cache_dir"), workers=options.get("workers"),
                             progress=options.get("progress", True),
                             generate=options.pop("generate", True))
    layout = f"  {folder}/Train|Test/<class>/*.bin (generated by the DVS emulator)"
    return nmnist_dataset(folder, split, name=name, sensor_size=SensorSize(sensor, sensor, 2),
                          expected_counts=counts, layout=layout,
                          source=f"emulated from {source} by spikeflow.events.emulator", **options)


_EMULATOR_DEFAULTS = {"threshold": 0.3, "threshold_sigma": 0.03, "refractory_us": 0, "noise_rate_hz": 0.0,
                      "background": 0.2, "frames_per_saccade": 20, "saccade_us": 100_000,
                      "amplitude_px": None, "seed": 0}


@register_dataset("n_digits")
def n_digits(root: str | os.PathLike | None = None, split: str = "train", **options: Any) -> Any:
    """Event streams emulated from scikit-learn's digits (see module doc for the defaults).

    Items ``([T, 2, sensor, sensor] float32 frames, label)`` (default T = 10, 20x20). Emulator
    options: ``size`` (16), ``sensor`` (20), ``threshold``, ``threshold_sigma``,
    ``refractory_us``, ``noise_rate_hz``, ``background``, ``frames_per_saccade``, ``saccade_us``,
    ``amplitude_px``, ``seed``; ``check_counts`` (default True); every other option goes to the
    ``nmnist`` dataset class (``T``, ``split_by``, ``holdout``, ``cache_dir``, ``workers``,
    ``progress``, ...). ``root`` is unused.
    """
    options.setdefault("default_T", 10)
    return _emulated_dataset("n_digits", "digits", split, root=None, size=options.pop("size", 16),
                             image_hw=8, sensor=20, counts={"train": 1438, "test": 359},
                             defaults=_EMULATOR_DEFAULTS, options=options)


@register_dataset("n_fashion_mnist")
def n_fashion_mnist(root: str | os.PathLike | None = None, split: str = "train", **options: Any) -> Any:
    """Event streams emulated from Fashion-MNIST, 34x34 like N-MNIST (60000 / 10000).

    ``root``: the Fashion-MNIST IDX folder (default ``$SPIKEFLOW_FASHION_MNIST`` or the Debian
    package's). Items ``([T, 2, 34, 34], label)`` (default T = 10). Options as :func:`n_digits`.
    """
    options.setdefault("default_T", 10)
    return _emulated_dataset("n_fashion_mnist", "fashion_mnist", split, root=root, size=None,
                             image_hw=28, sensor=34, counts={"train": 60000, "test": 10000},
                             defaults=_EMULATOR_DEFAULTS, options=options)


__all__ = ["NotGeneratedError", "SOURCES", "emulate_source", "emulated_folder", "n_digits", "n_fashion_mnist"]
