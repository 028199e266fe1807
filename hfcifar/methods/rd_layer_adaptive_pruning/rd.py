"""RD layer-adaptive pruning: output-distortion curves, their additivity, and the dynamic programme.

Xu, Wang, Geng, Lin, Wu, Li & Lin, "Efficient Joint Optimization of Layer-Adaptive Weight Pruning in Deep Neural
Networks" (ICCV 2023, https://arxiv.org/abs/2308.10438). Notation of the paper's Section 3 → names here:

    δ (output distortion, ‖f(x; W) − f(x; W̃)‖² over the calibration set) -> `output_distortion`
    δ_i(φ) (distortion when only layer i is pruned at amount φ)          -> `DistortionCurves.distortion[i]`
    additivity δ(φ_1, …, φ_L) ≈ Σ_i δ_i(φ_i)                             -> `additivity_check`
    the constrained problem min Σ_i δ_i(φ_i) s.t. the pruning ratio      -> `allocate_sparsities`
    its dynamic programme over layers (linear in the number of layers)   -> `dynamic_programming`

Which weights a layer loses at amount φ is magnitude pruning within the layer (`layer_magnitude_masks`), as in the
paper: RD decides only *how many* each layer loses. Everything is measured on the model as it is, masks included,
so the same code serves one-shot pruning and each step of an iterative schedule (a layer never gets weights back).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from hfcifar.pruning import check_sparsity, effective_weight, layer_magnitude_masks, prunable_layers


# ----------------------------------------------------------------------------------------------- distortion


def sparsity_grid(step: float = 0.05, fine_from: float = 0.8, fine_step: float = 0.01, top: float = 0.995) -> list[float]:
    """The pruning amounts φ each layer's curve is measured at: `step` apart up to `fine_from`, `fine_step` apart from
    there, and `top` last (by default 0, 0.05, …, 0.75, 0.8, 0.81, …, 0.99, 0.995: 37 amounts).

    The paper measures every layer on a uniform grid (its code: 100 steps). High global targets put most layers
    above 80%, where one step of 1% already halves what a 98%-sparse layer keeps, so the grid is fine there and
    coarse below, which keeps the number of forward passes small on a CPU; `top` lets the largest layers go past 99%
    (at 97% global sparsity Global MP prunes FastNet's largest layers to 99.3%).
    """
    if not (0 < step <= 1 and 0 < fine_step <= 1 and 0 <= fine_from <= top < 1):
        raise ValueError(f"sparsity_grid needs 0 < step, fine_step ≤ 1 and 0 ≤ fine_from ≤ top < 1; got "
                         f"step={step}, fine_from={fine_from}, fine_step={fine_step}, top={top}.")
    coarse = np.arange(0.0, fine_from, step)
    fine = np.arange(fine_from, top, fine_step)
    return sorted({round(float(v), 10) for v in (*coarse, *fine, top) if v <= top})


def _check_grid(grid: Sequence[float]) -> list[float]:
    values = [float(v) for v in grid]
    if not values or any(not 0 <= v < 1 for v in values) or any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(f"grid must be a non-empty, strictly increasing list of pruning amounts in [0, 1) (e.g. "
                         f"sparsity_grid()); got {list(grid)!r}.")
    if values[0] != 0.0:
        values = [0.0, *values]  # the unpruned layer is always a choice (δ_i(0) = 0)
    return values


def _progress_disabled(progress: bool) -> bool:
    """Bars only when asked for, and only on the main process of a distributed run (where every rank measures)."""
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    return not progress or (distributed and torch.distributed.get_rank() != 0)


def _check_images(images) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3 or len(images) == 0:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"calibration_images must be a float tensor N×3×H×W in [0, 1] with N ≥ 1 (e.g. "
                         f"to_float_images(train.images[:256])); got {shape}.")
    if not images.is_floating_point():
        raise ValueError(f"calibration_images must be float images in [0, 1]; got dtype {images.dtype} "
                         "(convert uint8 images with hfcifar.data.to_float_images).")
    return images


def output_distortion(reference: torch.Tensor, outputs: torch.Tensor) -> float:
    """δ: the squared Euclidean distance between the unpruned and the pruned network's outputs (logits), averaged
    over the calibration images and the output units (the paper's output distortion; the constant 1/num_classes
    changes no allocation)."""
    if reference.shape != outputs.shape:
        raise ValueError(f"reference and outputs must have the same shape; got {tuple(reference.shape)} and "
                         f"{tuple(outputs.shape)}.")
    return float((reference.double() - outputs.double()).square().mean())


@torch.no_grad()
def network_outputs(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The model's logits on the calibration images, in eval mode (batch-norm statistics frozen)."""
    param = next(model.parameters())
    chunks = [model(pixel_values=chunk.to(device=param.device, dtype=param.dtype)).logits.float().cpu()
              for chunk in torch.split(images, batch_size)]
    return torch.cat(chunks)


@contextlib.contextmanager
def pruned(model: nn.Module, masks: dict[str, torch.Tensor]):
    """Temporarily zero the masked weights of the named layers (the original values come back on exit).

    A layer already pruned through `torch.nn.utils.prune` computes `weight = weight_orig * weight_mask` in a
    forward pre-hook, so its `weight_orig` is the tensor to edit; otherwise `weight` itself.
    """
    modules = dict(model.named_modules())
    saved = []
    try:
        with torch.no_grad():
            for name, mask in masks.items():
                module = modules[name]
                tensor = module.weight_orig if hasattr(module, "weight_orig") else module.weight
                saved.append((tensor, tensor.detach().clone()))
                tensor.mul_(mask.to(device=tensor.device, dtype=tensor.dtype))
        yield model
    finally:
        with torch.no_grad():
            for tensor, original in saved:
                tensor.copy_(original)


@dataclass
class DistortionCurves:
    """Per-layer output-distortion curves δ_i(φ) measured on calibration images.

    Attributes:
        layers: the prunable layers' module names (`named_modules` order).
        num_weights: n_i, the weights of each layer.
        grid: the pruning amounts φ_j (shared by all layers; 0 first).
        counts: `(L, K)` zeros of layer i after pruning it at φ_j: `max(round(φ_j · n_i), z_i)`, where z_i are the
            zeros it already has (a layer pruned before keeps its zeros; amounts below its sparsity change nothing),
            at most `n_i − 1`: every layer keeps a weight (a layer of zeros disconnects the network, and
            `torch.nn.utils.prune`'s amounts stop below 100%).
        distortion: `(L, K)` δ_i(φ_j), the output distortion with layer i alone pruned at φ_j (float64).
        num_images: how many calibration images the curves average over.
        forward_passes: the network evaluations the measurement took (grid points a layer already exceeds are free).
    """

    layers: list[str]
    num_weights: list[int]
    grid: list[float]
    counts: torch.Tensor
    distortion: torch.Tensor
    num_images: int
    forward_passes: int = 0

    def single_layer_distortion(self, layer: str, zeros: float) -> float:
        """δ_i at any number of zeros, linearly interpolated between the measured grid points."""
        i = self.layers.index(layer)
        return float(np.interp(zeros, self.counts[i].numpy(), self.distortion[i].numpy()))

    def predicted_distortion(self, zeros_per_layer: dict[str, float]) -> float:
        """Σ_i δ_i(zeros_i): the network's distortion as the additivity property predicts it."""
        return sum(self.single_layer_distortion(name, zeros) for name, zeros in zeros_per_layer.items())


def distortion_curves(
    model: nn.Module,
    calibration_images: torch.Tensor,
    grid: Sequence[float] | None = None,
    layers: dict[str, nn.Module] | None = None,
    batch_size: int = 256,
    progress: bool = False,
) -> DistortionCurves:
    """Measure δ_i(φ_j) for every prunable layer i and every amount φ_j of `grid` (Sec. 3: the distortion curves
    the optimization reads).

    For each layer and amount, the layer alone is magnitude-pruned at φ_j (the rest of the network as it is) and the
    output distortion against the unpruned outputs is measured on `calibration_images`: L·K forward passes.

    Args:
        calibration_images: float N×3×32×32 in [0, 1] (a few hundred training images; the paper uses 1024 on
            CIFAR-10).
        grid: pruning amounts; `sparsity_grid()` by default. 0 is added if missing.
        layers: the layers to allocate (default: every `nn.Conv2d`/`nn.Linear`, as `prunable_layers`).
        progress: a progress bar over the layers (main process only).
    """
    images = _check_images(calibration_images)
    amounts = _check_grid(grid if grid is not None else sparsity_grid())
    layers = layers if layers is not None else prunable_layers(model)
    was_training = model.training
    model.eval()
    passes = 1
    try:
        reference = network_outputs(model, images, batch_size)
        counts = torch.zeros(len(layers), len(amounts), dtype=torch.long)
        distortion = torch.zeros(len(layers), len(amounts), dtype=torch.float64)
        bar = tqdm(layers.items(), desc="RD distortion curves", unit="layer", total=len(layers), leave=False,
                   disable=_progress_disabled(progress))
        for i, (name, module) in enumerate(bar):
            n = module.weight.numel()
            zeros_now = int((effective_weight(module) == 0).sum())
            for j, amount in enumerate(amounts):
                counts[i, j] = min(max(round(amount * n), zeros_now), max(n - 1, zeros_now))
                if counts[i, j] == zeros_now:
                    continue  # nothing more pruned than the model already is: δ_i = 0 without a forward pass
                mask = layer_magnitude_masks(model, {name: counts[i, j].item() / n})[name]
                with pruned(model, {name: mask}):
                    distortion[i, j] = output_distortion(reference, network_outputs(model, images, batch_size))
                passes += 1
    finally:
        model.train(was_training)
    return DistortionCurves(list(layers), [m.weight.numel() for m in layers.values()], amounts, counts, distortion,
                            len(images), passes)


# ----------------------------------------------------------------------------------------------- additivity


@dataclass
class AdditivityCheck:
    """Measured joint distortion vs the sum of single-layer distortions, over several multi-layer prunings.

    Attributes:
        joint: δ measured with all the allocation's layers pruned together.
        summed: Σ_i δ_i(φ_i) from the single-layer curves (the additivity prediction).
        allocations: the per-layer zero counts of each pruning.
        pearson: correlation of `joint` and `summed`.
        log_pearson: correlation of their logarithms (over the pairs with both > 0): the raw correlation is
            dominated by the largest distortions, this one weighs every order of magnitude alike.
        labels: optional names of the allocations (e.g. "rd@0.9").
    """

    joint: list[float]
    summed: list[float]
    allocations: list[dict[str, int]]
    pearson: float
    log_pearson: float
    labels: list[str] = field(default_factory=list)

    @property
    def median_ratio(self) -> float:
        """Median of joint / summed: 1 when additivity holds exactly; > 1 when layers' distortions compound."""
        ratios = [j / s for j, s in zip(self.joint, self.summed) if s > 0]
        return float(np.median(ratios)) if ratios else float("nan")


def _pearson(a: Sequence[float], b: Sequence[float]) -> float:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def random_allocations(curves: DistortionCurves, num_samples: int, max_sparsity: float = 0.95, seed: int = 0) -> list[dict[str, int]]:
    """Random multi-layer prunings on the curves' grid: every layer draws an amount ≤ `max_sparsity` uniformly
    from the grid (each layer pruned, at its own random amount, as in the paper's additivity experiment)."""
    if num_samples < 1:
        raise ValueError(f"num_samples must be ≥ 1; got {num_samples}.")
    check_sparsity(max_sparsity, "max_sparsity")
    allowed = [j for j, amount in enumerate(curves.grid) if amount <= max_sparsity]
    rng = np.random.default_rng(seed)
    return [{name: int(curves.counts[i, allowed[rng.integers(len(allowed))]]) for i, name in enumerate(curves.layers)}
            for _ in range(num_samples)]


def additivity_check(
    model: nn.Module,
    calibration_images: torch.Tensor,
    curves: DistortionCurves,
    allocations: Sequence[dict[str, int]],
    labels: Sequence[str] = (),
    batch_size: int = 256,
    progress: bool = False,
) -> AdditivityCheck:
    """The additivity property (Sec. 3): for each allocation, prune all its layers together and measure δ; compare
    with Σ_i δ_i from the single-layer curves. Both numbers are measurements on the same calibration images.

    Args:
        allocations: `{layer name: number of zeros}` per pruning (e.g. `random_allocations(...)`, or the zeros of an
            allocation `allocate_sparsities` returned). Counts off the grid use interpolated δ_i.
        progress: a progress bar over the allocations (main process only).
    """
    images = _check_images(calibration_images)
    if not allocations:
        raise ValueError("additivity_check needs at least one allocation ({layer name: number of zeros}).")
    modules = dict(model.named_modules())
    was_training = model.training
    model.eval()
    joint, summed = [], []
    try:
        reference = network_outputs(model, images, batch_size)
        for allocation in tqdm(allocations, desc="Additivity check", unit="pruning", leave=False,
                               disable=_progress_disabled(progress) or len(allocations) < 2):
            unknown = set(allocation) - set(curves.layers)
            if unknown:
                raise ValueError(f"allocation names layers without a distortion curve: {sorted(unknown)}.")
            masks = layer_magnitude_masks(model, {name: zeros / modules[name].weight.numel() for name, zeros in allocation.items()})
            with pruned(model, masks):
                joint.append(output_distortion(reference, network_outputs(model, images, batch_size)))
            summed.append(curves.predicted_distortion(allocation))
    finally:
        model.train(was_training)
    positive = [(j, s) for j, s in zip(joint, summed) if j > 0 and s > 0]
    log_pearson = _pearson([math.log(j) for j, _ in positive], [math.log(s) for _, s in positive])
    return AdditivityCheck(joint, summed, [dict(a) for a in allocations], _pearson(joint, summed), log_pearson, list(labels))


# ----------------------------------------------------------------------------------------------- optimization


def dynamic_programming(distortion: torch.Tensor, counts: torch.Tensor, target: int) -> tuple[list[int], float]:
    """Solve min Σ_i δ_i(φ_{j_i}) s.t. Σ_i zeros_i(j_i) ≥ target over the grid, exactly (the paper's dynamic
    programme, Sec. 3).

    The sub-problem g_i(t) is the least distortion of layers 1..i that prunes at least t weights:
    g_0(t) = 0 for t = 0 (∞ otherwise), g_i(t) = min_j δ_i(j) + g_{i−1}(max(t − zeros_i(j), 0)). Each layer costs
    K vector operations over t = 0..target, so the time is O(L · K · target): linear in the number of layers.
    The arg-min table is then walked back from g_L(target).

    Args:
        distortion: `(L, K)` δ_i at each grid point.
        counts: `(L, K)` integer zeros of layer i at grid point j.
        target: the number of weights that must be zero in total.

    Returns:
        The chosen grid index per layer and the minimal total distortion.
    """
    distortion = torch.as_tensor(distortion, dtype=torch.float64)
    counts = torch.as_tensor(counts, dtype=torch.long)
    if distortion.ndim != 2 or distortion.shape != counts.shape:
        raise ValueError(f"distortion and counts must both be (layers, grid points); got {tuple(distortion.shape)} "
                         f"and {tuple(counts.shape)}.")
    if (counts < 0).any() or torch.isnan(distortion).any():
        raise ValueError("counts must be ≥ 0 and distortion free of NaN.")
    target = int(target)
    reachable = int(counts.max(dim=1).values.sum())
    if not 0 <= target <= reachable:
        raise ValueError(f"target = {target} zeros cannot be reached: the grid's largest amounts prune {reachable} "
                         "weights in all (extend the grid towards 1 or lower the sparsity).")
    num_layers, num_points = distortion.shape
    t = torch.arange(target + 1)
    best = torch.full((target + 1,), math.inf, dtype=torch.float64)
    best[0] = 0.0
    choice = torch.zeros(num_layers, target + 1, dtype=torch.int32)
    for i in range(num_layers):
        layer_best = torch.full_like(best, math.inf)
        for j in range(num_points):
            candidate = distortion[i, j] + best[(t - counts[i, j]).clamp(min=0)]
            better = candidate < layer_best  # strict: ties keep the smaller amount
            layer_best = torch.where(better, candidate, layer_best)
            choice[i] = torch.where(better, j, choice[i])
        best = layer_best
    chosen, remaining = [0] * num_layers, target
    for i in reversed(range(num_layers)):
        chosen[i] = int(choice[i, remaining])
        remaining = max(remaining - int(counts[i, chosen[i]]), 0)
    return chosen, float(best[target])


@dataclass
class RDAllocation:
    """The per-layer pruning the optimization chose.

    Attributes:
        sparsities: `{layer: zeros / n}` (exact fractions: `layer_magnitude_masks` gets these counts back).
        zeros: `{layer: number of zeros}`; they sum to `round(sparsity · N)` exactly.
        grid_choice: `{layer: φ}` the dynamic programme chose on the grid, before the exact adjustment.
        predicted_distortion: Σ_i δ_i at the final zeros (additivity's prediction of the network's distortion).
        sparsity: the achieved fraction of the layers' weights that are zero.
    """

    sparsities: dict[str, float]
    zeros: dict[str, int]
    grid_choice: dict[str, float]
    predicted_distortion: float
    sparsity: float


def allocate_sparsities(curves: DistortionCurves, sparsity: float) -> RDAllocation:
    """The layer-wise pruning amounts that minimize the summed output distortion at global `sparsity` (Sec. 3).

    1. `dynamic_programming` picks one grid amount per layer with at least `round(sparsity · N)` zeros in all;
    2. the grid rarely sums to the target exactly, so the surplus is given back where the interpolated curves say
       it lowers Σ δ_i the most (one layer at a time, each giving back as much as it can). The result has exactly
       the target's number of zeros, the same count global and uniform magnitude pruning remove, so methods are
       compared at equal sparsity.
    """
    sparsity = check_sparsity(sparsity)
    total = sum(curves.num_weights)
    target = round(sparsity * total)
    chosen, _ = dynamic_programming(curves.distortion, curves.counts, target)
    zeros = {name: int(curves.counts[i, j]) for i, (name, j) in enumerate(zip(curves.layers, chosen))}
    floor = {name: int(curves.counts[i, 0]) for i, name in enumerate(curves.layers)}  # zeros the layer already has
    surplus = sum(zeros.values()) - target
    while surplus > 0:
        # each layer could keep up to `surplus` more weights (never below the zeros it already had); the one whose
        # interpolated δ_i falls the most does, and ties go to the layer giving back the most
        options = []
        for name in curves.layers:
            give = min(surplus, zeros[name] - floor[name])
            if give > 0:
                gain = curves.single_layer_distortion(name, zeros[name]) - curves.single_layer_distortion(name, zeros[name] - give)
                options.append((gain, give, name))
        _, give, name = max(options)
        zeros[name] -= give
        surplus -= give
    final = {name: zeros[name] / n for name, n in zip(curves.layers, curves.num_weights)}
    return RDAllocation(
        sparsities=final,
        zeros=zeros,
        grid_choice={name: curves.grid[j] for name, j in zip(curves.layers, chosen)},
        predicted_distortion=curves.predicted_distortion(zeros),
        sparsity=sum(zeros.values()) / total,
    )


def rd_masks(
    model: nn.Module,
    sparsity: float,
    calibration_images: torch.Tensor | None = None,
    grid: Sequence[float] | None = None,
    batch_size: int = 256,
    curves: DistortionCurves | None = None,
    history: list | None = None,
    progress: bool = False,
    **_,
) -> dict[str, torch.Tensor]:
    """The pruning method "rd" (`compute_masks("rd", model, sparsity, calibration_images=images)`): measure the
    distortion curves on `calibration_images`, allocate the layers' amounts by the dynamic programme, and prune each
    layer by magnitude at its amount. Returns `{layer name: 0/1 mask}` for `apply_masks`.

    Args:
        curves: curves already measured on this model *as it is now* (then no calibration images are needed):
            one measurement serves several targets of a one-shot comparison. Curves of another state of the model
            (other layers, other zeros) are refused.
        history: a list to which every call appends `{"sparsity", "curves", "allocation"}`, to inspect what RD
            measured and chose at each event of a `PruningTrainer` schedule (pass it in `pruning_options`).
        progress: a progress bar while the curves are measured (main process only).
    """
    if curves is None:
        if calibration_images is None:
            raise ValueError("The 'rd' pruning method needs calibration_images=<float N×3×32×32 tensor in [0, 1]> (a few "
                             "hundred training images) to measure each layer's output distortion, or curves=<its "
                             "DistortionCurves> measured on this model.")
        curves = distortion_curves(model, calibration_images, grid=grid, batch_size=batch_size, progress=progress)
    else:
        layers = prunable_layers(model)
        zeros_now = [int((effective_weight(m) == 0).sum()) for m in layers.values()]
        if list(layers) != curves.layers or zeros_now != [int(c) for c in curves.counts[:, 0]]:
            raise ValueError("curves were measured on another model or another state of it (different layers or "
                             "zeros): measure them again with distortion_curves(model, calibration_images).")
    allocation = allocate_sparsities(curves, sparsity)
    if history is not None:
        history.append({"sparsity": sparsity, "curves": curves, "allocation": allocation})
    return layer_magnitude_masks(model, allocation.sparsities)
