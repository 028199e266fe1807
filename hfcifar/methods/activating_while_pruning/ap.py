"""Activating-while-Pruning (AP): the masks of a pruning step, part chosen by a pruning method, part by AP.

AP (Liu et al., Sec. 4) does not judge which weights matter — a pruning method does that — it changes *how the
pruned network's nodes fire*. A ReLU node dies when its pre-activation `Σ_j w_j·x_j + b` is ≤ 0; its inputs `x_j`
are outputs of ReLUs, so ≥ 0, and only the negative weights can push it below zero. Removing negative weights
therefore raises pre-activations and turns nodes on: it lowers the dynamic dead neuron rate of the pruned network,
which the paper finds is what a pruned network needs (the more it is pruned, the lower its dynamic DNR becomes
during optimization on its own). Among the negative weights AP removes those that moved least while the network
trained since the previous pruning step, `|W_T − W_0|` smallest: the ones optimization relied on least.
(With batch normalization between a convolution and its ReLU — ResNets, VGG-BN, FastNet — a uniform rise of a
channel's pre-activations is undone by the normalization's batch mean in training mode; what AP then changes is
the shape of the distribution, and the claim check measures how much that moves the DNR.)

In each pruning step (one cycle of iterative pruning, or one event of a gradual schedule) that removes `R` weights,
the pruning method removes `R − q` and AP the other `q = round(ap_fraction · R)`. The paper's setting removes 20% of
the surviving weights per cycle, 2% of them by AP: `ap_fraction = 0.1`. So the sparsity schedule is exactly the
base method's; only the choice of a tenth of each step's weights differs. (The split and the selection rule
are those of the authors' released implementation, `prune_by_percentile_ap`.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from hfcifar.pruning import check_sparsity, compute_masks, effective_weight, prunable_layers

#: The authors' split of a pruning cycle: 20% of the surviving weights removed, 2% of them by AP.
DEFAULT_AP_FRACTION = 0.1


def check_ap_fraction(ap_fraction: float) -> float:
    if isinstance(ap_fraction, bool) or not isinstance(ap_fraction, (int, float)) or not 0 <= ap_fraction <= 1:
        raise ValueError(f"ap_fraction is the share of each pruning step's weights that AP chooses, in [0, 1] (the "
                         f"paper's 2% of 20% is 0.1); got {ap_fraction!r}.")
    return float(ap_fraction)


def snapshot_weights(model: nn.Module, layers: dict[str, nn.Module] | None = None) -> dict[str, torch.Tensor]:
    """`W_0`: a copy of the effective weights of every prunable layer (or of `layers`), taken when a training period
    starts, so that AP can later measure how far each weight moved (`activating_while_pruning_masks`)."""
    layers = layers if layers is not None else prunable_layers(model)
    return {name: effective_weight(module).clone() for name, module in layers.items()}


def weight_changes(model: nn.Module, reference_weights: dict[str, torch.Tensor], names) -> dict[str, torch.Tensor]:
    """`|W_T − W_0|` per weight of each named layer: how far it moved since `reference_weights` were taken."""
    modules = dict(model.named_modules())
    changes = {}
    for name in names:
        if name not in reference_weights:
            raise ValueError(f"reference_weights has no entry for the layer {name!r}: take them with "
                             "snapshot_weights(model) when the training period that precedes this pruning step starts.")
        current = effective_weight(modules[name])
        reference = reference_weights[name]
        if tuple(reference.shape) != tuple(current.shape):
            raise ValueError(f"reference_weights[{name!r}] has shape {tuple(reference.shape)}; the layer's weight has "
                             f"{tuple(current.shape)}. Take them with snapshot_weights(model) on this model.")
        changes[name] = (current.float() - reference.to(current.device).float()).abs()
    return changes


@dataclass
class APStep:
    """One pruning step shared between a pruning method and AP (`ap_step`).

    Attributes:
        masks: the step's `{layer name: 0/1 mask}`, for `hfcifar.pruning.apply_masks`.
        method_masks: what the pruning method alone chose (at `R − q` weights short of the target).
        removed: `R`, the weights the step removes (the target's count minus the weights already zero).
        ap_quota: `q = round(ap_fraction · R)`, AP's share.
        ap_pruned: the negative weights AP removed (`ap_quota`, or fewer when fewer negative weights survived; the
            rest of the quota is then taken by magnitude).
    """

    masks: dict
    method_masks: dict
    removed: int
    ap_quota: int
    ap_pruned: int


def ap_step(
    model: nn.Module,
    sparsity: float,
    reference_weights: dict[str, torch.Tensor],
    method: str = "global",
    ap_fraction: float = DEFAULT_AP_FRACTION,
    **method_options,
) -> APStep:
    """One pruning step to absolute `sparsity`, shared between a pruning method and AP (Sec. 4).

    1. `R` = the weights this step removes (the count at `sparsity` minus the weights already zero); AP's share is
       `q = round(ap_fraction · R)`.
    2. The pruning method `method` (any of `hfcifar.pruning.PRUNING_METHODS`, with `method_options`) prunes to the
       sparsity `R − q` weights short of the target.
    3. AP: among the weights the method kept that are **negative**, the `q` whose change since `reference_weights`
       (`W_0`, the start of the training period before this step) is smallest are pruned too: removing negative
       weights raises the pre-activations of the nodes they feed, i.e. activates them.
    4. When fewer than `q` negative weights survive, the rest of the step is taken by magnitude among the survivors
       (the step always reaches `sparsity`).
    """
    sparsity = check_sparsity(sparsity)
    ap_fraction = check_ap_fraction(ap_fraction)
    probe = compute_masks(method, model, sparsity, **method_options)  # which layers the method prunes
    modules = dict(model.named_modules())
    names = list(probe)
    total = sum(modules[n].weight.numel() for n in names)
    already = sum(int((effective_weight(modules[n]) == 0).sum()) for n in names)
    target = round(sparsity * total)
    removed = max(target - already, 0)
    quota = round(ap_fraction * removed)
    if quota == 0:
        return APStep(probe, probe, removed, 0, 0)

    method_masks = compute_masks(method, model, (target - quota) / total, **method_options)
    changes = weight_changes(model, reference_weights, names)
    weights = {n: effective_weight(modules[n]).float() for n in names}
    # The candidates: surviving negative weights, scored by their change (everything else scores +inf).
    scores = torch.cat([torch.where((method_masks[n] > 0) & (weights[n] < 0), changes[n], torch.full_like(changes[n], math.inf))
                        .reshape(-1) for n in names])
    flat_mask = torch.cat([method_masks[n].reshape(-1).float() for n in names])
    chosen = torch.topk(scores, k=quota, largest=False).indices
    chosen = chosen[torch.isfinite(scores[chosen])]
    flat_mask[chosen] = 0
    shortfall = target - int((flat_mask == 0).sum())
    if shortfall > 0:  # step 4: too few negative survivors; finish by magnitude among those still kept
        magnitude = torch.cat([weights[n].abs().reshape(-1) for n in names])
        magnitude[flat_mask == 0] = math.inf
        flat_mask[torch.topk(magnitude, k=shortfall, largest=False).indices] = 0
    sizes = [modules[n].weight.numel() for n in names]
    masks = {n: m.view_as(method_masks[n]).to(method_masks[n].dtype) for n, m in zip(names, torch.split(flat_mask, sizes))}
    return APStep(masks, method_masks, removed, quota, len(chosen))


def activating_while_pruning_masks(
    model: nn.Module,
    sparsity: float,
    reference_weights: dict[str, torch.Tensor],
    method: str = "global",
    ap_fraction: float = DEFAULT_AP_FRACTION,
    **method_options,
) -> dict[str, torch.Tensor]:
    """The masks of `ap_step`: one pruning step to absolute `sparsity`, `ap_fraction` of it chosen by AP (the
    surviving negative weights that moved least since `reference_weights`), the rest by the pruning `method`.

    Returns:
        `{layer name: 0/1 mask}` for `hfcifar.pruning.apply_masks`, over the layers the method prunes.
    """
    return ap_step(model, sparsity, reference_weights, method, ap_fraction, **method_options).masks
