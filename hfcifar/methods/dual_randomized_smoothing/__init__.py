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

from hfcifar.methods.base import Method, lazy_exports

METHOD = Method(
    number=29,
    slug="dual-randomized-smoothing",
    title="Mitigating the Curse of Dimensionality for Certified Robustness via Dual Randomized Smoothing",
    ship="Randomized Smoothing and DRS certification (Clopper-Pearson bound, two down-sampled sub-images)",
    claim="certified accuracy curves for RS and DRS; DRS ≥ RS at some radius",
    family="adversarial",
    citation="""@inproceedings{xia2024mitigating,
  title     = {Mitigating the Curse of Dimensionality for Certified Robustness via Dual Randomized Smoothing},
  author    = {Xia, Song and Yu, Yi and Jiang, Xudong and Ding, Henghui},
  booktitle = {The Twelfth International Conference on Learning Representations},
  year      = {2024},
  url       = {https://openreview.net/forum?id=C1sQBG6Sqp}
}
@inproceedings{cohen2019certified,
  title     = {Certified Adversarial Robustness via Randomized Smoothing},
  author    = {Cohen, Jeremy and Rosenfeld, Elan and Kolter, J. Zico},
  booktitle = {International Conference on Machine Learning},
  year      = {2019},
  url       = {https://arxiv.org/abs/1902.02918}
}""",
    provides=(("trainer", "gaussian-noise", "hfcifar.methods.dual_randomized_smoothing.trainer:GaussianNoiseTrainer"),),
)

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".trainer": ["GaussianNoiseTrainer", "GaussianNoiseTrainingArguments", "train_base_classifier"],
    },
)
