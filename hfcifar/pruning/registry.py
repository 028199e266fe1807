"""Pruning methods by name: each turns (model, sparsity, options) into `{layer name: mask}`.

`PruningTrainer` (and `hfcifar prune`-style callers) pick a method by name, so a paper that changes only *which*
weights to prune (RD's layer-adaptive allocation) registers one function here and reuses everything else:

    @register_pruning_method("rd")
    def rd_masks(model, sparsity, **options) -> dict[str, torch.Tensor]: ...
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..registry import Registry
from .masks import global_magnitude_masks, uniform_magnitude_masks

MaskFunction = Callable[..., dict[str, torch.Tensor]]

#: Pruning criteria by name. A method folder adds its own lazily (RD: `provides=(("pruning method", "rd",
#: "…rd:rd_masks"),)`), so `--pruning-method rd` works without importing the method and this package never names it.
PRUNING_METHODS: Registry[MaskFunction] = Registry("pruning method")


def register_pruning_method(name: str):
    """Decorator: register `fn(model, sparsity, **options) -> {layer name: mask}` as the pruning method `name`."""
    return PRUNING_METHODS.register(name)


def get_pruning_method(name: str) -> MaskFunction:
    """The mask function registered as `name` (imported on first use when a method provides it lazily)."""
    return PRUNING_METHODS.get(name)


def compute_masks(method: str, model: nn.Module, sparsity: float, **options) -> dict[str, torch.Tensor]:
    """The masks of the registered method `method` at absolute `sparsity`."""
    return get_pruning_method(method)(model, sparsity, **options)


@register_pruning_method("global")
def _global(model: nn.Module, sparsity: float, min_keep_fraction: float = 0.0, target: str = "params", **_) -> dict:
    return global_magnitude_masks(model, sparsity, min_keep_fraction=min_keep_fraction, target=target)


@register_pruning_method("uniform")
def _uniform(model: nn.Module, sparsity: float, **_) -> dict:
    return uniform_magnitude_masks(model, sparsity)
