"""DenseNet-BC: parameter counts of every preset against the published figures, and a tiny forward pass."""

import pytest
import torch

from hfcifar.models import create_model
from hfcifar.models.densenet import DenseNetConfig, DenseNetForImageClassification, DenseNetModel
from hfcifar.models.densenet.modeling_densenet import DenseNetLayer

# kuangliu/pytorch-cifar, models/densenet.py (`sum(p.numel() for p in net.parameters())` of DenseNet121/169/201/161
# and densenet_cifar; 6,956,298 is the figure usually quoted for its DenseNet121).
KUANGLIU_COUNTS = {
    "densenet121": 6_956_298,
    "densenet169": 12_493_322,
    "densenet201": 18_104_330,
    "densenet161": 26_482_378,
    "densenet-cifar": 1_000_618,
}

# The same figures follow from torchvision's ImageNet models (docs: densenet121 7,978,856; densenet169 14,149,480;
# densenet201 20,013,928; densenet161 28,681,000): the 7×7 stem convolution and its batch norm (7·7·3·c + 2c for a
# stem of c = 2k channels) become a bare 3×3 convolution (3·3·3·c), and the 1000-class head on F features becomes a
# 10-class one.
TORCHVISION_IMAGENET = {
    # preset: (ImageNet count, growth rate k, final features F)
    "densenet121": (7_978_856, 32, 1024),
    "densenet169": (14_149_480, 32, 1664),
    "densenet201": (20_013_928, 32, 1920),
    "densenet161": (28_681_000, 48, 2208),
}

# Huang et al. (2017), Table 2: DenseNet-BC on CIFAR (three dense blocks of (L - 4) / 6 bottleneck layers).
PAPER_BC = {
    # (depth L, growth rate k): parameters in millions
    (100, 12): 0.8,
    (250, 24): 15.3,
    (190, 40): 25.6,
}


@pytest.mark.parametrize("preset", sorted(KUANGLIU_COUNTS))
def test_preset_parameter_counts(preset):
    assert create_model(preset).num_parameters() == KUANGLIU_COUNTS[preset]


@pytest.mark.parametrize("preset", sorted(TORCHVISION_IMAGENET))
def test_counts_agree_with_torchvision_imagenet_models(preset):
    imagenet, k, features = TORCHVISION_IMAGENET[preset]
    stem = 2 * k
    cifar = imagenet - (7 * 7 * 3 * stem + 2 * stem) + 3 * 3 * 3 * stem - (features + 1) * 1000 + (features + 1) * 10
    assert cifar == KUANGLIU_COUNTS[preset]


@pytest.mark.parametrize("depth, growth_rate", sorted(PAPER_BC))
def test_paper_cifar_densenet_bc_sizes(depth, growth_rate):
    layers = (depth - 4) // 6
    model = DenseNetForImageClassification(DenseNetConfig(growth_rate=growth_rate, block_config=[layers] * 3))
    assert round(model.num_parameters() / 1e6, 1) == PAPER_BC[(depth, growth_rate)]


def test_tiny_forward_shapes_and_loss():
    torch.manual_seed(0)
    # stem 8 channels; block 1: 8 + 1·4 = 12 → transition keeps 6 at 16×16; block 2: 6 + 2·4 = 14
    config = DenseNetConfig(growth_rate=4, block_config=[1, 2], compression=0.5)
    model = DenseNetForImageClassification(config).eval()
    pixels = torch.rand(2, 3, 32, 32)
    labels = torch.tensor([3, 7])
    out = model(pixel_values=pixels, labels=labels, output_hidden_states=True)
    assert out.logits.shape == (2, 10)
    assert torch.allclose(out.loss, torch.nn.functional.cross_entropy(out.logits, labels))
    assert [tuple(h.shape) for h in out.hidden_states] == [(2, 8, 32, 32), (2, 6, 16, 16), (2, 14, 16, 16)]
    features = DenseNetModel(config).eval()(pixels)
    assert features.last_hidden_state.shape == (2, 14, 16, 16) and features.pooler_output.shape == (2, 14)
    loss, logits = model(pixel_values=pixels, labels=labels, return_dict=False)
    assert torch.equal(logits, out.logits) and torch.equal(loss, out.loss)


def test_dense_layer_puts_new_channels_before_its_input():
    layer = DenseNetLayer(6, DenseNetConfig(growth_rate=4)).eval()
    inputs = torch.randn(2, 6, 8, 8)
    out = layer(inputs)
    assert out.shape == (2, 10, 8, 8) and torch.equal(out[:, 4:], inputs)


def test_dropout_follows_every_convolution_but_the_stem():
    model = DenseNetForImageClassification(DenseNetConfig(growth_rate=4, block_config=[2, 3], dropout_rate=0.2))
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(dropouts) == len(convs) - 1 and all(d.p == 0.2 for d in dropouts)
