"""Row 28, `global-magnitude-pruning`: Global MP, its Minimum Threshold against layer collapse, gradual and FLOPs variants.

Gupta, Camci, Keneta, Vaidyanathan, Kanodia, Foo, Wu & Lin, "Is Complexity Required for Neural Network Pruning? A Case
Study on Global Magnitude Pruning" (2022, https://arxiv.org/abs/2209.14624). Global MP ranks every weight of the
network by magnitude and prunes the smallest, one threshold for all layers; the Minimum Threshold (MT) keeps a few
weights in every layer so that no layer collapses.

The method itself is the pruning family's shared code, so every pruning method in hfcifar uses the same one:
`hfcifar.pruning.global_magnitude_masks` (vanilla, `min_keep_fraction` = MT, `target="flops"`), the `"global"`
pruning method of `PruningTrainer`, and the one-shot / gradual (Zhu & Gupta cubic) schedules. This folder adds the
paper's measurements of a mask set (`layer_collapse.py`) and the claim check (`claim.py`).
"""

from hfcifar.pruning import (
    PruningTrainer,
    PruningTrainingArguments,
    global_magnitude_masks,
    gradual_schedule,
    one_shot_schedule,
    uniform_magnitude_masks,
)

from .layer_collapse import collapsed_layers, flops_sparsity, layer_sparsities

__all__ = [
    "PruningTrainer",
    "PruningTrainingArguments",
    "collapsed_layers",
    "flops_sparsity",
    "global_magnitude_masks",
    "gradual_schedule",
    "layer_sparsities",
    "one_shot_schedule",
    "uniform_magnitude_masks",
]
