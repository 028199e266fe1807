"""FT-ClipAct's mitigation: unbounded ReLUs replaced by clipped activations with a per-layer threshold.

Hoang, Hanif & Shafique, "FT-ClipAct: Resilience Analysis of Deep Neural Networks and Improving their Fault Tolerance
using Clipped Activation", DATE 2020 (https://arxiv.org/abs/1912.00941), Sec. IV: a weight fault (above all a flip of
an fp32 exponent bit) makes a few activations enormous, and those values swamp every layer after them. The clipped
activation squashes them: it passes values in [0, T] and maps everything above the threshold T to **zero** (not to T:
a faulty value saturated at T would still be the largest activation of its layer, while zero removes it), so a faulty
neuron behaves like a silent one, which the network tolerates.

How a clipped model is saved and loaded: the thresholds travel in the config (`config.clipped_activations`, module name
→ T; `ClippedReLU` adds no parameters or buffers, so the state dict is the plain network's). `save_pretrained` writes
them into `config.json`, and every model of the zoo applies them when it is built (`apply_clipped_activations`, a
shared block of each modeling file): `AutoModelForImageClassification.from_pretrained(path)` gives the *clipped*
network — also as Hub remote code where hfcifar is not installed, since the modeling file carries `ClippedReLU`.
`ClippedReLU` itself lives in the model files (`hfcifar.models.fastnet.modeling_fastnet`, copied into every
architecture); each architecture's copy is its own class, so this module recognises clipped layers by
`is_clipped_activation`, not by `isinstance`.
"""

from __future__ import annotations

import copy
import math
import os
from typing import Iterable, Mapping

import torch
from torch import nn

from ..models.fastnet.modeling_fastnet import ClippedReLU

#: The activations FT-ClipAct replaces (the zoo's ReLU networks: VGG, ResNet, FastNet with hidden_act="relu").
CLIPPABLE_ACTIVATIONS = (nn.ReLU,)
#: Where the thresholds live in a model's config.
CONFIG_KEY = "clipped_activations"


def check_threshold(threshold, layer: str = "") -> float:
    """`threshold` as a float, or a `ValueError` unless it is finite and ≥ 0."""
    where = f" for {layer!r}" if layer else ""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold) \
            or threshold < 0:
        raise ValueError(f"A clipping threshold{where} must be a finite number ≥ 0 (activations above it become 0); "
                         f"got {threshold!r}.")
    return float(threshold)


def is_clipped_activation(module: nn.Module) -> bool:
    """Whether `module` is a clipped activation (the `ClippedReLU` of any architecture's modeling file)."""
    return type(module).__name__ == "ClippedReLU" and isinstance(getattr(module, "threshold", None), float)


def activation_layers(model: nn.Module) -> list[str]:
    """Names of the activation modules FT-ClipAct clips (ReLUs, or already clipped ones), in module order.

    Only activation *modules* are seen; a network calling `torch.relu` in its forward has nothing to swap.
    """
    return [name for name, module in model.named_modules()
            if isinstance(module, CLIPPABLE_ACTIVATIONS) or is_clipped_activation(module)]


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


def clip_activations(model: nn.Module, thresholds: Mapping[str, float], inplace: bool = False) -> nn.Module:
    """The model with each named ReLU replaced by a `ClippedReLU` with its threshold (a copy unless `inplace`).

    Layers not named keep their activation; naming an already clipped layer sets its threshold. The thresholds of all
    clipped layers are recorded in `model.config.clipped_activations` (when the model has a config), so
    `save_pretrained` keeps them (see the module docstring).

    Args:
        thresholds: activation module name (see `activation_layers`) → threshold T ≥ 0.
        inplace (`bool`, defaults to `False`): swap the modules of `model` itself instead of a deep copy.
    """
    if not isinstance(thresholds, Mapping) or not thresholds:
        raise ValueError("thresholds must map activation module names (see activation_layers(model)) to clipping "
                         f"thresholds; got {thresholds!r}.")
    available = set(activation_layers(model))
    unknown = sorted(set(thresholds) - available)
    if unknown:
        raise ValueError(f"{type(model).__name__} has no ReLU module(s) named {unknown}; its activation modules are "
                         f"{sorted(available)}.")
    values = {name: check_threshold(value, name) for name, value in thresholds.items()}
    target = model if inplace else copy.deepcopy(model)
    for name, threshold in values.items():
        module = target.get_submodule(name)
        if is_clipped_activation(module):
            module.threshold = threshold
        else:
            _set_module(target, name, ClippedReLU(threshold))
    config = getattr(target, "config", None)
    if config is not None:
        setattr(config, CONFIG_KEY, clipping_thresholds(target))
    return target


def unclip_activations(model: nn.Module, inplace: bool = False) -> nn.Module:
    """The model with every clipped activation back to a plain ReLU and no thresholds in its config (a copy unless
    `inplace`): the unclipped network, e.g. to measure what clipping buys (`hfcifar eval … --option clip=false`)."""
    target = model if inplace else copy.deepcopy(model)
    for name in [name for name, module in target.named_modules() if is_clipped_activation(module)]:
        _set_module(target, name, nn.ReLU())
    if getattr(getattr(target, "config", None), CONFIG_KEY, None):
        setattr(target.config, CONFIG_KEY, None)
    return target


def clipping_thresholds(model: nn.Module) -> dict[str, float]:
    """The threshold of every clipped layer of `model`, by module name."""
    return {name: module.threshold for name, module in model.named_modules() if is_clipped_activation(module)}


def load_clipped_model(path: str | os.PathLike, **kwargs) -> nn.Module:
    """Load a model saved with clipped activations (its `config.clipped_activations`), checking that it is clipped.

    `from_pretrained` already applies the thresholds (see the module docstring); this also accepts models whose
    architecture does not (a model from outside the zoo) and refuses a folder without thresholds rather than
    returning it unclipped. `kwargs` go to `AutoModelForImageClassification.from_pretrained`.
    """
    from transformers import AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(str(path), **kwargs)
    thresholds = getattr(model.config, CONFIG_KEY, None)
    if not thresholds:
        raise ValueError(f"{path} has no clipped activations (config.{CONFIG_KEY} is missing); load it with "
                         "AutoModelForImageClassification.from_pretrained, or select thresholds with "
                         "select_clipping_thresholds.")
    return clip_activations(model, thresholds, inplace=True)


def card_note(config) -> str | None:
    """The model card's note for a model saved with clipped activations (registered by the `ft-clipact` method)."""
    if not getattr(config, CONFIG_KEY, None):
        return None
    return (f"Clipped activations (FT-ClipAct): the thresholds are in `config.{CONFIG_KEY}`, and the model applies "
            "them when it loads — `from_pretrained` (with hfcifar, or as remote code without it) gives the clipped "
            "network whose results this card reports.")


def profile_activations(
    model: nn.Module,
    images: torch.Tensor,
    layers: Iterable[str] | None = None,
    batch_size: int = 256,
) -> dict[str, float]:
    """ACT_max of each activation layer: the largest value its ReLU passes on `images`, fault-free (Sec. IV, step 1).

    Measured at the activation's *input* (max(0, x)), so a layer that is already clipped reports what a plain ReLU
    would let through — the upper end of its threshold search interval.
    """
    names = list(layers) if layers is not None else activation_layers(model)
    if not names:
        raise ValueError(f"{type(model).__name__} has no ReLU activation modules to profile.")
    maxima = {name: 0.0 for name in names}
    handles = []

    def record(name):
        def hook(module, inputs):
            value = inputs[0].detach()
            finite = value[torch.isfinite(value)]
            if finite.numel():
                maxima[name] = max(maxima[name], float(finite.max().clamp_min(0)))
        return hook

    for name in names:
        handles.append(model.get_submodule(name).register_forward_pre_hook(record(name)))
    training = model.training
    model.eval()
    try:
        device = next(iter(model.parameters()), images).device
        with torch.no_grad():
            for start in range(0, images.shape[0], batch_size):
                model(images[start:start + batch_size].to(device))
    finally:
        model.train(training)
        for handle in handles:
            handle.remove()
    return maxima


__all__ = [
    "CLIPPABLE_ACTIVATIONS",
    "CONFIG_KEY",
    "ClippedReLU",
    "activation_layers",
    "check_threshold",
    "clip_activations",
    "clipping_thresholds",
    "is_clipped_activation",
    "unclip_activations",
    "load_clipped_model",
    "profile_activations",
]
