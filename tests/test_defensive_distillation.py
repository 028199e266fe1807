"""Defensive distillation (row 1): the loss at temperature T, the two stages, the output-layer learning rate, and the
saved student deployed at T = 1."""

import math

import pytest
import torch
from transformers import AutoModelForImageClassification

import hfcifar
from hfcifar.data import CifarTensorDataset
from hfcifar.methods.fgsm_cw_defensive_distillation import (
    PRESETS,
    DefensiveDistillationTrainer,
    DefensiveDistillationTrainingArguments,
    soft_cross_entropy,
    soft_labels,
    train_defensive_distillation,
)
from hfcifar.methods.fgsm_cw_defensive_distillation.trainer import output_layer


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return hfcifar.create_model("fastnet-tiny")


def tiny_data(n=32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator)
    return CifarTensorDataset(images, torch.arange(n) % 10)


def arguments(tmp_path, stage="teacher", **overrides):
    settings = dict(temperature=20.0, per_device_train_batch_size=8, num_train_epochs=1, max_steps=2, learning_rate=0.05,
                    report_to="none", save_strategy="no", eval_strategy="no", plot_curves=False, disable_tqdm=True)
    settings.update(overrides)
    return DefensiveDistillationTrainingArguments(str(tmp_path / stage), stage=stage, **settings)


def test_soft_cross_entropy_equals_the_hand_computed_value():
    student = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
    teacher = torch.tensor([[1.0, 0.0, -1.0], [-0.5, 2.5, 0.0]])
    T = 4.0
    expected = 0.0
    for s_row, t_row in zip(student.tolist(), teacher.tolist()):
        t_exp = [math.exp(v / T) for v in t_row]
        s_exp = [math.exp(v / T) for v in s_row]
        q = [e / sum(t_exp) for e in t_exp]                      # F(X) = softmax(z_teacher / T), Eq. 3
        log_p = [math.log(e / sum(s_exp)) for e in s_exp]        # log softmax(z_student / T)
        expected += -sum(qi * lpi for qi, lpi in zip(q, log_p))
    expected /= 2
    assert soft_cross_entropy(student, soft_labels(teacher, T), T).item() == pytest.approx(expected, rel=1e-6)
    # … which is KL(F ‖ F^d) plus the teacher's entropy (a constant for the student)
    q = soft_labels(teacher, T)
    kl = torch.nn.functional.kl_div(torch.log_softmax(student / T, -1), q, reduction="batchmean")
    entropy = -(q * q.log()).sum(-1).mean()
    assert soft_cross_entropy(student, q, T).item() == pytest.approx((kl + entropy).item(), rel=1e-6)


def test_each_stage_trains_on_the_loss_of_the_paper(tmp_path):
    images = torch.rand(6, 3, 32, 32)
    labels = torch.tensor([0, 1, 2, 3, 4, 5])
    inputs = {"pixel_values": images, "labels": labels}
    teacher, student = tiny_model(0), tiny_model(1)
    T = 20.0

    trainer = DefensiveDistillationTrainer(model=teacher, args=arguments(tmp_path, "teacher", temperature=T))
    teacher.train()
    loss = trainer.compute_loss(teacher, inputs)
    expected = torch.nn.functional.cross_entropy(teacher(images).logits / T, labels)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)

    teacher.eval()
    trainer = DefensiveDistillationTrainer(model=student, args=arguments(tmp_path, "student", temperature=T), teacher_model=teacher)
    student.train()
    loss = trainer.compute_loss(student, inputs)
    q = torch.softmax(teacher(images).logits / T, -1)
    expected = -(q * torch.log_softmax(student(images).logits / T, -1)).sum(-1).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)

    # deployed at T = 1: evaluation uses the raw logits and the hard labels
    student.eval()
    loss = trainer.compute_loss(student, inputs)
    assert loss.item() == pytest.approx(torch.nn.functional.cross_entropy(student(images).logits, labels).item(), rel=1e-5)


def test_output_layer_learning_rate_is_scaled_by_t_squared(tmp_path):
    model = tiny_model()
    args = arguments(tmp_path, temperature=10.0, weight_decay=5e-4)
    trainer = DefensiveDistillationTrainer(model=model, args=args, train_dataset=tiny_data())
    optimizer = trainer.create_optimizer()
    head = {id(p) for p in model.classifier.parameters()}
    assert output_layer(model) is model.classifier
    for group in optimizer.param_groups:
        in_head = {id(p) in head for p in group["params"]}
        assert len(in_head) == 1, "a group mixes output-layer and body parameters"
        if in_head.pop():
            assert group["lr"] == pytest.approx(0.05 * 100) and group["weight_decay"] in (pytest.approx(5e-6), 0.0)
        else:
            assert group["lr"] == pytest.approx(0.05)
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))
    assert [g["lr"] for g in trainer.create_optimizer().param_groups] == [g["lr"] for g in optimizer.param_groups]  # once

    plain = DefensiveDistillationTrainer(model=tiny_model(), args=arguments(tmp_path, temperature=10.0,
                                                                            temperature_reparametrization=False))
    assert [g["lr"] for g in plain.create_optimizer().param_groups] == [pytest.approx(0.05)] * 2


def test_training_at_t_with_the_scaled_output_layer_follows_training_at_t_equals_1(tmp_path):
    # The docstring's argument: loss_T(W, θ) = loss_1(W/T, θ), so SGD at T with the output layer initialized ×T,
    # its learning rate ×T² and weight decay ÷T² moves (W/T, θ) exactly as SGD at T = 1 moves (W, θ).
    T = 8.0
    data = tiny_data(16)
    common = dict(max_grad_norm=0.0, weight_decay=5e-4, optim="sgd", optim_args="momentum=0.9", seed=3,
                  crop_padding=0, flip=False)
    at_one = tiny_model(5)
    at_t = tiny_model(5)
    DefensiveDistillationTrainer(model=at_one, args=arguments(tmp_path / "a", temperature=1.0, **common), train_dataset=data).train()
    DefensiveDistillationTrainer(model=at_t, args=arguments(tmp_path / "b", temperature=T, **common), train_dataset=data).train()
    assert not torch.allclose(at_one.classifier.weight, tiny_model(5).classifier.weight)  # it did train
    torch.testing.assert_close(at_t.classifier.weight / T, at_one.classifier.weight, rtol=1e-4, atol=1e-6)
    body_t = [p for n, p in at_t.named_parameters() if not n.startswith("classifier")]
    body_one = [p for n, p in at_one.named_parameters() if not n.startswith("classifier")]
    for a, b in zip(body_t, body_one):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_bad_arguments_are_refused_with_a_clear_message(tmp_path):
    with pytest.raises(ValueError, match="stage must be one of"):
        DefensiveDistillationTrainingArguments(str(tmp_path), stage="pupil")
    with pytest.raises(ValueError, match="temperature must be > 0"):
        DefensiveDistillationTrainingArguments(str(tmp_path), temperature=0)
    with pytest.raises(ValueError, match="teacher_model"):
        DefensiveDistillationTrainer(model=tiny_model(), args=arguments(tmp_path, "student"))
    with pytest.raises(ValueError, match="only for stage='student'"):
        DefensiveDistillationTrainer(model=tiny_model(), args=arguments(tmp_path, "teacher"), teacher_model=tiny_model())
    with pytest.raises(TypeError, match="DefensiveDistillationTrainingArguments"):
        DefensiveDistillationTrainer(model=tiny_model(), args=hfcifar.CifarTrainingArguments(str(tmp_path)))
    with pytest.raises(ValueError, match="Unknown defensive-distillation preset"):
        train_defensive_distillation(tiny_data(), tmp_path, preset="imagenet")


def test_presets_name_the_papers_models():
    assert PRESETS["paper"]["teacher"] == "resnet101" and PRESETS["paper"]["student"] == "resnext50_32x4d"
    assert PRESETS["cpu"]["teacher"] == PRESETS["cpu"]["student"] == "fastnet"
    for preset in PRESETS.values():
        assert preset["temperature"] >= 20 and preset["label_smoothing_factor"] == 0.0


def test_teacher_then_student_are_saved_and_load_at_temperature_one(tmp_path):
    result = train_defensive_distillation(tiny_data(), tmp_path / "dd", teacher=tiny_model(0), student=tiny_model(1),
                                          temperature=20.0, max_steps=2, per_device_train_batch_size=8,
                                          plot_curves=False, disable_tqdm=True)
    assert result["teacher_metrics"]["train_loss"] > 0 and result["student_metrics"]["train_loss"] > 0
    images = torch.rand(4, 3, 32, 32)
    for stage in ("teacher", "student"):
        loaded = AutoModelForImageClassification.from_pretrained(tmp_path / "dd" / stage).eval()
        with torch.no_grad():
            # the saved model is the deployed one: raw logits, no temperature anywhere in the forward pass
            torch.testing.assert_close(loaded(images).logits, result[stage].eval()(images).logits)


def test_claim_counts_success_only_where_the_attack_changes_the_prediction():
    from hfcifar.attacks import FGSM, predict
    from hfcifar.methods.fgsm_cw_defensive_distillation.claim import attack_success, success_reduction

    torch.manual_seed(2)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10)).eval()  # varied predictions
    images = torch.rand(12, 3, 32, 32)
    labels = predict(model, images)  # the model's own predictions: every image starts correctly classified
    assert not attack_success(model, lambda x, y: x, images, labels, batch_size=5).any()
    strong = attack_success(model, FGSM(model, eps=0.5), images, labels, batch_size=5)
    assert strong.shape == (12,) and strong.any()
    undistilled, student = torch.tensor([1, 1, 1, 0]).numpy(), torch.tensor([0, 1, 0, 0]).numpy()
    assert success_reduction(undistilled, student)["margin"] == pytest.approx(0.5)
    assert success_reduction(undistilled[:1], student[:1])["standard_error"] == math.inf  # one image decides nothing
