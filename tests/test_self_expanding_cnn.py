"""Self Expanding CNNs (row 2): the natural expansion score against its definition, growth that leaves the outputs
unchanged, the optimizer and scheduler carried over, a checkpoint per size, resume after an expansion, two processes
growing identically, and bad input."""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import StopAt
from transformers import AutoModelForImageClassification, TrainerCallback

import hfcifar  # noqa: F401  (registers the Auto classes)
from hfcifar.data import CifarTensorDataset
from hfcifar.methods.self_expanding_cnn import (ExpansionScores, SelfExpandingTrainer, SelfExpandingTrainingArguments,
                                                expansion_ratio, growth_plan, natural_expansion_scores)
from hfcifar.models.preact_resnet import PreActResNetConfig, PreActResNetForImageClassification

REPO = Path(__file__).resolve().parents[1]


def tiny_model(seed: int = 0, depths=(1, 1)) -> PreActResNetForImageClassification:
    torch.manual_seed(seed)
    return PreActResNetForImageClassification(PreActResNetConfig(stem_width=4, hidden_sizes=[4, 8], depths=list(depths)))


def tiny_data(n: int = 48, seed: int = 0) -> CifarTensorDataset:
    generator = torch.Generator().manual_seed(seed)
    return CifarTensorDataset(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator),
                              torch.arange(n) % 10)


def batches(k: int = 3, m: int = 8, seed: int = 1) -> list[dict]:
    generator = torch.Generator().manual_seed(seed)
    return [{"pixel_values": torch.rand(m, 3, 32, 32, generator=generator),
             "labels": torch.randint(0, 10, (m,), generator=generator)} for _ in range(k)]


def loss_fn(model, batch):
    return model(**batch).loss


def arguments(path, **overrides) -> SelfExpandingTrainingArguments:
    settings = dict(output_dir=str(path), max_steps=5, per_device_train_batch_size=8, learning_rate=0.05,
                    optim="sgd", optim_args="momentum=0.9", lr_scheduler_type="linear", save_strategy="no",
                    report_to="none", disable_tqdm=True, plot_curves=False, seed=0, logging_steps=100,
                    expansion_threshold=1.000001, expansion_check_steps=2, fisher_batches=2, fisher_batch_size=8,
                    max_blocks_per_stage=3)
    settings.update(overrides)
    return SelfExpandingTrainingArguments(**settings)


# -- the score ------------------------------------------------------------------------------------------------------
def test_the_score_is_the_diagonal_natural_gradient_norm_of_each_network():
    """One probe scores every candidate at once; the numbers must equal gᵀ diag(F)⁻¹ g computed on the network with
    only that candidate added, parameter by parameter from the per-batch gradients."""
    model = tiny_model().train()
    data = batches()
    scores = natural_expansion_scores(model, data, loss_fn, stages=[0, 1], damping=1e-3)

    def per_parameter_terms(net):
        grads = [torch.autograd.grad(loss_fn(net, dict(b)), list(net.parameters()), allow_unused=True) for b in data]
        terms = []
        for i, p in enumerate(net.parameters()):
            stack = torch.stack([(g[i] if g[i] is not None else torch.zeros_like(p)).double() for g in grads])
            terms.append((stack.mean(0), stack.pow(2).mean(0)))
        return terms

    base_terms = per_parameter_terms(tiny_model().train())
    epsilon = 1e-3 * torch.cat([f.flatten() for _, f in base_terms]).mean()
    current = sum(float((g * g / (f + epsilon)).sum()) for g, f in base_terms)
    assert scores.current == pytest.approx(current, rel=1e-6)
    for stage in (0, 1):
        grown = tiny_model().train()
        block = grown.add_block(stage)
        block.load_state_dict(scores.blocks[stage])
        terms = per_parameter_terms(grown)
        new = {id(p) for p in block.parameters()}
        increase = sum(float((g * g / (f + epsilon)).sum()) for p, (g, f) in zip(grown.parameters(), terms) if id(p) in new)
        assert scores.increases[stage] == pytest.approx(increase, rel=1e-6)
        assert scores.increases[stage] > 0
        assert scores.ratios[stage] == pytest.approx((current + increase) / current, rel=1e-6)
        assert scores.new_parameters[stage] == sum(p.numel() for p in block.parameters())
    # g²/F ≤ 1 for every parameter: η is at most the number of parameters with a gradient
    assert scores.current <= model.num_parameters()
    assert all(param.grad is None for param in model.parameters())  # the network itself was not touched
    assert model.config.depths == [1, 1]


def test_the_debiased_estimator_subtracts_the_sampling_variance():
    model = tiny_model().train()
    data = batches(k=4)
    plain = natural_expansion_scores(model, data, loss_fn, stages=[1], estimator="empirical")
    debiased = natural_expansion_scores(model, data, loss_fn, stages=[1], estimator="debiased")
    assert debiased.current < plain.current and debiased.increases[1] < plain.increases[1]
    assert debiased.other["current"] == pytest.approx(plain.current)  # both are recorded
    with pytest.raises(ValueError, match="'empirical', 'debiased'"):
        natural_expansion_scores(model, data, loss_fn, stages=[1], estimator="kfac")
    with pytest.raises(ValueError, match="at least 2 Fisher batches"):
        natural_expansion_scores(model, data[:1], loss_fn, stages=[1])


def test_the_ratio_rule_of_the_paper():
    assert expansion_ratio(10.0, 10.0, 100) == 2.0
    assert expansion_ratio(10.0, 10.0, 100, regularization=1e-4) == pytest.approx(2.0 * math.exp(-1.0))
    assert expansion_ratio(0.0, 1.0, 5) == math.inf and expansion_ratio(0.0, 0.0, 5) == 1.0
    scores = ExpansionScores(10.0, {0: 5.0, 2: 12.0}, {0: 10, 2: 10}, {0: 1.5, 2: 2.2}, batches=4)
    assert scores.best_stage == 2 and scores.decide(2.0) == 2 and scores.decide(2.2) is None
    assert ExpansionScores(1.0, {}, {}, {}, batches=2).decide(1.5) is None


def test_growth_plan():
    assert growth_plan([1, 1, 1], [2, 1, 3]) == [0, 2, 2]
    with pytest.raises(ValueError, match="only gains blocks"):
        growth_plan([2, 1], [1, 1])


# -- growing inside the Trainer -------------------------------------------------------------------------------------
class RecordingTrainer(SelfExpandingTrainer):
    """Records the logits of fixed images right before and right after every expansion, in both batch-norm modes."""

    probe = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(3))

    def expand(self, stage, block_state=None):
        self.records = getattr(self, "records", [])
        before = {mode: self._logits(mode) for mode in ("eval", "train")}
        optimizer_before = self.optimizer
        super().expand(stage, block_state)
        after = {mode: self._logits(mode) for mode in ("eval", "train")}
        old, new = optimizer_before.optimizer, self.optimizer.optimizer
        carried = all(torch.equal(new.state[p][key], value) for p, state in old.state.items() for key, value in state.items())
        self.records.append((stage, before, after, optimizer_before, carried and len(new.state) == len(old.state)))

    @torch.no_grad()
    def _logits(self, mode):
        # on a copy: a forward in training mode moves the running statistics the eval-mode comparison reads
        model = getattr(copy.deepcopy(self.model), mode)()
        return model(self.probe.to(self.args.device)).logits


def test_expansion_leaves_the_outputs_unchanged_and_carries_the_optimizer_over(tmp_path):
    trainer = RecordingTrainer(model=tiny_model(), args=arguments(tmp_path, optim="adamw_torch", max_expansions=1),
                               train_dataset=tiny_data())
    trainer.train()
    assert len(trainer.records) == 1 and trainer.expansions[0]["step"] == 2
    stage, before, after, old_optimizer, carried = trainer.records[0]
    assert carried  # at the expansion: every existing parameter's Adam state as it was, no state for the new ones
    for mode in ("eval", "train"):
        assert (after[mode] - before[mode]).abs().max().item() <= 1e-5, mode
    assert trainer.depths == [1 + (stage == 0), 1 + (stage == 1)]
    assert trainer.score_history[0]["grown_stage"] == stage

    new, old = trainer.optimizer.optimizer, old_optimizer.optimizer
    assert new is not old and trainer.lr_scheduler.optimizer is trainer.optimizer
    block = trainer.model.preact_resnet.stages[stage][-1]
    new_ids = {id(p) for p in block.parameters()}
    # the rebuilt optimizer lists the parameters as a fresh optimizer of the grown network would (resume by position)
    fresh = [[id(p) for p in group["params"]] for group in new.param_groups]
    trainer.optimizer = None
    assert [[id(p) for p in g["params"]] for g in trainer.create_optimizer().param_groups] == fresh
    for param in trainer.model.parameters():
        if id(param) in new_ids:  # new parameters: 3 Adam steps since the expansion at step 2 of 5
            assert new.state[param]["step"] == 3
        else:  # existing ones: their state went on from the 2 steps before the expansion, 5 in all
            assert new.state[param]["step"] == 5
    assert [g["lr"] for g in new.param_groups] == pytest.approx([trainer.lr_scheduler.get_last_lr()[0]] * 2)
    assert {g["weight_decay"] for g in new.param_groups} == {0.0, trainer.args.weight_decay}


def test_the_learning_rate_schedule_continues_through_an_expansion(tmp_path):
    rates = []

    class Rates(TrainerCallback):
        def on_step_end(self, args, state, control, optimizer=None, **kwargs):
            rates.append(optimizer.param_groups[0]["lr"])

    plain = SelfExpandingTrainer(model=tiny_model(), args=arguments(tmp_path / "a", expansion_check_steps=100),
                                 train_dataset=tiny_data(), callbacks=[Rates()])
    plain.train()
    reference, rates[:] = list(rates), []
    grown = SelfExpandingTrainer(model=tiny_model(), args=arguments(tmp_path / "b"), train_dataset=tiny_data(),
                                 callbacks=[Rates()])
    grown.train()
    assert plain.expansions == [] and len(grown.expansions) == 2
    # the callback reads the optimizer handed to callbacks, which the expansion replaces: the same rates throughout
    assert rates == pytest.approx(reference)


def test_a_checkpoint_at_every_size_loads_with_from_pretrained(tmp_path):
    trainer = SelfExpandingTrainer(model=tiny_model(), args=arguments(tmp_path), train_dataset=tiny_data())
    trainer.train()
    sizes = sorted(p.name for p in (tmp_path / "sizes").iterdir())
    assert sizes == ["checkpoint-size-2", "checkpoint-size-3", "checkpoint-size-4"]  # 2 blocks, then 2 expansions
    assert [e["depths_after"] for e in trainer.expansions][-1] == trainer.depths
    for name in sizes:
        folder = tmp_path / "sizes" / name
        loaded = AutoModelForImageClassification.from_pretrained(folder)
        size = json.loads((folder / "size.json").read_text())
        assert sum(loaded.config.depths) == int(name.rsplit("-", 1)[1]) == size["num_blocks"]
        assert loaded.config.depths == size["depths"]
    final = AutoModelForImageClassification.from_pretrained(tmp_path / "sizes" / sizes[-1]).eval()
    trainer.model.eval()
    with torch.no_grad():
        pixels = torch.rand(2, 3, 32, 32)
        # the trained model runs channels-last, the loaded one contiguous: equal up to summation order
        torch.testing.assert_close(final(pixels).logits, trainer.model(pixels).logits, rtol=1e-5, atol=1e-6)
    summary = trainer.method_summary()["self_expansion"]
    assert summary["final_depths"] == trainer.depths and summary["depths_per_process"] == [trainer.depths]
    assert sum(s["steps"] for s in summary["size_segments"]) == 5 and len(summary["size_segments"]) == 3
    assert not list((tmp_path / "sizes").glob(".*"))  # no staging folder left behind


def test_resuming_after_an_expansion_rebuilds_the_grown_network(tmp_path):
    overrides = dict(max_steps=6, save_strategy="steps", save_steps=3, max_expansions=2, optim="adamw_torch")
    reference = SelfExpandingTrainer(model=tiny_model(), args=arguments(tmp_path / "a", **overrides),
                                     train_dataset=tiny_data())
    reference.train()
    interrupted = SelfExpandingTrainer(model=tiny_model(), args=arguments(tmp_path / "b", **overrides),
                                       train_dataset=tiny_data(), callbacks=[StopAt(3)])
    interrupted.train()
    checkpoint = tmp_path / "b" / "checkpoint-3"
    assert sum(json.loads((checkpoint / "config.json").read_text())["depths"]) == 3  # grown at step 2
    resumed = SelfExpandingTrainer(model=tiny_model(seed=5), args=arguments(tmp_path / "b", **overrides),
                                   train_dataset=tiny_data())
    resumed.train(resume_from_checkpoint=True)
    assert resumed.depths == reference.depths and len(resumed.expansions) == len(reference.expansions) == 2
    assert [e["step"] for e in resumed.expansions] == [2, 4]
    for (name, a), b in zip(reference.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)


def test_resume_refuses_a_checkpoint_of_another_network(tmp_path):
    trainer = SelfExpandingTrainer(model=tiny_model(), args=arguments(tmp_path / "a", max_steps=3, save_strategy="steps",
                                                                      save_steps=3), train_dataset=tiny_data())
    trainer.train()
    torch.manual_seed(0)
    wider = PreActResNetForImageClassification(PreActResNetConfig(stem_width=4, hidden_sizes=[4, 16], depths=[1, 1]))
    other = SelfExpandingTrainer(model=wider, args=arguments(tmp_path / "b"), train_dataset=tiny_data())
    with pytest.raises(ValueError, match=r"cannot grow into\. Resume with the model the run started from"):
        other.train(resume_from_checkpoint=str(tmp_path / "a" / "checkpoint-3"))
    bigger = SelfExpandingTrainer(model=tiny_model(depths=(3, 3)), args=arguments(tmp_path / "c"), train_dataset=tiny_data())
    with pytest.raises(ValueError, match="only gains blocks"):
        bigger.train(resume_from_checkpoint=str(tmp_path / "a" / "checkpoint-3"))


# -- bad input --------------------------------------------------------------------------------------------------------
def test_a_model_that_cannot_grow_is_rejected_with_the_fix(tmp_path):
    from hfcifar.models import create_model

    with pytest.raises(ValueError, match=r"add_block.*create_model\('preact-resnet8'\)"):
        SelfExpandingTrainer(model=create_model("fastnet-tiny"), args=arguments(tmp_path))
    optimizer = torch.optim.SGD(tiny_model().parameters(), lr=0.1)
    with pytest.raises(ValueError, match="rebuilds the optimizer"):
        SelfExpandingTrainer(model=tiny_model(), args=arguments(tmp_path), optimizers=(optimizer, None))


@pytest.mark.parametrize("field, value, message", [
    ("expansion_threshold", 1.0, "must be > 1"),
    ("fisher_batches", 1, "fisher_batches must be ≥ 2"),
    ("expansion_check_steps", 0, "expansion_check_steps must be an integer ≥ 1"),
    ("expansion_score_estimator", "kfac", "'empirical', 'debiased'"),
    ("fisher_damping", 0.0, "fisher_damping must be > 0"),
])
def test_bad_arguments_are_rejected(tmp_path, field, value, message):
    with pytest.raises(ValueError, match=message):
        arguments(tmp_path, **{field: value})


# -- the command line and two processes ------------------------------------------------------------------------------
def test_hfcifar_train_grows_a_preset_with_the_registered_trainer(cifar_source, tmp_path):
    from hfcifar.cli import main

    out = tmp_path / "grown"
    assert main(["train", "preact-resnet8", "--trainer", "self-expanding", "--dataset", cifar_source, "--output",
                 str(out), "--max-steps", "3", "--batch-size", "16", "--expansion_threshold", "1.000001",
                 "--expansion_check_steps", "1", "--max_expansions", "1", "--fisher_batches", "2",
                 "--fisher_batch_size", "8", "--no-progress"]) == 0
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["trainer_name"] == "self-expanding"
    assert sum(summary["self_expansion"]["final_depths"]) == 4
    assert AutoModelForImageClassification.from_pretrained(out).config.depths == summary["self_expansion"]["final_depths"]
    assert {p.name for p in (out / "sizes").iterdir()} == {"checkpoint-size-3", "checkpoint-size-4"}


@pytest.mark.parametrize("precision", [[], ["--bf16"]], ids=["fp32", "bf16"])
def test_two_processes_grow_identically(cifar_source, tmp_path, precision):
    """Under DDP every expansion re-wraps the model; in bf16 the accelerator's autocast `forward` is unwound first
    and applied again by the new wrapper."""
    out = tmp_path / "two"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0", "-m", "hfcifar.train",
        "preact-resnet8", "--trainer", "self-expanding", "--dataset", cifar_source, "--output", str(out),
        "--max-steps", "4", "--batch-size", "8", "--expansion_threshold", "1.000001", "--expansion_check_steps", "1",
        "--max_expansions", "2", "--fisher_batches", "2", "--fisher_batch_size", "8", "--no-progress", *precision,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "train_summary.json").read_text())
    expansion = summary["self_expansion"]
    assert summary["num_processes"] == 2 and summary["global_step"] == 4
    assert len(expansion["expansions"]) == 2 and sum(expansion["final_depths"]) == 5
    assert expansion["depths_per_process"] == [expansion["final_depths"]] * 2
    assert summary["parameters_in_sync"] is True
    assert summary["mixed_precision"] == ("bf16" if precision else "no")


def test_the_claims_cost_counts_every_size_it_passed_through():
    from types import SimpleNamespace

    from hfcifar.methods.self_expanding_cnn.claim import cost

    segments = [{"steps": 50, "seconds": 12.0, "scoring_seconds": 2.0},   # 0.2 s per step at the first size
                {"steps": 350, "seconds": 105.0, "scoring_seconds": 0.0}]  # 0.3 s per step at the second
    trainer = SimpleNamespace(size_segments=segments, scoring_seconds=2.0)
    measured = cost(trainer, grown_seconds=117.0, fixed_seconds=121.0, steps=400)
    assert measured["every_size_separately_steps"] == 800 and measured["grown_steps"] == 400
    assert measured["every_size_separately_seconds_estimate"] == pytest.approx(0.2 * 400 + 0.3 * 400)
    assert measured["seconds_ratio"] == pytest.approx(117.0 / 200.0)
