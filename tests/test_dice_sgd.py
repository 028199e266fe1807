"""DiceSGD / DP-SGD (row 36): the update against Algorithm 1, the noise scale, Poisson sampling, the accountant,
`DPTrainer` end to end (summary, card, resume, the command line, two processes) and the refusals of bad input."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import StopAt

pytest.importorskip("opacus")

from hfcifar.data import CifarTensorDataset  # noqa: E402
from hfcifar.methods.dice_sgd import (DiceSGDOptimizer, DiceSGDTrainer, DiceSGDTrainingArguments,  # noqa: E402
                                      DPTrainer, DPTrainingArguments, PoissonBatchSampler, noise_multiplier_for,
                                      rdp_epsilon)
from hfcifar.models import create_model  # noqa: E402
from hfcifar.training import trainer_classes  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def clip(u: torch.Tensor, c: float) -> torch.Tensor:
    return u * min(1.0, c / (float(u.norm()) + 1e-6))


def set_per_sample_gradients(params, per_sample: torch.Tensor) -> None:
    """Give the flat parameter vector per-sample gradients `per_sample` [B, D], as Opacus' hooks would."""
    offset = 0
    for p in params:
        p.grad_sample = per_sample[:, offset:offset + p.numel()].reshape(len(per_sample), *p.shape).clone()
        p.summed_grad = None
        offset += p.numel()


def test_dicesgd_step_follows_algorithm_1():
    # v_t = (1/B) Σ clip(g_i, C1) + clip(e_t, C2); x_{t+1} = x_t − η v_t (σ = 0); e_{t+1} = e_t + (1/B) Σ g_i − v_t
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(3, 2)), torch.nn.Parameter(torch.randn(2))]
    lr, c1, c2, batch = 0.3, 0.5, 0.8, 4
    optimizer = DiceSGDOptimizer(torch.optim.SGD(params, lr=lr), noise_multiplier=0.0, max_grad_norm=c1,
                                 max_error_norm=c2, expected_batch_size=batch)
    x = torch.cat([p.detach().reshape(-1) for p in params]).clone()
    e = torch.zeros_like(x)
    for step in range(4):
        g = torch.randn(3 if step == 2 else batch, x.numel()) * (1 + step)  # Poisson: batch sizes vary
        set_per_sample_gradients(params, g)
        v = sum(clip(gi, c1) for gi in g) / batch + clip(e, c2)
        x, e = x - lr * v, e + g.sum(0) / batch - v
        optimizer.step()
        got = torch.cat([p.detach().reshape(-1) for p in params])
        torch.testing.assert_close(got, x, msg=f"parameters after step {step}")
        torch.testing.assert_close(torch.cat([t.reshape(-1) for t in optimizer.error]), e, msg=f"error state {step}")
    assert float(e.norm()) > 0  # clipping did remove something, and the state carries it


def test_without_clipping_and_error_dicesgd_is_plain_sgd():
    # C1 above every gradient norm: nothing is clipped, e stays 0 and the step is SGD on the batch mean
    torch.manual_seed(1)
    params = [torch.nn.Parameter(torch.randn(5))]
    optimizer = DiceSGDOptimizer(torch.optim.SGD(params, lr=0.1), noise_multiplier=0.0, max_grad_norm=1e6,
                                 max_error_norm=1.0, expected_batch_size=6)
    g = torch.randn(6, 5)
    before = params[0].detach().clone()
    set_per_sample_gradients(params, g)
    optimizer.step()
    torch.testing.assert_close(params[0].detach(), before - 0.1 * g.mean(0))
    assert float(optimizer.error[0].abs().max()) < 1e-6


def _two_process_dice_worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    params = [torch.nn.Parameter(torch.zeros(5))]
    optimizer = DiceSGDOptimizer(torch.optim.SGD(params, lr=1.0), noise_multiplier=1.0, max_grad_norm=0.5,
                                 max_error_norm=0.5, expected_batch_size=6)
    for step in range(3):
        g = torch.randn(6, 5, generator=torch.Generator().manual_seed(step)) * 3
        set_per_sample_gradients(params, g[rank::2])  # each process holds half of the batch
        torch.manual_seed(100 + step)  # the noise stream
        optimizer.step()
    torch.save({"params": params[0].detach(), "error": optimizer.error[0]}, os.path.join(out_dir, f"{rank}.pt"))
    torch.distributed.destroy_process_group()


def test_two_processes_reduce_the_sums_and_add_the_noise_once(tmp_path):
    # the update on 2 processes holding half a batch each equals the 1-process update on the whole batch, noise
    # included: the clipped and full sums are all-reduced and the noise of process 0 is added once
    torch.multiprocessing.spawn(_two_process_dice_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    params = [torch.nn.Parameter(torch.zeros(5))]
    optimizer = DiceSGDOptimizer(torch.optim.SGD(params, lr=1.0), noise_multiplier=1.0, max_grad_norm=0.5,
                                 max_error_norm=0.5, expected_batch_size=6)
    for step in range(3):
        set_per_sample_gradients(params, torch.randn(6, 5, generator=torch.Generator().manual_seed(step)) * 3)
        torch.manual_seed(100 + step)
        optimizer.step()
    for rank in range(2):
        saved = torch.load(tmp_path / f"{rank}.pt")
        torch.testing.assert_close(saved["params"], params[0].detach(), msg=f"parameters on process {rank}")
        torch.testing.assert_close(saved["error"], optimizer.error[0], msg=f"error state on process {rank}")


def test_noise_has_the_accounted_scale():
    # w_t ~ N(0, (σ (C1 + C2) / B)²) per coordinate for DiceSGD, N(0, (σ C1 / B)²) for Opacus' DP-SGD-GC
    from opacus.optimizers import DPOptimizer

    sigma, c1, c2, batch = 1.5, 0.2, 0.6, 10
    for private, scale in ((lambda o: DiceSGDOptimizer(o, noise_multiplier=sigma, max_grad_norm=c1,
                                                       max_error_norm=c2, expected_batch_size=batch), c1 + c2),
                           (lambda o: DPOptimizer(o, noise_multiplier=sigma, max_grad_norm=c1,
                                                  expected_batch_size=batch), c1)):
        torch.manual_seed(2)
        params = [torch.nn.Parameter(torch.zeros(40_000))]
        optimizer = private(torch.optim.SGD(params, lr=1.0))
        set_per_sample_gradients(params, torch.zeros(batch, 40_000))
        optimizer.step()
        measured = float(params[0].detach().std())
        assert measured == pytest.approx(sigma * scale / batch, rel=0.02)


def test_poisson_sampler_draws_each_image_at_the_rate_across_processes():
    n, q = 2_000, 0.05
    counts = torch.zeros(n)
    sizes = []
    for rank in range(2):
        sampler = PoissonBatchSampler(n, q, seed=3, rank=rank, world_size=2)
        assert len(sampler) == int(1 / q) == 20
        for epoch in range(25):
            sampler.set_epoch(epoch)
            for batch in sampler:
                assert all(i % 2 == rank for i in batch)  # each process draws only from its shard
                counts[batch] += 1
                sizes.append(len(batch))
    assert float(counts.mean()) / (25 * 20) == pytest.approx(q, rel=0.05)
    assert float(torch.tensor(sizes, dtype=torch.float).var()) > 10  # Poisson sizes, not a fixed batch
    again = PoissonBatchSampler(n, q, seed=3, rank=1, world_size=2)
    again.set_epoch(7)
    sampler.set_epoch(7)
    assert list(again) == list(sampler)  # reseeded per epoch: a resumed run redraws the same batches
    tiny = PoissonBatchSampler(10, 0.05, seed=0)
    assert any(len(batch) == 0 for batch in tiny)  # empty batches are steps too


def test_noise_multiplier_meets_the_budget_and_epsilon_is_the_accountants():
    from opacus.accountants import RDPAccountant

    sigma = noise_multiplier_for(8.0, 1e-5, 0.03, 300)
    spent = rdp_epsilon(sigma, 0.03, 300, 1e-5)
    assert 7.98 <= spent <= 8.0
    assert rdp_epsilon(sigma * 1.2, 0.03, 300, 1e-5) < spent < rdp_epsilon(sigma, 0.03, 600, 1e-5)
    accountant = RDPAccountant()
    for _ in range(300):
        accountant.step(noise_multiplier=sigma, sample_rate=0.03)
    assert accountant.get_epsilon(delta=1e-5) == pytest.approx(spent, abs=1e-9)


def tiny_data(n=48, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return CifarTensorDataset(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator),
                              torch.randint(0, 10, (n,), generator=generator))


def tiny_model(seed=0, **overrides):
    torch.manual_seed(seed)
    return create_model("convnet", net_width=8, **overrides)


def arguments(folder, args_class=DPTrainingArguments, **overrides):
    settings = dict(output_dir=str(folder), per_device_train_batch_size=8, max_steps=4, learning_rate=0.5,
                    optim="sgd", optim_args="momentum=0.9", max_grad_norm=0.1, target_epsilon=4.0,
                    target_delta=1e-3, seed=3, logging_steps=1, save_strategy="no", disable_tqdm=True)
    settings.update(overrides)
    return args_class(**settings)


@pytest.mark.parametrize("error_feedback", [False, True])
def test_dp_trainer_spends_the_budget_and_reports_it(tmp_path, error_feedback):
    trainer = DPTrainer(tiny_model(), arguments(tmp_path, error_feedback=error_feedback), train_dataset=tiny_data())
    trainer.train()
    summary = trainer.method_summary()
    dp = summary["differential_privacy"]
    assert dp["algorithm"] == ("DiceSGD" if error_feedback else "DP-SGD-GC")
    assert dp["steps"] == trainer.state.global_step == 4 and dp["sample_rate"] == 8 / 48
    # the reported ε is the accountant's for (σ, q, steps), and the planned steps spend (almost) the whole budget
    assert dp["epsilon"] == pytest.approx(rdp_epsilon(dp["noise_multiplier"], 8 / 48, 4, 1e-3), abs=1e-9)
    assert 3.98 <= dp["epsilon"] <= 4.0
    assert dp["noise_std_on_summed_gradient"] == pytest.approx(
        dp["noise_multiplier"] * (0.2 if error_feedback else 0.1))
    assert summary["card_rows"][0][0] == "Differential privacy"
    assert f"ε = {dp['epsilon']:.3g}, δ = 0.001" in summary["card_rows"][0][1]
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert logged[-1]["epsilon"] == pytest.approx(dp["epsilon"], abs=1e-3) and "grad_norm" not in logged[-1]
    optimizer = trainer.optimizer.optimizer
    assert isinstance(optimizer, DiceSGDOptimizer) == error_feedback
    if error_feedback:
        assert sum(float(e.norm()) for e in optimizer.error) > 0


def test_resume_continues_the_ledger_and_the_error_state(tmp_path):
    def run(folder, **kwargs):
        return DiceSGDTrainer(tiny_model(), arguments(folder, DiceSGDTrainingArguments, save_strategy="steps",
                                                      save_steps=1, save_total_limit=None),
                              train_dataset=tiny_data(), **kwargs)

    reference = run(tmp_path / "a")
    reference.train()
    interrupted = run(tmp_path / "b", callbacks=[StopAt(2)])
    interrupted.train()
    assert interrupted.accountant.history[0][2] == 2
    assert (tmp_path / "b" / "checkpoint-2" / "dice_error.safetensors").is_file()
    resumed = DiceSGDTrainer(tiny_model(seed=9), arguments(tmp_path / "b", DiceSGDTrainingArguments),
                             train_dataset=tiny_data())
    resumed.train(resume_from_checkpoint=str(tmp_path / "b" / "checkpoint-2"))
    assert resumed.accountant.history == reference.accountant.history  # 4 steps in the ledger, not 2
    assert resumed.epsilon == pytest.approx(reference.epsilon, abs=1e-12)
    for a, b in zip(reference.optimizer.optimizer.error, resumed.optimizer.optimizer.error):
        torch.testing.assert_close(a, b)
    for (name, a), b in zip(reference.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    other = DPTrainer(tiny_model(), arguments(tmp_path / "b"), train_dataset=tiny_data())  # the GC variant
    with pytest.raises(ValueError, match="trained with algorithm = DiceSGD"):
        other.train(resume_from_checkpoint=str(tmp_path / "b" / "checkpoint-2"))


@pytest.mark.parametrize("overrides, match", [
    ({"target_epsilon": 0}, "target_epsilon must be a finite privacy budget ε > 0"),
    ({"target_epsilon": -1.0}, "target_epsilon must be a finite privacy budget ε > 0"),
    ({"target_epsilon": math.inf}, "target_epsilon must be a finite privacy budget ε > 0"),
    ({"target_delta": 0.0}, r"target_delta must lie in \(0, 1\)"),
    ({"target_delta": 1.0}, r"target_delta must lie in \(0, 1\)"),
    ({"max_grad_norm": 0.0}, "max_grad_norm is DP-SGD's per-sample clipping norm C1 and must be a finite number > 0"),
    ({"max_grad_norm": -0.5}, "max_grad_norm is DP-SGD's per-sample clipping norm C1"),
    ({"max_error_norm": 0.0}, "max_error_norm is DiceSGD's clipping norm C2"),
    ({"gradient_accumulation_steps": 2}, "gradient_accumulation_steps must be 1"),
    ({"mixup_alpha": 0.2}, "mixup_alpha cannot be used with DP training"),
])
def test_bad_privacy_arguments_are_refused_with_the_fix(tmp_path, overrides, match):
    with pytest.raises(ValueError, match=match):
        arguments(tmp_path, **overrides)


def test_a_batchnorm_model_is_refused_with_the_fix(tmp_path):
    with pytest.raises(ValueError, match=r"BatchNorm.*ModuleValidator\.fix"):
        DPTrainer(tiny_model(net_norm="batchnorm"), arguments(tmp_path), train_dataset=tiny_data())


def test_non_finite_per_sample_gradients_stop_training_with_a_message(tmp_path):
    model = tiny_model()
    with torch.no_grad():
        model.classifier.weight.fill_(float("nan"))
    trainer = DPTrainer(model, arguments(tmp_path), train_dataset=tiny_data())
    with pytest.raises(FloatingPointError, match="non-finite per-sample gradient.*learning_rate"):
        trainer.train()


def test_a_batch_larger_than_the_data_is_refused(tmp_path):
    trainer = DPTrainer(tiny_model(), arguments(tmp_path, per_device_train_batch_size=64), train_dataset=tiny_data())
    with pytest.raises(ValueError, match="exceeds the 48 training images"):
        trainer.train()


def test_both_variants_are_registered_trainers():
    assert trainer_classes("dp") == (DPTrainer, DPTrainingArguments)
    assert trainer_classes("dice-sgd") == (DiceSGDTrainer, DiceSGDTrainingArguments)
    assert DiceSGDTrainingArguments(output_dir="x").error_feedback is True
    assert DPTrainingArguments(output_dir="x").error_feedback is False


def test_hfcifar_train_with_trainer_dp_writes_epsilon_to_summary_and_card(cifar_source, tmp_path):
    from hfcifar.cli import main
    from hfcifar.hub.cards import render_card

    out = tmp_path / "dp"
    assert main(["train", "convnet", "--trainer", "dp", "--target_epsilon", "8", "--target_delta", "1e-5",
                 "--max_grad_norm", "0.5", "--dataset", cifar_source, "--output", str(out), "--batch-size", "16",
                 "--max-steps", "2", "--no-progress"]) == 0
    summary = json.loads((out / "train_summary.json").read_text())
    dp = summary["differential_privacy"]
    assert summary["trainer_name"] == "dp" and dp["algorithm"] == "DP-SGD-GC" and dp["steps"] == 2
    assert dp["epsilon"] == pytest.approx(rdp_epsilon(dp["noise_multiplier"], dp["sample_rate"], 2, 1e-5), abs=1e-9)
    card = render_card(out, write=False)
    assert "Differential privacy" in str(card) and f"ε = {dp['epsilon']:.3g}" in str(card)


@pytest.mark.parametrize("trainer, algorithm", [("dice-sgd", "DiceSGD"),
                                                pytest.param("dp", "DP-SGD-GC", marks=pytest.mark.slow)])
def test_dp_trains_on_two_processes_with_one_ledger(cifar_source, tmp_path, trainer, algorithm):
    out = tmp_path / "two"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
               "-m", "hfcifar.train", "convnet", "--trainer", trainer,
               "--dataset", cifar_source, "--output", str(out), "--batch-size", "8", "--max-steps", "3",
               "--no-progress"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "train_summary.json").read_text())
    dp = summary["differential_privacy"]
    assert summary["num_processes"] == 2 and summary["parameters_in_sync"] is True and summary["global_step"] == 3
    # expected batch 8 per process: q counts both processes' share, and the ledger has one entry per global step
    assert dp["expected_batch_size"] == 16 and dp["steps"] == 3 and dp["algorithm"] == algorithm
    assert dp["sample_rate"] == pytest.approx(16 / summary["num_train_examples"])
