"""What a claim check declares before anything runs: the claim, its hypotheses, its scales, its minimum sizes.

A paper's claim is checked as one or more *hypotheses*, each about one measured quantity:

- **superiority** — the quantity (usually an effect: new − baseline) is better than its null value (0 for a
  difference, 1 for a ratio);
- **non-inferiority** — the quantity is not worse than its null value by more than a margin δ, fixed in advance
  with a stated reason;
- **threshold** — the quantity reaches a bound.

`hfcifar.reproduce.verdicts` turns each hypothesis and its [`Measurement`] into PASS / FAIL / INCONCLUSIVE from the
95% interval, and combines them (`combine="all"` or a pre-registered `"any"` with a Bonferroni correction). A check
never decides its own verdict.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

SUPERIORITY, NON_INFERIORITY, THRESHOLD = "superiority", "non-inferiority", "threshold"
KINDS = (SUPERIORITY, NON_INFERIORITY, THRESHOLD)
PASS, FAIL, INCONCLUSIVE, SMOKE = "PASS", "FAIL", "INCONCLUSIVE", "SMOKE"
VERDICTS = (PASS, FAIL, INCONCLUSIVE, SMOKE)
SCALES = ("smoke", "cpu", "paper")
COMBINE_RULES = ("all", "any")


def _finite(name: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number; got {value!r}.")


@dataclass(frozen=True)
class Hypothesis:
    """One pre-registered statement about one measured quantity.

    Args:
        name: the key of its [`Measurement`] in the run's [`Result`] (e.g. `"accuracy_margin"`).
        kind: `"superiority"`, `"non-inferiority"` or `"threshold"`.
        statement: the hypothesis in words (shown in every report).
        higher_is_better: the claimed direction: `True` when larger values support the claim.
        null: the value of "no effect" (0 for a difference, 1 for a ratio); superiority must clear it.
        margin: δ > 0 for non-inferiority: the claim holds unless the quantity is worse than `null` by δ.
        margin_reason: why δ is what it is (required for non-inferiority).
        threshold: the bound a threshold hypothesis must pass.
        paper_value: the paper's own value of this quantity, or `None` when the paper gives no comparable number.
            Reported as the *magnitude* (inside, below or above the interval); part of the verdict at the `paper` scale.
    """

    name: str
    kind: str
    statement: str
    higher_is_better: bool = True
    null: float = 0.0
    margin: float = 0.0
    margin_reason: str = ""
    threshold: float | None = None
    paper_value: float | None = None

    def __post_init__(self):
        if not self.name:
            raise ValueError("Hypothesis.name must name the measured quantity.")
        if self.kind not in KINDS:
            raise ValueError(f"Hypothesis {self.name!r}: kind must be one of {KINDS}; got {self.kind!r}.")
        _finite(f"Hypothesis {self.name!r}: null", self.null)
        _finite(f"Hypothesis {self.name!r}: margin", self.margin)
        _finite(f"Hypothesis {self.name!r}: paper_value", self.paper_value, allow_none=True)
        if self.kind == NON_INFERIORITY:
            if self.margin <= 0:
                raise ValueError(f"Hypothesis {self.name!r}: a non-inferiority hypothesis needs a margin δ > 0.")
            if not self.margin_reason:
                raise ValueError(f"Hypothesis {self.name!r}: say why the margin is {self.margin} (margin_reason).")
        elif self.margin:
            raise ValueError(f"Hypothesis {self.name!r}: only a non-inferiority hypothesis has a margin.")
        if self.kind == THRESHOLD:
            _finite(f"Hypothesis {self.name!r}: threshold", self.threshold)
        elif self.threshold is not None:
            raise ValueError(f"Hypothesis {self.name!r}: only a threshold hypothesis has a threshold.")

    @property
    def bound(self) -> float:
        """The value the 95% interval must lie entirely past (on the claimed side) for PASS."""
        if self.kind == THRESHOLD:
            return float(self.threshold)
        if self.kind == NON_INFERIORITY:
            return self.null - self.margin if self.higher_is_better else self.null + self.margin
        return self.null

    @property
    def rule(self) -> str:
        """The PASS rule in words, e.g. `"95% interval > 0"`."""
        side = ">" if self.higher_is_better else "<"
        return f"95% interval {side} {self.bound:.4g}"


@dataclass(frozen=True)
class Scale:
    """A fixed amount of work: the same scale and seeds give the same experiment on any machine.

    Args:
        work: what is done, as numbers a check reads (`ctx.work["epochs"]`, `ctx.work["eval_images"]`, …).
        seeds: how many training seeds by default (`--seeds` overrides).
        minutes: the estimated wall time on the reference machine (`device`); printed by `--plan`, and the time
            guard is `GUARD_FACTOR` times it.
        device: where `minutes` was measured or estimated.
        description: the scale in words (what is smaller than the paper and why).
    """

    work: dict
    seeds: int = 1
    minutes: float | None = None
    device: str = "2-core CPU"
    description: str = ""

    def __post_init__(self):
        if not isinstance(self.seeds, int) or self.seeds < 1:
            raise ValueError(f"Scale.seeds must be an integer ≥ 1; got {self.seeds!r}.")
        _finite("Scale.minutes", self.minutes, allow_none=True)


@dataclass(frozen=True)
class Claim:
    """A paper's claim, declared before the run: its hypotheses, how they combine, its scales and minimum sizes.

    Args:
        paper: the paper's title.
        claim: the claim in words, with the paper's number.
        hypotheses: what is tested; the first is the headline (its kind, metric and estimate head the report).
        combine: `"all"` (every hypothesis must PASS; any FAIL fails) or `"any"` (a pre-registered family of
            comparisons — radii, ε, bit widths — of which one PASS suffices; each interval is then widened by a
            Bonferroni correction for the family's size, so no "best of many" can pass by luck).
        scales: `smoke`, `cpu` and `paper` [`Scale`]s.
        min_seeds: training seeds needed outside `smoke` for a verdict (≥ 3 where one training run decides).
        minimums: minimum sizes the run must report in `Result.sizes` outside `smoke` (e.g. `{"eval_images": 400,
            "ddpm_steps": 1000}`); a run below any of them, or that does not report one, is INCONCLUSIVE.
        citation: BibTeX of the paper.
    """

    paper: str
    claim: str
    hypotheses: tuple
    scales: dict
    combine: str = "all"
    min_seeds: int = 1
    minimums: dict = field(default_factory=dict)
    citation: str = ""

    def __post_init__(self):
        object.__setattr__(self, "hypotheses", tuple(self.hypotheses))
        if not self.hypotheses or not all(isinstance(h, Hypothesis) for h in self.hypotheses):
            raise ValueError("Claim.hypotheses must be a non-empty list of Hypothesis.")
        names = [h.name for h in self.hypotheses]
        if len(set(names)) != len(names):
            raise ValueError(f"Claim.hypotheses have repeated names: {names}.")
        if self.combine not in COMBINE_RULES:
            raise ValueError(f"Claim.combine must be one of {COMBINE_RULES}; got {self.combine!r}.")
        missing = [s for s in SCALES if s not in self.scales]
        if missing or not all(isinstance(s, Scale) for s in self.scales.values()):
            raise ValueError(f"Claim.scales must map each of {SCALES} to a Scale; missing {missing}.")
        if not isinstance(self.min_seeds, int) or self.min_seeds < 1:
            raise ValueError(f"Claim.min_seeds must be an integer ≥ 1; got {self.min_seeds!r}.")
        for key, value in self.minimums.items():
            _finite(f"Claim.minimums[{key!r}]", value)

    @property
    def headline(self) -> Hypothesis:
        return self.hypotheses[0]

    @property
    def kind(self) -> str:
        return self.headline.kind

    @property
    def metric(self) -> str:
        return self.headline.name


@dataclass
class Measurement:
    """One measured quantity with its uncertainty.

    Args:
        estimate: the value.
        standard_error: its standard error (≥ 0), covering what varies: images and, with several seeds, training
            randomness (see `hfcifar.reproduce.statistics`).
        n_images: how many evaluation images (or samples, noises) it rests on.
        n_seeds: how many training seeds.
        per_seed: the estimate of each seed, shown in the report.
        method: how the standard error was obtained, in words.
    """

    estimate: float
    standard_error: float
    n_images: int | None = None
    n_seeds: int = 1
    per_seed: list | None = None
    method: str = ""


@dataclass
class Result:
    """What a claim check's `run(ctx)` returns.

    Args:
        measurements: a [`Measurement`] for every hypothesis name of the claim (a missing one is INCONCLUSIVE).
        details: every other number the run measured (JSON values), shown in the report's table.
        sizes: the sizes the claim's `minimums` are checked against (`{"eval_images": 466, …}`).
        notes: anything the reader should know about this run, in words.
        plots: files the run wrote under `ctx.output_dir` besides those made with `ctx.figure` (which register
            themselves).
        model_dir: a trained model folder the run saved, relative to `ctx.output_dir`.
    """

    measurements: dict
    details: dict = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)
    notes: str = ""
    plots: list = field(default_factory=list)
    model_dir: str | None = None
