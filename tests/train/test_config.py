"""Typed config: YAML + --set overrides, rejection of unknown keys/wrong types/impossible values."""
from __future__ import annotations

import re

import pytest
import yaml

from spikeflow.train.config import (Config, ConfigError, apply_overrides, config_from_dict,
                                    load_config, parse_override)

BASE = {"data": {"name": "tiny_seq"}, "model": {"name": "tiny_mlp"}}


def cfg_with(*sets: str) -> Config:
    return load_config(None, list(sets), base=BASE)


def test_defaults_and_contract_keys():
    cfg = cfg_with()
    for key in ("data.name", "data.root", "data.T", "model.name", "optim.name", "optim.lr",
                "optim.weight_decay", "schedule.name", "train.epochs", "train.batch_size",
                "train.seed", "train.quiet", "train.device"):
        section, name = key.split(".")
        assert hasattr(getattr(cfg, section), name), key
    assert cfg.train.device == "auto" and cfg.optim.name == "adam"


def test_overrides_are_yaml_scalars_and_lists():
    cfg = cfg_with("optim.lr=1e-3", "schedule.name=multistep", "schedule.milestones=[5, 10]",
                   "train.quiet=true", "data.T=8", "data.options.size=16", "data.root=",
                   "optim.betas=[0.8, 0.9]")
    assert cfg.optim.lr == pytest.approx(1e-3) and isinstance(cfg.optim.lr, float)
    assert cfg.schedule.milestones == [5, 10]
    assert cfg.train.quiet is True and cfg.data.T == 8
    assert cfg.data.options == {"size": 16} and cfg.data.root is None
    assert cfg.optim.betas == [0.8, 0.9]
    assert parse_override("a.b=x=y") == (["a", "b"], "x=y")


def test_yaml_file_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**BASE, "train": {"epochs": 3, "batch_size": 8}}))
    cfg = load_config(path, ["train.epochs=5"])
    assert (cfg.train.epochs, cfg.train.batch_size) == (5, 8)
    assert config_from_dict(yaml.safe_load(cfg.to_yaml())) == cfg  # resolved YAML round trip


@pytest.mark.parametrize("sets, words", [
    (["optim.lrr=1"], ["unknown config key 'optim.lrr'", "did you mean 'optim.lr'", "allowed"]),
    (["trian.epochs=1"], ["unknown config key 'trian'", "did you mean 'train'"]),
    (["optim.name=adamm"], ["optim.name", "allowed: adam, adamw, sgd"]),
    (["train.epochs=1.5"], ["train.epochs", "expected an integer"]),
    (["train.epochs=0"], ["train.epochs must be > 0"]),
    (["optim.lr=-1"], ["optim.lr must be > 0"]),
    (["optim.lr=fast"], ["optim.lr", "expected a number"]),
    (["train.quiet=maybe"], ["train.quiet", "true/false"]),
    (["data.val_split=1.5"], ["data.val_split must be in [0, 1)"]),
    (["train.device=tpu"], ["train.device", "auto, cpu, cuda"]),
    (["train.loss=hinge"], ["train.loss", "mse_rate"]),
    (["train.loss_options={foo: 1}"], ["train.loss_options.foo", "label_smoothing"]),
    (["train.loss=mse_sequence"], ["train.accuracy=none"]),
    (["schedule.milestones=[10, 5]"], ["schedule.milestones"]),
    (["data.encoding=poisson"], ["data.T"]),
    (["model.name="], ["model.name is required"]),
    (["optim.betas=[0.9]"], ["optim.betas"]),
    (["train"], ["key=value"]),
])
def test_rejections_name_the_key(sets, words):
    with pytest.raises(ConfigError) as err:
        cfg_with(*sets)
    for word in words:
        assert word in str(err.value)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(lst)
    with pytest.raises(ConfigError, match="section train must be a mapping"):
        config_from_dict({**BASE, "train": 3})


def test_apply_overrides_does_not_mutate():
    base = {"train": {"epochs": 2}}
    out = apply_overrides(base, ["train.epochs=3", "run.name=x"])
    assert base == {"train": {"epochs": 2}} and out == {"train": {"epochs": 3}, "run": {"name": "x"}}
    with pytest.raises(ConfigError, match="train.epochs is not a section"):
        apply_overrides(base, ["train.epochs.x=1"])


def test_every_config_key_is_documented():
    from pathlib import Path

    from spikeflow.train.checkpoint import flatten

    doc = (Path(__file__).parents[2] / "docs" / "training.md").read_text()
    for key in flatten(cfg_with().to_dict()):
        assert f"`{key}`" in doc, key


# ----------------------------------------------------------------------------- issue 17 (1, 3)


FLOAT_KEYS = ["optim.lr", "optim.weight_decay", "optim.eps", "schedule.eta_min", "schedule.gamma",
              "train.grad_clip", "data.val_split", "data.on_device_max_gb"]


@pytest.mark.parametrize("key", FLOAT_KEYS)
@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "nan", "inf", "1e999"])
def test_non_finite_floats_are_refused_by_name(key, value):
    """NaN failed every `<= 0` check and inf passed them (grad_clip=.nan trained to NaN weights)."""
    with pytest.raises(ConfigError, match=rf"config key {key}: must be a finite number"):
        cfg_with(f"{key}={value}")


@pytest.mark.parametrize("item,where", [("optim.betas=[0.9, .nan]", "optim.betas[1]"),
                                         ("model.options={tau: .inf}", "model.options.tau"),
                                         ("data.options={a: {b: [1, .nan]}}", "data.options.a.b[1]")])
def test_non_finite_inside_lists_and_options(item, where):
    with pytest.raises(ConfigError, match=re.escape(f"config key {where}: must be a finite number")):
        cfg_with(item)


def test_non_finite_in_a_yaml_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data: {name: digits}\nmodel: {name: mlp}\nschedule: {name: cosine, "
                    "eta_min: .inf}\n")
    with pytest.raises(ConfigError, match="schedule.eta_min: must be a finite number, got inf"):
        load_config(path)


def _bomb(levels: int = 9, width: int = 9) -> list[str]:
    """``a0: &a0 [lol]``, ``a1: &a1 [*a0, *a0, ...]``, ... (``width ** levels`` leaves)."""
    items = ["a0: &a0 [lol]"]
    for i in range(1, levels + 1):
        items.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return items


@pytest.mark.parametrize("where", ["file", "set"])
def test_yaml_alias_bomb_fails_fast(tmp_path, where):
    """A ~400-byte 'billion laughs' document (9^9 = 387M leaves) used to hang while building
    error messages (repr of the expanded value); it is refused before construction."""
    import time

    items = _bomb()
    text = "model:\n  name: mlp\n  options:\n" + "".join(f"    {i}\n" for i in items)
    assert len(text) < 2000
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="expands to more than 100,000 nodes") as err:
        if where == "file":
            (tmp_path / "bomb.yaml").write_text("data: {name: digits}\n" + text)
            load_config(tmp_path / "bomb.yaml")
        else:
            cfg_with("model.options={" + ", ".join(items) + "}")
    assert time.perf_counter() - t0 < 1.0
    assert ("bomb.yaml" if where == "file" else "--set model.options") in str(err.value)


def test_yaml_limits_recursion_size_and_small_aliases(tmp_path):
    from spikeflow.train.typed import MAX_YAML_BYTES, safe_load_yaml

    with pytest.raises(ConfigError, match="recursive YAML alias"):
        safe_load_yaml("a: &x [1, *x]\n", "t.yaml")
    with pytest.raises(ConfigError, match="over the limit"):
        safe_load_yaml("#" * (MAX_YAML_BYTES + 1), "t.yaml")
    with pytest.raises(ConfigError, match="nested more than 64 levels"):
        safe_load_yaml("[" * 200 + "]" * 200, "t.yaml")
    # ordinary anchors still work (a small expansion)
    assert safe_load_yaml("a: &x {k: 1}\nb: *x\n") == {"a": {"k": 1}, "b": {"k": 1}}
    assert safe_load_yaml("") is None


def test_error_messages_shorten_huge_values():
    with pytest.raises(ConfigError) as err:
        cfg_with("train.epochs=" + "[" + ", ".join(["[1, 2, 3, 4, 5, 6, 7, 8]"] * 300) + "]")
    assert len(str(err.value)) < 400
