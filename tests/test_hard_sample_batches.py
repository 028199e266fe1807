"""Row 21, hard-sample mini-batches: the top-δ selection, the scoring passes and their cost, the trainer from Python,
the command line and two processes, bad input, and the claim check's time-to-target arithmetic."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from accelerate.data_loader import BatchSamplerShard
from conftest import StopAt

from hfcifar.cli import main
from hfcifar.data import CifarTensorDataset
from hfcifar.methods.hard_sample_batches import (HardBatchSampler, HardBatchTrainer, HardBatchTrainingArguments,
                                                 kept_count)
from hfcifar.methods.hard_sample_batches.claim import ValidationProbe, reduction, time_to_target
from hfcifar.models import create_model
from hfcifar.training import CifarTrainingArguments, trainer_classes

REPO = Path(__file__).resolve().parents[1]


def indexed_dataset(n: int = 40) -> CifarTensorDataset:
    """Image i is filled with the value i, so a training batch shows which indices it holds (n ≤ 256)."""
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 3, 32, 32).contiguous()
    return CifarTensorDataset(images, torch.arange(n) % 10)


def arguments(tmp_path, **overrides) -> HardBatchTrainingArguments:
    settings = dict(per_device_train_batch_size=4, num_train_epochs=2, learning_rate=0.05, optim="sgd",
                    crop_padding=0, flip=False, plot_curves=False, save_strategy="no", report_to="none",
                    disable_tqdm=True, logging_steps=100, seed=0)
    settings.update(overrides)
    return HardBatchTrainingArguments(str(tmp_path / "run"), **settings)


class RecordingTrainer(HardBatchTrainer):
    """Records the indices of every training batch (read from `indexed_dataset`'s pixel values)."""

    def training_step(self, model, inputs, num_items_in_batch=None):
        self.trained = getattr(self, "trained", [])
        self.trained.append(inputs["pixel_values"][:, 0, 0, 0].tolist())
        return super().training_step(model, inputs, num_items_in_batch)


# -- the selection --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("candidates, fraction, kept",
                         [(10, 0.3, 3), (33, 0.5, 17), (7, 1.0, 7), (5, 0.01, 1), (0, 0.5, 0)])
def test_top_delta_keeps_the_ceiling_of_delta_times_the_candidates(candidates, fraction, kept):
    assert kept_count(candidates, fraction) == kept


def test_the_sampler_yields_exactly_the_highest_loss_candidates_in_their_random_order():
    calls = []

    def score(pool):  # a "loss" that favours candidates holding large indices
        calls.append(len(pool))
        return torch.tensor([float(sum(candidate[0])) for candidate in pool])

    sampler = HardBatchSampler(20, batch_size=4, fraction=0.4, score=score, seed=3)
    assert (sampler.num_candidates, sampler.num_kept, len(sampler)) == (5, 2, 2)
    sampler.set_epoch(1)
    batches = list(sampler)
    candidates = [c[0] for c in sampler.candidates(1)]
    losses = [sum(c) for c in candidates]
    expected = sorted(sorted(range(5), key=lambda i: -losses[i])[:2])  # the two largest, in candidate order
    assert batches == [candidates[i] for i in expected]
    assert calls == [5] and sampler.history[-1].kept == expected and sampler.history[-1].epoch == 1
    # a new epoch is a new permutation; the same (seed, epoch) is the same one
    assert sampler.candidates(2) != sampler.candidates(1)
    assert [c[0] for c in HardBatchSampler(20, 4, 0.4, score, seed=3).candidates(1)] == candidates
    assert sorted(i for c in candidates for i in c) == list(range(20))


def test_pools_are_scored_and_selected_one_at_a_time():
    calls = []
    sampler = HardBatchSampler(30, batch_size=3, fraction=0.5, pool_size=4,
                               score=lambda pool: calls.append(len(pool)) or torch.rand(len(pool)))
    assert sampler.pools() == [4, 4, 2] and sampler.num_kept == 2 + 2 + 1
    assert len(list(sampler)) == len(sampler) == 5 and calls == [4, 4, 2]


def test_the_random_control_keeps_as_many_batches_without_scoring_and_is_seeded():
    a = HardBatchSampler(50, batch_size=5, fraction=0.3, selection="random", seed=1)
    b = HardBatchSampler(50, batch_size=5, fraction=0.3, selection="random", seed=1)
    assert len(list(a)) == len(a) == 3 and list(b) == list(HardBatchSampler(50, 5, 0.3, selection="random", seed=1))
    assert a.history[0].scores is None


def test_under_two_processes_each_gets_its_chunk_of_every_kept_candidate():
    # what Accelerate does with the sampler under `accelerate launch --num_processes 2`
    sampler = HardBatchSampler(22, batch_size=3, fraction=0.5, num_processes=2, seed=0,
                               score=lambda pool: torch.arange(len(pool), dtype=torch.float))
    candidates = sampler.candidates(0)  # 4 candidates (6, 6, 6, 4 images), each split in two chunks
    assert [[len(chunk) for chunk in c] for c in candidates] == [[3, 3]] * 3 + [[2, 2]]
    shards = []
    for rank in range(2):
        sampler.set_epoch(0)
        shard = BatchSamplerShard(sampler, num_processes=2, process_index=rank)
        shards.append(list(shard))
        assert len(shard) == len(shards[rank]) == 2
    kept = [candidates[2], candidates[3]]  # the highest "loss" is the latest candidate
    assert shards == [[kept[0][0], kept[1][0]], [kept[0][1], kept[1][1]]]


# -- the trainer ----------------------------------------------------------------------------------------------------
def test_training_runs_on_the_kept_batches_and_counts_the_scoring_cost(tmp_path):
    data = indexed_dataset(40)  # batch 4: 10 candidates, δ = 0.5 keeps 5 per epoch
    trainer = RecordingTrainer(model=create_model("fastnet-tiny"), args=arguments(tmp_path), train_dataset=data)
    trainer.train()
    sampler = trainer.hard_batch_sampler
    assert trainer.state.global_step == 10 and len(trainer.trained) == 10
    expected = [sampler.candidates(s.epoch)[i][0] for s in sampler.history for i in s.kept]
    assert trainer.trained == expected and [s.epoch for s in sampler.history] == [0, 1]
    summary = trainer.method_summary()
    cost = summary["hard_batches"]
    assert (cost["candidate_batches_per_epoch"], cost["trained_batches_per_epoch"]) == (10, 5)
    assert cost["images_scored"] == 80 and cost["scoring_forward_passes"] == 20 and cost["scoring_seconds"] > 0
    for selection in cost["selections"]:  # the kept candidates are the hard ones
        assert selection["mean_loss_kept"] >= selection["mean_loss_candidates"]
    assert "highest-loss" in summary["card_rows"][0][1]


def test_scores_are_each_candidates_mean_loss_and_scoring_leaves_no_trace(tmp_path):
    data = indexed_dataset(24)
    torch.manual_seed(0)
    model = create_model("fastnet-tiny")
    trainer = HardBatchTrainer(model=model, args=arguments(tmp_path), train_dataset=data)
    candidates = [[[0, 5, 9]], [[1, 2, 3, 4]], [[7]]]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    model.eval()
    scores = trainer.score_candidates(candidates)
    # train mode (batch statistics), nothing changed afterwards: weights, running statistics, mode, random state
    assert not model.training and torch.equal(rng, torch.get_rng_state())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    model.train()
    with torch.no_grad():
        for score, (chunk,) in zip(scores[:2], candidates[:2]):
            batch = data.__getitems__(chunk)
            loss = model(pixel_values=batch["pixel_values"].float() / 255, labels=batch["labels"]).loss
            assert math.isclose(float(score), float(loss), rel_tol=1e-4)
    assert trainer.scoring_cost.images_scored == 8 and trainer.scoring_cost.forward_passes == 3


def test_delta_one_trains_every_batch_and_random_trains_as_many_without_scoring(tmp_path):
    data = indexed_dataset(40)
    full = RecordingTrainer(model=create_model("fastnet-tiny"), args=arguments(tmp_path, hard_batch_fraction=1.0,
                                                                                num_train_epochs=1), train_dataset=data)
    full.train()
    assert sorted(i for batch in full.trained for i in batch) == list(range(40))
    control = HardBatchTrainer(model=create_model("fastnet-tiny"), train_dataset=data,
                               args=arguments(tmp_path, hard_batch_selection="random"))
    control.train()
    assert control.state.global_step == 10 and control.scoring_cost.images_scored == 0


def test_the_trainer_is_registered_and_trains_from_the_command_line(cifar_source, tmp_path):
    assert trainer_classes("hard-batches") == (HardBatchTrainer, HardBatchTrainingArguments)
    out = tmp_path / "cli"
    assert main(["train", "fastnet-tiny", "--trainer", "hard-batches", "--hard_batch_fraction", "0.25", "--dataset",
                 cifar_source, "--output", str(out), "--max-steps", "3", "--batch-size", "64", "--no-progress"]) == 0
    summary = json.loads((out / "train_summary.json").read_text())
    assert (summary["trainer_name"], summary["global_step"]) == ("hard-batches", 3)
    hard = summary["hard_batches"]
    assert hard["fraction"] == 0.25 and hard["trained_batches_per_epoch"] == kept_count(
        hard["candidate_batches_per_epoch"], 0.25)
    scored_epochs = math.ceil(3 / hard["trained_batches_per_epoch"])  # every epoch begun was scored once, whole
    assert hard["images_scored"] == scored_epochs * summary["num_train_examples"]


# -- bad input ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, message", [
    ({"hard_batch_fraction": 0.0}, r"must lie in \(0, 1\]"),
    ({"hard_batch_fraction": 1.5}, r"must lie in \(0, 1\], e.g. 0.5"),
    ({"hard_batch_fraction": -0.2}, r"must lie in \(0, 1\]"),
    ({"hard_batch_selection": "hardest"}, r"one of \('loss', 'random'\)"),
    ({"hard_batch_scoring_mode": "inference"}, r"one of \('train', 'eval'\)"),
    ({"hard_batch_pool_size": -1}, r"integer ≥ 0 \(0: select among all"),
    ({"train_sampling_strategy": "group_by_length"}, "Leave it at 'random'"),
])
def test_bad_arguments_are_refused_with_the_fix(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        arguments(tmp_path, **overrides)


def test_bad_trainer_input_is_refused_with_the_fix(tmp_path, capsys):
    with pytest.raises(TypeError, match="needs HardBatchTrainingArguments"):
        HardBatchTrainer(model=create_model("fastnet-tiny"), args=CifarTrainingArguments(str(tmp_path / "x")))
    with pytest.raises(ValueError, match="needs `score`"):
        HardBatchSampler(10, 2, 0.5)
    with pytest.raises(ValueError, match="make no mini-batch"):
        HardBatchSampler(3, batch_size=4, fraction=0.5, selection="random", drop_last=True)
    with pytest.raises(RuntimeError, match="one finite loss per candidate"):
        list(HardBatchSampler(8, 2, 0.5, score=lambda pool: torch.full((len(pool),), float("nan"))))
    assert main(["train", "fastnet-tiny", "--trainer", "hard-batches", "--hard_batch_fraction", "2",
                 "--output", str(tmp_path / "never")]) == 2
    assert "must lie in (0, 1]" in capsys.readouterr().err and not (tmp_path / "never").exists()


# -- two processes --------------------------------------------------------------------------------------------------
def test_two_processes_select_alike_and_stay_in_sync(synthetic_path, tmp_path):
    out = tmp_path / "two"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
               "-m", "hfcifar.train", "fastnet-tiny", "--trainer", "hard-batches", "--hard_batch_fraction", "0.5",
               "--dataset", synthetic_path, "--output", str(out), "--num_train_epochs", "2", "--batch-size", "8",
               "--no-progress"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "train_summary.json").read_text())
    hard = summary["hard_batches"]
    n = summary["num_train_examples"]  # 108: candidates of 16 images (8 per process), the last of 12
    assert (summary["num_processes"], summary["parameters_in_sync"]) == (2, True)
    assert (hard["candidate_batches_per_epoch"], hard["trained_batches_per_epoch"]) == (7, 4)
    assert summary["global_step"] == 8 and hard["images_scored"] == 2 * n
    assert hard["scoring_forward_passes"] == 14  # process 0 scored its chunk of every candidate, twice


# -- the claim check's arithmetic -----------------------------------------------------------------------------------
def test_time_to_target_skips_the_untrained_probe_and_censors_a_run_that_never_arrives():
    history = [(0.0, 0, 0.0, 0.5), (0.5, 10, 2.0, 0.3), (1.0, 20, 4.5, 0.42), (1.5, 30, 6.0, 0.41)]
    reached = time_to_target(history, 0.4)
    assert (reached["epochs"], reached["seconds"], reached["censored"]) == (1.0, 4.5, False)
    assert (reached["epoch_interval"], reached["second_interval"]) == (0.5, 2.5)
    censored = time_to_target(history, 0.6)
    assert (censored["epochs"], censored["steps"], censored["censored"]) == (1.5, 30, True)
    assert (reached["steps"], reached["step_interval"]) == (20, 10)
    value, rounding = reduction({"epochs": 3.0, "epoch_interval": 0.5}, {"epochs": 4.0, "epoch_interval": 0.5},
                                "epochs")
    assert value == pytest.approx(0.25) and rounding == pytest.approx(
        0.75 * math.hypot(0.5 / math.sqrt(12) / 3, 0.5 / math.sqrt(12) / 4))


def test_the_probe_measures_per_fraction_of_an_epoch_without_counting_its_own_time(tmp_path):
    data = indexed_dataset(40)
    probe = ValidationProbe(indexed_dataset(20), per_epoch=2)
    trainer = HardBatchTrainer(model=create_model("fastnet-tiny"), args=arguments(tmp_path), train_dataset=data,
                               callbacks=[probe])
    trainer.train()
    epochs = [round(h[0], 3) for h in probe.history]
    assert epochs == [0.0, 0.6, 1.0, 1.6, 2.0]  # 5 steps per epoch: the first step past each half
    seconds = [h[2] for h in probe.history]
    assert seconds == sorted(seconds) and seconds[0] < 0.05 < seconds[-1]
    assert [h[1] for h in probe.history] == [0, 3, 5, 8, 10]


def test_an_interrupted_run_resumes_mid_epoch_to_the_planned_steps(tmp_path):
    data = indexed_dataset(40)  # 5 kept batches per epoch, 2 epochs
    settings = dict(save_strategy="steps", save_steps=3)
    first = RecordingTrainer(model=create_model("fastnet-tiny"), args=arguments(tmp_path, **settings),
                             train_dataset=data, callbacks=[StopAt(3)])
    first.train()
    assert first.state.global_step == 3
    resumed = RecordingTrainer(model=create_model("fastnet-tiny"), args=arguments(tmp_path, **settings),
                               train_dataset=data)
    resumed.train(resume_from_checkpoint=True)
    # the rest of epoch 0 (re-scored with the resumed weights, its first 3 kept batches skipped), then epoch 1
    assert resumed.state.global_step == 10 and len(resumed.trained) == 7
    epoch_one = resumed.hard_batch_sampler.history[-1]
    assert epoch_one.epoch == 1 and resumed.trained[2:] == [
        resumed.hard_batch_sampler.candidates(1)[i][0] for i in epoch_one.kept]
