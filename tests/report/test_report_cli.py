"""End to end: `spikeflow train` (tiny plugin model on digits) -> `spikeflow report` / `sweep`."""
import csv
import json
import textwrap

import pytest

pytest.importorskip("spikeflow.train.run")
pytest.importorskip("spikeflow.cli")
from spikeflow.cli import main  # noqa: E402

PLUGIN = '''
import torch
from torch import nn
from spikeflow.models import register_model
from spikeflow.neurons.base import BaseNeuron


class Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x >= 0.5).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.sigmoid(4 * (x - 0.5)) * (1 - torch.sigmoid(4 * (x - 0.5))) * 4


class STNeuron(BaseNeuron):
    """Stateless threshold neuron, straight-through gradient, learnable tau-like parameter."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.0))

    @property
    def tau(self):
        return 1 / torch.sigmoid(self.w)

    def run(self, x, state=None):
        return Spike.apply(x * torch.sigmoid(self.w) * 2), state


class Net(nn.Module):
    def __init__(self, hidden=24):
        super().__init__()
        self.fc1 = nn.Linear(64, hidden)
        self.sn1 = STNeuron()
        self.fc2 = nn.Linear(hidden, 10)
        self.sn2 = STNeuron()

    def forward(self, x):
        return self.sn2(self.fc2(self.sn1(self.fc1(x.flatten(2)))))


@register_model
def report_test_net(hidden=24):
    return Net(hidden)
'''


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plugin")   # one plugin path: the model registers once
    plugin = folder / "plugin_report_net.py"
    plugin.write_text(PLUGIN)
    cfg = folder / "tiny.yaml"
    cfg.write_text(textwrap.dedent(f"""\
        data: {{name: digits, T: 4, encoding: repeat}}
        model: {{name: report_test_net}}
        optim: {{name: adam, lr: 0.01}}
        train: {{epochs: 2, batch_size: 128, quiet: true, device: cpu, loss: mse_rate}}
        run: {{imports: ["{plugin}"], tensorboard: false}}
        """))
    return cfg


def test_train_then_report(tmp_path, config, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", str(config), "--out", str(run_dir)]) == 0
    metrics = json.loads((run_dir / "metrics_test.json").read_text())
    assert 0 <= metrics["nasfr"] <= 1
    per_layer = metrics["synops"]["per_layer"]
    assert per_layer["fc1"]["mac"] > 0 and per_layer["fc1"]["ac"] == 0   # analog pixels -> MACs
    assert per_layer["fc2"]["mac"] == 0 and per_layer["fc2"]["ac"] > 0   # spikes -> ACs
    assert set(metrics["neuron_tau"]) == {"sn1", "sn2"}
    assert main(["report", str(run_dir)]) == 0
    figures = sorted(p.name for p in (run_dir / "figures").iterdir())
    assert figures == sorted(["training_curves.png", "learning_rate.png", "firing_rates.png",
                              "firing_rates_per_step.png", "plif_tau.png",
                              "00_run_input_frames.png", "00_run_raster.png"])
    md = (run_dir / "report.md").read_text()
    assert "No sample figures" not in md and "| run |" in md
    assert (run_dir / "report.html").stat().st_size > 10_000


def test_sweep_two_values(tmp_path, config):
    out = tmp_path / "sweep"
    code = main(["sweep", str(config), "--set", "model.options.hidden=8,16", "train.epochs=1",
                 "--out", str(out)])
    assert code == 0
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert [r["model.options.hidden"] for r in rows] == ["8", "16"]
    assert int(rows[0]["params"]) == 64 * 8 + 8 + 8 * 10 + 10 + 2
    assert (out / "sweep.png").is_file() and (out / "runs" / "hidden=16" / "metrics_test.json").is_file()
    # a bad key is rejected before anything runs
    assert main(["sweep", str(config), "--set", "optim.lrr=1,2", "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()


def test_sweep_scale_mini_applies_the_mini_block(tmp_path, config):
    paper = tmp_path / "paper.yaml"
    paper.write_text(config.read_text() + textwrap.dedent("""\
        paper: {table: t, row: r, metric: acc_A, value: null}
        mini:
          model: {options: {hidden: 4}}
          train: {epochs: 1}
        """))
    out = tmp_path / "mini"
    assert main(["sweep", str(paper), "--scale", "mini", "--set", "optim.lr=0.01,0.02", "--out", str(out)]) == 0
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert [int(r["params"]) for r in rows] == [64 * 4 + 4 + 4 * 10 + 10 + 2] * 2
    (tmp_path / "nomini.yaml").write_text(config.read_text())
    assert main(["sweep", str(tmp_path / "nomini.yaml"), "--scale", "mini", "--set", "optim.lr=1,2"]) == 2
