"""Row 5, `ft-clipact`: weight fault injection and clipped activations with systematically chosen thresholds.

Hoang, Hanif & Shafique, "FT-ClipAct: Resilience Analysis of Deep Neural Networks and Improving their Fault Tolerance
using Clipped Activation" (DATE 2020, https://arxiv.org/abs/1912.00941). The fault model (random bit flips in the
weight memory at a fault rate) and the evaluation over seeded fault draws are the family's shared piece,
`hfcifar.faults`; this folder holds what the paper adds: `ClippedReLU` and `clip_activations` (`clipping.py`, the
clipped activation that zeroes values above the layer's threshold), `select_clipping_thresholds` (`selection.py`,
profiling + per-layer interval search maximizing the area under the accuracy-vs-fault-rate curve), and `claim.py`.
"""

from .clipping import (
    CLIPPABLE_ACTIVATIONS,
    CONFIG_KEY,
    ClippedReLU,
    activation_layers,
    check_threshold,
    clip_activations,
    clipping_thresholds,
    load_clipped_model,
    profile_activations,
)
from .selection import (
    DEFAULT_SELECTION_RATES,
    CandidateResult,
    ThresholdSelectionOutput,
    interval_candidates,
    next_interval,
    plot_thresholds,
    select_clipping_thresholds,
)

__all__ = [
    "CLIPPABLE_ACTIVATIONS",
    "CONFIG_KEY",
    "CandidateResult",
    "ClippedReLU",
    "DEFAULT_SELECTION_RATES",
    "ThresholdSelectionOutput",
    "activation_layers",
    "check_threshold",
    "clip_activations",
    "clipping_thresholds",
    "interval_candidates",
    "load_clipped_model",
    "next_interval",
    "plot_thresholds",
    "profile_activations",
    "select_clipping_thresholds",
]
