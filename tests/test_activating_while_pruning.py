"""Activating-while-Pruning (row 41): the dynamic dead neuron rate, AP's share of a pruning step, the AP trainer."""

import copy

import pytest
import torch
from torch import nn

from hfcifar.data import CifarTensorDataset
from hfcifar.methods.activating_while_pruning import (
    DeadNeuronRate,
    DynamicDNRCallback,
    activating_while_pruning_masks,
    dead_neuron_rate,
    relu_modules,
    snapshot_weights,
)
from hfcifar.models import create_model
from hfcifar.pruning import apply_masks, compute_masks, effective_weight, prunable_layers, sparsity_report
from hfcifar.training import CifarTrainer, CifarTrainingArguments


def relu_model(seed=0):
    torch.manual_seed(seed)
    return create_model("fastnet-tiny", hidden_act="relu")


def tiny_data(n=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator)
    return CifarTensorDataset(images, torch.arange(n) % 10)


def settings(**overrides):
    values = dict(per_device_train_batch_size=8, max_steps=4, learning_rate=0.05, report_to="none", save_strategy="no",
                  eval_strategy="no", plot_curves=False, disable_tqdm=True, logging_steps=2, seed=7, optim="sgd",
                  optim_args="momentum=0.9")
    values.update(overrides)
    return values


# -- the dead neuron rate ------------------------------------------------------------------------------------


def test_relu_modules_are_found_and_gelu_networks_refused():
    names = list(relu_modules(relu_model()))
    assert names == ["fastnet.stem.2"] + [f"fastnet.blocks.{i}.act{j}" for i in range(3) for j in (1, 2)]
    with pytest.raises(ValueError, match="hidden_act='relu'"):
        relu_modules(create_model("fastnet-tiny"))  # GELU: no node is ever exactly dead
    with pytest.raises(ValueError, match="not nn.ReLU modules"):
        relu_modules(relu_model(), ["fastnet.stem.0"])


def test_dnr_counts_the_nonpositive_pre_activations():
    layer = nn.Linear(4, 5)
    net = nn.Sequential(layer, nn.ReLU())
    x = torch.randn(7, 4)
    expected = float((layer(x) <= 0).float().mean())  # oracle: a node is dead where its pre-activation is ≤ 0
    with DeadNeuronRate(net) as counter:
        net(x)
    assert counter.rate == pytest.approx(expected) and 0 < expected < 1
    assert counter.counts() == (round(expected * 35), 35)
    assert not net[1]._forward_hooks, "hooks must be removed on exit"


def test_dnr_per_layer_matches_the_hidden_states_fastnet_returns():
    model = relu_model().eval()
    images = torch.rand(3, 3, 32, 32)
    rate, per_layer = dead_neuron_rate(model, images, batch_size=2, per_layer=True)
    hidden = model(images, output_hidden_states=True).hidden_states  # the stem's and each block's act2 outputs
    assert per_layer["fastnet.stem.2"] == pytest.approx(float((hidden[0] == 0).float().mean()))
    for i in range(3):
        assert per_layer[f"fastnet.blocks.{i}.act2"] == pytest.approx(float((hidden[i + 1] == 0).float().mean()))
    assert 0 < rate < 1 and not model.training
    with pytest.raises(ValueError, match="float tensor"):
        dead_neuron_rate(model, torch.zeros(2, 3, 32, 32, dtype=torch.uint8))


def test_the_dynamic_dnr_counts_training_passes_only():
    model = relu_model()
    images = torch.rand(4, 3, 32, 32)
    counter = DeadNeuronRate(model).attach()
    model.eval()
    model(images)
    assert counter.counts() == (0, 0) and counter.rate != counter.rate  # NaN: nothing measured yet
    model.train()
    model(images)
    zeros, outputs = counter.counts()
    assert outputs > 0 and 0 < zeros < outputs
    counter.reset()
    assert counter.counts() == (0, 0)
    counter.detach()
    model(images)
    assert counter.counts() == (0, 0)


def test_dynamic_dnr_callback_records_every_log_and_epoch(tmp_path):
    model = relu_model()
    callback = DynamicDNRCallback()
    trainer = CifarTrainer(model=model, args=CifarTrainingArguments(str(tmp_path), **settings()),
                           train_dataset=tiny_data(), callbacks=[callback])
    trainer.train()
    assert [h["step"] for h in callback.history] == [2, 4]
    assert all(0 < h["dynamic_dnr"] < 1 for h in callback.history)
    logged = [h["dynamic_dnr"] for h in trainer.state.log_history if "dynamic_dnr" in h]
    assert logged == [h["dynamic_dnr"] for h in callback.history]
    assert len(callback.epoch_history) == 2  # 16 images / batch 8: two epochs of two steps
    assert all(not m._forward_hooks for m in model.modules()), "hooks removed at the end of training"


def test_dynamic_dnr_is_one_when_every_node_is_dead(tmp_path):
    model = relu_model()
    with torch.no_grad():  # every batch-norm shifts its output far below zero: every ReLU outputs 0
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.bias.fill_(-1e4)
    callback = DynamicDNRCallback()
    CifarTrainer(model=model, args=CifarTrainingArguments(str(tmp_path), **settings(learning_rate=0.0)),
                 train_dataset=tiny_data(), callbacks=[callback]).train()
    assert [h["dynamic_dnr"] for h in callback.history] == [1.0, 1.0]


# -- AP's share of a pruning step ----------------------------------------------------------------------------


def moved(model, seed=1, scale=0.05):
    """`model` after a pretend training period: every weight nudged by a random amount."""
    trained = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in prunable_layers(trained).values():
            module.weight.add_(scale * torch.randn(module.weight.shape, generator=generator))
    return trained


@pytest.mark.parametrize("sparsity", [0.3, 0.8])
def test_ap_prunes_the_negative_survivors_that_moved_least(sparsity):
    start = relu_model()
    reference = snapshot_weights(start)
    model = moved(start)
    layers = prunable_layers(model)
    total = sum(m.weight.numel() for m in layers.values())
    masks = activating_while_pruning_masks(model, sparsity, reference, ap_fraction=0.1)
    target = round(sparsity * total)
    quota = round(0.1 * target)
    base = compute_masks("global", model, (target - quota) / total)
    assert sum(int((m == 0).sum()) for m in masks.values()) == target  # the base method's schedule, exactly
    chosen = {n: (base[n] > 0) & (masks[n] == 0) for n in masks}
    assert sum(int(c.sum()) for c in chosen.values()) == quota
    assert all(((masks[n] == 0) | (base[n] > 0)).all() for n in masks)  # AP only adds to the method's choice
    # oracle: brute force over the negative survivors of the base masks, ranked by |W_T − W_0|
    changes, is_chosen = [], []
    for name, module in layers.items():
        weight = effective_weight(module)
        keep = (base[name] > 0) & (weight < 0)
        changes.append((weight - reference[name]).abs()[keep])
        is_chosen.append(chosen[name][keep])
        assert (weight[chosen[name]] < 0).all(), "AP removes negative weights only"
    changes, is_chosen = torch.cat(changes), torch.cat(is_chosen)
    assert changes[is_chosen].max() <= changes[~is_chosen].min()


def test_ap_fraction_zero_is_the_pruning_method_alone_and_options_pass_through():
    model = relu_model()
    reference = snapshot_weights(model)
    for method, options in (("global", {}), ("uniform", {}), ("global", {"min_keep_fraction": 0.05})):
        expected = compute_masks(method, model, 0.6, **options)
        masks = activating_while_pruning_masks(model, 0.6, reference, method=method, ap_fraction=0.0, **options)
        assert all(torch.equal(masks[n], expected[n]) for n in expected)


def test_ap_counts_the_step_from_what_is_already_pruned():
    model = moved(relu_model())
    reference = snapshot_weights(model)
    apply_masks(model, compute_masks("global", model, 0.5))
    total = sparsity_report(model)["num_weights"]
    already = sparsity_report(model)["num_zeros"]
    masks = activating_while_pruning_masks(model, 0.7, reference, ap_fraction=0.5)
    removed = round(0.7 * total) - already
    assert sum(int((m == 0).sum()) for m in masks.values()) == round(0.7 * total)
    for name, module in prunable_layers(model).items():  # what was pruned stays pruned
        assert (masks[name][effective_weight(module) == 0] == 0).all()
    base = compute_masks("global", model, (round(0.7 * total) - round(0.5 * removed)) / total)
    assert sum(int(((base[n] > 0) & (masks[n] == 0)).sum()) for n in masks) == round(0.5 * removed)


def test_ap_activates_nodes_fed_by_nonnegative_inputs():
    # One ReLU layer fed by nonnegative inputs (as every layer after a ReLU is): removing negative weights can only
    # raise pre-activations, so AP alone lowers the DNR; magnitude pruning at the same sparsity does not.
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 32, bias=False), nn.ReLU())
    x = torch.rand(256, 64)
    reference = snapshot_weights(net)
    with torch.no_grad():
        net[0].weight.add_(0.01 * torch.randn_like(net[0].weight))
    dense = dead_neuron_rate_of(net, x)
    ap_net, magnitude_net = copy.deepcopy(net), copy.deepcopy(net)
    apply_masks(ap_net, activating_while_pruning_masks(ap_net, 0.3, reference, ap_fraction=1.0))
    apply_masks(magnitude_net, compute_masks("global", magnitude_net, 0.3))
    assert (ap_net[0](x) >= net[0](x) - 1e-6).all()
    assert dead_neuron_rate_of(ap_net, x) < dense <= dead_neuron_rate_of(magnitude_net, x) + 0.02


def dead_neuron_rate_of(net, x):
    with DeadNeuronRate(net, training_only=False) as counter:
        net(x)
    return counter.rate


def test_ap_runs_short_of_negative_weights_and_still_reaches_the_sparsity():
    net = nn.Sequential(nn.Linear(8, 8), nn.ReLU())
    with torch.no_grad():
        net[0].weight.copy_(torch.linspace(0.1, 1.0, 64).view(8, 8))
        net[0].weight[0, :3] = -torch.tensor([0.5, 0.6, 0.7])  # three negative weights only
    reference = snapshot_weights(net)
    masks = activating_while_pruning_masks(net, 0.25, reference, ap_fraction=1.0)  # AP's quota: 16 weights
    assert int((masks["0"] == 0).sum()) == 16
    assert (masks["0"][0, :3] == 0).all()  # every negative weight went first, the rest by magnitude


def test_bad_ap_arguments_are_refused():
    model = relu_model()
    reference = snapshot_weights(model)
    with pytest.raises(ValueError, match="ap_fraction"):
        activating_while_pruning_masks(model, 0.5, reference, ap_fraction=1.5)
    with pytest.raises(ValueError, match="sparsity"):
        activating_while_pruning_masks(model, 1.0, reference)
    with pytest.raises(ValueError, match="no entry for the layer"):
        activating_while_pruning_masks(model, 0.5, {})
    wrong = {n: w[:1] for n, w in reference.items()}
    with pytest.raises(ValueError, match="shape"):
        activating_while_pruning_masks(model, 0.5, wrong)
    with pytest.raises(ValueError, match="Unknown pruning method"):
        activating_while_pruning_masks(model, 0.5, reference, method="random")


# -- the AP trainer --------------------------------------------------------------------------------------------


def pruning_settings(**overrides):
    return settings(target_sparsity=0.8, pruning_method="global", **overrides)


def test_ap_trainer_with_no_ap_share_trains_exactly_the_pruning_trainer(tmp_path):
    from hfcifar.methods.activating_while_pruning import APTrainer, APTrainingArguments
    from hfcifar.pruning import PruningTrainer, PruningTrainingArguments

    plain, with_ap = relu_model(3), relu_model(3)
    gradual = dict(pruning_schedule="gradual", pruning_start_step=1, pruning_end_step=3, pruning_frequency=1)
    PruningTrainer(model=plain, args=PruningTrainingArguments(str(tmp_path / "p"), **pruning_settings(**gradual)),
                   train_dataset=tiny_data()).train()
    trainer = APTrainer(model=with_ap, args=APTrainingArguments(str(tmp_path / "ap"), ap_fraction=0.0, **pruning_settings(**gradual)),
                        train_dataset=tiny_data())
    trainer.train()
    for a, b in zip(plain.state_dict().values(), with_ap.state_dict().values()):
        torch.testing.assert_close(a, b)
    assert [e["ap_quota"] for e in trainer.pruning_history] == [0, 0]  # steps 2 and 3 (s_i = 0 at step 1)


def test_ap_trainer_prunes_with_ap_masks_and_moves_its_reference(tmp_path):
    from hfcifar.methods.activating_while_pruning import APTrainer, APTrainingArguments

    start = relu_model()
    reference = snapshot_weights(start)
    model = moved(start)
    expected = activating_while_pruning_masks(copy.deepcopy(model), 0.8, reference, ap_fraction=0.25)
    # one-shot at step 0 with the previous period's W_0; learning rate 0 so the weights stay where AP left them
    args = APTrainingArguments(str(tmp_path), ap_fraction=0.25, **pruning_settings(learning_rate=0.0, max_steps=2))
    trainer = APTrainer(model=model, args=args, train_dataset=tiny_data(), reference_weights=reference)
    trainer.train()
    for name, layer in prunable_layers(model).items():
        assert torch.equal(layer.weight_mask, expected[name]), name
        torch.testing.assert_close(trainer.reference_weights[name], effective_weight(layer))
    event = trainer.pruning_history[0]
    total = sparsity_report(model)["num_weights"]
    assert event["step"] == 0 and event["ap_quota"] == round(0.25 * round(0.8 * total)) == event["ap_pruned"]
    assert trainer.current_sparsity() == pytest.approx(0.8, abs=1 / total)


def test_ap_trainer_refuses_bad_arguments(tmp_path):
    from hfcifar.methods.activating_while_pruning import APTrainer, APTrainingArguments
    from hfcifar.pruning import PruningTrainingArguments

    with pytest.raises(ValueError, match="ap_fraction"):
        APTrainingArguments(str(tmp_path), ap_fraction=2.0)
    with pytest.raises(TypeError, match="APTrainingArguments"):
        APTrainer(model=relu_model(), args=PruningTrainingArguments(str(tmp_path), **pruning_settings()))


# -- the claim check's arithmetic ----------------------------------------------------------------------------


def test_claim_cycles_and_the_weights_ap_chose():
    from hfcifar.methods.activating_while_pruning.claim import cycle_sparsity, weights_chosen_by_ap

    assert cycle_sparsity(1) == pytest.approx(0.2) and cycle_sparsity(2) == pytest.approx(0.36)
    assert cycle_sparsity(14) == pytest.approx(1 - 0.8**14) and cycle_sparsity(14) > 0.95
    assert weights_chosen_by_ap([{"step": 0, "sparsity": 0.2}]) == 0  # a plain PruningTrainer's event
    assert weights_chosen_by_ap([{"ap_pruned": 3}, {"ap_pruned": 4, "ap_quota": 9}]) == 7


@pytest.mark.parametrize("ap_fraction, selects", [(0.0, False), (0.1, True)])
def test_a_claim_run_where_ap_selects_nothing_is_incomplete(ap_fraction, selects, synthetic_path, tmp_path, monkeypatch):
    """With no AP share both arms are Global MP alone: the run must say so (INCONCLUSIVE), not report a tie."""
    from hfcifar.methods.activating_while_pruning import claim
    from hfcifar.reproduce import ClaimContext

    monkeypatch.setattr(claim, "AP_FRACTION", ap_fraction)
    ctx = ClaimContext(slug="activating-while-pruning", claim=claim.CLAIM, scale="smoke",
                       work=dict(claim.CLAIM.scales["smoke"].work), seeds=[0], dataset=synthetic_path, eval_dataset=None,
                       output_dir=tmp_path, progress=False)
    result = claim.run(ctx)
    chosen = result.details["weights_chosen_by_ap_seed_0"]
    assert (chosen > 0) == selects
    assert any("AP selected no weight" in reason for reason in ctx.incomplete_reasons) == (not selects)
    if not selects:  # identical arms: the margin is exactly 0
        assert result.measurements["ap_minus_global_at_final"].estimate == 0.0


def test_ap_trainer_resumes_with_its_reference_weights(tmp_path):
    from transformers import TrainerCallback

    from hfcifar.methods.activating_while_pruning import APTrainer, APTrainingArguments
    from hfcifar.pruning.trainer import STATE_FILE

    class StopAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            control.should_training_stop = state.global_step == 3

    gradual = dict(pruning_schedule="gradual", pruning_start_step=0, pruning_end_step=6, pruning_frequency=2, max_steps=8,
                   save_strategy="steps", save_steps=1, save_total_limit=None, channels_last=False, ap_fraction=0.25)

    def trainer(folder, seed=3, **kwargs):
        return APTrainer(model=relu_model(seed), args=APTrainingArguments(str(tmp_path / folder), **pruning_settings(**gradual)),
                         train_dataset=tiny_data(), **kwargs)

    reference = trainer("a")
    reference.train()
    interrupted = trainer("b", callbacks=[StopAt()])
    interrupted.train()
    assert (tmp_path / "b" / "checkpoint-3" / STATE_FILE).is_file()
    resumed = trainer("b", seed=9)  # other initial weights: everything must come from the checkpoint
    resumed.train(resume_from_checkpoint=str(tmp_path / "b" / "checkpoint-3"))
    # events at steps 4 and 6 measured |W_T − W_0| from the W_0 saved at step 2: the same AP masks as uninterrupted
    for (name, a), b in zip(prunable_layers(reference.model).items(), prunable_layers(resumed.model).values()):
        assert torch.equal(a.weight_mask, b.weight_mask), name
    assert [e["ap_pruned"] for e in resumed.pruning_history] == [e["ap_pruned"] for e in reference.pruning_history[-2:]]
