"""The one mask utility of the pruning family, built on `torch.nn.utils.prune`.

Selection (which weights to zero) is computed here; the masking itself is `torch.nn.utils.prune`'s: a mask
buffer `weight_mask`, the original in `weight_orig`, a forward pre-hook recomputing `weight`. So every method
(Global MP, RD layer-adaptive allocation, AP on top of either) produces a `{layer name: mask}` dict and hands it
to `apply_masks`; `make_permanent` folds the masks into plain weights before `save_pretrained`, and the saved
model loads with plain `from_pretrained`.

Sparsity here is always the *absolute* target: the fraction of all prunable weights that are zero after the call
(`torch.nn.utils.prune`'s `amount` is the fraction of what is still unpruned). Prunable weights are the `weight`
of every `nn.Conv2d` and `nn.Linear` (biases and normalization layers are never pruned, as in the papers).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn
from torch.nn.utils import prune

PRUNABLE_TYPES = (nn.Conv2d, nn.Linear)


def check_sparsity(sparsity: float, name: str = "sparsity") -> float:
    if not isinstance(sparsity, (int, float)) or isinstance(sparsity, bool) or not 0 <= sparsity < 1:
        raise ValueError(f"{name} must be a fraction in [0, 1) (0.9 prunes 90% of the weights); got {sparsity!r}.")
    return float(sparsity)


def prunable_layers(model: nn.Module, include_linear: bool = True, exclude: Iterable[str] = ()) -> dict[str, nn.Module]:
    """The layers whose `weight` pruning acts on, by module name (`model.named_modules()` order).

    Args:
        include_linear: also prune `nn.Linear` layers (the classifier); Global MP prunes every layer.
        exclude: module names to leave dense (e.g. the first convolution).
    """
    excluded = set(exclude)
    layers = {name: module for name, module in model.named_modules()
              if isinstance(module, PRUNABLE_TYPES) and name not in excluded
              and (include_linear or not isinstance(module, nn.Linear))}
    unknown = excluded - {name for name, _ in model.named_modules()}
    if unknown:
        raise ValueError(f"exclude names modules the model does not have: {sorted(unknown)}.")
    if not layers:
        raise ValueError(f"{type(model).__name__} has no nn.Conv2d/nn.Linear layer to prune.")
    return layers


def effective_weight(module: nn.Module) -> torch.Tensor:
    """The weight the layer computes with: `weight_orig * weight_mask` when pruned, else `weight`."""
    if prune.is_pruned(module) and hasattr(module, "weight_mask"):
        return module.weight_orig.detach() * module.weight_mask
    return module.weight.detach()


def layer_flops_per_weight(model: nn.Module, layers: dict[str, nn.Module], image_size: int = 32) -> dict[str, float]:
    """Multiply-accumulates each weight of a layer costs per image: the output's spatial size for a convolution
    (one MAC per output position), 1 for a linear layer. Measured with forward hooks on one blank image."""
    sizes: dict[str, int] = {}
    hooks = [module.register_forward_hook(lambda m, i, o, n=name: sizes.__setitem__(n, o[0, 0].numel()))
             for name, module in layers.items()]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            param = next(model.parameters())
            model(torch.full((1, 3, image_size, image_size), 0.5, dtype=param.dtype, device=param.device))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return {name: float(sizes.get(name, 1)) for name in layers}


def _prune_lowest(scores: torch.Tensor, count: int) -> torch.Tensor:
    """A 0/1 mask of `scores`' shape zeroing its `count` smallest entries (ties as `prune.L1Unstructured`)."""
    mask = torch.ones(scores.shape, dtype=scores.dtype, device=scores.device)  # contiguous even for channels-last weights
    if count > 0:
        mask.view(-1)[torch.topk(scores.reshape(-1), k=count, largest=False).indices] = 0
    return mask


def global_magnitude_masks(
    model: nn.Module,
    sparsity: float,
    layers: dict[str, nn.Module] | None = None,
    min_keep_fraction: float = 0.0,
    target: str = "params",
    image_size: int = 32,
) -> dict[str, torch.Tensor]:
    """Global Magnitude Pruning (Gupta et al., 2022, Sec. 3): rank every prunable weight of the network by |w| and
    zero the smallest, one threshold for all layers.

    Args:
        sparsity: the fraction of all prunable weights that end at zero (absolute, see the module docstring).
        min_keep_fraction: the paper's minimum threshold (MT) against layer collapse: every layer keeps at least
            `ceil(min_keep_fraction · n_layer)` weights (its largest), and the rest of the budget is shared by one
            global threshold over the other layers. 0 is vanilla Global MP.
        target: `"params"` counts each weight once; `"flops"` counts each by the multiply-accumulates it costs per
            image (`layer_flops_per_weight`), so `sparsity` is the fraction of the layers' FLOPs removed: the
            smallest weights are still pruned first, until that much compute is gone (the paper's FLOPs variant).

    Returns:
        `{layer name: 0/1 float mask}` for `apply_masks`.
    """
    sparsity = check_sparsity(sparsity)
    if not 0 <= min_keep_fraction <= 1:
        raise ValueError(f"min_keep_fraction must lie in [0, 1]; got {min_keep_fraction!r}.")
    if min_keep_fraction > 1 - sparsity:
        raise ValueError(f"min_keep_fraction={min_keep_fraction} keeps more than 1 - sparsity = {1 - sparsity:.4g} of "
                         "every layer: lower it or the sparsity.")
    if target not in ("params", "flops"):
        raise ValueError(f"target must be 'params' or 'flops'; got {target!r}.")
    layers = layers if layers is not None else prunable_layers(model)
    weights = {name: effective_weight(module).abs().float() for name, module in layers.items()}
    costs = layer_flops_per_weight(model, layers, image_size) if target == "flops" else {n: 1.0 for n in layers}
    minimum = {name: math.ceil(min_keep_fraction * w.numel()) for name, w in weights.items()}

    names = list(weights)
    flat = torch.cat([w.reshape(-1) for w in weights.values()])
    split = lambda flat_mask: {n: m.view_as(weights[n]) for n, m in zip(names, torch.split(flat_mask, [w.numel() for w in weights.values()]))}
    if target == "params" and min_keep_fraction == 0:
        # Vanilla Global MP: one top-k over the concatenated magnitudes, exactly as prune.global_unstructured.
        return split(_prune_lowest(flat, round(sparsity * flat.numel())))

    # The removal order is global (smallest |w| first); a layer leaves the order once it is down to its minimum.
    layer_of = torch.cat([torch.full((w.numel(),), i, dtype=torch.long) for i, w in enumerate(weights.values())])
    order = torch.argsort(flat, stable=True)
    ordered_layers = layer_of[order]
    rank_in_layer = torch.empty_like(order)  # rank of each weight among its own layer's, in the global order
    for i in range(len(names)):
        members = ordered_layers == i
        rank_in_layer[members] = torch.arange(int(members.sum()))
    removable = torch.tensor([w.numel() - minimum[n] for n, w in weights.items()], dtype=torch.long)
    candidates = order[rank_in_layer < removable[ordered_layers]]
    if target == "params":
        count = round(sparsity * flat.numel())
    else:  # the shortest prefix of the order that removes `sparsity` of the FLOPs
        cost = torch.tensor([costs[n] for n in names], dtype=torch.float64)[layer_of[candidates]]
        budget = sparsity * sum(costs[n] * w.numel() for n, w in weights.items())
        count = int(torch.searchsorted(torch.cumsum(cost, 0), torch.tensor([budget * (1 - 1e-12)], dtype=torch.float64))[0]) + 1 if budget > 0 else 0
    flat_mask = torch.ones_like(flat)
    flat_mask[candidates[: min(count, len(candidates))]] = 0
    return split(flat_mask)


def uniform_magnitude_masks(model: nn.Module, sparsity: float, layers: dict[str, nn.Module] | None = None) -> dict[str, torch.Tensor]:
    """Uniform layer-wise magnitude pruning: every layer loses the same fraction, its own smallest |w| (the
    baseline Global MP is compared with; `prune.l1_unstructured` per layer)."""
    sparsity = check_sparsity(sparsity)
    layers = layers if layers is not None else prunable_layers(model)
    return {name: _prune_lowest(effective_weight(module).abs().float(), round(sparsity * module.weight.numel()))
            for name, module in layers.items()}


def layer_magnitude_masks(model: nn.Module, sparsities: dict[str, float]) -> dict[str, torch.Tensor]:
    """Per-layer magnitude pruning at a given sparsity per layer (what a layer-adaptive allocation such as RD's
    dynamic programme decides)."""
    modules = dict(model.named_modules())
    missing = set(sparsities) - set(modules)
    if missing:
        raise ValueError(f"sparsities name layers the model does not have: {sorted(missing)}.")
    return {name: _prune_lowest(effective_weight(modules[name]).abs().float(),
                                round(check_sparsity(s, f"sparsity of {name}") * modules[name].weight.numel()))
            for name, s in sparsities.items()}


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """Mask each named layer's `weight` through `torch.nn.utils.prune` (a new mask replaces the previous one:
    masks from this module are absolute, computed from the effective weights)."""
    modules = dict(model.named_modules())
    for name, mask in masks.items():
        if name not in modules:
            raise ValueError(f"A mask names the layer {name!r}, which the model does not have.")
        module = modules[name]
        if tuple(mask.shape) != tuple(module.weight.shape):
            raise ValueError(f"The mask for {name} has shape {tuple(mask.shape)}; its weight has {tuple(module.weight.shape)}.")
        if prune.is_pruned(module):
            # keep the current effective weight (pruned entries stay zero in weight_orig) and start a fresh mask
            merged = effective_weight(module)
            prune.remove(module, "weight")
            module.weight.data.copy_(merged)
        prune.custom_from_mask(module, "weight", mask=mask.to(device=module.weight.device, dtype=module.weight.dtype))
    return model


def make_permanent(model: nn.Module) -> nn.Module:
    """Fold every mask into its weight (`prune.remove`): the model then has plain parameters, zeros where pruned,
    and `save_pretrained` writes weights that load with plain `from_pretrained`."""
    for module in model.modules():
        if prune.is_pruned(module):
            for hook in list(module._forward_pre_hooks.values()):
                if isinstance(hook, prune.BasePruningMethod):
                    prune.remove(module, hook._tensor_name)
    return model


def sparsity_report(model: nn.Module, layers: dict[str, nn.Module] | None = None) -> dict:
    """Zeros counted in the effective weights: `{"sparsity", "num_zeros", "num_weights", "per_layer": {name:
    sparsity}}` over the prunable layers (counted, never taken from a target)."""
    layers = layers if layers is not None else prunable_layers(model)
    per_layer, zeros, total = {}, 0, 0
    for name, module in layers.items():
        weight = effective_weight(module)
        layer_zeros = int((weight == 0).sum())
        per_layer[name] = layer_zeros / weight.numel()
        zeros += layer_zeros
        total += weight.numel()
    return {"sparsity": zeros / total, "num_zeros": zeros, "num_weights": total, "per_layer": per_layer}
