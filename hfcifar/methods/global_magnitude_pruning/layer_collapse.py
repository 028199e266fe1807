"""What the paper measures about a set of masks besides accuracy: layer collapse and the FLOPs actually removed.

Gupta et al. (2022), "layer collapse": at high sparsity one global threshold can prune *every* weight of a
layer whose weights are small, which cuts the network in two; the Minimum Threshold (MT) keeps a few weights in every
layer (`global_magnitude_masks(..., min_keep_fraction=…)`). Their FLOPs results: a parameter sparsity removes a
different fraction of the compute, depending on which layers lose the weights.
"""

from __future__ import annotations

import torch
from torch import nn

from hfcifar.pruning import layer_flops_per_weight, prunable_layers


def layer_sparsities(masks: dict[str, torch.Tensor]) -> dict[str, float]:
    """The fraction of each layer's weights a mask set prunes."""
    return {name: float((mask == 0).sum()) / mask.numel() for name, mask in masks.items()}


def collapsed_layers(masks: dict[str, torch.Tensor]) -> list[str]:
    """Layers left with no weight at all (layer collapse): no signal crosses them, whatever the other layers keep."""
    return [name for name, mask in masks.items() if int(mask.count_nonzero()) == 0]


def flops_sparsity(model: nn.Module, masks: dict[str, torch.Tensor]) -> float:
    """The fraction of the prunable layers' multiply-accumulates per image the masks remove (each weight costs the
    output positions of its layer, `layer_flops_per_weight`)."""
    layers = prunable_layers(model)
    flops = layer_flops_per_weight(model, layers)
    total = sum(flops[name] * layer.weight.numel() for name, layer in layers.items())
    removed = sum(flops[name] * float((mask == 0).sum()) for name, mask in masks.items())
    return removed / total


__all__ = ["collapsed_layers", "flops_sparsity", "layer_sparsities"]
