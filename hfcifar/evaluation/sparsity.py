"""Sparsity: the fraction of a classifier's prunable weights that are zero, counted in the saved weights.

    hfcifar eval runs/r20-gmp90 --metric accuracy --metric sparsity
    evaluate_classifier("runs/r20-gmp90", metrics=["accuracy", "sparsity"])

Prunable weights are the `weight` of every `nn.Conv2d` and `nn.Linear` (biases and normalization layers are never
pruned), as everywhere in `hfcifar.pruning`. The number is counted (`hfcifar.pruning.sparsity_report`), never
read from a training target, so a card states what the uploaded weights are. It is reported next to accuracy: a
pruning paper's result is the pair (sparsity, accuracy), and at equal accuracy the sparser model is the better
compressed one — so the metric is registered higher-is-better.
"""

from __future__ import annotations

from torch import nn

from ..pruning.masks import prunable_layers, sparsity_report
from . import EvalSettings, register_metric


@register_metric("sparsity", "Sparsity", hub_type="sparsity", higher_is_better=True)
def sparsity(model: nn.Module, split, settings: EvalSettings) -> dict:
    """The fraction of zeros among the prunable weights (no images are needed; `split` is not read).

    Returns:
        `sparsity` (zeros / prunable weights), `sparsity_num_zeros`, `sparsity_num_weights`, `sparsity_per_layer`
        ({layer: fraction of its weights at zero}), `sparsity_collapsed_layers` (layers with every weight at zero: they cut
        the signal, Gupta et al.'s "layer collapse"), and `metric_configs` saying what was counted. `num_examples`
        is None: the metric measures the weights, not images.
    """
    layers = prunable_layers(model)
    report = sparsity_report(model, layers)
    kinds = sorted({type(layer).__name__ for layer in layers.values()})
    return {
        "sparsity": report["sparsity"],
        "sparsity_num_zeros": report["num_zeros"],
        "sparsity_num_weights": report["num_weights"],
        "sparsity_per_layer": report["per_layer"],
        "sparsity_collapsed_layers": [name for name, fraction in report["per_layer"].items() if fraction == 1.0],
        "num_examples": None,
        "metric_configs": {"sparsity": f"fraction of zero weights among the {report['num_weights']:,} weights of "
                                      f"{len(layers)} {'/'.join(kinds)} layers; biases and norms not counted"},
    }


__all__ = ["sparsity"]
