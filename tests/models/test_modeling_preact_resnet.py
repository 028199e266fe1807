"""Pre-activation ResNet: parameter counts from the layer shapes, and `add_block` leaving every output unchanged."""

import pytest
import torch
from transformers import AutoModelForImageClassification

import hfcifar  # noqa: F401  (registers the Auto classes)
from hfcifar.models import create_model
from hfcifar.models.preact_resnet import PreActResNetConfig, PreActResNetForImageClassification


def count(stem: int, widths: list[int], depths: list[int], labels: int = 10) -> int:
    """Parameters of the paper's pre-activation ResNet, layer by layer: a bias-free 3×3 stem; per block BN (2·c_in),
    3×3 conv c_in→c, BN (2·c), 3×3 conv c→c and, where the shape changes, a 1×1 projection c_in→c; a final BN; the
    linear head."""
    total, c_in = 3 * stem * 9, stem
    for stage, (c, depth) in enumerate(zip(widths, depths)):
        for i in range(depth):
            projection = i == 0 and (stage > 0 or c_in != c)  # the stride or the width changes
            total += 2 * c_in + c_in * c * 9 + 2 * c + c * c * 9 + (c_in * c if projection else 0)
            c_in = c
    return total + 2 * widths[-1] + widths[-1] * labels + labels


PRESET_COUNTS = {
    "preact-resnet8": count(16, [16, 32, 64], [1, 1, 1]),
    "preact-resnet20": count(16, [16, 32, 64], [3, 3, 3]),
    "preact-resnet56": count(16, [16, 32, 64], [9, 9, 9]),
    "preact-resnet110": count(16, [16, 32, 64], [18, 18, 18]),
    "preact-resnet18": count(64, [64, 128, 256, 512], [2, 2, 2, 2]),
}


@pytest.mark.parametrize("preset", sorted(PRESET_COUNTS))
def test_preset_parameter_counts(preset):
    assert create_model(preset).num_parameters() == PRESET_COUNTS[preset]


def test_published_counts():
    # He et al. (2016, Table 3 of the ResNet paper) give 0.27M for ResNet-20 (the pre-activation version only adds
    # one BN); kuangliu/pytorch-cifar's PreActResNet18 has 11,171,146 parameters and no final BN (2·512 fewer).
    assert PRESET_COUNTS["preact-resnet20"] == 272_282
    assert PRESET_COUNTS["preact-resnet18"] - 2 * 512 == 11_171_146


def tiny(zero_init_residual: bool = False, seed: int = 0):
    torch.manual_seed(seed)
    config = PreActResNetConfig(stem_width=8, hidden_sizes=[8, 16], depths=[1, 1], zero_init_residual=zero_init_residual)
    return PreActResNetForImageClassification(config)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_add_block_leaves_every_output_unchanged(mode):
    """The function-preservation claim of the growth step, in both batch-norm modes (train: batch statistics; eval:
    running statistics, which the first forward has moved away from their initial values)."""
    model = tiny()
    pixels = torch.rand(6, 3, 32, 32)
    model.train()(pixels)  # move the running statistics off their initial values
    getattr(model, mode)()
    with torch.no_grad():
        before = model(pixels).logits
        block = model.add_block(1)
        after = model(pixels).logits
    assert model.config.depths == [1, 2] and len(model.preact_resnet.stages[1]) == 2
    assert block.training == model.training  # a block added to a model in eval mode uses running statistics too
    assert (after - before).abs().max().item() <= 1e-5
    assert torch.equal(after, before)  # exact: the new branch adds a zero tensor
    assert block.conv2.weight.abs().sum() == 0 and block.conv1.weight.abs().sum() > 0


def test_the_new_block_learns_from_the_first_step():
    """Outgoing weights at zero, incoming weights random: the zero convolution gets a gradient at once (SENN's
    initialization of new capacity), so the block does not stay the identity."""
    model = tiny().train()
    block = model.add_block(0)
    out = model(torch.rand(4, 3, 32, 32), labels=torch.tensor([0, 1, 2, 3]))
    out.loss.backward()
    assert block.conv2.weight.grad.abs().sum() > 0
    assert block.conv1.weight.grad.abs().sum() == 0  # it multiplies the zero convolution


def test_a_grown_model_saves_and_loads_at_its_new_size(tmp_path):
    model = tiny().eval()
    model.add_block(0)
    model.add_block(0)
    with torch.no_grad():
        model.preact_resnet.stages[0][-1].conv2.weight.normal_()  # trained a little: the block is no longer zero
        pixels = torch.rand(2, 3, 32, 32)
        expected = model(pixels).logits
    model.save_pretrained(tmp_path)
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path).eval()
    assert loaded.config.depths == [3, 1]
    with torch.no_grad():
        assert torch.equal(loaded(pixels).logits, expected)


def test_zero_init_residual_makes_every_block_start_as_the_identity():
    model = tiny(zero_init_residual=True)
    blocks = [block for stage in model.preact_resnet.stages for block in stage]
    assert all(block.conv2.weight.abs().sum() == 0 for block in blocks)
    assert all(block.conv1.weight.abs().sum() > 0 for block in blocks)
    assert all(b.conv2.weight.abs().sum() > 0 for b in (blk for s in tiny().preact_resnet.stages for blk in s))


def test_add_block_rejects_a_stage_that_does_not_exist():
    model = tiny()
    for bad in (2, -1, "0", True):
        with pytest.raises(ValueError, match=r"stage must be an integer in \[0, 1\]"):
            model.add_block(bad)
    assert model.config.depths == [1, 1]
