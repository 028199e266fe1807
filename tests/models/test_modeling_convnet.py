"""ConvNet (dataset distillation): parameter counts against the published figures, and a tiny forward pass."""

import pytest
import torch

from hfcifar.models import create_model
from hfcifar.models.convnet import ConvNetConfig, ConvNetForImageClassification, ConvNetModel

# Zhao et al. (2021), VICO-UoE/DatasetCondensation, networks.py: ConvNet(channel=3, num_classes=10, net_width=128,
# net_depth=3, net_act="relu", net_norm="instancenorm", net_pooling="avgpooling") has
#   conv 3·128·9 + 128 = 3,584; two convs 128·128·9 + 128 = 147,584 each; three norms 2·128 = 256 each;
#   linear 128·4·4·10 + 10 = 20,490: 320,010 in all. Batch norm has as many learnable parameters.
CONVNET = 3 * 128 * 9 + 128 + 2 * (128 * 128 * 9 + 128) + 3 * 2 * 128 + 128 * 4 * 4 * 10 + 10
PRESET_COUNTS = {"convnet": 320_010, "convnet-bn": 320_010}

# Variants of the same reference code's ablations (ConvNetNN, ConvNetLN, ConvNetD4), counted with that code.
VARIANT_COUNTS = [
    ({"net_norm": "none"}, 319_242),
    ({"net_norm": "layernorm"}, 663_306),
    ({"net_norm": "groupnorm"}, 320_010),
    ({"net_depth": 4}, 452_490),
]


@pytest.mark.parametrize("preset", sorted(PRESET_COUNTS))
def test_preset_parameter_counts(preset):
    assert CONVNET == 320_010
    assert create_model(preset).num_parameters() == PRESET_COUNTS[preset]


@pytest.mark.parametrize("overrides, count", VARIANT_COUNTS)
def test_variant_parameter_counts(overrides, count):
    assert ConvNetForImageClassification(ConvNetConfig(**overrides)).num_parameters() == count


def test_tiny_forward_shapes_and_loss():
    torch.manual_seed(0)
    config = ConvNetConfig(net_width=8, net_depth=2)
    model = ConvNetForImageClassification(config).eval()
    pixels = torch.rand(2, 3, 32, 32)
    labels = torch.tensor([3, 7])
    out = model(pixel_values=pixels, labels=labels, output_hidden_states=True)
    assert out.logits.shape == (2, 10)
    assert torch.allclose(out.loss, torch.nn.functional.cross_entropy(out.logits, labels))
    assert [tuple(h.shape) for h in out.hidden_states] == [(2, 8, 16, 16), (2, 8, 8, 8)]
    features = ConvNetModel(config).eval()(pixels)
    # the flattened 8×8×8 map is what the linear head reads
    assert features.last_hidden_state.shape == (2, 8, 8, 8) and features.pooler_output.shape == (2, 8 * 8 * 8)
    loss, logits = model(pixel_values=pixels, labels=labels, return_dict=False)
    assert torch.equal(logits, out.logits) and torch.equal(loss, out.loss)


@pytest.mark.parametrize("norm", ["instancenorm", "batchnorm", "layernorm", "groupnorm", "none"])
@pytest.mark.parametrize("act", ["relu", "leakyrelu", "sigmoid", "swish"])
@pytest.mark.parametrize("pooling", ["avgpooling", "maxpooling", "none"])
def test_every_option_runs(norm, act, pooling):
    config = ConvNetConfig(net_width=8, net_depth=2, net_norm=norm, net_act=act, net_pooling=pooling)
    out = ConvNetForImageClassification(config).train()(torch.rand(2, 3, 32, 32), output_hidden_states=True)
    size = 32 if pooling == "none" else 8
    assert out.logits.shape == (2, 10) and out.hidden_states[-1].shape == (2, 8, size, size)


def test_instance_norm_treats_each_image_alone():
    """In training mode too, an image's logits do not depend on the rest of the batch (unlike batch norm)."""
    torch.manual_seed(0)
    model = ConvNetForImageClassification(ConvNetConfig(net_width=8, net_depth=2)).train()
    pixels = torch.rand(4, 3, 32, 32)
    assert torch.allclose(model(pixels[:1]).logits, model(pixels).logits[:1], atol=1e-6)


@pytest.mark.parametrize(
    "bad", [{"net_norm": "instance"}, {"net_act": "gelu"}, {"net_pooling": "avg"}, {"net_depth": 0}, {"net_depth": 6}]
)
def test_bad_options_are_rejected(bad):
    with pytest.raises(ValueError):
        ConvNetConfig(**bad)
