"""Row 14, `lsa-at-lr`: Layer Sustainability Analysis and layer-wise regularized adversarial training (AT-LR).

Khalooei, Homayounpour & Amirmazlaghani, "Layer-wise Regularized Adversarial Training using Layers Sustainability
Analysis (LSA) framework" (2022, https://arxiv.org/abs/2202.02626). `layer_sustainability_analysis` ranks a trained
model's layers by the relative error of their representations under attack and returns the Most Vulnerable Layers
(`lsa.py`); `ATLRTrainer` adds the layer-wise regularization of those layers to PGD adversarial training
(`trainer.py`); `claim.py` compares AT-LR with plain AT at perturbations larger than the training ε.
"""

from .lsa import (
    ACTIVATION_TYPES,
    LayerRepresentations,
    LayerSustainabilityOutput,
    draw_layer_sustainability,
    layer_representations,
    layer_sustainability_analysis,
    most_vulnerable_layers,
    plot_layer_sustainability,
    probe_layers,
    relative_error,
)
from .trainer import ATLRTrainer, ATLRTrainingArguments, frozen_batch_norm_statistics

__all__ = [
    "ACTIVATION_TYPES",
    "ATLRTrainer",
    "ATLRTrainingArguments",
    "LayerRepresentations",
    "LayerSustainabilityOutput",
    "draw_layer_sustainability",
    "frozen_batch_norm_statistics",
    "layer_representations",
    "layer_sustainability_analysis",
    "most_vulnerable_layers",
    "plot_layer_sustainability",
    "probe_layers",
    "relative_error",
]
