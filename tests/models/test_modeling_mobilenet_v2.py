"""MobileNetV2: parameter counts against the published figures, and a tiny forward pass."""

import torch

from hfcifar.models import create_model
from hfcifar.models.mobilenet_v2 import (
    CifarMobileNetV2Config,
    CifarMobileNetV2ForImageClassification,
    CifarMobileNetV2Model,
)

# kuangliu/pytorch-cifar, models/mobilenetv2.py (`sum(p.numel() for p in MobileNetV2().parameters())`).
KUANGLIU_MOBILENET_V2 = 2_296_922

# The paper's blocks (Sandler et al., 2018): torchvision's ImageNet mobilenet_v2 has 3,504,872 parameters; the
# CIFAR strides change no weight, and the 1280 → 1000 head becomes 1280 → 10.
PAPER_BLOCKS = {"hidden_act": "relu6", "unit_expansion_conv": False, "projection_shortcuts": False}
PAPER_MOBILENET_V2 = 3_504_872 - (1280 * 1000 + 1000) + (1280 * 10 + 10)

# What kuangliu's layout adds to the paper's: the 1×1 expansion convolution (+ BN) of the first block (32 → 32),
# and a 1×1 convolution + BN shortcut in the four stride-1 blocks that change the width (32→16, 16→24, 64→96,
# 160→320).
SHORTCUTS = [(32, 16), (16, 24), (64, 96), (160, 320)]
KUANGLIU_EXTRA = (32 * 32 + 2 * 32) + sum(c_in * c_out + 2 * c_out for c_in, c_out in SHORTCUTS)


def test_preset_parameter_count():
    assert create_model("mobilenet_v2").num_parameters() == KUANGLIU_MOBILENET_V2


def test_paper_blocks_parameter_count():
    assert PAPER_MOBILENET_V2 == 2_236_682
    model = CifarMobileNetV2ForImageClassification(CifarMobileNetV2Config(**PAPER_BLOCKS))
    assert model.num_parameters() == PAPER_MOBILENET_V2
    assert PAPER_MOBILENET_V2 + KUANGLIU_EXTRA == KUANGLIU_MOBILENET_V2
    assert not any(isinstance(m, torch.nn.ReLU) for m in model.modules())


def test_tiny_forward_shapes_and_loss():
    torch.manual_seed(0)
    # width 0.25 rounds every stage to a multiple of 8: 8, 8, 8, 16, 24, 40, 80 channels
    config = CifarMobileNetV2Config(width_multiplier=0.25, last_channels=32)
    model = CifarMobileNetV2ForImageClassification(config).eval()
    pixels = torch.rand(2, 3, 32, 32)
    labels = torch.tensor([3, 7])
    out = model(pixel_values=pixels, labels=labels, output_hidden_states=True)
    assert out.logits.shape == (2, 10)
    assert torch.allclose(out.loss, torch.nn.functional.cross_entropy(out.logits, labels))
    assert [tuple(h.shape[1:]) for h in out.hidden_states] == [
        (8, 32, 32),  # stem, stride 1
        (8, 32, 32),
        (8, 32, 32),  # stride 1 instead of the paper's 2
        (8, 16, 16),
        (16, 8, 8),
        (24, 8, 8),
        (40, 4, 4),
        (80, 4, 4),
    ]
    features = CifarMobileNetV2Model(config).eval()(pixels)
    assert features.last_hidden_state.shape == (2, 32, 4, 4) and features.pooler_output.shape == (2, 32)
    loss, logits = model(pixel_values=pixels, labels=labels, return_dict=False)
    assert torch.equal(logits, out.logits) and torch.equal(loss, out.loss)


def test_tiny_paper_blocks_forward():
    config = CifarMobileNetV2Config(width_multiplier=0.25, last_channels=32, **PAPER_BLOCKS)
    model = CifarMobileNetV2ForImageClassification(config).eval()
    assert model(torch.rand(2, 3, 32, 32)).logits.shape == (2, 10)
