"""The GPU training path, exercised on CPU wherever the code is the same (docs/training.md, "GPU"):
device and precision resolution, datasets held on the device, uint8 event counts, host reads
only every ``log_interval`` steps, the CUDA-graph step logic (with a stand-in capture), compile,
and ``torchrun --nproc_per_node 1``. Tests at the end need CUDA and are skipped without it.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from spikeflow.train import load_config, run
from spikeflow.train.config import ConfigError
from spikeflow.train.data import (BatchEncoder, build_datasets, collate_time_first, make_loader,
                                  make_run_loader, set_loader_epoch, steps_channels_last)
from spikeflow.train.device_data import (CountFrames, DeviceLoader, count_view, device_batches,
                                         hold_on_device, host_tensors, resident_nbytes,
                                         unholdable_reason)
from spikeflow.train.distributed import DistInfo, backend_for, env_dist_info
from spikeflow.train.loop import (NonFiniteLossError, Step, evaluate, make_graphed_step,
                                  train_one_epoch)
from spikeflow.train.setup import resolve_amp, resolve_device

PLUGIN = str(Path(__file__).with_name("tiny_plugin.py"))
CPU = torch.device("cpu")
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def digits_cfg(*sets: str):
    base = {"data": {"name": "digits", "encoding": "repeat", "T": 3},
            "model": {"name": "tiny_mlp", "options": {"features": 64, "classes": 10,
                                                      "dropout": 0.1}},
            "optim": {"name": "adam", "lr": 0.01},
            "train": {"epochs": 2, "batch_size": 100, "quiet": True, "seed": 3,
                      "device": "cpu"},
            "run": {"imports": [PLUGIN], "tensorboard": False, "log_firing_rates": False}}
    return load_config(None, list(sets), base=base)


def strip_time(rows):
    return [{k: v for k, v in r.items() if "seconds" not in k and "per_s" not in k} for r in rows]


# ----------------------------------------------------------------------------- device, amp


def test_device_auto_without_cuda_is_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == CPU and resolve_device("cpu") == CPU
    with pytest.raises(ConfigError, match="train.device=cuda but CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="not available"):
        resolve_device("cuda:1")


def test_device_choice_with_cuda_present(monkeypatch):
    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("auto", local_rank=1) == torch.device("cuda", 1)  # torchrun rank 1
    assert resolve_device("cuda", local_rank=1) == torch.device("cuda", 1)
    assert resolve_device("cuda:0", local_rank=1) == torch.device("cuda", 0)
    assert chosen == [0, 1, 1, 0]
    with pytest.raises(ConfigError, match="GPU index 2 does not exist"):
        resolve_device("cuda:2")
    assert resolve_device("cpu") == CPU


def test_amp_resolution(monkeypatch):
    cuda = torch.device("cuda", 0)  # a device object only: nothing runs on it
    for setting in ("auto", "bf16", "fp16", "off", True, False):
        assert resolve_amp(setting, CPU) is None  # autocast is never used on CPU
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_amp("auto", cuda) is torch.bfloat16
    assert resolve_amp("bf16", cuda) is torch.bfloat16
    assert resolve_amp("fp16", cuda) is torch.float16
    assert resolve_amp("off", cuda) is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_amp("auto", cuda) is torch.float16
    with pytest.raises(ConfigError, match="train.amp"):
        resolve_amp("fp32", cuda)


def test_gpu_config_keys():
    cfg = load_config(None, ["data.name=digits", "model.name=mlp"], base={})
    assert (cfg.train.device, cfg.train.amp, cfg.data.on_device) == ("auto", "auto", "auto")
    assert cfg.train.cuda_graphs is False and cfg.train.log_interval is None
    assert digits_cfg("train.amp=true").train.amp == "auto"      # older configs: amp: true
    assert digits_cfg("train.amp=off").train.amp == "off"        # YAML reads off as false
    assert digits_cfg("train.amp=bf16").train.amp == "bf16"
    assert digits_cfg("data.on_device=true").data.on_device is True
    for sets, words in ((["train.amp=fp32"], "train.amp"),
                        (["train.cuda_graphs=true", "train.amp=fp16"], "train.amp=fp16"),
                        (["train.cuda_graphs=true", "train.compile=true"], "reduce-overhead"),
                        (["train.compile_options={modee: x}"], "compile_options.modee"),
                        (["train.log_interval=0"], "train.log_interval"),
                        (["data.on_device=always"], "data.on_device"),
                        (["data.on_device_max_gb=0"], "data.on_device_max_gb")):
        with pytest.raises(ConfigError, match=words):
            digits_cfg(*sets)


# ----------------------------------------------------------------------------- held on the device


def test_static_images_held_as_tensors_equal_items_bitwise():
    from spikeflow.data import create_dataset

    for ds in (create_dataset("digits", split="test"),
               create_dataset("digits", split="train", size=12, normalize=False),
               create_dataset("digits", split="val", holdout="random", val_size=50)):
        assert unholdable_reason(ds) is None
        held = host_tensors(ds)
        assert held.x.dtype == torch.float32 and held.x.shape == (len(ds), *ds[0][0].shape)
        assert resident_nbytes(ds) == held.x.numel() * 4
        for i in range(len(ds)):
            x, y = ds[i]
            assert torch.equal(held.x[i], x) and int(held.y[i]) == y


def test_normalised_fashion_mnist_held_bitwise():
    from spikeflow.data import create_dataset
    from spikeflow.data.mnist import DEBIAN_FASHION_MNIST

    if not DEBIAN_FASHION_MNIST.is_dir():
        pytest.skip("Fashion-MNIST files not installed")
    ds = create_dataset("fashion_mnist", split="test")   # Normalize(0.2860, 0.3530)
    held = host_tensors(ds)
    for i in (0, 1, 4321, len(ds) - 1):
        assert torch.equal(held.x[i], ds[i][0])
    assert torch.equal(held.y, torch.from_numpy(ds.targets))


def test_what_cannot_be_held():
    from spikeflow.data.static import ImageDataset
    from spikeflow.data.transforms import RandomAffine

    images = np.zeros((4, 8, 8), dtype=np.uint8)
    aug = ImageDataset(images, [0, 1, 0, 1], ["a", "b"], transform=RandomAffine(10.0))
    assert "random" in unholdable_reason(aug)
    assert "neither" in unholdable_reason(torch.utils.data.TensorDataset(torch.zeros(2)))
    assert hold_on_device(aug, "auto", CPU, 4.0, True) is False
    with pytest.raises(ConfigError, match="data.on_device=true: the training set"):
        hold_on_device(aug, True, CPU, 4.0, True)
    assert hold_on_device(aug, True, CPU, 4.0, False) is False   # eval sets fall back
    plain = ImageDataset(images, [0, 1, 0, 1], ["a", "b"])
    assert hold_on_device(plain, "auto", CPU, 4.0, True) is False  # auto: CUDA only
    assert hold_on_device(plain, True, CPU, 4.0, True) is True
    assert hold_on_device(plain, False, CPU, 4.0, True) is False


def _batches(loader, epoch, seed, rank=0):
    set_loader_epoch(loader, epoch, seed, rank)
    return [(x.clone(), y.clone()) for x, y in device_batches(loader, CPU)]


@pytest.mark.parametrize("world,drop_last", [(1, False), (1, True), (2, False)])
def test_device_loader_gives_the_dataloader_batches(world, drop_last):
    cfg = digits_cfg("train.batch_size=96", f"train.drop_last={str(drop_last).lower()}",
                     "data.on_device=true", "train.eval_batch_size=100")
    data = build_datasets(cfg, None)
    for rank in range(world):
        info = DistInfo(rank, world)
        for train, ds in ((True, data.train), (False, data.test)):
            held = make_run_loader(ds, cfg, info, train, CPU)
            plain = make_loader(ds, cfg, info, train)
            assert isinstance(held, DeviceLoader) and len(held) == len(plain)
            for epoch in (0, 1):
                a = _batches(held, epoch, cfg.train.seed, rank)
                b = _batches(plain, epoch, cfg.train.seed, rank)
                assert len(a) == len(b)
                for (xa, ya), (xb, yb) in zip(a, b):
                    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # one epoch covers every sample once (single process, no drop_last)
    loader = make_run_loader(data.train, digits_cfg("data.on_device=true"), DistInfo(), True, CPU)
    xs = torch.cat([x for x, _ in _batches(loader, 5, 3)])
    held = host_tensors(data.train).x
    assert xs.shape == held.shape
    assert torch.equal(torch.sort(xs.flatten(1), 0).values, torch.sort(held.flatten(1), 0).values)


def test_run_with_data_on_device_equals_run_without(tmp_path):
    a = run(digits_cfg("data.on_device=true"), out=tmp_path / "on", echo=lambda _: None)
    lines = []
    b = run(digits_cfg("data.on_device=false"), out=tmp_path / "off", echo=lines.append)
    assert strip_time(a.history) == strip_time(b.history)
    wa = torch.load(tmp_path / "on" / "checkpoint_last.pt", weights_only=True)["model"]
    wb = torch.load(tmp_path / "off" / "checkpoint_last.pt", weights_only=True)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any("on cpu, float32" in line for line in lines)


def test_poisson_on_device_is_seeded():
    x = torch.rand(5, 1, 4, 4)
    enc = BatchEncoder("poisson", 6, CPU)
    enc.reseed(11)
    first = enc(x)
    enc.reseed(11)
    assert torch.equal(enc(x), first) and first.shape == (6, 5, 1, 4, 4)
    enc.reseed(12)
    assert not torch.equal(enc(x), first)
    assert set(first.unique().tolist()) <= {0.0, 1.0} and not enc.deterministic
    assert BatchEncoder("repeat", 3, CPU).deterministic


def test_repeat_stays_a_view_when_made_channels_last():
    x = torch.rand(4, 3, 5, 5)
    enc = BatchEncoder("repeat", 6, CPU, channels_last=True)(x)
    assert enc.stride(0) == 0 and enc[2].is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(enc, x.unsqueeze(0).expand(6, *x.shape))
    dense = steps_channels_last(torch.rand(2, 3, 3, 4, 4))
    assert dense.stride(0) != 0 and dense[1].is_contiguous(memory_format=torch.channels_last)


# ----------------------------------------------------------------------------- uint8 event counts


def _event_folder(root: Path, hot: bool = False) -> Path:
    from spikeflow.events import make_events
    from spikeflow.events.io import write_nmnist

    rng = np.random.default_rng(0)
    for split, n in (("Train", 4), ("Test", 2)):
        for c in range(2):
            d = root / split / str(c)
            d.mkdir(parents=True)
            for i in range(n):
                k = 300
                xs, ys = rng.integers(0, 34, k), rng.integers(0, 34, k)
                if hot and split == "Train" and c == 0 and i == 0:
                    xs, ys = np.zeros(k, dtype=np.int64), np.zeros(k, dtype=np.int64)
                ev = make_events(xs, ys, np.sort(rng.integers(0, 100_000, k)),
                                 np.zeros(k, dtype=np.int64) if hot else rng.integers(0, 2, k))
                write_nmnist(d / f"{i:05d}.bin", ev)
    return root


def _events(tmp_path, split="train", hot=False, **kw):
    from spikeflow.data import create_dataset

    folder = tmp_path / "N"
    if not folder.exists():
        _event_folder(folder, hot)
    return create_dataset("nmnist", folder, split, check_counts=False, progress=False,
                          cache_dir=tmp_path / "cache", **kw)


def test_event_counts_travel_as_uint8_and_round_trip_exactly(tmp_path):
    ds = _events(tmp_path, T=3)
    view = count_view(ds)
    assert isinstance(view, CountFrames) and len(view) == len(ds)
    for i in range(len(ds)):
        (c, yc), (x, y) = view[i], ds[i]
        assert c.dtype == torch.uint8 and yc == y and torch.equal(c.float(), x)
    batch_u8, y8 = collate_time_first([view[i] for i in range(4)])
    batch_f, yf = collate_time_first([ds[i] for i in range(4)])
    assert batch_u8.dtype == torch.uint8 and batch_u8.shape == (3, 4, 2, 34, 34)
    out = BatchEncoder("none", None, CPU)(batch_u8)
    assert out.dtype == torch.float32 and torch.equal(out, batch_f) and torch.equal(y8, yf)
    # normalised frames are not exact counts: no uint8 view, and they cannot be held
    normed = _events(tmp_path, T=3, normalization="max")
    assert count_view(normed) is None and "normalisation" in unholdable_reason(normed)
    assert "clips" in unholdable_reason(_events(tmp_path, "test", T=3, clips=2,
                                                               clip_length_us=20_000))


def test_counts_above_255_stay_exact(tmp_path):
    ds = _events(tmp_path, T=1, hot=True)   # sample 0: 300 events on one pixel in one frame
    counts = ds.frame_counts(0)
    assert counts.dtype == np.uint16 and counts.max() == 300
    view = count_view(ds)
    assert view[0][0].dtype == torch.float32 and view[1][0].dtype == torch.uint8
    mixed, _ = collate_time_first([view[0], view[1]])
    assert mixed.dtype == torch.float32
    assert torch.equal(mixed, collate_time_first([ds[0], ds[1]])[0])
    held = host_tensors(ds)
    assert held.x.dtype == torch.float32 and torch.equal(held.x[0], ds[0][0])


def test_event_frames_held_on_device_in_loader_order(tmp_path):
    cfg = load_config(None, ["data.name=nmnist", "data.T=3", "train.batch_size=3",
                             "data.on_device=true", "model.name=tiny_mlp"], base={})
    ds = _events(tmp_path, T=3)
    held = host_tensors(ds)
    assert held.x.dtype == torch.uint8 and resident_nbytes(ds) == held.x.numel()
    loader = make_run_loader(ds, cfg, DistInfo(), True, CPU)
    plain = make_loader(ds, cfg, DistInfo(), True, compact=True)
    sizes = []
    for (xa, ya), (xb, yb) in zip(_batches(loader, 1, 0), _batches(plain, 1, 0), strict=True):
        assert xa.dtype == xb.dtype == torch.uint8 and xa.shape[:1] + xa.shape[2:] == (3, 2, 34, 34)
        assert xa.is_contiguous() and torch.equal(xa, xb) and torch.equal(ya, yb)
        sizes.append(xa.shape[1])
    assert sizes == [3, 3, 2]


# ----------------------------------------------------------------------------- host reads


class _Net(nn.Module):
    def __init__(self, nan_at: int | None = None):
        super().__init__()
        self.fc = nn.Linear(6, 3)
        self.calls, self.nan_at = 0, nan_at

    def forward(self, x):
        self.calls += 1
        out = self.fc(x)
        return out * float("nan") if self.calls == self.nan_at else out


def _loader(n_batches=10, b=4, last=None):
    g = torch.Generator().manual_seed(0)
    sizes = [b] * n_batches + ([last] if last else [])
    return [(torch.randn(5, s, 6, generator=g), torch.randint(0, 3, (s,), generator=g))
            for s in sizes]


class _Counter:
    NAMES = ("item", "tolist", "__float__", "__int__", "__bool__", "numpy")

    def __init__(self, monkeypatch):
        self.calls = {name: 0 for name in self.NAMES}
        for name in self.NAMES:
            orig = getattr(torch.Tensor, name)

            def wrapped(t, *a, _orig=orig, _name=name, **k):
                self.calls[_name] += 1
                return _orig(t, *a, **k)

            monkeypatch.setattr(torch.Tensor, name, wrapped)


@pytest.mark.parametrize("interval,reads", [(1, 10), (4, 3), (50, 1)])
def test_no_host_read_per_step(monkeypatch, interval, reads):
    torch.manual_seed(0)
    model = _Net()
    opt = torch.optim.Adam(model.parameters(), lr=0.01, fused=True)  # the engine's default
    seen = []
    step = Step(nn.functional.cross_entropy, lambda v: v, CPU, log_interval=interval,
                on_batch=seen.append)
    step.loss_fn = lambda out, y: nn.functional.cross_entropy(out.mean(0), y)
    counter = _Counter(monkeypatch)
    res = train_one_epoch(model, _loader(), opt, step)
    assert counter.calls == {**{n: 0 for n in _Counter.NAMES}, "tolist": reads}
    assert [s["batches"] for s in seen] == [interval] * (10 // interval) + (
        [10 % interval] if 10 % interval else [])
    assert res["samples"] == 40 and 0 <= res["acc"] <= 1
    counter.calls["tolist"] = 0
    evaluate(model, _loader(3), step)
    assert counter.calls["tolist"] == 1 and sum(counter.calls.values()) == 1


def test_results_do_not_depend_on_the_read_interval():
    results = []
    for interval in (1, 3):
        torch.manual_seed(0)
        model = _Net()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        step = Step(lambda out, y: nn.functional.cross_entropy(out.mean(0), y), lambda v: v, CPU,
                    log_interval=interval)
        res = train_one_epoch(model, _loader(last=2), opt, step)
        results.append(((res["loss"], res["acc"], res["samples"]), model.fc.weight.detach()))
    assert results[0][0] == results[1][0] and torch.equal(results[0][1], results[1][1])


def test_non_finite_loss_found_at_the_next_read():
    for interval, where in ((1, "batch 6"), (4, "batch 6")):
        model = _Net(nan_at=6)
        step = Step(lambda out, y: nn.functional.cross_entropy(out.mean(0), y), lambda v: v, CPU,
                    log_interval=interval)
        with pytest.raises(NonFiniteLossError, match=f"loss is nan at epoch 1, {where}"):
            train_one_epoch(model, _loader(), torch.optim.SGD(model.parameters(), lr=0.1), step)
        assert model.calls == (6 if interval == 1 else 8)  # the read after batch 6 / batch 8


# ----------------------------------------------------------------------------- CUDA graph logic


def test_graphed_step_logic_matches_eager_training():
    """The capture/replay bookkeeping with a stand-in capture (replay = run the recorded step
    eagerly): warm-up, static input buffers, eager last partial batch, a new capture per epoch;
    the weights equal plain eager training bit for bit."""
    weights, graphs = [], None
    for graphed in (False, True):
        torch.manual_seed(0)
        model = _Net()
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        step = Step(lambda out, y: nn.functional.cross_entropy(out.mean(0), y),
                    lambda v: v + 0.0, CPU, log_interval=3, grad_clip=0.5)
        if graphed:
            step.graph = graphs = make_graphed_step(model, opt, step, capture=lambda fn: fn,
                                                    side_stream=False)
        for epoch in range(2):
            train_one_epoch(model, _loader(6, last=3), opt, step, epoch)
        weights.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*weights))
    # epoch 1: 3 warm-up + capture + 2 replays + eager partial; epoch 2: 1 warm-up + capture + 4
    assert (graphs.captures, graphs.replays, graphs.eager_steps) == (2, 3 + 5, 3 + 1 + 1 + 1)


# ----------------------------------------------------------------------------- compile, DDP


@pytest.mark.slow
def test_compile_trains_with_aot_eager(tmp_path):
    """train.compile=true through dynamo + AOT autograd (backend aot_eager: the real tracing,
    no C++ code generation, so it takes seconds on CPU); equal to eager within float rounding."""
    sets = ["data.name=tiny_seq", "data.options={n: 48}", "model.name=tiny_mlp",
            "train.epochs=2", "train.batch_size=16", "train.quiet=true", "train.device=cpu",
            f"run.imports=[{PLUGIN}]", "run.tensorboard=false"]
    a = run(load_config(None, sets, base={}), out=tmp_path / "eager", echo=lambda _: None)
    lines = []
    b = run(load_config(None, sets + ["train.compile=true",
                                      "train.compile_options={backend: aot_eager}"], base={}),
            out=tmp_path / "compiled", echo=lines.append)
    assert any("compiled" in line for line in lines)
    for ra, rb in zip(a.history, b.history):
        for key in ("train_loss", "test_loss"):
            assert rb[key] == pytest.approx(ra[key], rel=1e-5)


def test_distributed_backend_and_torchrun_detection(monkeypatch):
    assert backend_for(torch.device("cuda", 0)) == "nccl" and backend_for(CPU) == "gloo"
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    assert env_dist_info() == DistInfo() and not DistInfo().enabled
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not env_dist_info().enabled     # a stray WORLD_SIZE alone is no launch
    for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("MASTER_ADDR", "127.0.0.1"),
                       ("MASTER_PORT", "29500")):
        monkeypatch.setenv(key, value)
    info = env_dist_info()
    assert info.launched and info.enabled and info.world == 1


@pytest.mark.slow
def test_torchrun_one_process_uses_the_process_group(tmp_path):
    cfg = load_config(None, ["data.name=tiny_seq", "data.options={n: 32}", "model.name=tiny_mlp",
                             "train.epochs=1", "train.batch_size=16", "train.quiet=true",
                             "train.device=cpu", "train.threads=1", f"run.imports=[{PLUGIN}]",
                             "run.tensorboard=false"], base={})
    cfg_file = tmp_path / "tiny.yaml"
    cfg_file.write_text(cfg.to_yaml())
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
           "-m", "spikeflow", "train", str(cfg_file), "--out", str(tmp_path / "r")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "x1 processes (gloo)" in done.stdout
    assert (tmp_path / "r" / "checkpoint_last.pt").is_file()


# ----------------------------------------------------------------------------- CUDA only


@CUDA
def test_cuda_device_loader_and_prefetch_equal_cpu_batches():
    cfg = digits_cfg("data.on_device=auto")
    data = build_datasets(cfg, None)
    cuda = torch.device("cuda", torch.cuda.current_device())
    held = make_run_loader(data.train, cfg, DistInfo(), True, cuda)   # auto: held on CUDA
    plain = make_loader(data.train, cfg, DistInfo(), True)
    assert isinstance(held, DeviceLoader) and held.x.is_cuda
    pinned = make_loader(data.train, cfg, DistInfo(), True, pin_memory=True, compact=True)
    for loader in (held, pinned):
        set_loader_epoch(loader, 2, cfg.train.seed, 0)
        set_loader_epoch(plain, 2, cfg.train.seed, 0)
        for (xa, ya), (xb, yb) in zip(device_batches(loader, cuda), plain, strict=True):
            assert xa.is_cuda and torch.equal(xa.cpu(), xb) and torch.equal(ya.cpu(), yb)


@CUDA
def test_cuda_epoch_has_no_synchronisation(monkeypatch):
    """torch.cuda.set_sync_debug_mode('error') raises on any synchronising call: an epoch on
    data held on the GPU (bf16 autocast, fused Adam) runs without one between its host reads
    (the reads themselves are replaced by a stub here)."""
    from spikeflow.train import loop

    cuda = torch.device("cuda", torch.cuda.current_device())
    cfg = digits_cfg("data.on_device=true")
    loader = make_run_loader(build_datasets(cfg, None).train, cfg, DistInfo(), True, cuda)
    model = nn.Sequential(nn.Flatten(2), nn.Linear(64, 10)).to(cuda)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, fused=True)
    step = Step(lambda out, y: nn.functional.cross_entropy(out.mean(0), y),
                BatchEncoder("repeat", 3, cuda), cuda, amp=torch.bfloat16, log_interval=5)
    set_loader_epoch(loader, 0, 0, 0)
    train_one_epoch(model, loader, opt, step)  # warm-up: lazy initialisation may synchronise
    torch.cuda.synchronize()
    reads = []
    monkeypatch.setattr(loop, "_read", lambda window, *a: (reads.append(len(window.sizes)),
                                                           window.sizes.clear()))
    torch.cuda.set_sync_debug_mode("error")
    try:
        train_one_epoch(model, loader, opt, step)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert sum(reads) == len(loader) and reads[0] == 5


@CUDA
def test_cuda_graph_training_matches_eager():
    cuda = torch.device("cuda", torch.cuda.current_device())
    results = []
    for graphs in (False, True):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(2), nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10)).to(cuda)
        opt = torch.optim.Adam(model.parameters(), lr=0.01, capturable=True)  # same kernels
        step = Step(lambda out, y: nn.functional.cross_entropy(out.mean(0), y),
                    BatchEncoder("repeat", 3, cuda), cuda, log_interval=5, cuda_graphs=graphs)
        cfg = digits_cfg("data.on_device=true", "train.batch_size=64")
        loader = make_run_loader(build_datasets(cfg, None).train, cfg, DistInfo(), True, cuda)
        rows = []
        for epoch in range(2):
            set_loader_epoch(loader, epoch, 0, 0)
            rows.append(train_one_epoch(model, loader, opt, step, epoch))
        results.append((rows, [p.detach().cpu() for p in model.parameters()]))
        if graphs:
            assert step.graph.captures == 2 and step.graph.replays > 30
    (ra, wa), (rb, wb) = results
    for a, b in zip(ra, rb):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4)
    for a, b in zip(wa, wb):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


@CUDA
def test_cuda_run_picks_bf16_and_holds_data(tmp_path):
    lines = []
    run(digits_cfg("train.device=auto", "train.epochs=1"), out=tmp_path / "r", echo=lines.append)
    text = "\n".join(lines)
    assert "on cuda:" in text and "bf16 autocast" in text and "held on cuda" in text


@CUDA
def test_cuda_compiled_snn_trains_like_eager(tmp_path):
    """train.compile on CUDA: the LIF neuron's spikeflow::lif op (Triton kernels) inside the
    compiled graph with no graph break (fullgraph), float32; the same losses as eager within
    float reassociation, and the last partial batch (1438 = 14 x 100 + 38) runs eagerly."""
    sets = ["train.device=cuda", "train.amp=off", "model.options.spiking=true",
            "model.options.dropout=0.0", "train.epochs=1"]  # (compiled dropout draws other masks)
    a = run(digits_cfg(*sets), out=tmp_path / "eager", echo=lambda _: None)
    lines = []
    b = run(digits_cfg(*sets, "train.compile=true", "train.compile_options={fullgraph: true}"),
            out=tmp_path / "compiled", echo=lines.append)
    assert any("compiled" in line for line in lines)
    for key in ("train_loss", "test_loss"):
        assert b.history[0][key] == pytest.approx(a.history[0][key], rel=1e-3)
