"""The maths of FID and the Inception Score, on features: the Gaussian fit of a set of features
(`feature_statistics`, `FeatureStatistics`), the Fréchet distance between two Gaussians (`frechet_distance`,
Heusel et al. 2017, eq. 6) and the Inception Score of class probabilities (`inception_score`, Salimans et al. 2016,
§4). Nothing here runs a network: `extractors.py` turns images into features, `metric.py` samples and measures.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


# ------------------------------------------------------------------------------------------------ the two formulas


def feature_statistics(features: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of N×D features, in float64 (the Gaussian fit of FID, Heusel et al. 2017, §3).

    The covariance is the unbiased estimate (divides by N − 1), as in the reference implementations. With fewer
    samples than dimensions (N ≤ D) it is rank-deficient; FID is still defined but strongly biased, so a warning
    says so.
    """
    features = features.detach().cpu().numpy() if isinstance(features, torch.Tensor) else np.asarray(features)
    if features.ndim != 2:
        raise ValueError(f"features must be a 2-D array (N, D); got shape {features.shape}.")
    n, d = features.shape
    if n < 2:
        raise ValueError(f"A covariance needs at least 2 samples; got {n}.")
    features = features.astype(np.float64)
    if not np.isfinite(features).all():
        raise ValueError("features contain NaN or inf; check the images and the feature extractor.")
    if n <= d:
        warnings.warn(f"Only {n} samples for {d}-dimensional features: the covariance is rank-deficient and FID is "
                      f"strongly biased upwards; use more than {d} samples (papers use 50,000 with Inception's 2048).",
                      stacklevel=2)
    return features.mean(axis=0), np.cov(features, rowvar=False).reshape(d, d)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (eigenvalues below 0 are rounding)."""
    eigenvalues, eigenvectors = np.linalg.eigh(matrix)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T


def _trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray, method: str, eps: float) -> float:
    """tr (Σ1 Σ2)^{1/2}, the cross term of the Fréchet distance."""
    if method == "eigh":
        # Σ1Σ2 = Σ1^{1/2} (Σ1^{1/2} Σ2) has the eigenvalues of Σ1^{1/2} Σ2 Σ1^{1/2}, which is symmetric PSD: its
        # eigenvalues are real and ≥ 0 up to rounding, so tr (Σ1Σ2)^{1/2} = Σ_i √λ_i needs no complex square root
        # of a non-symmetric matrix, and stays stable when the covariances are singular (N < D).
        root1 = _sqrt_psd(sigma1)
        middle = root1 @ sigma2 @ root1
        eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
        scale = max(float(np.abs(eigenvalues).max(initial=0.0)), np.finfo(np.float64).tiny)
        if eigenvalues.min(initial=0.0) < -1e-6 * scale:
            warnings.warn(f"Σ1^½ Σ2 Σ1^½ has a negative eigenvalue ({eigenvalues.min():.3g}, largest {scale:.3g}): "
                          "the covariances are not positive semi-definite; check the statistics.", stacklevel=3)
        return float(np.sqrt(np.clip(eigenvalues, 0, None)).sum())
    if method == "sqrtm":
        # The form of the reference implementations (TTUR, pytorch-fid): scipy's sqrtm of the non-symmetric
        # product, with a small ridge when the product is singular.
        from scipy import linalg

        covmean = linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            warnings.warn(f"Σ1Σ2 is singular; adding {eps} to the diagonal of both covariances.", stacklevel=3)
            offset = np.eye(sigma1.shape[0]) * eps
            covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
        if np.iscomplexobj(covmean):
            # The exact root of a product of PSD matrices has a real spectrum: a large imaginary part is an error,
            # a small one is rounding.
            residue = np.abs(np.diagonal(covmean).imag).max()
            if residue > 1e-3:
                raise ValueError(f"sqrtm(Σ1Σ2) has an imaginary component of {residue:.3g}: the covariances are "
                                 "ill-conditioned; use method='eigh' or more samples.")
            covmean = covmean.real
        return float(np.trace(covmean))
    raise ValueError(f"Unknown method {method!r}; use 'eigh' or 'sqrtm'.")


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, method: str = "eigh", eps: float = 1e-6
) -> float:
    """The Fréchet (2-Wasserstein) distance between N(μ1, Σ1) and N(μ2, Σ2) (Heusel et al. 2017, eq. 6):

        d² = ‖μ1 − μ2‖² + tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^{1/2})

    computed in float64. FID is this distance between the Gaussian fits of two sets of Inception features.

    Args:
        mu1, mu2 (`np.ndarray` of shape (D,)): the means.
        sigma1, sigma2 (`np.ndarray` of shape (D, D)): the covariances (symmetric positive semi-definite).
        method (`str`, *optional*, defaults to `"eigh"`): how tr (Σ1Σ2)^{1/2} is computed. `"eigh"` uses the
            eigenvalues of the symmetric Σ1^{1/2} Σ2 Σ1^{1/2} (stable for singular covariances); `"sqrtm"` is the
            reference implementations' `scipy.linalg.sqrtm(Σ1Σ2)` with an `eps` ridge when the product is singular
            and a check that the imaginary residue is rounding. Both agree to rounding on well-conditioned inputs.
        eps (`float`, *optional*, defaults to 1e-6): the ridge of the `"sqrtm"` fallback.

    Returns:
        d² as a float ≥ 0 (rounding below 0 is clipped: d² is a squared distance).

    Example:

    ```python
    >>> import numpy as np
    >>> round(frechet_distance(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2)), 6)  # 2 + 2·(1 + 4 − 2·2)
    4.0
    ```
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, dtype=np.float64)), np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"Expected means of shape (D,) and covariances of shape (D, D) with one D; got "
                         f"{mu1.shape}, {sigma1.shape}, {mu2.shape}, {sigma2.shape}.")
    if not all(np.isfinite(a).all() for a in (mu1, mu2, sigma1, sigma2)):
        raise ValueError("The statistics contain NaN or inf.")
    diff = mu1 - mu2
    distance = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * _trace_sqrt_product(sigma1, sigma2, method, eps)
    return max(float(distance), 0.0)


def inception_score(probs: np.ndarray | torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """The Inception Score (Salimans et al. 2016, §4): IS = exp E_x KL(p(y|x) ‖ p(y)).

    p(y) is the marginal of the class probabilities over the images. As in the paper's code, the images are cut
    into `splits` consecutive parts, the score is computed on each part (with that part's marginal), and the mean
    and standard deviation over the parts are reported. IS ranges from 1 (every image gets the same distribution)
    to the number of classes (confident, and balanced over classes).

    Args:
        probs (`np.ndarray` or `torch.Tensor` of shape (N, C)): p(y|x) per image; rows sum to 1.
        splits (`int`, *optional*, defaults to 10): number of parts; each needs at least one image.

    Returns:
        `(mean, std)` over the parts.
    """
    probs = probs.detach().cpu().numpy() if isinstance(probs, torch.Tensor) else np.asarray(probs)
    probs = probs.astype(np.float64)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(f"probs must have shape (N, C) with C ≥ 2 classes; got {probs.shape}.")
    if not np.isfinite(probs).all() or probs.min() < 0 or not np.allclose(probs.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("probs must be finite, non-negative, and each row must sum to 1 (a softmax output).")
    splits = int(splits)
    if splits < 1 or probs.shape[0] < splits:
        raise ValueError(f"The Inception Score over {splits} splits needs at least {max(splits, 1)} images; got "
                         f"{probs.shape[0]} (lower `splits`).")
    from scipy.special import rel_entr

    scores = []
    for part in np.array_split(probs, splits):
        marginal = part.mean(axis=0, keepdims=True)
        # rel_entr takes 0·log 0 = 0: confident (one-hot) rows are the best case, not a NaN
        scores.append(math.exp(rel_entr(part, marginal).sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))



# ------------------------------------------------------------------------------------------- feature statistics


@dataclass
class FeatureStatistics:
    """The Gaussian fit of a set of images' features (and their IS, when the extractor classifies), for FID."""

    mu: np.ndarray
    sigma: np.ndarray
    num_examples: int
    feature_extractor: str
    inception_score: float | None = None
    inception_score_std: float | None = None

    def save(self, path: str | os.PathLike) -> None:
        """Write an `.npz` atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp.npz")
        np.savez(tmp, mu=self.mu, sigma=self.sigma, num_examples=self.num_examples,
                 feature_extractor=self.feature_extractor,
                 inception_score=np.nan if self.inception_score is None else self.inception_score,
                 inception_score_std=np.nan if self.inception_score_std is None else self.inception_score_std)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FeatureStatistics":
        with np.load(path) as data:
            score, std = float(data["inception_score"]), float(data["inception_score_std"])
            return cls(data["mu"], data["sigma"], int(data["num_examples"]), str(data["feature_extractor"]),
                       None if math.isnan(score) else score, None if math.isnan(std) else std)

    @classmethod
    def from_features(
        cls, features: np.ndarray, probs: np.ndarray | None, name: str, splits: int = 10
    ) -> "FeatureStatistics":
        mu, sigma = feature_statistics(features)
        score = std = None
        if probs is not None and probs.shape[0] >= splits:
            score, std = inception_score(probs, splits)
        return cls(mu, sigma, int(features.shape[0]), name, score, std)



__all__ = ["FeatureStatistics", "feature_statistics", "frechet_distance", "inception_score"]
