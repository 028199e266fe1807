"""Estimates with standard errors: per-example scores over images and seeds, paired differences, seed pooling.

Most claims are measured on one fixed set of held-out images after training with k seeds. A per-example score
(1/0 correctness, a paired difference in {−1, 0, 1}, a per-image error) is then an array `[k, n]`. Its mean has two
sources of variation: which images were drawn, and which training run came out (the seed). The standard error used
everywhere here adds both, conservatively:

    SE² = var(seed means) / k  +  var(per-image means over seeds) / n

(the per-seed-and-image residual is counted in both terms, so the SE is a little too large, never too small). With
one seed the first term is absent — which is why claims that one training run decides declare `min_seeds=3`.

For 0/1 scores the image term never drops below the Agresti–Coull variance p̃(1 − p̃)/(N + 4), p̃ = (x + 2)/(N + 4)
over all N = k·n trials: 8 successes out of 8 are not a certainty (the plain binomial SE would be 0 and any
threshold below 100% would PASS); at proportions away from 0 and 1 the floor is far below the measured term.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .claims import Measurement


def _array(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    if isinstance(values, (list, tuple)) and values and hasattr(values[0], "detach"):
        values = [v.detach().cpu().numpy() for v in values]
    return np.asarray(values, dtype=float)


def per_example_estimate(values: Any, proportion: bool | None = None) -> Measurement:
    """The mean of per-example scores `[seeds, examples]` (or `[examples]`: one seed) with the SE above.

    `proportion`: whether the scores are successes (0/1) whose image term gets the Agresti–Coull floor; `None`
    decides from the values (a paired difference passes `False`: identical predictions are no uncertainty)."""
    scores = _array(values)
    if scores.ndim == 1:
        scores = scores[None, :]
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise ValueError(f"per_example_estimate needs scores shaped [seeds, examples ≥ 2]; got {scores.shape}.")
    seeds, n = scores.shape
    seed_means = scores.mean(axis=1)
    image_means = scores.mean(axis=0)
    variance = image_means.var(ddof=1) / n
    if proportion is None:
        proportion = bool(np.isin(scores, (0.0, 1.0)).all())
    if proportion:
        variance = max(variance, agresti_coull_variance(scores.sum(), scores.size))
    if seeds > 1:
        variance += seed_means.var(ddof=1) / seeds
    method = "per-image variance" + (" + seed-to-seed variance" if seeds > 1 else " (one seed)")
    return Measurement(estimate=float(seed_means.mean()), standard_error=float(math.sqrt(variance)), n_images=n,
                       n_seeds=seeds, per_seed=[float(m) for m in seed_means], method=method)


def agresti_coull_variance(successes: float, trials: int) -> float:
    """p̃(1 − p̃)/(N + 4) with p̃ = (x + 2)/(N + 4): a proportion's variance that stays honest at 0 and 1."""
    shrunk = (float(successes) + 2) / (trials + 4)
    return shrunk * (1 - shrunk) / (trials + 4)


def proportion(successes: float, trials: int, method: str = "") -> Measurement:
    """A success rate x/N with the Agresti–Coull standard error (one seed)."""
    if trials < 1:
        raise ValueError(f"proportion needs at least one trial; got {trials}.")
    return Measurement(estimate=float(successes) / trials,
                       standard_error=math.sqrt(agresti_coull_variance(successes, trials)), n_images=int(trials),
                       method=method or "Agresti–Coull standard error of a proportion")


def paired_difference(scores_a: Any, scores_b: Any) -> Measurement:
    """`a − b` on the same examples (and seeds): per-example scores `[seeds, examples]` or `[examples]` each.

    Pairing removes the examples both get right (or both wrong) from the noise, so the SE is smaller than that of
    two independent accuracies."""
    a, b = _array(scores_a), _array(scores_b)
    if a.shape != b.shape:
        raise ValueError(f"paired_difference needs scores of the same shape; got {a.shape} and {b.shape}.")
    measurement = per_example_estimate(a - b, proportion=False)
    measurement.method = "paired per-image differences: " + measurement.method
    return measurement


def pool_seeds(estimates: list[float], standard_errors: list[float], n_images: int | None = None,
               method: str = "") -> Measurement:
    """Pool one estimate ± SE per seed (for quantities that are not per-example means, e.g. FID ratios).

    SE² = var(estimates)/k + mean(SE²): the seed spread plus the evaluation noise of one seed's measurement (the
    seeds share the evaluation data, so that part does not shrink with k)."""
    values, errors = _array(estimates), _array(standard_errors)
    if values.ndim != 1 or values.shape != errors.shape or values.size < 1:
        raise ValueError("pool_seeds needs one estimate and one standard error per seed.")
    k = values.size
    variance = float((errors ** 2).mean()) + (values.var(ddof=1) / k if k > 1 else 0.0)
    return Measurement(estimate=float(values.mean()), standard_error=math.sqrt(variance), n_images=n_images,
                       n_seeds=k, per_seed=[float(v) for v in values],
                       method=method or ("seed spread + per-seed standard error" if k > 1 else "one seed"))


def bootstrap_standard_error(statistic, samples: list, repeats: int = 200, seed: int = 0) -> float:
    """The bootstrap standard error of `statistic(*resampled)`: each array in `samples` is resampled with
    replacement along its first axis (independently), `repeats` times, with a fixed seed."""
    generator = np.random.default_rng(seed)
    arrays = [np.asarray(s) for s in samples]
    values = []
    for _ in range(repeats):
        resampled = [a[generator.integers(0, len(a), len(a))] for a in arrays]
        values.append(float(statistic(*resampled)))
    return float(np.std(values, ddof=1))


def paired_comparison(correct_a: Any, correct_b: Any) -> dict:
    """Accuracy of `a` minus that of `b` on the same examples, with its standard error, as a dict.

    Returns `{"margin", "standard_error", "a_only_right", "b_only_right", "num_examples"}` (one seed; see
    [`paired_difference`] for several)."""
    a, b = _array(correct_a), _array(correct_b)
    if a.shape != b.shape or a.ndim != 1 or a.size < 2:
        raise ValueError("paired_comparison needs two per-example correctness vectors of the same length ≥ 2; got "
                         f"shapes {a.shape} and {b.shape}.")
    difference = a - b
    return {"margin": float(difference.mean()), "standard_error": float(difference.std(ddof=1) / math.sqrt(a.size)),
            "a_only_right": int((difference > 0).sum()), "b_only_right": int((difference < 0).sum()),
            "num_examples": int(a.size)}


def paired_standard_error(correct_a: Any, correct_b: Any) -> float:
    """The standard error of `paired_comparison`'s margin."""
    return paired_comparison(correct_a, correct_b)["standard_error"]
