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

from .masks import global_magnitude_masks, uniform_magnitude_masks

MaskFunction = Callable[..., dict[str, torch.Tensor]]
PRUNING_METHODS: dict[str, MaskFunction] = {}


def register_pruning_method(name: str):
    """Decorator: register `fn(model, sparsity, **options) -> {layer name: mask}` as the pruning method `name`."""

    def decorate(fn: MaskFunction) -> MaskFunction:
        if name in PRUNING_METHODS:
            raise ValueError(f"A pruning method named {name!r} is already registered.")
        PRUNING_METHODS[name] = fn
        return fn

    return decorate


#: Methods whose mask function lives in a method folder: imported on first use, so `--prune rd` works without an
#: explicit `import hfcifar.methods.rd_layer_adaptive_pruning` (and `import hfcifar.pruning` stays light).
REGISTERING_MODULES = {"rd": "hfcifar.methods.rd_layer_adaptive_pruning"}


def get_pruning_method(name: str) -> MaskFunction:
    """The mask function registered as `name` (importing the method folder that registers it if needed)."""
    if name not in PRUNING_METHODS and name in REGISTERING_MODULES:
        import importlib

        importlib.import_module(REGISTERING_MODULES[name])
    if name not in PRUNING_METHODS:
        known = sorted(set(PRUNING_METHODS) | set(REGISTERING_MODULES))
        raise ValueError(f"Unknown pruning method {name!r}; registered: {', '.join(known)}.")
    return PRUNING_METHODS[name]


def compute_masks(method: str, model: nn.Module, sparsity: float, **options) -> dict[str, torch.Tensor]:
    """The masks of the registered method `method` at absolute `sparsity`."""
    return get_pruning_method(method)(model, sparsity, **options)


@register_pruning_method("global")
def _global(model: nn.Module, sparsity: float, min_keep_fraction: float = 0.0, target: str = "params", **_) -> dict:
    return global_magnitude_masks(model, sparsity, min_keep_fraction=min_keep_fraction, target=target)


@register_pruning_method("uniform")
def _uniform(model: nn.Module, sparsity: float, **_) -> dict:
    return uniform_magnitude_masks(model, sparsity)
