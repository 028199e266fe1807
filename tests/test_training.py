import json
import os

import pytest
import torch

from hfcifar.models import ARCHITECTURES, create_model
from hfcifar.training import CifarTrainer, CifarTrainingArguments, RunDirectoryError, train_classifier
from hfcifar.data import CifarTensorDataset

TINY = {"model": "fastnet-tiny", "disable_tqdm": True, "logging_steps": 2}


def test_train_writes_a_loadable_run(cifar_source, tmp_path):
    out = tmp_path / "run"
    summary = train_classifier(dataset=cifar_source, output_dir=out, max_steps=6, **TINY)
    for name in ["model.safetensors", "config.json", "preprocessor_config.json", "train_summary.json", "training_curves.png"]:
        assert (out / name).is_file(), name
    saved = json.loads((out / "train_summary.json").read_text())
    assert saved["global_step"] == 6 and saved["num_processes"] == 1 and saved["parameters_in_sync"]
    # the summary's accuracy is the saved model's on the held-out images: re-measured independently from the folder
    from hfcifar.evaluation import evaluate_classifier

    again = evaluate_classifier(out)
    assert again["accuracy"] == pytest.approx(saved["eval_accuracy"], abs=1e-6)
    assert again["num_examples"] == saved["num_eval_examples"] > 0
    assert saved == json.loads(json.dumps(summary, default=str))
    assert not (out / ".staging").exists()
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-6"]


def test_existing_run_is_never_silently_overwritten(cifar_source, tmp_path):
    out = tmp_path / "run"
    train_classifier(dataset=cifar_source, output_dir=out, max_steps=2, **TINY)
    before = (out / "model.safetensors").read_bytes()
    with pytest.raises(RunDirectoryError, match="--overwrite"):
        train_classifier(dataset=cifar_source, output_dir=out, max_steps=2, **TINY)
    assert (out / "model.safetensors").read_bytes() == before
    train_classifier(dataset=cifar_source, output_dir=out, max_steps=2, overwrite=True, seed=1, **TINY)
    assert (out / "model.safetensors").read_bytes() != before


def test_resume_continues_from_the_last_checkpoint(cifar_source, tmp_path):
    out = tmp_path / "run"
    train_classifier(dataset=cifar_source, output_dir=out, max_steps=3, save_steps=3, **TINY)
    summary = train_classifier(dataset=cifar_source, output_dir=out, max_steps=6, resume=True, **TINY)
    assert summary["resumed_from"].endswith("checkpoint-3") and summary["global_step"] == 6
    with pytest.raises(RunDirectoryError, match="no checkpoint"):
        train_classifier(dataset=cifar_source, output_dir=tmp_path / "empty", max_steps=2, resume=True, **TINY)


def test_time_budget_stops_cleanly_and_saves(cifar_source, tmp_path):
    out = tmp_path / "run"
    summary = train_classifier(dataset=cifar_source, output_dir=out, max_steps=500, time_budget_minutes=1e-4, **TINY)
    assert summary["stopped_by_time_budget"] and summary["global_step"] < 500
    assert (out / f"checkpoint-{summary['global_step']}").is_dir() and (out / "model.safetensors").is_file()


def test_labels_outside_the_model_classes_fail_before_training(tmp_path):
    data = CifarTensorDataset(torch.zeros(8, 3, 32, 32, dtype=torch.uint8), torch.tensor([0, 1, 2, 3, 4, 5, 6, 10]))
    args = CifarTrainingArguments(output_dir=str(tmp_path), max_steps=1)
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        CifarTrainer(model=create_model("fastnet-tiny"), args=args, train_dataset=data)


def test_batches_reach_compute_loss_as_augmented_float_images(tmp_path):
    seen = {}

    class Probe(CifarTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            seen.setdefault("train" if model.training else "eval", inputs["pixel_values"])
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    data = CifarTensorDataset(images, torch.arange(16) % 10)
    args = CifarTrainingArguments(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=16,
                                  per_device_eval_batch_size=16, save_strategy="no", disable_tqdm=True)
    trainer = Probe(model=create_model("fastnet-tiny"), args=args, train_dataset=data, eval_dataset=data)
    trainer.train()
    trainer.evaluate()
    assert seen["train"].dtype == torch.float32 and 0 <= seen["train"].min() and seen["train"].max() <= 1
    # evaluation sees the exact images; training sees crops/flips of them
    assert torch.allclose(seen["eval"], images.float() / 255)
    assert not torch.allclose(seen["train"].sort(0).values, images.float().sort(0).values / 255)


def test_flip_tta_averages_logits_over_the_mirror(tmp_path):
    model = create_model("fastnet-tiny").eval()
    images = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8)
    data = CifarTensorDataset(images, torch.arange(10))
    args = CifarTrainingArguments(output_dir=str(tmp_path), tta=True, channels_last=False, disable_tqdm=True)
    logits = CifarTrainer(model=model, args=args).predict(data).predictions
    x = images.float() / 255
    with torch.no_grad():
        expected = (model(x).logits + model(x.flip(-1)).logits) / 2
    assert torch.allclose(torch.from_numpy(logits), expected, atol=1e-5)


def test_warped_schedule_replays_the_rest_faster_without_jumps():
    from transformers import get_cosine_schedule_with_warmup

    from hfcifar.training.callbacks import WarpedSchedule

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    original = get_cosine_schedule_with_warmup(optimizer, 10, 100).lr_lambdas[0]
    warped = WarpedSchedule(original, horizon=100)
    assert [warped(s) for s in range(30)] == [original(s) for s in range(30)]  # unwarped until retargeted
    warped.retarget(30, end_step=60)  # the remaining 70 steps of the schedule now take 30
    assert warped(30) == pytest.approx(original(30))  # continuous at the switch
    assert warped(45) == pytest.approx(original(65))
    assert warped(60) == pytest.approx(original(100)) == pytest.approx(0.0)
    assert warped(90) == pytest.approx(0.0)  # past its end the schedule stays at its end (cosine would rise again)
    warped.retarget(45, end_step=75)  # a later estimate: slower than thought
    assert warped(45) == pytest.approx(original(65)) and warped(75) == pytest.approx(0.0)


@pytest.mark.parametrize("fit", [True, False])
def test_time_budget_fits_the_learning_rate_schedule(monkeypatch, fit):
    """A budget that holds 300 of 1,000 planned steps: the decay must complete by the stop, not stop at the peak."""
    from types import SimpleNamespace

    from transformers import TrainerControl, get_linear_schedule_with_warmup

    from hfcifar.training import callbacks

    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr(callbacks.time, "monotonic", lambda: clock.now)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.05)
    scheduler = get_linear_schedule_with_warmup(optimizer, 100, 1000)
    budget = callbacks.TimeBudgetCallback(minutes=1.0, fit_schedule=fit)  # 60 s; a step takes 0.2 s → 300 steps
    state, control, args = SimpleNamespace(global_step=0, max_steps=1000), TrainerControl(), SimpleNamespace(world_size=1)
    budget.on_train_begin(args, state, control)
    learning_rates = []
    while not control.should_training_stop:
        clock.now += 0.2
        optimizer.step()
        scheduler.step()
        state.global_step += 1
        learning_rates.append(scheduler.get_last_lr()[0])
        control = budget.on_step_end(args, state, control, lr_scheduler=scheduler)
    assert budget.stopped_early and 295 <= state.global_step <= 301
    if fit:
        assert budget.fitted_end_step is not None and learning_rates[-1] < 0.01 * 0.05
        assert max(learning_rates) == pytest.approx(0.05, rel=0.05)  # warm-up still reached the peak
        assert all(abs(b - a) < 0.01 for a, b in zip(learning_rates, learning_rates[1:]))  # no jumps
    else:
        assert budget.fitted_end_step is None and learning_rates[-1] > 0.6 * 0.05  # 0.039: most of the decay never ran


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_models_say_their_loss_takes_no_loss_kwargs(name):
    # forward(**kwargs) would otherwise make Trainer treat the batch-mean loss as a sum over `num_items_in_batch`:
    # multiplied by the number of processes, never divided by the gradient-accumulation steps.
    assert ARCHITECTURES[name].model_class.accepts_loss_kwargs is False


def test_gradient_accumulation_divides_the_mean_loss(tmp_path):
    data = CifarTensorDataset(torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8), torch.arange(8) % 10)
    args = CifarTrainingArguments(output_dir=str(tmp_path), gradient_accumulation_steps=2, disable_tqdm=True)
    model = create_model("fastnet-tiny")
    trainer = CifarTrainer(model=model, args=args, train_dataset=data)
    assert trainer.model_accepts_loss_kwargs is False
    inputs = {"pixel_values": data.images.float() / 255, "labels": data.labels}
    trainer.current_gradient_accumulation_steps = 2
    scaled = trainer.training_step(model, inputs, num_items_in_batch=torch.tensor(16))  # float inputs: no augmentation
    with torch.no_grad():  # still in train mode with the same parameters: the same batch statistics, the same loss
        full = model(**inputs).loss
    torch.testing.assert_close(scaled, full / 2)


def test_train_classifier_takes_a_method_trainer(cifar_source, tmp_path):
    calls = []

    class Counting(CifarTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            calls.append(model.training)
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    summary = train_classifier(dataset=cifar_source, output_dir=tmp_path / "run", max_steps=2, trainer_class=Counting,
                               eval_strategy="no", **TINY)
    assert calls.count(True) == 2 and summary["trainer"] == "Counting"
    with pytest.raises(TypeError, match="trainer_class must subclass CifarTrainer"):
        train_classifier(dataset=cifar_source, output_dir=tmp_path / "bad", max_steps=1, trainer_class=object, **TINY)


@pytest.mark.parametrize("with_eval", [True, False])
def test_training_curves_show_accuracy_only_when_evaluated(tmp_path, with_eval):
    from matplotlib.image import imread

    from hfcifar.training.callbacks import plot_training_curves

    history = [{"step": s, "loss": 2.0 / s, "learning_rate": 0.1} for s in range(1, 5)]
    if with_eval:
        history.append({"step": 4, "epoch": 1.0, "eval_accuracy": 0.4})
    path = plot_training_curves(history, str(tmp_path / "curves.png"))
    width = imread(path).shape[1]
    assert abs(width - (3 if with_eval else 2) * 4.4 * 110) <= 1  # one 4.4-inch panel per series, at 110 dpi
    assert plot_training_curves([], str(tmp_path / "none.png")) is None


def test_training_curves_leave_the_matplotlib_backend_alone(tmp_path, monkeypatch):
    import matplotlib

    from hfcifar.training.callbacks import plot_training_curves

    def refuse(*args, **kwargs):
        raise AssertionError("library code must not switch the user's Matplotlib backend")

    monkeypatch.setattr(matplotlib, "use", refuse)
    history = [{"step": s, "loss": 1.0 / s, "learning_rate": 0.1} for s in range(1, 3)]
    assert plot_training_curves(history, str(tmp_path / "curves.png"))


# -- typed recipes and training families ------------------------------------------------------------------------
def test_recipes_are_typed_by_training_family():
    import dataclasses

    from hfcifar.training import RECIPES, families, get_recipe, recipes_of

    for family in families():  # every recipe's fields are fields of its family's arguments class
        for name in recipes_of(family.name):
            fields = {f.name for f in dataclasses.fields(family.arguments_class)}
            assert set(get_recipe(name, family)) <= fields, name
    assert RECIPES.get("quick").family == "classifier" and "ema_decay" not in get_recipe("quick")
    assert RECIPES.get("ddpm").family == "diffusion" and get_recipe("ddpm")["ema_decay"] == 0.9999
    assert set(recipes_of("classifier")) == {"airbench-cpu", "airbench-gpu", "quick", "sgd-cosine", "one-cycle"}
    with pytest.raises(ValueError, match="Recipe 'ddpm' belongs to the diffusion family, but 'fastnet' is in the "
                                         "classifier family; its recipes are: airbench-cpu, airbench-gpu, one-cycle, quick, sgd-cosine"):
        get_recipe("ddpm", "classifier", model="fastnet")
    with pytest.raises(ValueError, match="Unknown recipe 'qiuck'; available: .*quick"):
        get_recipe("qiuck")


def test_a_recipe_naming_a_field_its_family_lacks_is_refused(cifar_source, tmp_path):
    from hfcifar.registry import registry
    from hfcifar.training import Recipe, register_recipe

    register_recipe("test-bad-classifier", "classifier", learning_rate=0.1, ema_decay=0.99)
    try:
        with pytest.raises(ValueError, match="sets ema_decay, which CifarTrainingArguments does not have"):
            train_classifier(dataset=cifar_source, output_dir=tmp_path / "r", recipe="test-bad-classifier", **TINY)
        assert not (tmp_path / "r").exists()
    finally:
        registry("recipe")._entries.pop("test-bad-classifier")
    assert Recipe("classifier", {"learning_rate": 0.1}).settings() == {"learning_rate": 0.1}


def test_models_dispatch_on_their_training_family(tmp_path):
    from hfcifar.training import CLASSIFIER, TrainingRun, default_recipe, family_of

    assert family_of("fastnet") is CLASSIFIER and family_of("resnet18").name == "classifier"
    assert family_of(create_model("fastnet-tiny")) is CLASSIFIER
    assert family_of("someone/cifar-model").name == "classifier"  # a Hub id fine-tunes as a classifier
    create_model("fastnet-tiny").save_pretrained(tmp_path / "saved")
    assert family_of(str(tmp_path / "saved")) is CLASSIFIER
    assert (default_recipe("fastnet"), default_recipe("resnet18")) == ("airbench-cpu", "sgd-cosine")
    with pytest.raises(ValueError, match="Unknown model 'fastnett'.*fastnet-tiny"):
        family_of("fastnett")
    # the shared leading parameters: defined once, shorthands for two training arguments, None = the recipe's
    run = TrainingRun.from_options("fastnet-tiny", dataset="d", epochs=3, batch_size=None, max_steps=None,
                                   save_total_limit=None, resume=True)
    assert run.output_dir.as_posix() == "runs/fastnet-tiny" and run.options.dataset == "d" and run.options.resume
    assert run.training_overrides == {"num_train_epochs": 3, "save_total_limit": None}
    settings = run.settings(CLASSIFIER)
    assert settings["num_train_epochs"] == 3 and settings["save_total_limit"] is None and settings["seed"] == 0
    with pytest.raises(TypeError, match="ema_decay is not an argument of CifarTrainingArguments"):
        TrainingRun.from_options("fastnet-tiny", ema_decay=0.9).settings(CLASSIFIER)


def test_cpu_trainers_reuse_freed_memory_unless_told_not_to(monkeypatch, tmp_path):
    """`reuse_cpu_memory` (issue 15 throughput): CifarTrainer raises glibc's malloc thresholds on a CPU, once per
    process; the setting can be turned off, and the run says whether it took effect."""
    import sys

    from hfcifar.training import allocator

    if sys.platform.startswith("linux"):
        assert allocator.reuse_freed_memory() is True  # glibc accepts the thresholds (the CI machine)
    calls = []
    monkeypatch.setattr("hfcifar.training.trainer.reuse_freed_memory", lambda: calls.append(1) or True)
    on = CifarTrainer(model=create_model("fastnet-tiny"),
                      args=CifarTrainingArguments(str(tmp_path / "on"), report_to="none", use_cpu=True))
    off = CifarTrainer(model=create_model("fastnet-tiny"),
                       args=CifarTrainingArguments(str(tmp_path / "off"), report_to="none", use_cpu=True,
                                                   reuse_cpu_memory=False))
    assert (on.cpu_memory_reuse, off.cpu_memory_reuse, len(calls)) == (True, False, 1)
