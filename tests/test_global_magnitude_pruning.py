"""Global MP (row 28): masks = torch's global_unstructured, the per-layer minimum (MT), collapse and FLOPs measures,
the FLOPs variant and the gradual schedule inside PruningTrainer, and the claim check's planning."""

import math

import pytest
import torch

import hfcifar
from hfcifar.data import CifarTensorDataset
from hfcifar.methods.global_magnitude_pruning import (
    PruningTrainer,
    PruningTrainingArguments,
    collapsed_layers,
    flops_sparsity,
    global_magnitude_masks,
    layer_sparsities,
    paired_standard_error,
    uniform_magnitude_masks,
)
from hfcifar.methods.global_magnitude_pruning import claim
from hfcifar.pruning import layer_flops_per_weight, prunable_layers


@pytest.fixture
def model():
    torch.manual_seed(0)
    return hfcifar.create_model("fastnet-tiny").eval()


@pytest.mark.parametrize("sparsity", [0.9, 0.98])
def test_global_mp_masks_equal_torch_global_unstructured(model, sparsity):
    assert claim.masks_equal_global_unstructured(model, global_magnitude_masks(model, sparsity), sparsity)
    # the comparison can fail: layer-wise masks at the same sparsity are not torch's global ones
    assert not claim.masks_equal_global_unstructured(model, uniform_magnitude_masks(model, sparsity), sparsity)


def test_resnet_global_mp_matches_torch_and_mt_prevents_the_collapse_vanilla_causes():
    torch.manual_seed(0)
    resnet = hfcifar.create_model("resnet20").eval()
    assert claim.masks_equal_global_unstructured(resnet, global_magnitude_masks(resnet, 0.98), 0.98)
    # a layer with small weights (as a classifier initialized small is) is emptied by one global threshold at 98%
    with torch.no_grad():
        resnet.classifier.weight.mul_(1e-3)
    vanilla = global_magnitude_masks(resnet, 0.98)
    assert collapsed_layers(vanilla) == ["classifier"]
    with_mt = global_magnitude_masks(resnet, 0.98, min_keep_fraction=0.01)
    assert collapsed_layers(with_mt) == []
    assert min(1 - s for s in layer_sparsities(with_mt).values()) >= 0.01 - 1e-9
    total = sum(m.numel() for m in with_mt.values())
    assert sum(int((m == 0).sum()) for m in with_mt.values()) == round(0.98 * total)


def test_layer_measures_on_hand_made_masks():
    masks = {"a": torch.tensor([[1.0, 0.0], [0.0, 0.0]]), "b": torch.zeros(3), "c": torch.ones(2)}
    assert layer_sparsities(masks) == {"a": 0.75, "b": 1.0, "c": 0.0}
    assert collapsed_layers(masks) == ["b"]


def test_flops_sparsity_weights_each_layer_by_its_output_positions(model):
    layers = prunable_layers(model)
    flops = layer_flops_per_weight(model, layers)
    first, last = list(layers)[0], list(layers)[-1]
    masks = {name: torch.ones_like(layer.weight) for name, layer in layers.items()}
    masks[first] = torch.zeros_like(layers[first].weight)
    total = sum(flops[n] * l.weight.numel() for n, l in layers.items())
    assert flops_sparsity(model, masks) == pytest.approx(flops[first] * layers[first].weight.numel() / total)
    masks = {name: torch.ones_like(layer.weight) for name, layer in layers.items()}
    masks[last] = torch.zeros_like(layers[last].weight)  # the classifier costs one MAC per weight
    assert flops_sparsity(model, masks) == pytest.approx(layers[last].weight.numel() / total)


def test_paired_standard_error_is_that_of_the_per_image_differences():
    a = torch.tensor([1, 1, 0, 1, 0, 1, 1, 0])
    b = torch.tensor([1, 0, 0, 1, 1, 1, 0, 0])
    d = [x - y for x, y in zip(a.tolist(), b.tolist())]  # 0, 1, 0, 0, -1, 0, 1, 0
    mean = sum(d) / len(d)
    expected = math.sqrt(sum((x - mean) ** 2 for x in d) / (len(d) - 1)) / math.sqrt(len(d))
    assert paired_standard_error(a, b) == pytest.approx(expected)
    assert paired_standard_error(a, a) == 0.0
    with pytest.raises(ValueError, match="same length"):
        paired_standard_error(a, b[:4])


def tiny_data(n=32):
    generator = torch.Generator().manual_seed(0)
    return CifarTensorDataset(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator), torch.arange(n) % 10)


def test_flops_variant_and_gradual_schedule_in_the_trainer(tmp_path, model):
    args = PruningTrainingArguments(output_dir=str(tmp_path), target_sparsity=0.6, pruning_target="flops",
                                    pruning_schedule="gradual", pruning_end_step=4, pruning_frequency=2, max_steps=5,
                                    per_device_train_batch_size=8, save_strategy="no", disable_tqdm=True,
                                    plot_curves=False, report_to="none", channels_last=False)
    trainer = PruningTrainer(model=model.train(), args=args, train_dataset=tiny_data())
    trainer.train()
    masks = {name: layer.weight_mask for name, layer in prunable_layers(trainer.model).items()}
    flops = layer_flops_per_weight(trainer.model, prunable_layers(trainer.model))
    # the target is the fraction of multiply-accumulates removed, not of weights
    assert 0.6 <= flops_sparsity(trainer.model, masks) < 0.6 + max(flops.values()) / sum(
        flops[n] * m.numel() for n, m in masks.items())
    assert trainer.current_sparsity() != pytest.approx(0.6, abs=1e-3)
    assert [e["step"] for e in trainer.pruning_history] == [2, 4]


def test_the_claim_check_plans_within_its_budget():
    from hfcifar.reproduce import ClaimContext

    ctx = ClaimContext(slug="global-magnitude-pruning", claim=claim.CLAIM, dataset="x", eval_dataset=None,
                       output_dir=None, budget_minutes=15)
    plan = claim.plan(ctx)
    assert not plan["smoke"] and 0.35 * 15 < plan["dense_minutes"] <= 0.4 * 15
    epoch_seconds = 20.0
    fine = claim.plan_fine_tuning(ctx, epoch_seconds, runs=4, num_train=4194, num_eval=466)
    assert 0.5 <= fine["fine_tune_epochs"] <= claim.MAX_FINE_TUNE_EPOCHS
    assert 4 * fine["fine_tune_epochs"] * epoch_seconds * claim.MASK_OVERHEAD <= ctx.minutes_left() * 60
    # a budget of seconds is a smoke run
    tiny = ClaimContext(slug="global-magnitude-pruning", claim=claim.CLAIM, dataset="x", eval_dataset=None,
                        output_dir=None, budget_minutes=0.05)
    assert claim.plan(tiny)["smoke"]
    assert claim.plan_fine_tuning(tiny, epoch_seconds, runs=4, num_train=4194, num_eval=466)["fine_tune_epochs"] == 0.5
    assert claim.MIN_KEEP_FRACTION <= 1 - max(claim.SPARSITIES)
