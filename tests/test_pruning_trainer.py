"""PruningTrainer: schedules (one-shot, Zhu & Gupta's cubic), pruning inside the Trainer, plain saves, exact resume."""

import json

import pytest
import safetensors.torch
import torch
from conftest import StopAt
from transformers import AutoModelForImageClassification

import hfcifar
from hfcifar.data import CifarTensorDataset
from hfcifar.pruning import (
    MASKS_FILE,
    PRUNING_METHODS,
    PruningSchedule,
    PruningTrainer,
    PruningTrainingArguments,
    cubic_sparsity,
    gradual_schedule,
    one_shot_schedule,
    plain_state_dict,
    prunable_layers,
    register_pruning_method,
    sparsity_report,
)


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return hfcifar.create_model("fastnet-tiny")


def tiny_data(n=32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator)
    return CifarTensorDataset(images, torch.arange(n) % 10)


def arguments(tmp_path, **overrides):
    values = dict(output_dir=str(tmp_path), per_device_train_batch_size=8, max_steps=4, learning_rate=0.05,
                  optim="sgd", optim_args="momentum=0.9", weight_decay=5e-4, lr_scheduler_type="linear",
                  save_strategy="no", eval_strategy="no", plot_curves=False, disable_tqdm=True, logging_steps=1, seed=3,
                  target_sparsity=0.8)
    values.update(overrides)
    return PruningTrainingArguments(**values)


# ----------------------------------------------------------------------------------------------- schedules


def test_gradual_schedule_follows_zhu_and_gupta_eq_1_at_its_events():
    schedule = gradual_schedule(0.9, start_step=10, end_step=70, frequency=20, initial_sparsity=0.1)
    assert schedule.pruning_steps() == [10, 30, 50, 70]
    for t in schedule.pruning_steps():
        # s_t = s_f + (s_i − s_f)(1 − (t − t0)/(nΔt))³
        expected = 0.9 + (0.1 - 0.9) * (1 - (t - 10) / 60) ** 3
        assert schedule.target_at_event(t) == pytest.approx(expected)
        assert schedule.is_pruning_step(t)
    assert not schedule.is_pruning_step(20) and not schedule.is_pruning_step(90)
    # a staircase under the curve: the last event's target holds until the next event
    assert schedule.sparsity_at(9) == 0.0
    assert schedule.sparsity_at(49) == schedule.target_at_event(30)
    assert schedule.sparsity_at(70) == schedule.sparsity_at(10_000) == 0.9
    # the sparsity rises fast first and slowly last (the cubic's point)
    targets = [schedule.target_at_event(t) for t in schedule.pruning_steps()]
    gains = [b - a for a, b in zip(targets, targets[1:])]
    assert gains == sorted(gains, reverse=True)
    assert cubic_sparsity(40, 0.9, 10, 70, 0.1) == pytest.approx(0.9 - 0.8 * 0.5**3)


def test_a_gradual_schedule_whose_span_is_not_a_multiple_of_the_frequency_still_ends_at_the_end_step():
    schedule = gradual_schedule(0.5, start_step=0, end_step=25, frequency=10)
    assert schedule.pruning_steps() == [0, 10, 20, 25]
    assert schedule.target_at_event(25) == 0.5


def test_one_shot_schedule_prunes_once():
    schedule = one_shot_schedule(0.98, step=5)
    assert schedule.pruning_steps() == [5] and schedule.last_step == 5
    assert [schedule.sparsity_at(t) for t in (0, 4, 5, 100)] == [0.0, 0.0, 0.98, 0.98]
    assert schedule.is_pruning_step(5) and not schedule.is_pruning_step(6)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 2, float("nan"), "0.9"])
def test_schedules_refuse_a_sparsity_outside_the_unit_interval(bad):
    with pytest.raises(ValueError, match=r"final_sparsity must be a fraction in \[0, 1\)"):
        PruningSchedule(bad)


def test_schedules_refuse_bad_steps():
    with pytest.raises(ValueError, match="end_step > start_step"):
        gradual_schedule(0.9, start_step=10, end_step=10)
    with pytest.raises(ValueError, match="frequency"):
        gradual_schedule(0.9, start_step=0, end_step=10, frequency=0)
    with pytest.raises(ValueError, match="initial_sparsity=0.95 exceeds"):
        gradual_schedule(0.9, start_step=0, end_step=10, initial_sparsity=0.95)
    with pytest.raises(ValueError, match="one of"):
        PruningSchedule(0.5, kind="cyclic")
    with pytest.raises(ValueError, match="start_step must be an integer"):
        one_shot_schedule(0.5, step=-1)


# ----------------------------------------------------------------------------------------------- arguments


@pytest.mark.parametrize("bad", [-0.01, 1.0, 1.5])
def test_arguments_refuse_a_target_sparsity_outside_the_unit_interval(tmp_path, bad):
    with pytest.raises(ValueError, match=r"target_sparsity must be a fraction in \[0, 1\)"):
        arguments(tmp_path, target_sparsity=bad)


def test_arguments_refuse_bad_pruning_settings(tmp_path):
    with pytest.raises(ValueError, match="pruning_schedule must be one of"):
        arguments(tmp_path, pruning_schedule="sometimes")
    with pytest.raises(ValueError, match="pruning_target must be one of"):
        arguments(tmp_path, pruning_target="bytes")
    with pytest.raises(ValueError, match=r"min_keep_fraction must lie in \[0, 1 - target_sparsity\]"):
        arguments(tmp_path, target_sparsity=0.9, min_keep_fraction=0.2)
    with pytest.raises(ValueError, match="pruning_end_step must be an integer > pruning_start_step"):
        arguments(tmp_path, pruning_start_step=5, pruning_end_step=5)
    with pytest.raises(ValueError, match="pruning_frequency must be an integer ≥ 1"):
        arguments(tmp_path, pruning_frequency=0)
    with pytest.raises(ValueError, match="JSON object"):
        arguments(tmp_path, pruning_options="{not json")
    assert arguments(tmp_path, pruning_options='{"alpha": 2}').pruning_options == {"alpha": 2}


def test_the_trainer_refuses_unknown_methods_and_options_they_do_not_take(tmp_path):
    with pytest.raises(ValueError, match="Unknown pruning method 'nope'; available: .*global.*rd"):
        PruningTrainer(model=tiny_model(), args=arguments(tmp_path, pruning_method="nope"))
    with pytest.raises(ValueError, match="'uniform' takes no min_keep_fraction"):
        PruningTrainer(model=tiny_model(), args=arguments(tmp_path, pruning_method="uniform", min_keep_fraction=0.01))
    with pytest.raises(ValueError, match="last event is at step 4 but training runs 4 steps"):
        PruningTrainer(model=tiny_model(), args=arguments(tmp_path, pruning_start_step=4), train_dataset=tiny_data()).train()


# ----------------------------------------------------------------------------------------------- training


def test_one_shot_pruning_then_fine_tuning_keeps_the_pruned_weights_at_zero(tmp_path):
    snapshots = {}

    class Snapshot(PruningTrainer):
        def prune_to(self, sparsity):
            report = super().prune_to(sparsity)
            snapshots.update({n: l.weight.detach().clone() for n, l in prunable_layers(self.model).items()})
            return report

    trainer = Snapshot(model=tiny_model(), args=arguments(tmp_path, pruning_start_step=1, max_steps=5),
                       train_dataset=tiny_data())
    trainer.train()
    assert [event["step"] for event in trainer.pruning_history] == [1]
    report = trainer.sparsity_report()
    # the masks pruned 80% of all prunable weights, and fine-tuning (SGD with momentum and weight decay) never
    # revived one: the zeros after training are exactly the zeros right after pruning
    assert report["sparsity"] == pytest.approx(0.8, abs=1e-4)
    for name, layer in prunable_layers(trainer.model).items():
        assert torch.equal(layer.weight.detach() == 0, snapshots[name] == 0), name
    # ... while the kept weights did train
    assert any(not torch.equal(snapshots[n], l.weight.detach()) for n, l in prunable_layers(trainer.model).items())
    # the sparsity is logged with the training loss, and the pruning event itself is logged
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert [round(e["sparsity"], 3) for e in logged] == [0.0, 0.8, 0.8, 0.8, 0.8]
    assert any(e.get("target_sparsity") == 0.8 for e in trainer.state.log_history)


def test_gradual_pruning_reaches_the_target_at_the_end_step(tmp_path):
    args = arguments(tmp_path, pruning_schedule="gradual", pruning_start_step=0, pruning_end_step=6, pruning_frequency=2,
                     max_steps=8, target_sparsity=0.9)
    trainer = PruningTrainer(model=tiny_model(), args=args, train_dataset=tiny_data())
    trainer.train()
    schedule = trainer.pruning_schedule
    # step 0 has target s_i = 0: nothing to prune; then 2, 4, 6 on Eq. (1)
    assert [e["step"] for e in trainer.pruning_history] == [2, 4, 6]
    for event in trainer.pruning_history:
        assert event["target_sparsity"] == pytest.approx(schedule.target_at_event(event["step"]))
        assert event["sparsity"] == pytest.approx(event["target_sparsity"], abs=1e-4)
    assert trainer.current_sparsity() == pytest.approx(0.9, abs=1e-4)
    summary = trainer.pruning_summary()
    assert summary["sparsity"] == pytest.approx(0.9, abs=1e-4) and summary["pruning_method"] == "global"


def test_the_per_layer_minimum_is_passed_to_global_mp(tmp_path):
    args = arguments(tmp_path, target_sparsity=0.98, min_keep_fraction=0.01, max_steps=2)
    trainer = PruningTrainer(model=tiny_model(), args=args, train_dataset=tiny_data())
    trainer.train()
    report = trainer.sparsity_report()
    assert report["sparsity"] == pytest.approx(0.98, abs=1e-4)
    assert all(s <= 0.99 + 1e-9 for s in report["per_layer"].values()), report["per_layer"]
    assert trainer.pruning_summary()["collapsed_layers"] == []


@pytest.mark.parametrize("method", ["global", "uniform"])
def test_masks_are_computed_on_contiguous_weights_and_training_stays_channels_last(tmp_path, method):
    trainer = PruningTrainer(model=tiny_model(), args=arguments(tmp_path, pruning_method=method, max_steps=2),
                             train_dataset=tiny_data())
    assert trainer.args.channels_last
    trainer.train()
    report = trainer.sparsity_report()
    assert report["sparsity"] == pytest.approx(0.8, abs=1e-3)
    if method == "uniform":
        assert all(s == pytest.approx(0.8, abs=0.01) for s in report["per_layer"].values())
    stem = prunable_layers(trainer.model)["fastnet.stem.0"]
    assert stem.weight_orig.is_contiguous(memory_format=torch.channels_last)


def test_prune_to_is_callable_directly_and_masks_are_absolute(tmp_path):
    trainer = PruningTrainer(model=tiny_model(), args=arguments(tmp_path))
    assert trainer.prune_to(0.5)["sparsity"] == pytest.approx(0.5, abs=1e-4)
    assert trainer.prune_to(0.75)["sparsity"] == pytest.approx(0.75, abs=1e-4)
    with pytest.raises(ValueError, match=r"sparsity must be a fraction in \[0, 1\)"):
        trainer.prune_to(1.0)


def test_mask_functions_get_the_trainer_and_calibration_images(tmp_path):
    seen = {}

    @register_pruning_method("test-recording")
    def recording(model, sparsity, **options):
        seen.update(options)
        return {name: torch.ones_like(layer.weight) for name, layer in prunable_layers(model).items()}

    try:
        args = arguments(tmp_path, pruning_method="test-recording", pruning_calibration_examples=12,
                         pruning_options={"beta": 3})
        trainer = PruningTrainer(model=tiny_model(), args=args, train_dataset=tiny_data())
        trainer.prune_to(0.5)
    finally:
        PRUNING_METHODS.unregister("test-recording")
    assert seen["trainer"] is trainer and seen["beta"] == 3
    images, labels = seen["calibration_images"], seen["calibration_labels"]
    assert images.shape == (12, 3, 32, 32) and images.dtype == torch.float32 and 0 <= images.min() and images.max() <= 1
    # the images are training images, with their labels
    data = tiny_data()
    for image, label in zip(images, labels):
        match = (data.images.float() / 255 - image).abs().flatten(1).amax(1) == 0
        assert match.any() and data.labels[match.nonzero()[0, 0]] == label
    # Global MP's own options are not passed to methods that do not take them
    assert "min_keep_fraction" not in seen and "target" not in seen


# ----------------------------------------------------------------------------------------------- save and resume


def test_the_saved_model_holds_plain_sparse_weights_that_load_with_from_pretrained(tmp_path):
    trainer = PruningTrainer(model=tiny_model(), args=arguments(tmp_path, max_steps=3, pruning_start_step=1),
                             train_dataset=tiny_data())
    trainer.train()
    trainer.save_model(str(tmp_path / "final"))
    keys = safetensors.torch.load_file(str(tmp_path / "final" / "model.safetensors")).keys()
    assert not any(k.endswith(("weight_orig", "weight_mask")) for k in keys)
    assert not (tmp_path / "final" / MASKS_FILE).exists()  # only checkpoints carry the masks file
    loaded = AutoModelForImageClassification.from_pretrained(str(tmp_path / "final")).eval()
    assert sparsity_report(loaded)["sparsity"] == pytest.approx(trainer.current_sparsity())
    x = torch.rand(4, 3, 32, 32)
    trainer.model.eval()
    torch.testing.assert_close(loaded(x).logits, trainer.model(x).logits)
    # the trainer's model is still masked: training could go on
    assert all(hasattr(layer, "weight_mask") for layer in prunable_layers(trainer.model).values())


def test_plain_weights_load_into_a_masked_model_with_their_zeros_as_the_mask(tmp_path):
    source = tiny_model(1)
    layer = prunable_layers(source)["classifier"]
    with torch.no_grad():
        layer.weight[:, :5] = 0
    trainer = PruningTrainer(model=tiny_model(2), args=arguments(tmp_path))
    trainer.model.load_state_dict(source.state_dict())
    target = prunable_layers(trainer.model)["classifier"]
    torch.testing.assert_close(target.weight_orig.detach(), layer.weight.detach())
    assert int((target.weight_mask == 0).sum()) == 5 * layer.weight.shape[0]
    assert plain_state_dict(trainer.model.state_dict()).keys() == source.state_dict().keys()


def test_resuming_from_a_checkpoint_restores_the_masks_and_continues_exactly(tmp_path):
    settings = dict(pruning_schedule="gradual", pruning_start_step=0, pruning_end_step=6, pruning_frequency=2,
                    max_steps=8, target_sparsity=0.9, save_strategy="steps", save_steps=1, save_total_limit=None,
                    channels_last=False)
    # the reference: 8 uninterrupted steps
    reference = PruningTrainer(model=tiny_model(), args=arguments(tmp_path / "a", **settings), train_dataset=tiny_data())
    reference.train()
    # the same run interrupted after step 3 (pruned at step 2; events 4 and 6 still to come) and resumed
    interrupted = PruningTrainer(model=tiny_model(), args=arguments(tmp_path / "b", **settings), train_dataset=tiny_data(),
                                 callbacks=[StopAt(3)])
    interrupted.train()
    checkpoint = tmp_path / "b" / "checkpoint-3"
    assert (checkpoint / MASKS_FILE).is_file()
    # a checkpoint is a plain model folder too
    from_checkpoint = AutoModelForImageClassification.from_pretrained(str(checkpoint))
    assert sparsity_report(from_checkpoint)["sparsity"] == pytest.approx(interrupted.current_sparsity())
    resumed = PruningTrainer(model=tiny_model(5), args=arguments(tmp_path / "b", **settings), train_dataset=tiny_data())
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert [e["step"] for e in resumed.pruning_history] == [4, 6]
    for (name, a), b in zip(prunable_layers(reference.model).items(), prunable_layers(resumed.model).values()):
        assert torch.equal(a.weight_mask, b.weight_mask), name
    for (name, a), b in zip(reference.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)


# ----------------------------------------------------------------------------------------------- the sparsity metric


def test_sparsity_reaches_eval_results_and_the_model_card(tmp_path, synthetic_path):
    from huggingface_hub import ModelCard

    from hfcifar.evaluation import METRICS, evaluate_classifier, write_eval_results
    from hfcifar.hub import render_card

    trainer = PruningTrainer(model=tiny_model(), args=arguments(tmp_path / "run", max_steps=2, target_sparsity=0.7),
                             train_dataset=tiny_data())
    trainer.train()
    folder = tmp_path / "model"
    trainer.save_model(str(folder))
    assert METRICS["sparsity"].higher_is_better  # at equal accuracy the sparser model is the better compressed one
    results = evaluate_classifier(str(folder), dataset=synthetic_path, metrics=["accuracy", "sparsity"])
    # counted in the saved weights: the zeros of the loaded model, not the training target
    loaded = AutoModelForImageClassification.from_pretrained(str(folder))
    weights = [layer.weight for layer in prunable_layers(loaded).values()]
    zeros = sum(int((w == 0).sum()) for w in weights)
    assert results["sparsity_num_zeros"] == zeros and results["sparsity_num_weights"] == sum(w.numel() for w in weights)
    assert results["sparsity"] == zeros / results["sparsity_num_weights"] == pytest.approx(0.7, abs=1e-3)
    assert results["metric_num_examples"]["sparsity"] is None and results["sparsity_collapsed_layers"] == []
    write_eval_results(folder, results)
    render_card(folder)
    card = ModelCard.load(folder / "README.md")  # the Hub's own parser is the oracle
    entries = {r.metric_type: r for r in card.data.eval_results}
    assert entries["sparsity"].metric_value == pytest.approx(results["sparsity"])
    assert "Conv2d/Linear" in entries["sparsity"].metric_config and "accuracy" in entries
    assert json.loads((folder / "eval_results.json").read_text())["sparsity"] == results["sparsity"]


def test_train_classifier_runs_the_pruning_trainer_and_resumes(cifar_source, tmp_path):
    from hfcifar.training import train_classifier

    settings = dict(model="fastnet-tiny", dataset=cifar_source, output_dir=tmp_path / "run", batch_size=32,
                    trainer_class=PruningTrainer, args_class=PruningTrainingArguments, target_sparsity=0.9,
                    pruning_schedule="one-shot", pruning_start_step=1, save_strategy="steps",
                    save_steps=3, eval_strategy="no", disable_tqdm=True, plot_curves=False)
    train_classifier(max_steps=3, **settings)
    summary = train_classifier(max_steps=6, resume=True, **settings)
    assert summary["trainer"] == "PruningTrainer" and summary["resumed_from"].endswith("checkpoint-3")
    # pruned at step 1, before the checkpoint: the resumed run continued with the checkpoint's masks
    loaded = AutoModelForImageClassification.from_pretrained(str(tmp_path / "run"))
    assert sparsity_report(loaded)["sparsity"] == pytest.approx(0.9, abs=1e-3)
    # the run summary and the card's training table say how the model was pruned
    assert summary["pruning"]["sparsity"] == pytest.approx(0.9, abs=1e-3) and summary["pruning"]["pruning_method"] == "global"
    from hfcifar.evaluation import evaluate_classifier, write_eval_results
    from hfcifar.hub import render_card

    write_eval_results(tmp_path / "run", evaluate_classifier(str(tmp_path / "run"), metrics=["accuracy", "sparsity"]))
    render_card(tmp_path / "run")
    text = (tmp_path / "run" / "README.md").read_text()
    assert "| Pruning | global to 90.0% sparsity (one-shot) |" in text and "90.00%" in text
