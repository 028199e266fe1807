"""Certified robustness, the family's shared pieces: Randomized Smoothing (Cohen et al., 2019) and Dual Randomized
Smoothing (Xia et al., 2024).

- `bounds.py`      certificate arithmetic: Clopper–Pearson lower bound, ℓ2 radii, DRS's combined radius, PREDICT's test
- `sub_images.py`  DRS's checkerboard sub-images x^l, x^r and the noisy input of a sub-image base classifier
- `smoothing.py`   `SmoothedClassifier` / `DualSmoothedClassifier` (PREDICT, CERTIFY), `certify_dataset`, plots

The `certified_accuracy` metric (`hfcifar.evaluation.certification`), the `certified-classification` pipeline and
the DRS method folder (`hfcifar/methods/dual_randomized_smoothing/`: base-classifier training and the claim check)
build on this package.
"""

from .bounds import ABSTAIN, certified_radius, clopper_pearson_lower_bound, dual_certified_radius, predict_from_counts
from .smoothing import (
    CertificationResult,
    DualSmoothedClassifier,
    SmoothedClassifier,
    certify_dataset,
    draw_certified_accuracy,
    plot_certified_accuracy,
)
from .sub_images import SUB_IMAGES, downsample_sub_images, merge_sub_images, noisy_base_input, upsample_sub_image

__all__ = [
    "ABSTAIN",
    "SUB_IMAGES",
    "CertificationResult",
    "DualSmoothedClassifier",
    "SmoothedClassifier",
    "certified_radius",
    "certify_dataset",
    "clopper_pearson_lower_bound",
    "downsample_sub_images",
    "draw_certified_accuracy",
    "dual_certified_radius",
    "merge_sub_images",
    "noisy_base_input",
    "plot_certified_accuracy",
    "predict_from_counts",
    "upsample_sub_image",
]
