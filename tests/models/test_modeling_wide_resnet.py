"""Wide ResNet: parameter counts of every preset against the published figures, and a tiny forward pass."""

import pytest
import torch

from hfcifar.models import create_model
from hfcifar.models.wide_resnet import WideResNetConfig, WideResNetForImageClassification, WideResNetModel

# Zagoruyko & Komodakis (2016), Table 1 / Table 4: WRN-16-4 2.7M, WRN-28-10 36.5M parameters (10 classes).
# 36,479,194 is the exact count of the authors' code and of xternalz/WideResNet-pytorch for WRN-28-10.
# WRN-28-2 is the 1.5M-parameter network of the semi-supervised benchmarks (Oliver et al. 2018; FixMatch).
COUNTS = {
    "wrn-16-4": (2_748_890, 2.7),
    "wrn-28-2": (1_467_610, 1.5),
    "wrn-28-10": (36_479_194, 36.5),
}


@pytest.mark.parametrize("preset", sorted(COUNTS))
def test_parameter_counts(preset):
    exact, published_millions = COUNTS[preset]
    count = create_model(preset).num_parameters()
    assert count == exact
    assert round(count / 1e6, 1) == published_millions


def test_tiny_forward_shapes_and_loss():
    torch.manual_seed(0)
    config = WideResNetConfig(depth=16, widen_factor=1, dropout_rate=0.3)
    model = WideResNetForImageClassification(config).eval()
    pixels = torch.rand(2, 3, 32, 32)
    labels = torch.tensor([0, 9])
    out = model(pixel_values=pixels, labels=labels, output_hidden_states=True)
    assert out.logits.shape == (2, 10)
    assert torch.allclose(out.loss, torch.nn.functional.cross_entropy(out.logits, labels))
    assert [tuple(h.shape) for h in out.hidden_states] == [(2, 16, 32, 32), (2, 16, 32, 32), (2, 32, 16, 16), (2, 64, 8, 8)]
    features = WideResNetModel(config)(pixels)
    assert features.last_hidden_state.shape == (2, 64, 8, 8) and features.pooler_output.shape == (2, 64)


def test_dropout_only_acts_in_training():
    torch.manual_seed(0)
    model = WideResNetForImageClassification(WideResNetConfig(depth=10, widen_factor=1, dropout_rate=0.5))
    pixels = torch.rand(2, 3, 32, 32)
    model.eval()
    assert torch.equal(model(pixels).logits, model(pixels).logits)
    model.train()
    assert not torch.equal(model(pixels).logits, model(pixels).logits)


@pytest.mark.parametrize("depth", [8, 27, 4])
def test_depth_must_be_6n_plus_4(depth):
    with pytest.raises(ValueError, match="6n \\+ 4"):
        WideResNetConfig(depth=depth)
