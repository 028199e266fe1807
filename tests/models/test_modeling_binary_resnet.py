"""Binary ResNet (ReSTE, Wu et al. 2023): parameter counts, what is binarized, the estimator switch, bad configs, and
loading as remote code without hfcifar."""

import pytest
import torch

from conftest import python_without_hfcifar
from hfcifar.hub.staging import shipping_code
from hfcifar.models import create_model
from hfcifar.models.binary_resnet import (
    BinaryConv2d,
    BinaryResNetConfig,
    BinaryResNetForImageClassification,
    BinaryResNetModel,
    reste_power_schedule,
)

TINY = {"stem_width": 8, "hidden_sizes": [8, 16, 16], "depths": [1, 2, 1]}


def tiny(seed=0, **overrides):
    torch.manual_seed(seed)
    return BinaryResNetForImageClassification(BinaryResNetConfig(**{**TINY, **overrides}))


def test_binary_resnet20_has_resnet20s_parameters_plus_the_feature_norm():
    # The binarized network keeps every parameter of He et al.'s ResNet-20 (option A shortcuts, 269,722): binary
    # weights are the sign of real latent weights. The official ReSTE head adds a BatchNorm1d(64): 2·64 parameters.
    assert create_model("resnet20").num_parameters() == 269_722
    model = create_model("binary-resnet20")
    assert model.num_parameters() == 269_722 + 2 * 64
    layers = model.binary_layers()
    assert len(layers) == 18 and all(isinstance(m, BinaryConv2d) for m in layers.values())  # 9 blocks × 2 convs
    # the stem and the classifier stay real-valued
    assert not isinstance(model.binary_resnet.stem[0], BinaryConv2d) and type(model.classifier) is torch.nn.Linear


def test_block_convolutions_see_only_plus_minus_one():
    model = tiny().eval()
    seen = {}

    def record(module, inputs, output):
        seen[module] = inputs[0]  # returns None: the hook must not replace the output

    hooks = [layer.register_forward_hook(record) for layer in model.binary_layers().values()]
    model(torch.rand(2, 3, 32, 32))
    for hook in hooks:
        hook.remove()
    assert len(seen) == len(model.binary_layers()) == 2 * sum(TINY["depths"])
    for layer, hidden in seen.items():
        weight = layer.binary_weight()
        # weights: sign(W)·mean|W|, one magnitude per layer; activations: sign(a), ±1
        torch.testing.assert_close(weight.abs(), torch.full_like(weight, layer.weight.abs().mean().item()))
        torch.testing.assert_close(torch.sign(weight), torch.where(layer.weight >= 0, 1.0, -1.0))
        binary_input = layer.binary_input(hidden)
        assert set(binary_input.unique().tolist()) <= {-1.0, 1.0}
        torch.testing.assert_close(layer(hidden), torch.nn.functional.conv2d(
            binary_input, weight, stride=layer.stride, padding=layer.padding))


def test_one_bit_weights_32_bit_activations():
    model = create_model("binary-resnet20-1w32a")
    layer = next(iter(model.binary_layers().values()))
    assert (layer.weight_bits, layer.activation_bits) == (1, 32)
    hidden = torch.randn(2, 16, 8, 8)
    assert torch.equal(layer.binary_input(hidden), hidden)


def test_the_estimator_switch_changes_the_backward_pass_only():
    reste, ste = tiny(estimator="reste", reste_power_start=3.0), tiny(estimator="ste")
    assert all(torch.equal(a, b) for a, b in zip(reste.state_dict().values(), ste.state_dict().values()))
    pixels, labels = torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    outputs = [model.train()(pixels, labels=labels) for model in (reste, ste)]
    torch.testing.assert_close(outputs[0].logits, outputs[1].logits)  # the forward pass is sign() for both
    for out in outputs:
        out.loss.backward()
    name = next(iter(reste.binary_layers()))
    grads = [dict(m.named_parameters())[f"{name}.weight"].grad for m in (reste, ste)]
    assert not torch.allclose(grads[0], grads[1])


def test_training_progress_sets_o_on_every_layer_along_the_schedule():
    model = tiny(reste_power_start=1.0, reste_power_end=3.0)
    assert {layer.power for layer in model.binary_layers().values()} == {1.0}
    assert model.set_training_progress(0.5) == pytest.approx(1 + 2 * (1 - 2**-0.5))  # 1 + 2(1 − cos(π/4))
    assert {layer.power for layer in model.binary_layers().values()} == {model.reste_power_at(0.5)}
    assert model.set_training_progress(1.0) == pytest.approx(3.0)
    assert reste_power_schedule(0.25, 1.0, 3.0, "linear") == pytest.approx(1.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.set_training_progress(1.5)


def test_tiny_forward_shapes_and_loss():
    model = tiny().eval()
    pixels, labels = torch.rand(2, 3, 32, 32), torch.tensor([3, 7])
    out = model(pixel_values=pixels, labels=labels, output_hidden_states=True)
    assert out.logits.shape == (2, 10)
    assert torch.allclose(out.loss, torch.nn.functional.cross_entropy(out.logits, labels))
    assert [tuple(h.shape) for h in out.hidden_states] == [(2, 8, 32, 32), (2, 8, 32, 32), (2, 16, 16, 16), (2, 16, 8, 8)]
    features = BinaryResNetModel(BinaryResNetConfig(**TINY)).eval()(pixels)
    assert features.pooler_output.shape == (2, 16)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"weight_bits": 0}, "at least 1 bit"),
        ({"activation_bits": -1}, "at least 1 bit"),
        ({"weight_bits": 8}, "binarizes a tensor"),
        ({"activation_bits": 1.0}, "integer number of bits"),
        ({"estimator": "dorefa"}, "estimator"),
        ({"reste_power_start": 0.5}, "o ≥ 1"),
        ({"reste_power_end": float("nan")}, "o ≥ 1"),
        ({"reste_interval": 2.0}, "0 < reste_interval"),
        ({"reste_power_schedule": "step"}, "reste_power_schedule"),
        ({"hidden_sizes": [32, 16], "depths": [1, 1]}, "at least as wide"),
        ({"depths": [1, 1]}, "one entry per stage"),
    ],
)
def test_invalid_configs_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BinaryResNetConfig(**kwargs)


def test_remote_code_loads_without_hfcifar(tmp_path):
    """The folder `save_pretrained` writes for the Hub loads with trust_remote_code where hfcifar is absent."""
    model = tiny(estimator="ste").eval()
    pixels = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.save({"pixels": pixels, "logits": model(pixels).logits}, tmp_path / "expected.pt")
    model.config._auto_class = "AutoConfig"
    with shipping_code(type(model), "AutoModelForImageClassification"):
        model.save_pretrained(tmp_path / "model")
    assert (tmp_path / "model" / "modeling_binary_resnet.py").is_file()
    code = f"""
        import torch
        from transformers import AutoModelForImageClassification
        model = AutoModelForImageClassification.from_pretrained({str(tmp_path / 'model')!r}, trust_remote_code=True).eval()
        expected = torch.load({str(tmp_path / 'expected.pt')!r})
        assert model.config.estimator == 'ste', model.config.estimator
        with torch.no_grad():
            assert torch.equal(model(expected['pixels']).logits, expected['logits'])
        print('ok')
    """
    result = python_without_hfcifar(code, cwd=tmp_path, timeout=300)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-2000:]
