"""Every registered model builds, runs forward/backward on a small input and returns [T, B, K];
parameter counts checked against the papers and against closed-form counts of the architectures."""
from __future__ import annotations

import pytest
import torch

from spikeflow.models import create_model, list_models
from spikeflow.models import model_card

# small variants: (factory overrides, per-step input shape, K)
SMALL: dict[str, tuple[dict, tuple, int]] = {
    "plif_mnist": (dict(channels=8, hidden=16, input_size=8), (1, 8, 8), 10),
    "plif_fashion_mnist": (dict(channels=8, hidden=16, input_size=8), (1, 8, 8), 10),
    "plif_cifar10": (dict(channels=8, hidden=16, input_size=8), (3, 8, 8), 10),
    "plif_nmnist": (dict(channels=8, input_size=12), (2, 12, 12), 10),
    "plif_cifar10dvs": (dict(channels=8, input_size=16), (2, 16, 16), 10),
    "plif_dvs_gesture": (dict(channels=8, input_size=32), (2, 32, 32), 11),
    "iir_mlp": (dict(input_shape=(1, 6, 6)), (1, 6, 6), 10),
    "iir_mlp_lowpass": (dict(input_shape=(1, 6, 6)), (1, 6, 6), 10),
    "iir_cnn_mnist": (dict(input_shape=(1, 8, 8)), (1, 8, 8), 10),
    "iir_cnn_nmnist": (dict(input_shape=(2, 10, 10)), (2, 10, 10), 10),
    "iir_cnn_gesture": (dict(input_shape=(2, 20, 20)), (2, 20, 20), 11),
    "iir_assoc_memory": (dict(input_shape=(12,), num_classes=12), (12,), 12),
    "he2020_snn_mlp": (dict(in_features=2 * 6 * 6, hidden=(16, 16)), (2, 6, 6), 11),
    "he2020_rnn_mlp": (dict(in_features=2 * 6 * 6, hidden=(16, 16)), (2, 6, 6), 11),
    "he2020_lstm_mlp": (dict(in_features=2 * 6 * 6, hidden=(16, 16), readout="last"), (2, 6, 6), 11),
    "he2020_gru_mlp": (dict(in_features=2 * 6 * 6, hidden=(16,)), (2, 6, 6), 11),
    "he2020_snn_cnn": (dict(input_size=8, channels=(4, 8, 8), fc=16), (2, 8, 8), 11),
    "he2020_convrnn_cnn": (dict(input_size=8, channels=(4, 8, 8), fc=16), (2, 8, 8), 11),
    "he2020_convlstm_cnn": (dict(input_size=8, channels=(4, 8, 8), fc=16, readout="last"), (2, 8, 8), 11),
    "he2020_convgru_cnn": (dict(input_size=8, channels=(4, 8, 8), fc=16), (2, 8, 8), 11),
    "asa_arch_a": (dict(T=4, input_size=8, channels=(4, 8, 8), hidden=16, reduction=2), (2, 8, 8), 11),
    "asa_arch_b": (dict(T=4, input_size=32, channels=8, hidden=16), (2, 32, 32), 11),
    # SEW-ResNets cut to 2 / 1 stages (export time grows with the number of spiking layers)
    "sew_resnet18": (dict(T=4, blocks=(1, 1), widths=(4, 8), attention="asa", attention_stages=(2,),
                          input_size=16), (2, 16, 16), 300),
    "sew_resnet34": (dict(T=4, blocks=(1,), widths=(4,), stem="small", connect="IAND", input_size=8), (2, 8, 8),
                     300),
}
T, B = 4, 2


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def builtin_models() -> list[str]:
    """Registered names defined by spikeflow itself (other tests register plugin models)."""
    from spikeflow.models import MODELS

    return [n for n in list_models() if MODELS.get(n).__module__.startswith("spikeflow.")]


def test_small_table_covers_the_registry() -> None:
    assert sorted(SMALL) == builtin_models()


@pytest.mark.parametrize("name", list_models())
def test_forward_backward_shape(name: str) -> None:
    assert name in SMALL, f"add a small variant of {name} to SMALL"
    kwargs, step_shape, k = SMALL[name]
    model = create_model(name, **kwargs)
    x = torch.rand(T, B, *step_shape)
    if name.startswith("he2020_snn") or name.startswith("iir"):
        x = (x > 0.5).float()  # event-like binary input
    x.requires_grad_(True)
    y = model(x)
    assert y.shape == (T, B, k)
    assert torch.isfinite(y).all()
    (y.float().mean(0) - 0.1).square().sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads[:1])
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("name", list_models())
def test_bad_input_shape_is_rejected(name: str) -> None:
    kwargs, step_shape, _ = SMALL[name]
    model = create_model(name, **kwargs)
    wrong = tuple(d + 1 for d in step_shape)
    with pytest.raises(ValueError):
        model(torch.rand(T, B, *wrong))


def test_he2020_snn_cnn_has_the_published_parameter_count() -> None:
    # 2,322,891 printed by the authors' SNN-CNN script for 11 classes at 32x32 (seeds_spec R4.3)
    assert n_params(create_model("he2020_snn_cnn")) == 2_322_891


def test_plif_nmnist_parameter_count_from_the_architecture() -> None:
    # R2.2: [Conv(2->128)+BN, SN, Pool], [Conv(128->128)+BN, SN, Pool], 8192 -> 2048 -> 100, no biases;
    # BN has weight+bias (2C); each PLIF layer has one learnable w (4 spiking layers)
    conv = 2 * 128 * 9 + 128 * 128 * 9
    bn = 2 * (2 * 128)
    fc = 128 * 8 * 8 * 2048 + 2048 * 100
    assert conv + bn + fc + 4 == 17_132_292
    assert n_params(create_model("plif_nmnist")) == 17_132_292
    assert n_params(create_model("plif_nmnist", neuron="lif")) == 17_132_288


def test_plif_static_parameter_counts() -> None:
    # MNIST: static Conv(1->128)+BN, Conv(128->128)+BN, 6272 -> 2048 -> 100, 4 PLIF layers
    mnist = 1 * 128 * 9 + 128 * 128 * 9 + 4 * 128 + 6272 * 2048 + 2048 * 100 + 4
    assert n_params(create_model("plif_mnist")) == mnist
    # CIFAR-10: 6 convs of 256 (first 3->256), 6 BN, 16384 -> 2048 -> 100, 8 PLIF layers
    cifar = 3 * 256 * 9 + 5 * 256 * 256 * 9 + 6 * 2 * 256 + 16384 * 2048 + 2048 * 100 + 8
    assert n_params(create_model("plif_cifar10")) == cifar


def test_iir_cnn_mnist_parameter_count() -> None:
    # one (a1, a2, b1) per element of every filtered tensor + conv/linear weights and biases
    filtered = [784, 32 * 784, 32 * 784, 64 * 784, 64 * 196, 64 * 196, 3136, 512]
    layers = [(1 * 9, 32), (32 * 9, 32), (32 * 9, 64), (64 * 9, 64), (3136, 512), (512, 10)]
    expected = 3 * sum(filtered) + sum((fan_in + 1) * out for fan_in, out in layers)
    assert n_params(create_model("iir_cnn_mnist")) == expected
    lowpass = n_params(create_model("iir_mlp_lowpass"))
    assert lowpass == (784 + 500 + 500) + (785 * 500 + 501 * 500 + 501 * 10)


def test_he2020_mlp_and_asa_parameter_counts() -> None:
    # snn_gesture.py: fc1 2048 -> 512, fc2 512 -> 11 (seeds_spec R4.3; issue 15: 1,054,731)
    assert n_params(create_model("he2020_snn_mlp")) == 2049 * 512 + 513 * 11 == 1_054_731
    assert n_params(create_model("he2020_snn_mlp", hidden=(512, 512))) == 2049 * 512 + 513 * 512 + 513 * 11 \
        == 1_317_387
    lstm = create_model("he2020_lstm_mlp")
    assert n_params(lstm) == 4 * (2048 * 512 + 512 * 512 + 2 * 512) + 4 * (2 * 512 * 512 + 2 * 512) + 513 * 11
    base = (2 * 64 * 9 + 64) + (64 * 128 * 9 + 128) + (128 * 128 * 9 + 128) + 2 * (64 + 128 + 128) \
        + (8192 * 256 + 256) + (256 * 11 + 11)
    assert n_params(create_model("asa_arch_a", attention="none")) == base
    asa = 2 + (60 * 15 + 15 * 60) + 2 * 2 * 9  # alpha, beta, fc (T=60, reduction 4), two 3x3 convs
    assert n_params(create_model("asa_arch_a")) == base + 3 * asa


def test_recurrent_last_readout_repeats_the_last_step() -> None:
    kwargs, shape, _ = SMALL["he2020_lstm_mlp"]
    torch.manual_seed(0)
    model = create_model("he2020_lstm_mlp", **kwargs)
    x = torch.rand(T, B, *shape)
    y = model(x)
    assert torch.equal(y, y[-1:].expand_as(y))
    rate = create_model("he2020_lstm_mlp", **{**kwargs, "readout": "rate"})
    rate.load_state_dict(model.state_dict())
    assert torch.allclose(rate(x)[-1], y[-1], atol=1e-6)


def test_plif_static_conv_runs_once_for_repeated_input() -> None:
    kwargs, shape, _ = SMALL["plif_mnist"]
    model = create_model("plif_mnist", **kwargs).eval()
    img = torch.rand(B, *shape)
    calls = []
    model.static_conv.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    out_view = model(img.unsqueeze(0).expand(T, *img.shape))
    assert calls == [B]
    out_copy = model(img.unsqueeze(0).repeat(T, 1, 1, 1, 1))
    assert calls == [B, B]
    assert torch.equal(out_view, out_copy)
    model(torch.rand(T, B, *shape))
    assert calls[-1] == T * B  # time-varying input: convolved per step


def test_iir_persistent_states_carry_over() -> None:
    kwargs, shape, _ = SMALL["iir_mlp"]
    torch.manual_seed(0)
    x = (torch.rand(T, B, *shape) > 0.3).float()
    fresh = create_model("iir_mlp", **kwargs).eval()
    kept = create_model("iir_mlp", persistent=True, **kwargs).eval()
    kept.load_state_dict(fresh.state_dict())
    first = kept(x)
    assert torch.equal(first, fresh(x))
    whole = fresh(torch.cat([x, x]))
    assert torch.equal(kept(x), whole[T:])        # second call continues from the stored state
    kept.reset_state()
    assert torch.equal(kept(x), first)
    kept(x)
    assert torch.equal(kept(x[:, :1]), fresh(x[:, :1]))  # another batch size starts from rest
    assert torch.equal(kept(x[:, :1]), fresh(torch.cat([x[:, :1], x[:, :1]]))[T:])


@pytest.mark.parametrize("name", list_models())
def test_every_model_has_a_card(name: str) -> None:
    card = model_card(name)
    assert card.paper in ("plif", "snn_iir", "he2020", "asa")
    assert card.classes == SMALL[name][2] or name == "iir_assoc_memory"
    assert card.citation and card.source
