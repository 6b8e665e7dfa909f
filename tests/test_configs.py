"""Paper configs: in sync with configs/generate.py, parse with the training schema at both scales,
build their models, and carry valid paper metadata and the papers' recipes."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from spikeflow.models import create_model
from spikeflow.report.reproduce import find_experiments, list_papers, load_experiment
from spikeflow.train import config_from_dict, load_config

ROOT = Path(__file__).resolve().parents[1] / "configs"
PAPERS = {"asa": 12, "he2020": 55, "plif": 36, "snn_iir": 13}
PATHS = [p for paper in PAPERS for p in find_experiments(paper, ROOT)]


def _generator():
    spec = importlib.util.spec_from_file_location("configs_generate", ROOT / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_paper_has_its_rows() -> None:
    assert list_papers(ROOT) == sorted(PAPERS)
    assert {paper: len(find_experiments(paper, ROOT)) for paper in PAPERS} == PAPERS


def test_committed_configs_match_the_generator() -> None:
    files = _generator().generate(ROOT)
    assert sorted(files) == sorted(PATHS)
    stale = [p.name for p, text in files.items() if p.read_text() != text]
    assert not stale, f"run `python configs/generate.py`: stale {stale}"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_config_parses_and_builds_at_both_scales(path: Path) -> None:
    full = load_experiment(path, "full")
    assert full.config is not None
    cfg = config_from_dict(full.config)
    assert load_config(path).to_dict() == cfg.to_dict()  # `spikeflow train FILE` ignores paper:/mini:
    meta = full.paper
    assert meta.dataset == cfg.data.name
    if meta.value is not None and meta.metric.startswith("acc"):
        assert 0 < meta.value <= 100
    with torch.device("meta"):
        create_model(cfg.model.name, **cfg.model.options)
    mini = load_experiment(path, "mini")
    if mini.config is None:
        assert "mini" in mini.skip
        return
    small = config_from_dict(mini.config)
    assert small.train.epochs <= 30 and small.to_dict() != cfg.to_dict()
    with torch.device("meta"):
        create_model(small.model.name, **small.model.options)


def test_full_scale_recipes() -> None:
    plif = config_from_dict(load_experiment(ROOT / "plif" / "cifar10_dvs_b.yaml").config)
    assert (plif.optim.name, plif.optim.lr, plif.schedule.name, plif.schedule.T_max) == ("adam", 1e-3, "cosine", 64)
    assert (plif.train.epochs, plif.train.batch_size, plif.train.seed, plif.train.loss) == (1024, 16, 2020, "mse_rate")
    assert (plif.data.T, plif.data.options["split_by"], plif.data.val_split) == (20, "number", 0.15)
    iir = config_from_dict(load_experiment(ROOT / "snn_iir" / "snn_conv_1_mnist_poisson_input.yaml").config)
    assert (iir.data.encoding, iir.data.T, iir.train.batch_size, iir.train.loss) == ("poisson", 25, 32, "ce_count")
    assert (iir.schedule.milestones, iir.data.val_size, iir.data.split_seed) == ([50, 100], 10000, 42)
    he = config_from_dict(load_experiment(ROOT / "he2020" / "gesture_snn_cnn_10ms.yaml").config)
    assert (he.data.options["dt_ms"], he.data.options["ds"], he.data.T, he.train.seed) == (10, 4, 60, 666)
    asa = config_from_dict(load_experiment(ROOT / "asa" / "gait_night_asa.yaml").config)
    assert asa.model.options["channels"] == [32, 32, 32] and asa.model.options["reduction"] == 8
    assert (asa.schedule.name, asa.schedule.T_0, asa.optim.weight_decay) == ("cosine_restarts", 100, 1e-4)
    assert asa.data.eval_options == {"clips": 10}
    memory = load_experiment(ROOT / "snn_iir" / "associative_memory.yaml")
    assert memory.paper.metric == "test_loss" and memory.paper.value == pytest.approx(0.0042)


def test_he2020_rows_cover_models_and_resolutions() -> None:
    names = {p.stem for p in find_experiments("he2020", ROOT)}
    for model in ("snn_mlp", "rnn_mlp", "lstm_mlp", "gru_mlp", "snn_cnn", "convrnn_cnn", "convlstm_cnn",
                  "convgru_cnn"):
        for dt in (1, 5, 10, 15, 20, 25):
            assert f"gesture_{model}_{dt}ms" in names
    assert all(load_experiment(p).paper.value is None for p in find_experiments("he2020", ROOT))


def test_har_dvs_sew_resnet_rows() -> None:
    """ASA-SNN's HAR-DVS row: SEW-ResNet-18 45.5 / NASFR 0.206, + ASA 47.1 / 0.183 (seeds_spec R3.9)."""
    plain = load_experiment(ROOT / "asa" / "har_dvs_sew18.yaml")
    asa = load_experiment(ROOT / "asa" / "har_dvs_sew18_asa.yaml")
    assert (plain.paper.value, asa.paper.value) == (45.5, 47.1)
    assert (plain.paper.nasfr, asa.paper.nasfr) == (0.206, 0.183)
    cfg = config_from_dict(asa.config)
    assert (cfg.data.name, cfg.model.name) == ("har_dvs", "sew_resnet18")
    assert cfg.model.options["attention"] == "asa" and cfg.model.options["asa_variant"] == "original"
    assert config_from_dict(plain.config).model.options["attention"] == "none"
    mini = config_from_dict(load_experiment(ROOT / "asa" / "har_dvs_sew18_asa.yaml", "mini").config)
    assert mini.data.name == "n_digits" and mini.model.options["T"] == mini.data.T


def test_asa_rows_follow_final_sh() -> None:
    """final.sh passes -seed 0 to every command; DailyAction frames are 2 x 346//ds x 260//ds with RCS
    (datasets/action), so arch B's head sees 128 * 5 * 4 = 2560 features at ds 2 (= 128 * 80 // ds**2)."""
    for path in find_experiments("asa", ROOT):
        if not path.stem.startswith("har_dvs"):
            assert config_from_dict(load_experiment(path).config).train.seed == 0, path.stem
    action = config_from_dict(load_experiment(ROOT / "asa" / "action_asa.yaml").config)
    assert action.data.options["rcs"] is True and action.data.options["sensor"] == "davis346"
    assert action.model.options["input_size"] == [130, 173]
    with torch.device("meta"):
        net = create_model(action.model.name, **action.model.options)
    fc1 = [m for m in net.modules() if isinstance(m, torch.nn.Linear) and m.out_features == 512][0]
    assert fc1.in_features == 128 * 80 // 2 ** 2 == 2560


def test_he2020_rows_follow_their_scripts() -> None:
    """lens 0.25 (snn_gesture.py, nmnist_snn.py) / 0.5 (scnn_gesture.py) -> rectangle width 2 lens; batch 36 in
    rnn_gesture.py, 72 in snn_gesture.py / lstm_gesture.py. The width is checked on the built neuron against
    the scripts' ActFun.backward: grad = (|u - 0.3| < lens) / (2 lens)."""
    from spikeflow import neurons

    for name, lens, batch in (("gesture_snn_mlp_25ms", 0.25, 72), ("gesture_snn_cnn_10ms", 0.5, 36),
                              ("nmnist_snn_mlp", 0.25, 40)):
        cfg = config_from_dict(load_experiment(ROOT / "he2020" / f"{name}.yaml").config)
        assert cfg.model.options["surrogate_width"] == 2 * lens and cfg.train.batch_size == batch
        net = create_model(cfg.model.name, **cfg.model.options)
        lif = next(m for m in net.modules() if isinstance(m, neurons.DecayLIF))
        u = torch.linspace(-0.6, 1.2, 37).view(1, 1, -1).requires_grad_(True)
        lif(u).sum().backward()
        want = ((u.detach() - 0.3).abs() < lens).float() / (2 * lens)
        assert torch.allclose(u.grad, want), name
    batches = {m: config_from_dict(load_experiment(ROOT / "he2020" / f"gesture_{m}_25ms.yaml").config).train.batch_size
               for m in ("rnn_mlp", "lstm_mlp", "snn_mlp")}
    assert batches == {"rnn_mlp": 36, "lstm_mlp": 72, "snn_mlp": 72}
