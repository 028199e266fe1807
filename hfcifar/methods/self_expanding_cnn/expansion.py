"""The natural expansion score and the expansion decision of Self Expanding CNNs (Sections 2.1 and 3.1).

Notation (paper → code):

- θ, the parameters; g = ∇θ L, the gradient of the training loss → `mean` (averaged over the Fisher batches);
- F ≈ (1/N) Σᵢ ∇θ Lᵢ ∇θ Lᵢᵀ, the empirical Fisher, of which the paper keeps the diagonal → `fisher`;
- η = gᵀ F⁻¹ g, the natural expansion score (Eq. 1; Mitchell et al.'s "natural expansion score") → `current` for
  the network as it is, `current + increases[s]` for the network with one more block in stage s;
- η_regularized = η · exp(−λ_n Δp²) (Eq. 3), Δp the parameters the candidate adds → `ratios`, with λ_n
  `regularization`;
- τ, the threshold: expand at the best candidate when η_candidate / η_current > τ (Section 3.1, τ = 2) → `decide`.

How the score is computed here:

1. **Candidates without changing the function.** Every candidate is a pre-activation block whose last convolution
   is zero (`add_block`): an identity map whose Jacobian is the identity too. One *probe* copy of the network holds
   a candidate block at the end of every eligible stage at once; its output, and the gradient of every existing
   parameter, are exactly those of the network itself, and the gradient of each candidate's parameters is the one
   it would have alone. One pass over the Fisher batches therefore scores the current network and every candidate.
2. **Empirical Fisher over mini-batches.** gᵢ is the gradient of the loss of Fisher batch i (the paper's per-example
   gradients with batch norm in training mode, whose statistics couple the examples of a batch); g is their mean and
   diag F their mean square. Each parameter contributes g²/(F + ε) ≤ 1: near 1 where the batches agree on the
   direction, near 1/N where the gradient is noise.
3. **Damping.** ε = `damping` × the mean diagonal Fisher of the existing parameters (Tikhonov damping, relative so
   that it does not depend on the loss scale); parameters with no gradient contribute 0.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch

#: How g² enters the score: "empirical", the paper's plug-in (the squared mean of the batch gradients), or
#: "debiased", its unbiased estimate (minus the sampling variance of that mean).
ESTIMATORS = ("empirical", "debiased")


@dataclass
class ExpansionScores:
    """The natural expansion scores of one check.

    Attributes:
        current: η of the network as it is (η_c in the paper).
        increases: per candidate stage, the increase of η that its new block brings (Δη).
        new_parameters: per candidate stage, the parameters its new block adds (Δp).
        ratios: per candidate stage, η_regularized(candidate) / η_c = (η_c + Δη) / η_c · exp(−λ_n Δp²).
        batches: how many Fisher batches the scores rest on.
    """

    current: float
    increases: dict[int, float]
    new_parameters: dict[int, int]
    ratios: dict[int, float]
    batches: int
    regularization: float = 0.0
    blocks: dict = field(default_factory=dict, repr=False)
    estimator: str = "empirical"
    other: dict = field(default_factory=dict)

    @property
    def best_stage(self) -> int | None:
        """The candidate with the highest ratio (the paper's "optimal index"), or None without candidates."""
        return max(self.ratios, key=lambda s: (self.ratios[s], -s)) if self.ratios else None

    @property
    def best_ratio(self) -> float:
        return self.ratios[self.best_stage] if self.ratios else float("nan")

    def decide(self, threshold: float) -> int | None:
        """The stage to grow — the best candidate if its ratio exceeds `threshold` (τ) — or None."""
        stage = self.best_stage
        return stage if stage is not None and self.ratios[stage] > threshold else None

    def as_dict(self) -> dict:
        return {"estimator": self.estimator, "current": self.current, "batches": self.batches,
                "increases": {str(s): v for s, v in self.increases.items()},
                "new_parameters": {str(s): v for s, v in self.new_parameters.items()},
                "ratios": {str(s): v for s, v in self.ratios.items()},
                "other_estimator": {"current": self.other.get("current"),
                                    "increases": {str(s): v for s, v in self.other.get("increases", {}).items()}}}


def expansion_ratio(current: float, increase: float, new_parameters: int, regularization: float = 0.0) -> float:
    """η_regularized / η_c for a candidate: (η_c + Δη) / η_c · exp(−λ_n Δp²) (the paper's Eq. 3 over η_c)."""
    if current > 0:
        ratio = (current + increase) / current
    else:  # nothing to compare with: any gain is infinitely many times nothing
        ratio = math.inf if increase > 0 else 1.0
    return ratio * math.exp(-regularization * float(new_parameters) ** 2)


def natural_expansion_scores(
    model: torch.nn.Module,
    batches: Iterable[dict],
    loss_fn: Callable[[torch.nn.Module, dict], torch.Tensor],
    stages: Iterable[int],
    damping: float = 1e-4,
    regularization: float = 0.0,
    estimator: str = "empirical",
) -> ExpansionScores:
    """Score the network and one new block at the end of each of `stages` (see the module docstring).

    Args:
        model: a network with `add_block(stage)` (e.g. [`~hfcifar.models.preact_resnet.PreActResNetForImageClassification`]);
            it is not modified (a copy is probed).
        batches: the Fisher batches (model inputs with labels), at least two.
        loss_fn: `loss_fn(model, batch)`, the training loss of one batch (the trainer's `compute_loss`).
        stages: the stages that may grow.
        damping: ε relative to the mean diagonal Fisher of the existing parameters.
        regularization: λ_n of the paper's Eq. 3 (0: no penalty on the added parameters).

    Returns:
        [`ExpansionScores`]; `blocks[s]` is the state dict of the candidate block measured for stage s, so that the
        block that is added is the one that was scored.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {', '.join(map(repr, ESTIMATORS))}; got {estimator!r}.")
    stages = sorted(set(stages))
    probe = copy.deepcopy(model).train()
    candidates = {stage: probe.add_block(stage) for stage in stages}
    owner = {}
    for stage, block in candidates.items():
        owner.update({id(p): stage for p in block.parameters()})
    params = [p for p in probe.parameters() if p.requires_grad]
    first = [torch.zeros_like(p, dtype=torch.float64) for p in params]
    second = [torch.zeros_like(p, dtype=torch.float64) for p in params]
    count = 0
    for batch in batches:
        loss = loss_fn(probe, dict(batch))
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        for s1, s2, grad in zip(first, second, grads):
            if grad is not None:
                grad = grad.detach().double()
                s1 += grad
                s2 += grad * grad
        count += 1
    if count < 2:
        raise ValueError(f"The natural expansion score needs at least 2 Fisher batches; got {count} (with one, every "
                         "parameter with a gradient scores exactly 1).")
    mean = [s1 / count for s1 in first]
    fisher = [s2 / count for s2 in second]
    existing = [f for p, f in zip(params, fisher) if id(p) not in owner]
    epsilon = damping * float(torch.cat([f.flatten() for f in existing]).mean()) if existing else damping
    epsilon = max(epsilon, torch.finfo(torch.float64).tiny)
    # Per parameter: the plug-in g²/(F + ε) of the paper, and the same with g² replaced by its unbiased estimate
    # m² − s²/K (s² the sample variance of the batch gradients), which does not grow with the number of parameters
    # when the gradient is noise.
    totals = {"empirical": {None: 0.0, **{stage: 0.0 for stage in stages}},
              "debiased": {None: 0.0, **{stage: 0.0 for stage in stages}}}
    for p, g, f in zip(params, mean, fisher):
        squared = g * g
        unbiased = squared - (f - squared) / (count - 1)
        stage = owner.get(id(p))
        totals["empirical"][stage] += float((squared / (f + epsilon)).sum())
        totals["debiased"][stage] += float((unbiased / (f + epsilon)).sum())
    chosen = totals[estimator]
    current = chosen.pop(None)
    increases = chosen
    new_parameters = {stage: sum(p.numel() for p in block.parameters()) for stage, block in candidates.items()}
    ratios = {stage: expansion_ratio(current, increases[stage], new_parameters[stage], regularization) for stage in stages}
    blocks = {stage: {k: v.detach().clone() for k, v in block.state_dict().items()} for stage, block in candidates.items()}
    other = totals["debiased" if estimator == "empirical" else "empirical"]
    return ExpansionScores(current, increases, new_parameters, ratios, count, regularization, blocks,
                           estimator=estimator, other={"current": other[None],
                                                       "increases": {s: other[s] for s in stages}})


@torch.no_grad()
def grow(model: torch.nn.Module, stage: int, block_state: dict | None = None) -> torch.nn.Module:
    """Add one identity block to `stage` of `model` in place (outputs unchanged) and return the block; with
    `block_state`, the block takes those weights (the candidate that was scored)."""
    block = model.add_block(stage)
    if block_state is not None:
        block.load_state_dict(block_state)
        last = getattr(block, "conv2", None)
        if last is not None and last.weight.abs().sum() != 0:
            raise ValueError("A new block must start with a zero last convolution (else the function changes).")
    return block


def growth_plan(current: list[int], target: list[int]) -> list[int]:
    """The stages to grow, in order, to take `current` depths to `target` (every target depth ≥ the current one)."""
    if len(current) != len(target) or any(t < c for c, t in zip(current, target)):
        raise ValueError(f"Depths {list(current)} cannot grow into {list(target)}: a network only gains blocks, one "
                         "stage at a time, and keeps its number of stages.")
    return [stage for stage, (c, t) in enumerate(zip(current, target)) for _ in range(t - c)]


__all__ = ["ExpansionScores", "expansion_ratio", "grow", "growth_plan", "natural_expansion_scores"]
