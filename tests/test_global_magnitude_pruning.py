"""Global MP (row 28): masks = torch's global_unstructured, the per-layer minimum (MT) against a collapse vanilla
Global MP really causes, collapse and FLOPs measures, the FLOPs variant and the gradual schedule inside
PruningTrainer, and the claim check's schedule."""

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


@pytest.mark.parametrize("name", ["resnet20", "resnet32"])
def test_vanilla_global_mp_collapses_the_initialized_classifier_and_mt_prevents_it(name):
    """The collapse the claim check's MT hypothesis rests on, on the models as they are initialized (no weight
    rescaled): the classifier's uniform init has no weight above the 98th percentile of the convolutions' normal
    weights, so one global threshold at 98% empties it; MT keeps its 1% and the total stays exact."""
    torch.manual_seed(0)
    resnet = hfcifar.create_model(name).eval()
    vanilla = global_magnitude_masks(resnet, claim.AT_INIT_SPARSITY)
    assert collapsed_layers(vanilla) == ["classifier"]
    assert claim.masks_equal_global_unstructured(resnet, vanilla, claim.AT_INIT_SPARSITY)  # torch collapses it too
    with_mt = global_magnitude_masks(resnet, claim.AT_INIT_SPARSITY, min_keep_fraction=claim.MIN_KEEP_FRACTION)
    assert collapsed_layers(with_mt) == []
    assert int(with_mt["classifier"].sum()) == 7  # ceil(1% of 640): the largest 7 classifier weights
    kept = resnet.classifier.weight.abs()[with_mt["classifier"].bool()]
    assert kept.min() >= resnet.classifier.weight.abs().flatten().topk(7).values.min()
    total = sum(m.numel() for m in with_mt.values())
    assert sum(int((m == 0).sum()) for m in with_mt.values()) == round(claim.AT_INIT_SPARSITY * total)
    # at 90% nothing collapses: MT is then the same masks as vanilla (the "MT when needed" rule changes nothing)
    assert collapsed_layers(global_magnitude_masks(resnet, 0.9)) == []


def test_an_mt_trained_network_learns_where_the_vanilla_collapse_cannot(tmp_path):
    """What the claim's at-init hypothesis measures, in miniature: with the classifier collapsed the logits are the
    bias alone (the same for every image), with MT they depend on the input."""
    images = torch.rand(4, 3, 32, 32)
    outputs = {}
    for arm, fraction in (("vanilla", 0.0), ("mt", claim.MIN_KEEP_FRACTION)):
        torch.manual_seed(0)
        args = PruningTrainingArguments(output_dir=str(tmp_path / arm), target_sparsity=0.98, min_keep_fraction=fraction,
                                        pruning_schedule="one-shot", max_steps=2, per_device_train_batch_size=8,
                                        save_strategy="no", disable_tqdm=True, plot_curves=False, report_to="none")
        trainer = PruningTrainer(model=hfcifar.create_model("resnet20").train(), args=args, train_dataset=tiny_data())
        trainer.train()
        assert trainer.pruning_summary()["collapsed_layers"] == (["classifier"] if arm == "vanilla" else [])
        with torch.no_grad():
            outputs[arm] = trainer.model.eval()(pixel_values=images).logits
    assert torch.allclose(outputs["vanilla"], outputs["vanilla"][:1].expand_as(outputs["vanilla"]))
    assert not torch.allclose(outputs["mt"], outputs["mt"][:1].expand_as(outputs["mt"]))


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


def test_the_claim_checks_fine_tuning_schedule_and_floor():
    args = claim.gradual_schedule_args(99)
    assert args["pruning_end_step"] == 49 and args["pruning_frequency"] == 7 and args["max_steps"] == 99
    schedule = PruningTrainingArguments(output_dir="x", target_sparsity=0.98, **{k: v for k, v in args.items() if k != "max_steps"}
                                        ).make_schedule(99)
    assert schedule.pruning_steps() == [0, 7, 14, 21, 28, 35, 42, 49]  # 8 events over the first half
    assert claim.MIN_KEEP_FRACTION <= 1 - max(claim.SPARSITIES + (claim.AT_INIT_SPARSITY,))
