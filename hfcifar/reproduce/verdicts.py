"""The verdict rules: fixed before any run, the same for every check.

For each hypothesis, the 95% interval `estimate ± z·SE` (z = 1.96; Bonferroni-widened for an `"any"` family) is
compared with the hypothesis's bound on its claimed side:

- **PASS** — the whole interval lies past the bound on the claimed side (the effect is established);
- **FAIL** — the whole interval lies on the other side (the opposite is established);
- **INCONCLUSIVE** — the interval holds the bound (a tie, an effect inside its own noise), or nothing finite was
  measured.

At the `paper` scale the claimed magnitude is part of the verdict: a direction PASS whose interval lies entirely
short of the paper's own value (the effect is established smaller than claimed) is a FAIL.

Hypotheses combine with `"all"` (PASS iff every one passes, FAIL iff any fails) or `"any"` (PASS iff one passes,
FAIL iff all fail). A run that did not do its planned work, fell below the claim's minimum sizes or was a smoke
run gets INCONCLUSIVE or SMOKE whatever the numbers say.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from .claims import FAIL, INCONCLUSIVE, PASS, SMOKE, Claim, Hypothesis, Measurement

CONFIDENCE = 0.95


def critical_value(family_size: int = 1, confidence: float = CONFIDENCE) -> float:
    """The two-sided normal quantile for `confidence`, Bonferroni-corrected for `family_size` comparisons."""
    alpha = (1 - confidence) / max(1, family_size)
    return NormalDist().inv_cdf(1 - alpha / 2)


@dataclass
class SubVerdict:
    """One hypothesis decided: the fields every report shows."""

    name: str
    kind: str
    statement: str
    rule: str
    bound: float
    higher_is_better: bool
    paper_value: float | None
    estimate: float | None
    standard_error: float | None
    interval: list | None
    confidence: float
    n: dict
    per_seed: list | None
    verdict: str
    magnitude: str
    reason: str
    method: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _finite(value) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def magnitude(hypothesis: Hypothesis, interval: list | None) -> str:
    """Where the paper's value lies relative to the interval: `"inside"`, `"below"`, `"above"` (or why not)."""
    if hypothesis.paper_value is None:
        return "no comparable paper value"
    if interval is None:
        return "not measured"
    low, high = interval
    if hypothesis.paper_value < low:
        return "below"
    if hypothesis.paper_value > high:
        return "above"
    return "inside"


def _short_of_paper(hypothesis: Hypothesis, where: str) -> bool:
    """The measured interval lies entirely short of the paper's value on the claimed side."""
    return (where == "above") if hypothesis.higher_is_better else (where == "below")


def decide_hypothesis(hypothesis: Hypothesis, measurement: Measurement | None, z: float = 1.959963984540054,
                      scale: str = "cpu") -> SubVerdict:
    """PASS / FAIL / INCONCLUSIVE for one hypothesis from its measurement's interval (see the module docstring)."""
    confidence = 1 - 2 * (1 - NormalDist().cdf(z))
    base = dict(name=hypothesis.name, kind=hypothesis.kind, statement=hypothesis.statement, rule=hypothesis.rule,
                bound=hypothesis.bound, higher_is_better=hypothesis.higher_is_better,
                paper_value=hypothesis.paper_value, confidence=round(confidence, 6))
    if measurement is None:
        return SubVerdict(**base, estimate=None, standard_error=None, interval=None, n={}, per_seed=None,
                          verdict=INCONCLUSIVE, magnitude=magnitude(hypothesis, None),
                          reason=f"the run measured nothing for {hypothesis.name!r}")
    n = {"images": measurement.n_images, "seeds": measurement.n_seeds}
    estimate, se = measurement.estimate, measurement.standard_error
    if not (_finite(estimate) and _finite(se)) or float(se) < 0:
        return SubVerdict(**base, estimate=estimate if _finite(estimate) else None,
                          standard_error=se if _finite(se) else None, interval=None, n=n,
                          per_seed=measurement.per_seed, verdict=INCONCLUSIVE, magnitude=magnitude(hypothesis, None),
                          reason=f"{hypothesis.name} = {estimate!r} ± {se!r} is not a finite estimate with a standard "
                                 "error (did training diverge?)", method=measurement.method)
    estimate, se = float(estimate), float(se)
    interval = [estimate - z * se, estimate + z * se]
    low, high = interval
    bound = hypothesis.bound
    if hypothesis.higher_is_better:
        established, refuted = low > bound, high < bound
    else:
        established, refuted = high < bound, low > bound
    side = ">" if hypothesis.higher_is_better else "<"
    shown = f"{estimate:.4g} ± {se:.2g} (95% interval [{low:.4g}, {high:.4g}])"
    if established:
        verdict, reason = PASS, f"{hypothesis.name} = {shown} lies entirely {side} {bound:.4g}"
    elif refuted:
        verdict, reason = FAIL, f"{hypothesis.name} = {shown} lies entirely on the wrong side of {bound:.4g}"
    else:
        verdict, reason = INCONCLUSIVE, f"{hypothesis.name} = {shown} holds {bound:.4g}: not established either way"
    where = magnitude(hypothesis, interval)
    if verdict == PASS and scale == "paper" and _short_of_paper(hypothesis, where):
        verdict = FAIL
        reason += f", but short of the paper's {hypothesis.paper_value:.4g} (the magnitude counts at the paper scale)"
    elif hypothesis.paper_value is not None and _short_of_paper(hypothesis, where):
        reason += f"; the paper's {hypothesis.paper_value:.4g} is beyond the interval (a smaller effect at this scale)"
    return SubVerdict(**base, estimate=estimate, standard_error=se, interval=interval, n=n,
                      per_seed=measurement.per_seed, verdict=verdict, magnitude=where, reason=reason,
                      method=measurement.method)


def combine(verdicts: list[str], rule: str) -> str:
    """Combine sub-verdicts: `"all"` — PASS iff all PASS, FAIL iff any FAIL; `"any"` — PASS iff any PASS, FAIL iff
    all FAIL; INCONCLUSIVE otherwise."""
    if rule == "all":
        if all(v == PASS for v in verdicts):
            return PASS
        return FAIL if any(v == FAIL for v in verdicts) else INCONCLUSIVE
    if rule == "any":
        if any(v == PASS for v in verdicts):
            return PASS
        return FAIL if all(v == FAIL for v in verdicts) else INCONCLUSIVE
    raise ValueError(f"unknown combination rule {rule!r}")


@dataclass
class Decision:
    verdict: str
    reason: str
    sub_verdicts: list
    incomplete: list


def decide(claim: Claim, measurements: dict, scale: str = "cpu", incomplete: list | None = None,
           sizes: dict | None = None, seeds: int = 1) -> Decision:
    """The claim's verdict from the run's measurements (the one place verdicts are made).

    `incomplete` lists why the planned work was not done (time guard, arms that trained different steps, an overrun);
    `sizes` are the run's reported sizes, checked against `claim.minimums`; `seeds` against `claim.min_seeds`.
    Outside `smoke`, any of those makes the verdict INCONCLUSIVE with the reasons.
    """
    family = len(claim.hypotheses) if claim.combine == "any" else 1
    z = critical_value(family)
    subs = [decide_hypothesis(h, measurements.get(h.name), z=z, scale=scale) for h in claim.hypotheses]
    combined = combine([s.verdict for s in subs], claim.combine)
    problems = list(incomplete or [])
    if scale != "smoke":
        sizes = sizes or {}
        for key, minimum in claim.minimums.items():
            value = sizes.get(key)
            if not _finite(value):
                problems.append(f"the run did not report {key!r}, which the claim needs ≥ {minimum:g}")
            elif float(value) < minimum:
                problems.append(f"{key} = {float(value):g} is below the claim's minimum {minimum:g}")
        if seeds < claim.min_seeds:
            problems.append(f"{seeds} training seed(s), the claim needs ≥ {claim.min_seeds}")
    how = "every hypothesis must pass" if claim.combine == "all" else (
        f"one of {family} pre-registered comparisons must pass, each at {CONFIDENCE:.0%}/{family} (Bonferroni)"
        if family > 1 else "its hypothesis must pass")
    parts = "; ".join(f"{s.verdict} — {s.reason}" for s in subs)
    if scale == "smoke":
        return Decision(SMOKE, f"a smoke run checks that the experiment executes; it decides nothing (the rule "
                               f"would say {combined}: {parts})", subs, problems)
    if problems:
        return Decision(INCONCLUSIVE, "the run is not a complete experiment: " + "; ".join(problems)
                        + f" (the numbers alone would say {combined}: {parts})", subs, problems)
    return Decision(combined, f"{how} — {parts}", subs, problems)
