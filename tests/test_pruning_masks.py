import copy

import pytest
import torch
from torch.nn.utils import prune

from hfcifar.models import create_model
from hfcifar.pruning import (
    apply_masks,
    global_magnitude_masks,
    layer_flops_per_weight,
    layer_magnitude_masks,
    make_permanent,
    prunable_layers,
    sparsity_report,
    uniform_magnitude_masks,
)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return create_model("fastnet-tiny").eval()


@pytest.mark.parametrize("sparsity", [0.5, 0.9, 0.98])
def test_global_masks_equal_torch_global_unstructured(model, sparsity):
    reference = copy.deepcopy(model)
    ref_layers = prunable_layers(reference)
    prune.global_unstructured([(m, "weight") for m in ref_layers.values()], pruning_method=prune.L1Unstructured, amount=sparsity)
    masks = global_magnitude_masks(model, sparsity)
    for name, module in ref_layers.items():
        assert torch.equal(masks[name], module.weight_mask), name


def test_reported_sparsity_is_the_zeros_counted(model):
    apply_masks(model, global_magnitude_masks(model, 0.9))
    report = sparsity_report(model)
    weights = [m.weight for m in prunable_layers(model).values()]
    zeros = sum(int((w == 0).sum()) for w in weights)
    assert report["num_zeros"] == zeros and report["num_weights"] == sum(w.numel() for w in weights)
    assert report["sparsity"] == pytest.approx(zeros / report["num_weights"])
    assert report["sparsity"] == pytest.approx(0.9, abs=1e-4)


def test_the_per_layer_minimum_is_respected_and_prevents_collapse(model):
    # make one layer's weights tiny: vanilla Global MP at 98% empties it (layer collapse)
    layers = prunable_layers(model)
    small = list(layers)[1]
    with torch.no_grad():
        layers[small].weight.mul_(1e-4)
    vanilla = global_magnitude_masks(model, 0.98)
    assert vanilla[small].sum() == 0
    masks = global_magnitude_masks(model, 0.98, min_keep_fraction=0.01)
    for name, mask in masks.items():
        assert mask.sum() >= 0.01 * mask.numel(), name
    total = sum(m.numel() for m in masks.values())
    assert sum(int((m == 0).sum()) for m in masks.values()) == round(0.98 * total)
    # the minimum keeps that layer's largest weights
    kept = layers[small].weight.abs()[masks[small].bool()]
    assert kept.min() >= layers[small].weight.abs()[~masks[small].bool()].max()


def test_flops_target_removes_that_fraction_of_the_flops(model):
    layers = prunable_layers(model)
    flops = layer_flops_per_weight(model, layers)
    assert flops[list(layers)[0]] == 32 * 32  # the stem convolution runs at full resolution
    masks = global_magnitude_masks(model, 0.5, target="flops")
    total = sum(flops[n] * m.numel() for n, m in masks.items())
    removed = sum(flops[n] * float((m == 0).sum()) for n, m in masks.items())
    assert 0.5 <= removed / total < 0.5 + max(flops.values()) / total


def test_uniform_and_per_layer_masks(model):
    for name, mask in uniform_magnitude_masks(model, 0.75).items():
        assert int((mask == 0).sum()) == round(0.75 * mask.numel()), name
    first = list(prunable_layers(model))[0]
    masks = layer_magnitude_masks(model, {first: 0.5})
    assert list(masks) == [first] and masks[first].mean() == 0.5


def test_masks_become_plain_weights_that_round_trip(model, tmp_path):
    x = torch.rand(2, 3, 32, 32)
    apply_masks(model, global_magnitude_masks(model, 0.8))
    pruned_logits = model(x).logits
    # pruning twice: the new absolute mask replaces the old one and the zeros stay zeros
    apply_masks(model, global_magnitude_masks(model, 0.9))
    assert sparsity_report(model)["sparsity"] == pytest.approx(0.9, abs=1e-4)
    make_permanent(model)
    assert not any(prune.is_pruned(m) for m in model.modules())
    model.save_pretrained(tmp_path)
    loaded = type(model).from_pretrained(tmp_path).eval()
    assert sparsity_report(loaded)["sparsity"] == pytest.approx(0.9, abs=1e-4)
    torch.testing.assert_close(loaded(x).logits, model(x).logits)
    assert not torch.allclose(pruned_logits, model(x).logits)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan"), "0.5"])
def test_sparsity_outside_the_unit_interval_is_refused(model, bad):
    with pytest.raises(ValueError, match=r"sparsity must be a fraction in \[0, 1\)"):
        global_magnitude_masks(model, bad)
    with pytest.raises(ValueError, match="sparsity"):
        uniform_magnitude_masks(model, bad)


def test_bad_masks_and_minimums_are_refused(model):
    with pytest.raises(ValueError, match="keeps more than"):
        global_magnitude_masks(model, 0.9, min_keep_fraction=0.2)
    with pytest.raises(ValueError, match="does not have"):
        apply_masks(model, {"nope": torch.ones(1)})
    first = list(prunable_layers(model))[0]
    with pytest.raises(ValueError, match="has shape"):
        apply_masks(model, {first: torch.ones(3)})
    with pytest.raises(ValueError, match="no nn.Conv2d/nn.Linear"):
        prunable_layers(torch.nn.ReLU())


def test_pruning_methods_by_name(model):
    from hfcifar.pruning import PRUNING_METHODS, compute_masks

    assert {"global", "uniform"} <= set(PRUNING_METHODS)
    masks = compute_masks("global", model, 0.9, min_keep_fraction=0.01)
    assert all(m.sum() >= 0.01 * m.numel() for m in masks.values())
    with pytest.raises(ValueError, match="Unknown pruning method 'nope'; available: .*global"):
        compute_masks("nope", model, 0.5)


def test_uniform_and_per_layer_masks_of_a_channels_last_model(model):
    model = model.to(memory_format=torch.channels_last)
    masks = uniform_magnitude_masks(model, 0.75)
    assert all(int((m == 0).sum()) == round(0.75 * m.numel()) for m in masks.values())
    first = list(prunable_layers(model))[0]
    assert layer_magnitude_masks(model, {first: 0.5})[first].mean() == 0.5
