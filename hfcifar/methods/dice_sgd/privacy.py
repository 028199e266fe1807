"""The privacy side of DP training: Poisson sampling, the noise multiplier for a budget, and the spent ε.

Everything here is Opacus' (Yousefpour et al., 2021): the Rényi-DP accountant of the sampled Gaussian mechanism
(`opacus.accountants.RDPAccountant`, Mironov et al., 2019), `get_noise_multiplier` (the smallest σ whose ε after the
planned steps is within the budget) and the Poisson sampler of the sampled Gaussian mechanism
(`opacus.utils.uniform_sampler.UniformWithReplacementSampler`). hfcifar adds only what the Trainer needs around them:
a sampler that also shards the data over processes and reseeds per epoch (so a resumed run draws the same batches),
and the checks that say what to fix when an argument or a model cannot be trained privately.
"""

from __future__ import annotations

import math

import torch

OPACUS_HINT = 'DP training needs Opacus: pip install "hfcifar[dp]" (or pip install "opacus>=1.5").'


def require_opacus():
    """Import Opacus, or raise an `ImportError` that names the install command."""
    try:
        import opacus
    except ImportError as error:  # pragma: no cover - exercised where Opacus is absent
        raise ImportError(OPACUS_HINT) from error
    return opacus


def check_budget(target_epsilon: float, target_delta: float) -> None:
    """Raise a `ValueError` naming the fix unless ε > 0 is finite and δ lies in (0, 1)."""
    if isinstance(target_epsilon, bool) or not isinstance(target_epsilon, (int, float)) \
            or not math.isfinite(target_epsilon) or target_epsilon <= 0:
        raise ValueError(f"target_epsilon must be a finite privacy budget ε > 0 (e.g. 8); got {target_epsilon!r}.")
    if isinstance(target_delta, bool) or not isinstance(target_delta, (int, float)) or not 0 < target_delta < 1:
        raise ValueError(f"target_delta must lie in (0, 1), and should be below 1/(number of training images), "
                         f"e.g. 1e-5; got {target_delta!r}.")


def check_clip_norm(name: str, value: float, meaning: str) -> None:
    """Raise a `ValueError` unless a clipping norm is a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} is {meaning} and must be a finite number > 0 (e.g. 1.0); got {value!r}.")


def check_private_model(model: torch.nn.Module) -> None:
    """Raise a `ValueError` when per-sample gradients are undefined for `model` (Opacus' `ModuleValidator`).

    BatchNorm is the usual culprit: its batch statistics mix the examples of a batch, so no example has a gradient
    of its own and clipping it bounds nothing.
    """
    require_opacus()
    from opacus.validators import ModuleValidator

    errors = ModuleValidator.validate(model, strict=False)
    if errors:
        found = "; ".join(sorted({str(error).strip() for error in errors}))[:600]
        raise ValueError(
            f"{type(model).__name__} cannot be trained with differential privacy: {found}. Use a model without "
            "BatchNorm (e.g. `convnet`, whose default normalization is an instance norm, or a config with "
            "net_norm='groupnorm'), or replace the layers with `opacus.validators.ModuleValidator.fix(model)` before "
            "training (BatchNorm → GroupNorm; the config then no longer describes the model, so save it yourself)."
        )


def noise_multiplier_for(target_epsilon: float, target_delta: float, sample_rate: float, steps: int) -> float:
    """σ: the smallest noise multiplier (to the clipping norm) whose RDP ε after `steps` Poisson-sampled steps at
    `sample_rate` is at most `target_epsilon` (Opacus' `get_noise_multiplier`, tolerance 0.01 in ε)."""
    require_opacus()
    from opacus.accountants.utils import get_noise_multiplier

    check_budget(target_epsilon, target_delta)
    if not 0 < sample_rate <= 1:
        raise ValueError(f"The sampling rate (expected batch / training images) must lie in (0, 1]; got {sample_rate}.")
    if steps < 1:
        raise ValueError(f"A private run needs at least one step to account for; got {steps}.")
    return float(get_noise_multiplier(target_epsilon=target_epsilon, target_delta=target_delta,
                                      sample_rate=sample_rate, steps=int(steps), accountant="rdp"))


def rdp_epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """ε of `steps` sampled Gaussian steps (σ, q) at δ, from a fresh Opacus `RDPAccountant` (what a reader recomputes
    from the numbers a run records)."""
    require_opacus()
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    if steps:
        accountant.history = [(float(noise_multiplier), float(sample_rate), int(steps))]
    return float(accountant.get_epsilon(delta=delta))


def _poisson_base():
    require_opacus()
    from opacus.utils.uniform_sampler import UniformWithReplacementSampler

    return UniformWithReplacementSampler


class PoissonBatchSampler(torch.utils.data.Sampler):
    """Poisson sampling for the sampled Gaussian mechanism: every step, each training image joins the batch
    independently with probability `sample_rate` (so batches vary in size and may be empty), for `int(1 /
    sample_rate)` steps per epoch — Opacus' `UniformWithReplacementSampler`, which this class runs per process.

    Under N processes, process r draws from the images r, r + N, r + 2N, … with the same rate, so the union of the
    processes' batches is one Poisson sample of the whole set (every image has probability `sample_rate`,
    independently of the others); each process uses its own random stream and yields every step, empty or not, so
    the processes stay in step. `set_epoch(e)` reseeds the stream from (seed, e, rank): the Trainer calls it at every
    epoch, so a run resumed mid-epoch redraws exactly the batches the interrupted run drew.

    Args:
        num_samples (`int`): training images in the whole set.
        sample_rate (`float`): q = expected global batch / num_samples.
        seed (`int`, *optional*, defaults to 0): seed of the draws.
        rank, world_size (`int`, *optional*, defaults to 0 and 1): this process and the number of processes.
    """

    def __init__(self, num_samples: int, sample_rate: float, seed: int = 0, rank: int = 0, world_size: int = 1):
        base = _poisson_base()(num_samples=num_samples, sample_rate=sample_rate)  # Opacus' checks and step count
        if not 0 < sample_rate <= 1:
            raise ValueError(f"sample_rate must lie in (0, 1]; got {sample_rate}.")
        self.num_samples, self.sample_rate, self.steps = num_samples, sample_rate, base.steps
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.indices = torch.arange(num_samples)[self.rank::self.world_size]
        self.generator = torch.Generator()
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        # one stream per (seed, epoch, rank): independent across processes, reproducible on resume
        self.generator.manual_seed((self.seed * 1_000_003 + self.epoch) * 4_093 + self.rank)

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        for _ in range(self.steps):
            mask = torch.rand(len(self.indices), generator=self.generator) < self.sample_rate
            yield self.indices[mask].tolist()


class PoissonDataLoader(torch.utils.data.DataLoader):
    """A `DataLoader` over a [`PoissonBatchSampler`] whose `set_epoch` reaches the sampler (the Trainer calls it)."""

    def set_epoch(self, epoch: int) -> None:
        self.batch_sampler.set_epoch(epoch)


__all__ = [
    "OPACUS_HINT",
    "PoissonBatchSampler",
    "PoissonDataLoader",
    "check_budget",
    "check_clip_norm",
    "check_private_model",
    "noise_multiplier_for",
    "rdp_epsilon",
    "require_opacus",
]
