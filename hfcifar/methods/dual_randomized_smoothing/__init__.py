"""Method 29 `dual-randomized-smoothing`: Randomized Smoothing and Dual Randomized Smoothing certification.

- Randomized Smoothing (RS): Cohen, Rosenfeld & Kolter, "Certified Adversarial Robustness via Randomized
  Smoothing", ICML 2019 — `SmoothedClassifier` (PREDICT, CERTIFY with a Clopper–Pearson bound).
- Dual Randomized Smoothing (DRS): Xia, Yu, Jiang & Ding, "Mitigating the Curse of Dimensionality for Certified
  Robustness via Dual Randomized Smoothing", ICLR 2024 — `DualSmoothedClassifier` on the two down-sampled
  sub-images (`downsample_sub_images`), with the combined radius `dual_certified_radius`.
- Base classifiers: `GaussianNoiseTrainer` (Gaussian data augmentation, optionally on one DRS sub-image) and
  `train_base_classifier`.

Measure with `hfcifar eval RUN --metric certified_accuracy --option sigma=0.25` (`hfcifar.evaluation.certification`),
serve with the `certified-classification` pipeline, and check the paper's claim with
`hfcifar reproduce dual-randomized-smoothing` (`claim.py`). See README.md in this folder.
"""

from .smoothing import (
    ABSTAIN,
    SUB_IMAGES,
    CertificationResult,
    DualSmoothedClassifier,
    SmoothedClassifier,
    certified_radius,
    certify_dataset,
    clopper_pearson_lower_bound,
    downsample_sub_images,
    draw_certified_accuracy,
    dual_certified_radius,
    merge_sub_images,
    noisy_base_input,
    plot_certified_accuracy,
    upsample_sub_image,
)
from .trainer import GaussianNoiseTrainer, GaussianNoiseTrainingArguments, train_base_classifier

__all__ = [
    "ABSTAIN",
    "SUB_IMAGES",
    "CertificationResult",
    "DualSmoothedClassifier",
    "GaussianNoiseTrainer",
    "GaussianNoiseTrainingArguments",
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
    "train_base_classifier",
    "upsample_sub_image",
]
