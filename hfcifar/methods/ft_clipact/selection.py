"""FT-ClipAct's systematic selection of the per-layer clipping thresholds (Hoang et al., DATE 2020, Sec. IV).

1. Profile: run fault-free validation images and record ACT_max, the largest activation of every ReLU layer
   (`profile_activations`); every layer starts clipped at its ACT_max.
2. Layer by layer (input to output, the thresholds already chosen kept): search T in [0, ACT_max] by interval search.
   Four equally spaced candidates T1…T4 split the interval in three; each candidate's *resilience* is the area under
   the network's accuracy-vs-fault-rate curve (AUC) with faults injected in the weights; the best candidate's
   neighbours become the next interval (the first/last two points when it is at an end). The search stops after
   `max_iterations`, or once at least `min_iterations` are done and the AUCs of neighbouring candidates differ by at
   most `tolerance` (the curve is flat there: refining further buys nothing).

Every candidate is measured with the same fault draws (seeds `seed…seed+num_draws-1`), so candidates are compared on
identical faults and the choice is not decided by which draw happened to be milder. A tie goes to the larger
threshold, which discards fewer fault-free activations. T = 0 is the lower bound of the first interval but is never
evaluated as a candidate (it silences the layer: a constant classifier is trivially "fault tolerant"), so every chosen
threshold is positive.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import torch
from torch import nn

from hfcifar.faults import check_fault_rate, check_representation, fault_accuracy_curve, resilience_auc

from hfcifar.faults.clipping import (
    _set_module,
    activation_layers,
    clip_activations,
    is_clipped_activation,
    profile_activations,
)

#: Fault rates whose accuracy curve the search maximizes the area under (the decades the claim is about).
DEFAULT_SELECTION_RATES = (1e-5, 1e-4, 1e-3)


@dataclass
class CandidateResult:
    """One candidate threshold of one layer: its AUC, its accuracy at each fault rate and without faults."""

    layer: str
    iteration: int
    threshold: float
    auc: float
    accuracies: dict[float, float]
    fault_free_accuracy: float


@dataclass
class ThresholdSelectionOutput:
    """What the threshold selection found.

    `thresholds`: layer → chosen T > 0 (a layer the time limit left unsearched keeps its ACT_max; a layer that no
    validation image activates stays a plain ReLU and is not listed);
    `activation_max`: layer → ACT_max when its search started; `candidates`: every evaluated candidate;
    `searched_layers`: the layers whose interval search ran; `stopped_by_time_limit`; `start_auc`: the validation AUC
    of the starting point (every layer clipped at ACT_max), `final_auc`: that of the chosen thresholds.
    """

    thresholds: dict[str, float]
    activation_max: dict[str, float]
    fault_rates: tuple[float, ...]
    num_draws: int
    candidates: list[CandidateResult] = field(default_factory=list)
    searched_layers: list[str] = field(default_factory=list)
    iterations: dict[str, int] = field(default_factory=dict)
    stopped_by_time_limit: bool = False
    start_auc: float | None = None
    final_auc: float | None = None


def interval_candidates(low: float, high: float) -> list[float]:
    """T1…T4: the interval's ends and the two points that split it in three equal parts."""
    step = (high - low) / 3
    return [low, low + step, low + 2 * step, high]


def next_interval(candidates: Sequence[float], best: int) -> tuple[float, float]:
    """The interval around the best candidate: its two neighbours, or the end pair when it is T1 or T4."""
    if best == 0:
        return candidates[0], candidates[1]
    if best == len(candidates) - 1:
        return candidates[-2], candidates[-1]
    return candidates[best - 1], candidates[best + 1]


def select_clipping_thresholds(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    fault_rates: Sequence[float] = DEFAULT_SELECTION_RATES,
    representation: str = "fp32",
    bits: int | None = None,
    num_draws: int = 3,
    seed: int = 10_000,
    max_iterations: int = 4,
    min_iterations: int = 2,
    tolerance: float = 0.005,
    layers: Iterable[str] | None = None,
    batch_size: int = 256,
    parameters=None,
    deadline: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> ThresholdSelectionOutput:
    """Choose each ReLU layer's clipping threshold by FT-ClipAct's profile + interval search (module docstring).

    Args:
        model: a trained classifier with ReLU activation modules; not modified.
        images, labels: validation images (float, [0, 1]) and labels — not the images the result is reported on.
        fault_rates (defaults to 1e-5, 1e-4, 1e-3): the accuracy-vs-fault-rate curve whose area is maximized.
        representation, bits, parameters: the fault model (`hfcifar.faults.bit_flips`).
        num_draws (`int`, defaults to 3): fault draws per rate for every candidate (the same draws for all).
        seed (`int`, defaults to 10 000): first seed of those draws; keep it apart from the evaluation's seeds.
        max_iterations (N, defaults to 4), min_iterations (M, defaults to 2), tolerance (Δ, defaults to 0.005, in
            accuracy units of the normalized AUC): the stopping rule of the interval search.
        layers: the activation modules to clip (default: all, in module order).
        deadline (`float`, *optional*): a `time.monotonic()` time; layers not searched by then keep ACT_max.
        progress: called with a line of text after every layer.

    Returns:
        A `ThresholdSelectionOutput`; `clip_activations(model, output.thresholds)` is the resilience-optimized network.
    """
    rates = tuple(sorted(check_fault_rate(r) for r in fault_rates))
    if not rates or any(r <= 0 for r in rates):
        raise ValueError(f"fault_rates must be one or more rates in (0, 1]; got {list(fault_rates)}.")
    bits = check_representation(representation, bits)
    for name, value, least in (("num_draws", num_draws, 1), ("max_iterations", max_iterations, 1),
                               ("min_iterations", min_iterations, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be an integer ≥ {least}; got {value!r}.")
    if min_iterations > max_iterations:
        raise ValueError(f"min_iterations ({min_iterations}) cannot exceed max_iterations ({max_iterations}).")
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be ≥ 0; got {tolerance!r}.")
    names = list(layers) if layers is not None else activation_layers(model)
    if not names:
        raise ValueError(f"{type(model).__name__} has no ReLU activation modules to clip.")

    # Step 1: profile, and start from every layer clipped at its fault-free maximum.
    activation_max = profile_activations(model, images, names, batch_size)
    clipped = clip_activations(model, {name: activation_max[name] for name in names})
    output = ThresholdSelectionOutput(thresholds={}, activation_max=dict(activation_max), fault_rates=rates,
                                      num_draws=num_draws)
    settings = dict(representation=representation, bits=bits, num_draws=num_draws, seed=seed, batch_size=batch_size,
                    parameters=parameters)

    def resilience(layer: str, threshold: float, iteration: int) -> CandidateResult:
        clipped.get_submodule(layer).threshold = threshold
        curve = fault_accuracy_curve(clipped, images, labels, rates, **settings)
        accuracies = {rate: point.mean for rate, point in curve.items()}
        fault_free = next(iter(curve.values())).fault_free_accuracy
        result = CandidateResult(layer, iteration, threshold, resilience_auc(rates, list(accuracies.values())),
                                 accuracies, fault_free)
        output.candidates.append(result)
        return result

    # Step 2: one layer at a time, the earlier layers' thresholds fixed.
    for layer in names:
        if deadline is not None and time.monotonic() > deadline:
            output.stopped_by_time_limit = True
            break
        # Clipping the earlier layers changes what reaches this one: re-profile its interval's upper end.
        act_max = profile_activations(clipped, images, [layer], batch_size)[layer]
        output.activation_max[layer] = act_max
        if act_max == 0:  # dead on every validation image: no interval to search, leave the layer's ReLU unclipped
            _set_module(clipped, layer, nn.ReLU())
            output.iterations[layer] = 0
            continue
        low, high = 0.0, act_max
        seen: dict[float, CandidateResult] = {}
        best_threshold = act_max
        for iteration in range(1, max_iterations + 1):
            candidates = interval_candidates(low, high)
            for t in candidates:  # the ends of a refined interval were measured in the previous iteration
                if t > 0 and t not in seen:
                    seen[t] = resilience(layer, t, iteration)
            # T = 0 bounds the interval but is never a candidate: it silences the layer and turns the network into a
            # constant classifier, whose accuracy no fault can change — a degenerate "resilience".
            aucs = [seen[t].auc if t > 0 else float("-inf") for t in candidates]
            # Ties go to the larger threshold (fewer fault-free activations discarded).
            best = max(range(len(candidates)), key=lambda i: (aucs[i], candidates[i]))
            best_threshold = candidates[best]
            low, high = next_interval(candidates, best)
            output.iterations[layer] = iteration
            measured = [a for a in aucs if a > float("-inf")]
            flat = all(abs(b - a) <= tolerance for a, b in zip(measured, measured[1:]))
            if (iteration >= min_iterations and flat) or (deadline is not None and time.monotonic() > deadline):
                break
        clipped.get_submodule(layer).threshold = best_threshold
        if output.start_auc is None and act_max in seen:  # T4 = ACT_max of the first layer: the starting network
            output.start_auc = seen[act_max].auc
        output.final_auc = seen[best_threshold].auc
        output.searched_layers.append(layer)
        if progress is not None:
            progress(f"{layer}: ACT_max {act_max:.3g} → T = {best_threshold:.3g} "
                     f"(AUC {seen[best_threshold].auc:.3f}, {output.iterations[layer]} iterations)")
    output.thresholds = {name: module.threshold for name, module in clipped.named_modules()
                         if is_clipped_activation(module) and name in names}
    return output


def plot_thresholds(output: ThresholdSelectionOutput, ax) -> None:
    """Bars of each layer's ACT_max and chosen threshold T (the fraction T / ACT_max written above) on the Matplotlib
    axis `ax` (e.g. from `ctx.figure`: no global plotting state is touched)."""
    names = list(output.thresholds)
    maxima = [output.activation_max[n] for n in names]
    chosen = [output.thresholds[n] for n in names]
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], maxima, width=0.4, color="lightgray", label="ACT_max (fault-free profile)")
    ax.bar([i + 0.2 for i in x], chosen, width=0.4, color="tab:blue", label="chosen threshold T")
    for i, (m, t) in enumerate(zip(maxima, chosen)):
        if m > 0:
            ax.annotate(f"{t / m:.0%}", (i + 0.2, t), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(x))
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set(ylabel="activation value", title="FT-ClipAct clipping thresholds per layer")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)


__all__ = [
    "CandidateResult",
    "DEFAULT_SELECTION_RATES",
    "ThresholdSelectionOutput",
    "interval_candidates",
    "next_interval",
    "plot_thresholds",
    "select_clipping_thresholds",
]
