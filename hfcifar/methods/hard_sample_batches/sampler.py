"""`HardBatchSampler`: each epoch, form candidate mini-batches, keep the top-δ fraction by loss, yield only those.

Sahayam, Zakkam & Jayaraman (2023): instead of training on every mini-batch of an epoch, the network trains on the
mini-batches with the highest loss; δ decides how many of the epoch's mini-batches are considered for training. The
sampler is a plain `torch.utils.data.Sampler` of index lists (a batch sampler), so the `Trainer`'s own loop,
Accelerate's sharding and `gradient_accumulation_steps` work unchanged; the loss of each candidate comes from a `score`
callable (`HardBatchTrainer.score_candidates`: no-grad forward passes with the current weights).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

SELECTIONS = ("loss", "random")

#: A candidate mini-batch: one list of dataset indices per process (one process: a single list).
Candidate = list[list[int]]


def kept_count(candidates: int, fraction: float) -> int:
    """How many of `candidates` mini-batches the top-δ keeps: ⌈δ·candidates⌉, at least one (δ·K is rounded to 9 decimals
    first, so 0.3 · 10 keeps 3, not 4)."""
    return max(1, math.ceil(round(fraction * candidates, 9))) if candidates else 0


def check_fraction(fraction: float, name: str = "hard_batch_fraction") -> None:
    """Refuse a δ outside (0, 1] with the fix in the message."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise ValueError(f"{name} (δ, the fraction of each epoch's candidate mini-batches that is trained on) must "
                         f"lie in (0, 1], e.g. 0.5 for the harder half; got {fraction!r}. δ = 1 trains on every "
                         "mini-batch (standard training plus the scoring passes).")


@dataclass
class Selection:
    """One selection: which candidates of a pool were kept, and their losses (`None` for a random selection)."""

    epoch: int
    pool: int
    candidates: int
    kept: list[int]
    scores: list[float] | None = None

    def summary(self) -> dict:
        row = {"epoch": self.epoch, "pool": self.pool, "candidates": self.candidates, "kept": len(self.kept)}
        if self.scores is not None:
            scores = np.asarray(self.scores)
            row.update(mean_loss_candidates=float(scores.mean()), mean_loss_kept=float(scores[self.kept].mean()))
        return row


class HardBatchSampler(Sampler[list[int]]):
    """A batch sampler that trains on the top-δ fraction of each epoch's candidate mini-batches.

    Each epoch (`set_epoch`, called by the `Trainer`, or counted by the sampler itself):

    1. a permutation of the `num_examples` indices, seeded by `(seed, epoch)`, is cut into candidate mini-batches of
       `batch_size · num_processes` images (one optimizer step's worth), each split into `num_processes` per-process
       chunks (the last candidate may be smaller; with `drop_last`, or when it has fewer images than processes, it is
       dropped);
    2. the candidates are taken in pools of `pool_size` consecutive candidates (0: one pool, the whole epoch — the
       paper's setting); for each pool, `score(pool)` returns one loss per candidate (mean per-image loss), and the
       ⌈δ·len(pool)⌉ candidates with the highest loss are kept (`selection="random"`: the same number, chosen at random
       with the same seed and no scoring — the control that separates "fewer batches" from "harder batches");
    3. the kept candidates are yielded in their (random) candidate order, each as its `num_processes` chunks in process
       order, so that Accelerate's `BatchSamplerShard` hands chunk j to process j.

    Every process runs the same permutation and, given identical scores, the same selection: scores must therefore
    be identical across processes (`HardBatchTrainer` gathers them). A pool is scored when its first batch is
    requested, i.e. with the weights of that moment (with `pool_size=0`: the weights at the start of the epoch).

    Args:
        num_examples: the size of the training set.
        batch_size: images per process per mini-batch (`per_device_train_batch_size`).
        fraction: δ in (0, 1].
        score: `score(candidates) -> Tensor[len(candidates)]`, the loss of each candidate; required for
            `selection="loss"`.
        selection: `"loss"` (the paper) or `"random"` (the control).
        num_processes: the number of data-parallel processes.
        pool_size: candidates per selection (0: all candidates of the epoch).
        seed: the permutation's and the random selection's seed.
        drop_last: drop a last candidate smaller than `batch_size · num_processes`.

    Example:
        >>> sampler = HardBatchSampler(10, batch_size=2, fraction=0.4, score=lambda c: torch.arange(len(c)).float())
        >>> [len(batch) for batch in sampler]  # 5 candidates of 2 images, the 2 with the highest "loss" kept
        [2, 2]
    """

    # Chunks may differ in size (the last candidate): `batch_size = None` tells Accelerate's `BatchSamplerShard` to
    # hand out the index lists as they come rather than pad them, and the sampler always yields a multiple of
    # `num_processes` lists.
    batch_size = None
    drop_last = False

    def __init__(self, num_examples: int, batch_size: int, fraction: float,
                 score: Callable[[Sequence[Candidate]], torch.Tensor] | None = None, *, selection: str = "loss",
                 num_processes: int = 1, pool_size: int = 0, seed: int = 0, drop_last: bool = False):
        check_fraction(fraction)
        if selection not in SELECTIONS:
            raise ValueError(f"hard_batch_selection must be one of {SELECTIONS} ('loss': the paper's top-δ by loss; "
                             f"'random': the same number of batches at random); got {selection!r}.")
        if selection == "loss" and score is None:
            raise ValueError("HardBatchSampler(selection='loss') needs `score`, a callable returning one loss per "
                             "candidate mini-batch (HardBatchTrainer.score_candidates).")
        if not isinstance(pool_size, int) or pool_size < 0:
            raise ValueError(f"hard_batch_pool_size must be an integer ≥ 0 (0: select among all of an epoch's "
                             f"mini-batches, as the paper does); got {pool_size!r}.")
        if batch_size < 1 or num_processes < 1 or num_examples < 1:
            raise ValueError(f"HardBatchSampler needs num_examples, batch_size and num_processes ≥ 1; got "
                             f"{num_examples}, {batch_size} and {num_processes}.")
        self.num_examples, self.per_process_batch_size = int(num_examples), int(batch_size)
        self.fraction, self.score, self.selection = float(fraction), score, selection
        self.num_processes, self.pool_size, self.seed = int(num_processes), int(pool_size), int(seed)
        self.drop_incomplete = bool(drop_last)
        self.epoch = 0
        self.history: list[Selection] = []
        if not self.num_candidates:
            raise ValueError(f"{num_examples} training images make no mini-batch of {batch_size} × {num_processes} "
                             "process(es); lower the batch size or turn off dataloader_drop_last.")

    # -- the candidates ---------------------------------------------------------------------------------------
    def _sizes(self) -> list[int]:
        size = self.per_process_batch_size * self.num_processes
        full, rest = divmod(self.num_examples, size)
        keep_rest = rest and not self.drop_incomplete and rest >= self.num_processes
        return [size] * full + ([rest] if keep_rest else [])

    @property
    def num_candidates(self) -> int:
        """Candidate mini-batches per epoch (K)."""
        return len(self._sizes())

    def pools(self) -> list[int]:
        """The size of each pool of an epoch."""
        k, size = self.num_candidates, self.pool_size or self.num_candidates
        return [min(size, k - start) for start in range(0, k, size)]

    @property
    def num_kept(self) -> int:
        """Mini-batches trained per epoch (Σ over pools of ⌈δ·pool⌉)."""
        return sum(kept_count(pool, self.fraction) for pool in self.pools())

    def __len__(self) -> int:
        return self.num_kept * self.num_processes

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _generator(self, *key: int) -> torch.Generator:
        return torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed, *key]).generate_state(1)[0]))

    def candidates(self, epoch: int) -> list[Candidate]:
        """The epoch's candidate mini-batches, each as its per-process chunks."""
        order = torch.randperm(self.num_examples, generator=self._generator(epoch))
        result, start = [], 0
        for size in self._sizes():
            chunks = torch.tensor_split(order[start:start + size], self.num_processes)
            result.append([chunk.tolist() for chunk in chunks])
            start += size
        return result

    # -- the selection ----------------------------------------------------------------------------------------
    def select(self, pool: Sequence[Candidate], epoch: int, pool_index: int) -> Selection:
        """Keep ⌈δ·len(pool)⌉ candidates of `pool`: those of highest score (ties: the earlier one), or at random."""
        k = kept_count(len(pool), self.fraction)
        if self.selection == "random":
            kept = torch.randperm(len(pool), generator=self._generator(epoch, pool_index, 1))[:k]
            return Selection(epoch, pool_index, len(pool), sorted(kept.tolist()))
        scores = torch.as_tensor(self.score(pool), dtype=torch.float64).flatten().cpu()
        if scores.numel() != len(pool) or not torch.isfinite(scores).all():
            raise RuntimeError(f"score() must return one finite loss per candidate ({len(pool)}); got "
                               f"{scores.tolist()[:8]}{'…' if scores.numel() > 8 else ''} (did training diverge?).")
        order = torch.sort(scores, descending=True, stable=True).indices[:k]
        return Selection(epoch, pool_index, len(pool), sorted(order.tolist()), scores.tolist())

    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1  # the Trainer's `set_epoch` overrides this; without it the sampler counts epochs itself
        candidates, start = self.candidates(epoch), 0
        for pool_index, size in enumerate(self.pools()):
            pool = candidates[start:start + size]
            start += size
            selection = self.select(pool, epoch, pool_index)
            self.history.append(selection)
            for index in selection.kept:
                yield from pool[index]


@dataclass
class ScoringCost:
    """What scoring cost so far: forward passes (mini-batches scored on this process), images scored (all processes),
    and this process's seconds."""

    forward_passes: int = 0
    images_scored: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"scoring_forward_passes": self.forward_passes, "images_scored": self.images_scored,
                "scoring_seconds": round(self.seconds, 4)}


__all__ = ["HardBatchSampler", "ScoringCost", "Selection", "check_fraction", "kept_count"]
