"""The quick recipe's pieces: translate TTA, Lookahead, the whitened stem, CutMix, MixUp, bf16 where fast (issue 15)."""

import json

import pytest
import torch
from safetensors.torch import load_file

from hfcifar.data import CifarTensorDataset, translate, tta_views
from hfcifar.models import create_model
from hfcifar.training import CifarTrainer, CifarTrainingArguments, train_classifier
from hfcifar.training.callbacks import LookaheadCallback

TINY = {"model": "fastnet-tiny", "disable_tqdm": True, "plot_curves": False}


def test_translate_shifts_content_and_reflects_at_the_edges():
    images = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).view(2, 3, 32, 32)
    down = translate(images, 1)
    assert torch.equal(down[..., 1:, 1:], images[..., :-1, :-1])  # content moved one pixel down and right
    assert torch.equal(down[..., 0, 1:], images[..., 1, :-1])  # reflect: row -1 is row 1
    up = translate(images, -2)
    assert torch.equal(up[..., :-2, :-2], images[..., 2:, 2:])
    assert torch.equal(translate(images, 0), images)


def test_tta_views_weights():
    images = torch.rand(4, 3, 32, 32)
    plain = tta_views(images)
    assert [w for _, w in plain] == [1.0, 1.0] and plain[0][0] is images and torch.equal(plain[1][0], images.flip(-1))
    shifted = tta_views(images, 1)
    assert [w for _, w in shifted] == [0.5, 0.25, 0.25] * 2 and shifted[0][0] is images
    with pytest.raises(ValueError, match="tta_translate"):
        CifarTrainingArguments(output_dir="x", tta_translate=-1)


def test_translate_tta_is_the_weighted_mean_of_the_views(tmp_path):
    torch.manual_seed(0)
    model = create_model("fastnet-tiny").eval()
    data = CifarTensorDataset((torch.rand(8, 3, 32, 32) * 255).to(torch.uint8), torch.arange(8) % 10)
    args = CifarTrainingArguments(output_dir=str(tmp_path), tta=True, tta_translate=1, report_to="none",
                                  disable_tqdm=True, channels_last=False)
    logits = torch.as_tensor(CifarTrainer(model=model, args=args).predict(data).predictions)
    images = data.images.float() / 255
    with torch.no_grad():
        expected = sum(w * model(v).logits for v, w in tta_views(images, 1)) / 2.0
    assert torch.allclose(logits, expected, atol=1e-5)


def test_lookahead_moves_slow_weights_and_ends_on_them():
    model = torch.nn.Linear(2, 2)
    callback = LookaheadCallback(decay=0.5, every=2, end_step=lambda state: 4)

    class State:
        global_step = 0
        max_steps = 4

    callback.on_train_begin(None, State, None, model=model)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    State.global_step = 2  # progress 1/2: d = 0.5 · (1/2)³
    callback.on_step_end(None, State, None, model=model)
    d = 0.5 * 0.5**3
    assert torch.allclose(model.weight, d * start + (1 - d) * (start + 1))  # fast restarts from slow
    assert torch.allclose(callback.slow["weight"], model.weight)
    with torch.no_grad():
        model.weight.add_(5.0)
    callback.on_train_end(None, State, None, model=model)
    assert torch.allclose(model.weight, callback.slow["weight"])  # the model takes the slow weights


def test_lookahead_resumes_exactly(tmp_path):
    from transformers import TrainerCallback

    class StopAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                control.should_training_stop = True

    data = CifarTensorDataset((torch.rand(64, 3, 32, 32) * 255).to(torch.uint8), torch.arange(64) % 10)

    def trainer(out, callbacks=()):
        torch.manual_seed(0)
        args = CifarTrainingArguments(output_dir=str(out), max_steps=6, per_device_train_batch_size=16, save_steps=3,
                                      save_strategy="steps", lookahead_decay=0.9, lookahead_every=1, learning_rate=0.05,
                                      report_to="none", disable_tqdm=True, plot_curves=False, seed=0)
        return CifarTrainer(model=create_model("fastnet-tiny"), args=args, train_dataset=data, callbacks=list(callbacks))

    whole = trainer(tmp_path / "whole")
    whole.train()
    trainer(tmp_path / "part", [StopAt()]).train()
    assert (tmp_path / "part" / "checkpoint-3" / "lookahead.safetensors").is_file()
    resumed = trainer(tmp_path / "part")
    resumed.train(resume_from_checkpoint=True)
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert resumed.state.global_step == 6 and all(torch.equal(a[k], b[k]) for k in a)


def test_whitened_stem_whitens_and_stays_frozen(cifar_source, tmp_path):
    model = create_model("fastnet-tiny")
    images = torch.rand(256, 3, 32, 32)
    model.init_stem_whitening(images)
    conv = model.fastnet.stem[0]
    assert not conv.weight.requires_grad
    with torch.no_grad():
        out = torch.nn.functional.conv2d(model.fastnet.normalization(images), conv.weight)
    pairs = conv.out_channels // 2
    covariance = torch.cov(out[:, :pairs].permute(0, 2, 3, 1).reshape(-1, pairs).T)
    assert torch.allclose(covariance, torch.eye(pairs), atol=0.05)  # whitened patches
    assert torch.allclose(conv.weight[pairs:2 * pairs], -conv.weight[:pairs])  # ± pairs

    summary = train_classifier(dataset=cifar_source, output_dir=tmp_path / "run", max_steps=3, whiten_stem=True, **TINY)
    saved = load_file(tmp_path / "run" / "model.safetensors")
    trained = create_model("fastnet-tiny")
    trained.load_state_dict(saved, strict=False)
    first = CifarTensorDataset.from_hf(__import__("hfcifar").load_cifar10(cifar_source)["train"], progress=False)
    reference = create_model("fastnet-tiny")
    reference.init_stem_whitening(first.images[:1024].float() / 255)
    assert torch.allclose(trained.fastnet.stem[0].weight, reference.fastnet.stem[0].weight, atol=1e-6)  # frozen
    assert json.loads((tmp_path / "run" / "train_summary.json").read_text())["global_step"] == summary["global_step"]


def test_whiten_stem_needs_a_model_that_can(tmp_path):
    model = create_model("resnet20")
    data = CifarTensorDataset(torch.zeros(4, 3, 32, 32, dtype=torch.uint8), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="init_stem_whitening"):
        CifarTrainer(model=model, args=CifarTrainingArguments(output_dir=str(tmp_path), whiten_stem=True), train_dataset=data)


def test_cutmix_batches_mix_boxes_and_weight_the_loss_by_area(tmp_path):
    from hfcifar.data import cutmix

    torch.manual_seed(0)
    images, labels = torch.rand(16, 3, 32, 32), torch.arange(16) % 10
    mixed, other, weight = cutmix(images, labels, alpha=1.0)
    kept = (mixed == images).all(dim=1)  # pixels not replaced (or replaced by an identical image)
    assert 0 < weight <= 1 and kept.float().mean() >= weight - 1e-6
    moved = [i for i in range(16) if not torch.equal(other[i:i + 1], labels[i:i + 1])]
    assert all(not kept[i].all() or weight == 1 for i in moved)

    data = CifarTensorDataset((torch.rand(32, 3, 32, 32) * 255).to(torch.uint8), torch.arange(32) % 10)
    args = CifarTrainingArguments(output_dir=str(tmp_path), cutmix_probability=1.0, label_smoothing_factor=0.1,
                                  report_to="none", disable_tqdm=True, channels_last=False)
    trainer = CifarTrainer(model=create_model("fastnet-tiny"), args=args, train_dataset=data)
    batch = trainer.prepare_batch({"pixel_values": data.images[:8], "labels": data.labels[:8]}, augment=True)
    assert {"cutmix_labels", "cutmix_weight"} <= set(batch)
    loss = trainer.compute_loss(trainer.model, batch)
    with torch.no_grad():
        logits = trainer.model(pixel_values=batch["pixel_values"]).logits
    w = batch["cutmix_weight"]
    ce = torch.nn.functional.cross_entropy
    expected = w * ce(logits, batch["labels"], label_smoothing=0.1) + (1 - w) * ce(logits, batch["cutmix_labels"], label_smoothing=0.1)
    assert torch.allclose(loss, expected, atol=1e-5)
    plain = trainer.prepare_batch({"pixel_values": data.images[:8], "labels": data.labels[:8]}, augment=False)
    assert "cutmix_labels" not in plain  # evaluation batches are never mixed
    with pytest.raises(ValueError, match="cutmix_probability"):
        CifarTrainingArguments(output_dir="x", cutmix_probability=1.5)


def test_a_recipes_batch_is_global_over_processes(monkeypatch):
    from hfcifar.training import CLASSIFIER, TrainingRun

    monkeypatch.setenv("WORLD_SIZE", "2")
    assert TrainingRun.from_options("fastnet").settings(CLASSIFIER)["per_device_train_batch_size"] == 32  # 64 / 2
    explicit = TrainingRun.from_options("fastnet", batch_size=100).settings(CLASSIFIER)
    assert explicit["per_device_train_batch_size"] == 100  # an explicit batch size is per process
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(ValueError, match="does not split over 3 processes"):
        TrainingRun.from_options("fastnet").settings(CLASSIFIER)


def test_mixup_blends_whole_images_and_weights_the_loss_by_lambda(tmp_path):
    from hfcifar.data import mixup

    torch.manual_seed(0)
    images, labels = torch.rand(16, 3, 32, 32), torch.arange(16) % 10
    mixed, other, lam = mixup(images, labels, alpha=0.2)
    assert 0 <= lam <= 1
    partner = [int((labels == o).nonzero()[0]) if (labels == o).sum() == 1 else None for o in other]
    for i, j in enumerate(partner):
        if j is not None:
            assert torch.allclose(mixed[i], lam * images[i] + (1 - lam) * images[j], atol=1e-6)

    data = CifarTensorDataset((torch.rand(32, 3, 32, 32) * 255).to(torch.uint8), torch.arange(32) % 10)
    args = CifarTrainingArguments(output_dir=str(tmp_path), mixup_alpha=0.4, label_smoothing_factor=0.1,
                                  report_to="none", disable_tqdm=True, channels_last=False)
    trainer = CifarTrainer(model=create_model("fastnet-tiny"), args=args, train_dataset=data)
    batch = trainer.prepare_batch({"pixel_values": data.images[:8], "labels": data.labels[:8]}, augment=True)
    loss = trainer.compute_loss(trainer.model, batch)
    with torch.no_grad():
        logits = trainer.model(pixel_values=batch["pixel_values"]).logits
    w, ce = batch["cutmix_weight"], torch.nn.functional.cross_entropy
    expected = w * ce(logits, batch["labels"], label_smoothing=0.1) + (1 - w) * ce(logits, batch["cutmix_labels"],
                                                                                   label_smoothing=0.1)
    assert torch.allclose(loss, expected, atol=1e-5)
    assert "cutmix_labels" not in trainer.prepare_batch({"pixel_values": data.images[:8], "labels": data.labels[:8]},
                                                        augment=False)
    with pytest.raises(ValueError, match="mixup_alpha"):
        CifarTrainingArguments(output_dir="x", mixup_alpha=-1)


@pytest.mark.parametrize("fast", [True, False])
def test_auto_bf16_turns_bf16_on_only_where_it_is_fast(monkeypatch, tmp_path, fast):
    import hfcifar.training.args as args_module

    monkeypatch.setattr(args_module, "fast_bf16", lambda cpu=None: fast)
    args = CifarTrainingArguments(output_dir=str(tmp_path), auto_bf16=True)
    assert args.bf16 is fast
    assert CifarTrainingArguments(output_dir=str(tmp_path)).bf16 is False  # off unless asked
    assert CifarTrainingArguments(output_dir=str(tmp_path), auto_bf16=True, bf16=True).bf16  # explicit bf16 stays


def test_fast_bf16_reads_the_cpu(monkeypatch):
    from hfcifar.training.precision import fast_bf16

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    assert fast_bf16(cpu=True) is False
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert fast_bf16(cpu=True) is True


def test_the_default_job_is_fastnet_wide_with_the_airbench_cpu_recipe():
    from hfcifar.models import DEFAULT_MODEL
    from hfcifar.training import default_recipe, get_recipe

    recipe = get_recipe(default_recipe(DEFAULT_MODEL))
    assert DEFAULT_MODEL == "fastnet-wide" and default_recipe(DEFAULT_MODEL) == "airbench-cpu"
    assert recipe["auto_bf16"] and recipe["per_device_train_batch_size"] == 64 and recipe["time_budget_minutes"] == 10
