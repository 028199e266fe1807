"""Certificate arithmetic of Randomized Smoothing (Cohen et al., 2019) and Dual Randomized Smoothing (Xia et al.,
2024): the Clopper–Pearson lower bound on p_A, the ℓ2 radii σ Φ⁻¹(p_A) and DRS's combined radius, and the end of
PREDICT (the binomial test on the two top counts). Pure functions of counts; see `smoothing.py` for the classifiers.
"""

from __future__ import annotations

import math

import numpy as np

#: The class PREDICT and CERTIFY return when they abstain (Cohen et al., Algorithms 1 and 2).
ABSTAIN = -1


def clopper_pearson_lower_bound(successes: int, trials: int, alpha: float) -> float:
    """One-sided (1 − α) Clopper–Pearson lower confidence bound on a binomial proportion.

    This is `LowerConfBound(n_A, n, 1 − α)` of Cohen et al. (2019), Algorithm 2: the smallest p that a count of
    `successes` out of `trials` does not reject at level α, i.e. the α-quantile of Beta(k, n − k + 1), and 0 when
    k = 0. For k = n it has the closed form α^(1/n).

    Args:
        successes (`int`): k, the number of draws that returned the class (0 ≤ k ≤ n).
        trials (`int`): n, the number of draws (≥ 1).
        alpha (`float`): the failure probability α, in (0, 1).
    """
    # scipy.stats is imported on first use: `import hfcifar` registers the pipeline that carries a copy of this
    # function, and importing scipy.stats would add a second to every `import hfcifar`.
    from scipy.stats import beta

    if int(trials) != trials or trials < 1:
        raise ValueError(f"trials must be a positive integer; got {trials!r}.")
    if int(successes) != successes or not 0 <= successes <= trials:
        raise ValueError(f"successes must be an integer in [0, trials={trials}]; got {successes!r}.")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha (the failure probability) must lie in (0, 1); got {alpha!r}.")
    if successes == 0:
        return 0.0
    return float(beta.ppf(alpha, int(successes), int(trials - successes + 1)))


def certified_radius(p_a_lower: float, sigma: float) -> float:
    """Cohen et al. (2019), Theorem 1: the ℓ2 radius R = σ Φ⁻¹(p_A) certified by a lower bound p_A > 1/2.

    Returns 0.0 when p_A ≤ 1/2: CERTIFY abstains there (no radius is certified).
    """
    from scipy.stats import norm  # imported on first use, see `clopper_pearson_lower_bound`

    if p_a_lower <= 0.5:
        return 0.0
    return float(sigma * norm.ppf(p_a_lower))


def dual_certified_radius(p_a_lower_l: float, p_a_lower_r: float, sigma: float) -> float:
    """The ℓ2 radius certified by Dual Randomized Smoothing (Xia et al., 2024, §3, its certified-radius theorem):

        R = σ (Φ⁻¹(p_A^l) + Φ⁻¹(p_A^r)) / √2,

    where p_A^l, p_A^r are lower bounds on the probabilities that f^l and f^r return c_A on the noisy sub-images.

    Why: Φ⁻¹ of a Gaussian-smoothed probability is (1/σ)-Lipschitz (Salman et al., 2019; the core of Cohen's
    Theorem 1), so after a perturbation δ = (δ^l, δ^r) the two probabilities of c_A stay above Φ(a_l − ‖δ^l‖/σ) and
    Φ(a_r − ‖δ^r‖/σ) with a = Φ⁻¹(p_A). Their sum exceeds 1 — so c_A keeps more than half of the summed mass and
    stays the prediction — whenever ‖δ^l‖ + ‖δ^r‖ < σ(a_l + a_r), and ‖δ^l‖ + ‖δ^r‖ ≤ √2 ‖δ‖ because the two
    sub-images partition the pixels. The bound is tight: linear base classifiers reach it. The radius may be
    positive even when one of p_A^l, p_A^r is below 1/2. Returns 0.0 (abstain) when the sum is not positive.

    The authors' CIFAR-10 script combines the two radii as √(R_l² + R_r²), which exceeds this radius when R_l ≠ R_r
    and is not a certificate for the summed classifier (e.g. a_l = 3, a_r = 0.1, ‖δ^l‖/σ = 1, ‖δ^r‖/σ = 2.83 lies
    inside it yet flips the prediction); their ImageNet script uses (R_l + R_r)/√2, the radius above.
    """
    from scipy.stats import norm  # imported on first use, see `clopper_pearson_lower_bound`

    margin = float(norm.ppf(p_a_lower_l)) + float(norm.ppf(p_a_lower_r))
    if not margin > 0:  # also catches NaN
        return 0.0
    return sigma * margin / math.sqrt(2)


def predict_from_counts(counts: np.ndarray, alpha: float) -> int:
    """The end of PREDICT (Cohen et al., Algorithm 1): the top class, or `ABSTAIN` when a two-sided binomial test of
    its count against the runner-up's (Hung & Fithian, 2019) has p-value above α."""
    from scipy.stats import binomtest  # imported on first use, see `clopper_pearson_lower_bound`

    top_two = np.argsort(counts, kind="stable")[::-1][:2]
    count_a, count_b = int(counts[top_two[0]]), int(counts[top_two[1]])
    if binomtest(count_a, count_a + count_b, 0.5).pvalue > alpha:
        return ABSTAIN
    return int(top_two[0])
