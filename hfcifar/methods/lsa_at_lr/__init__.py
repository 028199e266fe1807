"""Row 14, `lsa-at-lr`: Layer Sustainability Analysis and layer-wise regularized adversarial training (AT-LR).

Khalooei, Homayounpour & Amirmazlaghani, "Layer-wise Regularized Adversarial Training using Layers Sustainability
Analysis (LSA) framework" (2022, https://arxiv.org/abs/2202.02626). `layer_sustainability_analysis` ranks a trained
model's layers by the relative error of their representations under attack and returns the Most Vulnerable Layers
(`lsa.py`); `ATLRTrainer` adds the layer-wise regularization of those layers to PGD adversarial training
(`trainer.py`); `claim.py` compares AT-LR with plain AT at perturbations larger than the training ε.
"""

from hfcifar.methods.base import Method, lazy_exports

METHOD = Method(
    number=14,
    slug="lsa-at-lr",
    title="Layer-wise Regularized Adversarial Training using Layers Sustainability Analysis (LSA) framework",
    ship="layer sustainability analysis (MVL list) + layer-wise regularized adversarial training",
    claim="AT-LR robust accuracy ≥ plain AT at larger perturbations (paper: +10.73% on CIFAR-10)",
    family="adversarial",
    citation="""@article{khalooei2022lsa,
  title   = {Layer-wise Regularized Adversarial Training using Layers Sustainability Analysis {(LSA)} framework},
  author  = {Khalooei, Mohammad and Homayounpour, Mohammad Mehdi and Amirmazlaghani, Maryam},
  journal = {arXiv preprint arXiv:2202.02626},
  year    = {2022},
  url     = {https://arxiv.org/abs/2202.02626}
}""",
    provides=(("trainer", "at-lr", "hfcifar.methods.lsa_at_lr.trainer:ATLRTrainer"),),
)

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".trainer": ["ATLRTrainer", "ATLRTrainingArguments", "frozen_batch_norm_statistics"],
        ".lsa": [
            "ACTIVATION_TYPES",
            "LayerRepresentations",
            "LayerSustainabilityOutput",
            "draw_layer_sustainability",
            "layer_representations",
            "layer_sustainability_analysis",
            "most_vulnerable_layers",
            "plot_layer_sustainability",
            "probe_layers",
            "relative_error",
        ],
    },
)
