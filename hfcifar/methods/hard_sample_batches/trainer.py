"""`HardBatchTrainer`: `CifarTrainer` trained on the top-δ highest-loss mini-batches of every epoch.

Sahayam, Zakkam & Jayaraman, "Can we learn better with hard samples?" (arXiv 2304.03486, 2023). The loop, the loss and
the update are `CifarTrainer`'s; what the paper changes is *which* mini-batches an epoch trains on, so the method is a
training data loader (`get_train_dataloader`, the `Trainer`'s public hook) over a `HardBatchSampler`, plus the scoring
forward passes (`score_candidates`) whose cost is counted and reported (`method_summary` → `train_summary.json`).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from functools import partial

import torch
import torch.nn.functional as F
from accelerate.utils import broadcast
from torch.utils.data import DataLoader, IterableDataset
from transformers.trainer_utils import seed_worker

from hfcifar.training import CifarTrainer, CifarTrainingArguments

from .sampler import SELECTIONS, HardBatchSampler, ScoringCost, check_fraction

SCORING_MODES = ("train", "eval")


@dataclass
class HardBatchTrainingArguments(CifarTrainingArguments):
    """[`CifarTrainingArguments`] plus δ and how the candidate mini-batches are scored and selected.

    An *epoch* of this trainer is one scoring pass over the epoch's candidate mini-batches and one update on each kept
    mini-batch: ⌈δ·K⌉ optimizer steps for K candidates, so `num_train_epochs` counts the paper's epochs and
    `max_steps` counts updates, as for every trainer.
    """

    hard_batch_fraction: float = field(
        default=0.5,
        metadata={"help": "δ in (0, 1]: the fraction of each epoch's candidate mini-batches trained on (those of "
                          "highest loss). 1 trains on every mini-batch."},
    )
    hard_batch_selection: str = field(
        default="loss",
        metadata={"help": "'loss': keep the highest-loss mini-batches (the paper); 'random': keep the same number at "
                          "random, without scoring (the control for 'fewer mini-batches per epoch')."},
    )
    hard_batch_scoring_mode: str = field(
        default="train",
        metadata={"help": "The model's mode for the no-grad scoring passes: 'train' (batch-norm batch statistics, the "
                          "loss the update would see; running statistics restored afterwards) or 'eval'."},
    )
    hard_batch_pool_size: int = field(
        default=0,
        metadata={"help": "Candidates per selection: 0 selects among all of an epoch's mini-batches, scored with the "
                          "weights at the epoch's start (the paper); N > 0 scores and selects N consecutive candidates "
                          "at a time, with fresher weights."},
    )

    def __post_init__(self):
        check_fraction(self.hard_batch_fraction)
        if self.hard_batch_selection not in SELECTIONS:
            raise ValueError(f"hard_batch_selection must be one of {SELECTIONS} ('loss': the paper's top-δ by loss; "
                             "'random': the same number of mini-batches at random); got "
                             f"{self.hard_batch_selection!r}.")
        if self.hard_batch_scoring_mode not in SCORING_MODES:
            raise ValueError(f"hard_batch_scoring_mode must be one of {SCORING_MODES}; got "
                             f"{self.hard_batch_scoring_mode!r}.")
        if isinstance(self.hard_batch_pool_size, bool) or not isinstance(self.hard_batch_pool_size, int) \
                or self.hard_batch_pool_size < 0:
            raise ValueError(f"hard_batch_pool_size must be an integer ≥ 0 (0: select among all of an epoch's "
                             f"mini-batches, as the paper does); got {self.hard_batch_pool_size!r}.")
        if self.train_sampling_strategy != "random":
            raise ValueError(f"HardBatchTrainer chooses the epoch's mini-batches itself; train_sampling_strategy="
                             f"{self.train_sampling_strategy!r} cannot apply. Leave it at 'random'.")
        super().__post_init__()


@contextlib.contextmanager
def scoring_mode(model: torch.nn.Module, train: bool, device: torch.device):
    """No-grad forward passes that leave no trace: the model in training (`train=True`) or evaluation mode, every
    buffer (batch-norm running statistics and counters) restored afterwards, and the random-number state forked so that
    a dropout layer drawing masks does not shift the training run's random stream."""
    was_training = model.training
    saved = [(buffer, buffer.detach().clone()) for buffer in model.buffers()] if train else []
    devices = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    model.train(train)
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            yield
    finally:
        for buffer, value in saved:
            buffer.copy_(value)
        model.train(was_training)


class HardBatchTrainer(CifarTrainer):
    """Train on the top-δ highest-loss mini-batches of each epoch (Sahayam et al., 2023).

    Every epoch, the training set is cut into K random candidate mini-batches (one optimizer step's worth each: the
    per-device batch times the number of processes); each candidate's mean cross-entropy is measured with a no-grad
    forward pass at the current weights (`score_candidates`), and the ⌈δ·K⌉ highest are trained on, in their random
    order, by the ordinary `Trainer` loop. `hard_batch_selection="random"` keeps the same number at random (no scoring):
    the control arm. Everything else — augmentation, optimizer, schedule, checkpoints, time budgets, `accelerate
    launch` — is `CifarTrainer`'s.

    Under N processes each process scores its own chunk of every candidate (the chunk it would train on), the summed
    losses are all-reduced and process 0's result is broadcast, so every process keeps the same mini-batches.

    The scoring cost is counted in `scoring_cost` (forward passes, images scored, seconds) and written by
    `method_summary` to `train_summary.json` with every selection's mean loss of all and of the kept candidates.

    Example:
        >>> args = HardBatchTrainingArguments("runs/hard", hard_batch_fraction=0.5, num_train_epochs=10)
        >>> HardBatchTrainer(model=create_model("fastnet-tiny"), args=args, train_dataset=data["train"]).train()
    """

    arguments_class = HardBatchTrainingArguments

    def __init__(self, model=None, args: HardBatchTrainingArguments | None = None, **kwargs):
        if args is None:
            args = HardBatchTrainingArguments(output_dir="hfcifar_trainer")
        if not isinstance(args, HardBatchTrainingArguments):
            raise TypeError(f"HardBatchTrainer needs HardBatchTrainingArguments (δ is `hard_batch_fraction`); got "
                            f"{type(args).__name__}. Build them with HardBatchTrainingArguments(output_dir, "
                            "hard_batch_fraction=0.5, …).")
        super().__init__(model=model, args=args, **kwargs)
        self.scoring_cost = ScoringCost()
        self.hard_batch_sampler: HardBatchSampler | None = None

    # -- the epoch's mini-batches -------------------------------------------------------------------------------
    def get_train_dataloader(self) -> DataLoader:
        """The training loader over a [`HardBatchSampler`], prepared by Accelerate (which shards the kept mini-batches'
        per-process chunks over the processes)."""
        dataset = self.train_dataset
        if dataset is None:
            raise ValueError("Trainer: training requires a train_dataset.")
        if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__len__"):
            raise ValueError("HardBatchTrainer scores all of an epoch's mini-batches before training on some, so it "
                             "needs a map-style training set with a length (a CifarTensorDataset or a Hub-schema "
                             f"split), not {type(dataset).__name__}.")
        args = self.args
        self.hard_batch_sampler = HardBatchSampler(
            len(dataset), args.train_batch_size, args.hard_batch_fraction, self.score_candidates,
            selection=args.hard_batch_selection, num_processes=self.accelerator.num_processes,
            pool_size=args.hard_batch_pool_size, seed=args.data_seed if args.data_seed is not None else args.seed,
            drop_last=args.dataloader_drop_last)
        loader_args = {"collate_fn": self.data_collator, "num_workers": args.dataloader_num_workers,
                       "pin_memory": args.dataloader_pin_memory}
        if args.dataloader_num_workers > 0:
            loader_args.update(persistent_workers=args.dataloader_persistent_workers,
                               prefetch_factor=args.dataloader_prefetch_factor,
                               worker_init_fn=partial(seed_worker, num_workers=args.dataloader_num_workers,
                                                      rank=args.process_index))
        return self.accelerator.prepare(DataLoader(dataset, batch_sampler=self.hard_batch_sampler, **loader_args))

    def _fetch(self, indices: list[int]) -> dict:
        dataset = self.train_dataset
        if hasattr(dataset, "__getitems__"):
            return self.data_collator(dataset.__getitems__(indices))
        return self.data_collator([dataset[i] for i in indices])

    def score_candidates(self, candidates) -> torch.Tensor:
        """The mean per-image cross-entropy of each candidate mini-batch at the current weights (no gradients).

        Each process scores its own chunk of every candidate, without augmentation (the image itself, not one random
        crop of it), in `hard_batch_scoring_mode`, with the arguments' label smoothing; the per-candidate sums and
        image counts are all-reduced and process 0's result is broadcast, so all processes select alike.
        """
        start = time.perf_counter()
        rank, world = self.accelerator.process_index, self.accelerator.num_processes
        device = self.args.device
        totals = torch.zeros(len(candidates), dtype=torch.float64, device=device)
        counts = torch.zeros(len(candidates), dtype=torch.float64, device=device)
        with scoring_mode(self.model, self.args.hard_batch_scoring_mode == "train", device), \
                self.compute_loss_context_manager():
            for i, candidate in enumerate(candidates):
                chunk = candidate[rank]
                batch = self.prepare_batch(self._fetch(chunk), augment=False)
                logits = self.model(pixel_values=batch["pixel_values"]).logits
                totals[i] = F.cross_entropy(logits.float(), batch["labels"], reduction="sum",
                                            label_smoothing=self.args.label_smoothing_factor).double()
                counts[i] = len(chunk)
                self.scoring_cost.forward_passes += 1
        if world > 1:
            totals = broadcast(self.accelerator.reduce(totals, reduction="sum"), from_process=0)
            counts = broadcast(self.accelerator.reduce(counts, reduction="sum"), from_process=0)
        self.scoring_cost.images_scored += int(counts.sum().item())
        self.scoring_cost.seconds += time.perf_counter() - start
        return (totals / counts).cpu()

    # -- what the run reports -------------------------------------------------------------------------------------
    def method_summary(self) -> dict:
        """δ, the selection, the candidates and kept mini-batches per epoch, every selection's losses, and the scoring
        cost (`train_summary.json`'s `hard_batches`), plus a row of the model card's training table."""
        args, sampler = self.args, self.hard_batch_sampler
        summary = {
            "fraction": args.hard_batch_fraction,
            "selection": args.hard_batch_selection,
            "scoring_mode": args.hard_batch_scoring_mode if args.hard_batch_selection == "loss" else None,
            "pool_size": args.hard_batch_pool_size,
            "candidate_batches_per_epoch": sampler.num_candidates if sampler else None,
            "trained_batches_per_epoch": sampler.num_kept if sampler else None,
            **self.scoring_cost.as_dict(),
            "selections": [s.summary() for s in sampler.history] if sampler else [],
        }
        if sampler is None:
            text = f"top δ = {args.hard_batch_fraction:g} of each epoch's mini-batches (not trained yet)"
        elif args.hard_batch_selection == "random":
            text = (f"a random {sampler.num_kept} of {sampler.num_candidates} mini-batches per epoch (δ = "
                    f"{args.hard_batch_fraction:g}, the control: no scoring)")
        else:
            text = (f"the {sampler.num_kept} highest-loss of {sampler.num_candidates} mini-batches per epoch (δ = "
                    f"{args.hard_batch_fraction:g}); scoring: {self.scoring_cost.images_scored:,} images in "
                    f"{self.scoring_cost.seconds:.1f} s of no-grad {args.hard_batch_scoring_mode}-mode passes")
        return {"hard_batches": summary, "card_rows": [["Hard-sample mini-batches", text]]}


__all__ = ["HardBatchTrainer", "HardBatchTrainingArguments", "scoring_mode"]
