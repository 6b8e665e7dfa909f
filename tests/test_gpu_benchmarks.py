"""The device protocol of the benchmarks (benchmarks/_gpu.py, neurons.py / train_step.py
``--mode gpu``, epoch.py) and the table of scripts/gpu_check.sh (scripts/gpu_table.py), on CPU."""
import gzip
import importlib.util
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gpu():
    return _load(ROOT / "benchmarks" / "_gpu.py", "bench_gpu_helpers")


def test_time_ms_calls_and_counts(gpu):
    calls = []
    times = gpu.time_ms(lambda: calls.append(1), torch.device("cpu"), reps=4, prime=False)
    assert len(times) == 4 and len(calls) == 4 and min(times) >= 0
    calls.clear()
    times = gpu.time_ms(lambda: calls.append(1), torch.device("cpu"), reps=4, warmup_ms=0)
    assert len(times) == 4 and len(calls) == 1 + 3 + 1 + 4  # prime, estimate, warm-up, timed
    assert gpu.summary([3.0, 1.0, 2.0]) == {"ms": 2.0, "min_ms": 1.0, "reps": 3}
    assert gpu.peak_mb(lambda: None, torch.device("cpu")) is None


def test_neurons_device_protocol_rows_and_json(tmp_path):
    bench = _load(ROOT / "benchmarks" / "neurons.py", "bench_neurons_gpu")
    out = tmp_path / "n.json"
    rows = bench.main(["--mode", "gpu", "--steps", "3", "--batch", "2", "--neurons", "64",
                       "--neuron", "LIF", "PLIF", "--impls", "spikeflow", "reference",
                       "--rep-ms", "1", "--json", str(out)])
    assert [(r["neuron"], r["impl"]) for r in rows] == [
        ("LIF", "spikeflow"), ("LIF", "reference"), ("PLIF", "spikeflow"), ("PLIF", "reference")]
    for r in rows:
        assert r["T"] == 3 and r["dtype"] == "float32" and r["ms"] > 0 and r["reps"] >= 5
        assert r["spikes_equal"] == 1.0 and r["grad_rel_err"] <= 1e-5 and r["peak_mb"] is None
    doc = json.loads(out.read_text())
    assert doc["benchmark"] == "neurons" and set(doc["floors"]) == {"float32/T3"}
    assert doc["floors"]["float32/T3"]["floor_ms"] == pytest.approx(
        3 * doc["floors"]["float32/T3"]["copy_ms"])


def test_train_step_device_protocol_plif_net(tmp_path):
    bench = _load(ROOT / "benchmarks" / "train_step.py", "bench_train_step_gpu")
    rows = bench.main(["--mode", "gpu", "--nets", "plif_fmnist", "--impls", "spikeflow",
                       "--batch", "1", "--repeats", "1", "--warmup", "0",
                       "--json", str(tmp_path / "t.json")])
    (row,) = rows
    assert (row["net"], row["precision"], row["impl"], row["B"], row["T"]) == (
        "plif_fmnist", "fp32", "spikeflow", 1, 8)
    assert row["reps"] == 1 and row["step_mb"] > 0
    # the paper net at rest: no output spikes, so MSE(0, one-hot) = 1/10
    assert row["loss"] == pytest.approx(0.1)
    x, y = bench.make_input("plif_fmnist", batch=3)
    assert x.shape == (8, 3, 1, 28, 28) and x.stride(0) == 0 and y.shape == (3,)


def test_train_step_graphs_trainer_steps_like_eager():
    """spikeflow+graphs: the engine's GraphedTrainStep with a stand-in capture (the step runs
    eagerly at every replay, from gradients set to None as a real replay's backward overwrites
    its graph-owned gradients) takes the same Adam steps as the eager trainer; without CUDA the
    implementation is skipped (make_trainer returns None)."""
    bench = _load(ROOT / "benchmarks" / "train_step.py", "bench_train_step_graphs")
    x, y = bench.make_input("conv", batch=2)
    torch.manual_seed(0)
    ref = bench.reference_net("conv")
    assert bench.make_trainer("spikeflow+graphs", "conv", ref, x, y) is None
    models = [bench.build("spikeflow", "conv") for _ in range(2)]
    for m in models:
        bench.copy_weights(ref, m)
    eager = bench.Trainer(models[0], x, y, engine_optim=True)
    def capture(fn):
        return lambda: (models[1].zero_grad(set_to_none=True), fn())[1]

    graphed = bench.Trainer(models[1], x, y, engine_optim=True, graphs=True, capture=capture)
    losses = [(float(eager.step_async()), float(graphed.step_async())) for _ in range(6)]
    assert graphed.graph.captures == 1 and graphed.graph.replays == 3  # 3 warm-up, capture, 2
    for a, b in losses:
        assert b == pytest.approx(a, rel=1e-5)
    for pa, pb in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(pb, pa, rtol=1e-5, atol=1e-6)


def _idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def test_epoch_reads_idx_and_needs_a_device_choice(tmp_path, capsys):
    bench = _load(ROOT / "benchmarks" / "epoch.py", "bench_epoch")
    images = np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256
    _idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([7, 3]))
    got_x, got_y = bench.load_fashion_mnist(tmp_path, train=False)
    assert np.array_equal(got_x, images) and got_y.tolist() == [7, 3]
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        bench.load_fashion_mnist(tmp_path, train=True)
    if not torch.cuda.is_available():
        assert bench.main([]) == []
        assert "no CUDA device" in capsys.readouterr().out


def _doc(rows, **extra):
    return {"info": {"gpu": "NVIDIA H200", "capability": "9.0", "sms": 132,
                     "gpu_memory_gib": 139.8, "python": "3.12.3", "torch": "2.11.0",
                     "cuda": "13.0", "triton": "3.6.0", "spikingjelly": "2.0.0"},
            "rows": rows, **extra}


def test_gpu_table_targets(tmp_path):
    table = _load(ROOT / "scripts" / "gpu_table.py", "gpu_table")
    neu = [dict(neuron=k, dtype=d, T=32, impl=i, ms=ms, min_ms=ms, peak_mb=pk, saved_mb=1.0,
                spikes_equal=1.0, grad_rel_err=0.0)
           for k in ("LIF", "PLIF") for d, i, ms, pk in (
               ("float32", "spikeflow", 0.4, 300.0), ("float32", "spikingjelly", 1.2, 400.0),
               ("bfloat16", "spikeflow", 0.35, 200.0), ("bfloat16", "spikingjelly", 17.0, 300.0))]
    floors = {"float32/T32": {"copy_ms": 0.074, "floor_ms": 0.222},
              "bfloat16/T32": {"copy_ms": 0.04, "floor_ms": 0.12}}
    (tmp_path / "neurons.json").write_text(json.dumps(_doc(neu, batch=16, neurons=65536,
                                                           floors=floors)))
    steps = [dict(net="conv", precision=p, impl=i, B=64, T=10, ms=ms, peak_mb=1.0, step_mb=1.0,
                  loss=0.1) for p, i, ms in (("fp32", "spikeflow", 4.0), ("fp32", "spikingjelly", 6.6),
                                             ("fp32", "spikeflow+graphs", 2.0),
                                             ("bfloat16 autocast", "spikeflow", 10.0),
                                             ("bfloat16 autocast", "spikingjelly", 27.6))]
    (tmp_path / "train_step.json").write_text(json.dumps(_doc(steps, repeats=30)))
    (tmp_path / "epoch.json").write_text(json.dumps(_doc([
        dict(impl="spikeflow", epoch_s=14.0, train_s=12.0, test_acc=0.889, wall_s=30.0),
        dict(impl="spikingjelly", error="RuntimeError: boom")], max_steps=None)))
    (tmp_path / "ddp.log").write_text("model x on cuda:0 x1 processes (nccl)\n"
                                      "acc-A 90.00% | 1 epochs | run folder r | 9s\n")
    assert table.main([str(tmp_path)]) == 0
    text = (tmp_path / "gpu_table.md").read_text()
    assert "**NVIDIA H200** (compute capability 9.0, 132 SMs, 139.8 GiB)" in text
    assert "| LIF | float32 | 32 | spikeflow | 0.400 | 3.00x | 1.80 | 300 | 1 | 1.0000 | 0.0e+00 |" in text
    targets = text[text.index("### Targets"):]
    assert "| LIF float32 fwd+bwd <= 0.5 ms | 0.400 ms | yes |" in targets
    assert "| LIF bfloat16 fwd+bwd <= 0.3 ms | 0.350 ms | **no** |" in targets
    assert "| PLIF float32 >= 2.4x SpikingJelly | 3.00x | yes |" in targets
    assert "| PLIF float32 peak memory <= SpikingJelly's | 300 MB vs 400 MB | yes |" in targets
    assert ("| conv train step fp32 >= 1.5x SpikingJelly | 3.30x (spikeflow+graphs 2.00 vs 6.60 "
            "ms); eager 1.65x | yes |") in targets
    assert ("| conv train step bfloat16 autocast >= 2.5x SpikingJelly | 2.76x (spikeflow 10.00 vs "
            "27.60 ms) | yes |") in targets
    assert "| F-MNIST epoch via spikeflow train <= 15 s, acc >= 88.5% | 14.0 s, 88.90% | yes |" in targets
    assert "finished: 1 epoch(s), acc-A 90.00%; backend nccl | yes |" in targets
    assert "| spikingjelly | error: RuntimeError: boom |" in text
