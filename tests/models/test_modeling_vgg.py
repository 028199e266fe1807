"""VGG with batch norm: parameter counts of every preset against the published figures, and a tiny forward pass."""

import pytest
import torch

from hfcifar.models import PRESETS, create_model
from hfcifar.models.vgg import VGGConfig, VGGForImageClassification, VGGModel

# kuangliu/pytorch-cifar, models/vgg.py (`sum(p.numel() for p in net.parameters())` of VGG('VGG11') ... VGG('VGG19')).
KUANGLIU_COUNTS = {"vgg11": 9_231_114, "vgg13": 9_416_010, "vgg16": 14_728_266, "vgg19": 20_040_522}


def count_by_hand(layers, batch_norm=True):
    """9·c_in·c_out weights + c_out biases (+ 2·c_out batch-norm parameters) per convolution; a 512 → 10 head."""
    total, c_in = 0, 3
    for c_out in (x for x in layers if x != "M"):
        total += 9 * c_in * c_out + c_out + (2 * c_out if batch_norm else 0)
        c_in = c_out
    return total + 512 * 10 + 10


@pytest.mark.parametrize("preset", sorted(KUANGLIU_COUNTS))
def test_preset_parameter_counts(preset):
    model = create_model(preset)
    assert model.num_parameters() == KUANGLIU_COUNTS[preset]
    assert count_by_hand(PRESETS[preset][1]["layers"]) == KUANGLIU_COUNTS[preset]


def test_without_batch_norm():
    layers = PRESETS["vgg11"][1]["layers"]
    model = VGGForImageClassification(VGGConfig(layers=layers, batch_norm=False))
    assert model.num_parameters() == count_by_hand(layers, batch_norm=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


def test_tiny_forward_shapes_and_loss():
    torch.manual_seed(0)
    config = VGGConfig(layers=[8, "M", 16, "M"])
    model = VGGForImageClassification(config).eval()
    pixels = torch.rand(2, 3, 32, 32)
    labels = torch.tensor([3, 7])
    out = model(pixel_values=pixels, labels=labels, output_hidden_states=True)
    assert out.logits.shape == (2, 10)
    assert torch.allclose(out.loss, torch.nn.functional.cross_entropy(out.logits, labels))
    assert [tuple(h.shape) for h in out.hidden_states] == [(2, 8, 16, 16), (2, 16, 8, 8)]
    features = VGGModel(config).eval()(pixels)
    # the flattened 16×8×8 map is what the linear head reads
    assert features.last_hidden_state.shape == (2, 16, 8, 8) and features.pooler_output.shape == (2, 16 * 8 * 8)
    assert model.classifier.in_features == 16 * 8 * 8
    loss, logits = model(pixel_values=pixels, labels=labels, return_dict=False)
    assert torch.equal(logits, out.logits) and torch.equal(loss, out.loss)


def test_convolutions_after_the_last_max_pool_form_a_stage():
    model = VGGForImageClassification(VGGConfig(layers=[8, "M", 16])).eval()
    out = model(torch.rand(2, 3, 32, 32), output_hidden_states=True)
    assert [tuple(h.shape) for h in out.hidden_states] == [(2, 8, 16, 16), (2, 16, 16, 16)]


@pytest.mark.parametrize("layers", [["M"], [8, "X"], [8, 0], [8, "M"] * 6])
def test_bad_layers_are_rejected(layers):
    with pytest.raises(ValueError):
        VGGConfig(layers=layers)
