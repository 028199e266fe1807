"""EXAdam (row 12): the update against the paper's equations, the optimizer registry path through `CifarTrainer`
(`optim="exadam"`), state saved and restored on resume, bad input, the claim's steps-to-target rule."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import StopAt

from hfcifar.data import CifarTensorDataset
from hfcifar.methods.exadam import EXAdam
from hfcifar.methods.exadam.claim import steps_to_target
from hfcifar.models import create_model
from hfcifar.training import OPTIMIZERS, CifarTrainer, CifarTrainingArguments
from hfcifar.training.optimizers import parse_optim_args


def reference_steps(theta, grads, lr, beta1, beta2, eps, growing):
    """The paper's update written out for one scalar parameter, step by step."""
    m = v = 0.0
    for t, g in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        d1 = 1 + v / (v + eps) * beta2 ** t
        d2 = 1 + m * m / (m * m + eps) * beta1 ** t
        m_tilde = m / (1 - beta1 ** t) * d1
        v_tilde = v / (1 - beta2 ** t) * d2
        g_tilde = g / (1 - beta1 ** t) * d1
        alpha = lr * math.log(math.sqrt(2) * math.sqrt(t + 1)) if growing else lr
        theta = theta - alpha * (m_tilde + g_tilde) / (math.sqrt(v_tilde) + eps)
    return theta


@pytest.mark.parametrize("growing", [True, False])
def test_update_follows_the_papers_equations(growing):
    grads = [0.3, -1.2, 0.05, 2.0, -0.7]
    p = torch.nn.Parameter(torch.tensor([1.5], dtype=torch.float64))
    optimizer = EXAdam([p], lr=0.01, betas=(0.9, 0.99), eps=1e-8, growing_step=growing)
    for g in grads:
        p.grad = torch.tensor([g], dtype=torch.float64)
        optimizer.step()
    expected = reference_steps(1.5, grads, 0.01, 0.9, 0.99, 1e-8, growing)
    assert p.item() == pytest.approx(expected, rel=1e-12)
    assert optimizer.state[p]["step"] == len(grads)


def test_the_three_additions_change_the_update_from_adams():
    torch.manual_seed(0)
    w = torch.randn(10, dtype=torch.float64)
    a, b = torch.nn.Parameter(w.clone()), torch.nn.Parameter(w.clone())
    ex, adam = EXAdam([a], lr=1e-2, growing_step=False), torch.optim.Adam([b], lr=1e-2)
    grad = torch.randn(10, dtype=torch.float64)
    a.grad, b.grad = grad.clone(), grad.clone()
    ex.step()
    adam.step()
    # first step: Adam moves every weight by lr·sign(g); EXAdam's m̃ + g̃ doubles (d1 ≈ 1 + β2) the numerator
    assert torch.allclose(b - w, -1e-2 * grad.sign(), atol=1e-9)
    assert not torch.allclose(a, b)
    assert ((a - w).abs() > (b - w).abs()).all()


def test_weight_decay_is_decoupled():
    p = torch.nn.Parameter(torch.tensor([2.0]))
    optimizer = EXAdam([p], lr=0.1, weight_decay=0.5, growing_step=False)
    p.grad = torch.zeros(1)
    optimizer.step()  # zero gradient: only the decay moves it
    assert p.item() == pytest.approx(2.0 * (1 - 0.1 * 0.5))


@pytest.mark.parametrize("kwargs, match", [
    ({"lr": -1.0}, "lr must be"),
    ({"betas": (0.9, 1.0)}, "betas must be"),
    ({"eps": 0.0}, "eps must be"),
    ({"weight_decay": -0.1}, "weight_decay must be"),
])
def test_bad_hyperparameters_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EXAdam([torch.nn.Parameter(torch.zeros(1))], **kwargs)


def test_the_optimizer_registry_finds_exadam_by_discovery():
    assert OPTIMIZERS.get("exadam") is EXAdam
    assert "exadam" in OPTIMIZERS.names()


def test_optim_args_parse_as_python_literals():
    assert parse_optim_args("growing_step=False, betas=(0.9, 0.99),eps=1e-6") == {
        "growing_step": False, "betas": (0.9, 0.99), "eps": 1e-6}
    assert parse_optim_args(None) == {}
    with pytest.raises(ValueError, match="key=value"):
        parse_optim_args("growing_step")


def test_training_arguments_accept_exadam_and_check_its_options(tmp_path):
    args = CifarTrainingArguments(output_dir=str(tmp_path), optim="exadam", optim_args="growing_step=False")
    assert args.optim == "exadam" and args.to_dict()["optim"] == "exadam"
    with pytest.raises(ValueError, match=r"\['momentum'\] are not arguments of EXAdam"):
        CifarTrainingArguments(output_dir=str(tmp_path), optim="exadam", optim_args="momentum=0.9")
    with pytest.raises(ValueError):
        CifarTrainingArguments(output_dir=str(tmp_path), optim="exadamm")


def tiny_data(n=48, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return CifarTensorDataset(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator),
                              torch.randint(0, 10, (n,), generator=generator))


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return create_model("fastnet-tiny")


def arguments(folder, **overrides):
    settings = dict(output_dir=str(folder), optim="exadam", learning_rate=1e-3, weight_decay=1e-4,
                    optim_args="betas=(0.8, 0.99)", per_device_train_batch_size=16, max_steps=6, seed=3,
                    save_strategy="steps", save_steps=1, save_total_limit=None, logging_steps=1,
                    channels_last=False, disable_tqdm=True)
    settings.update(overrides)
    return CifarTrainingArguments(**settings)


def test_cifar_trainer_builds_exadam_and_resume_gives_the_uninterrupted_weights(tmp_path):
    reference = CifarTrainer(model=tiny_model(), args=arguments(tmp_path / "a"), train_dataset=tiny_data())
    reference.train()
    assert isinstance(reference.optimizer.optimizer if hasattr(reference.optimizer, "optimizer")
                      else reference.optimizer, EXAdam)
    groups = reference.optimizer.param_groups
    assert {g["weight_decay"] for g in groups} == {1e-4, 0.0} and all(g["betas"] == (0.8, 0.99) for g in groups)

    interrupted = CifarTrainer(model=tiny_model(), args=arguments(tmp_path / "b"), train_dataset=tiny_data(),
                               callbacks=[StopAt(3)])
    interrupted.train()
    resumed = CifarTrainer(model=tiny_model(seed=7), args=arguments(tmp_path / "b"), train_dataset=tiny_data())
    resumed.train(resume_from_checkpoint=str(tmp_path / "b" / "checkpoint-3"))
    state = resumed.optimizer.state_dict()["state"]
    assert state and all(entry["step"] == 6 for entry in state.values())  # restored at 3, three more steps
    for (name, a), b in zip(reference.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)


def test_steps_to_target_takes_the_first_probe_at_or_above_it():
    history = [(0, 0.1), (25, 0.5), (50, 0.71), (75, 0.69), (100, 0.8)]
    assert steps_to_target(history, 0.7, 100) == (50, False)
    assert steps_to_target(history, 0.9, 100) == (100, True)


def test_hfcifar_train_takes_optim_exadam_from_the_command_line(cifar_source, tmp_path):
    from hfcifar.cli import UsageError, main, parse_train

    args = parse_train(["fastnet-tiny", "--optim", "exadam", "--optim_args", "growing_step=False",
                        "--learning_rate", "1e-3"]).training_arguments()
    assert args.optim == "exadam" and args.optim_args == "growing_step=False"
    with pytest.raises(UsageError, match="Unknown optimizer 'exadamm'"):
        parse_train(["fastnet-tiny", "--optim", "exadamm"]).training_arguments()
    out = tmp_path / "run"
    assert main(["train", "fastnet-tiny", "--dataset", cifar_source, "--output", str(out), "--max-steps", "2",
                 "--optim", "exadam", "--learning_rate", "1e-3", "--no-progress"]) == 0
    assert json.loads((out / "train_summary.json").read_text())["global_step"] == 2


def test_another_optimizer_drops_the_recipes_optim_args():
    from hfcifar.training import CLASSIFIER, TrainingRun

    settings = TrainingRun.from_options("fastnet-tiny", optim="exadam").settings(CLASSIFIER)
    assert settings["optim"] == "exadam" and "optim_args" not in settings  # quick's momentum=0.9,nesterov=True
    kept = TrainingRun.from_options("fastnet-tiny", optim="exadam", optim_args="growing_step=False").settings(CLASSIFIER)
    assert kept["optim_args"] == "growing_step=False"
    assert TrainingRun.from_options("fastnet-tiny").settings(CLASSIFIER)["optim_args"] == "momentum=0.9,nesterov=True"
