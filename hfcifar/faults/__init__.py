"""The fault family's shared piece: weight fault injection and accuracy under faults.

`injection.py` flips stored weight bits (fp32 or fixed point) at a fault rate, reproducibly under a seed, either in
place for a `with` block (`bit_flips`) or in a copy (`inject_bit_flips`); `evaluation.py` measures accuracy over
several seeded fault draws (`fault_injection_accuracy`, `fault_accuracy_curve`, `resilience_auc`). The registered
metric `fault_accuracy` (`hfcifar eval DIR --metric fault_accuracy --option rate=1e-5`) lives in
`hfcifar/evaluation/faults.py`. `clipping.py` holds the mitigation of FT-ClipAct (clipped activations with per-layer
thresholds that travel in the config); the method folder `hfcifar/methods/ft_clipact/` adds the paper's threshold
selection and claim check.
"""

from .clipping import (
    CLIPPABLE_ACTIVATIONS,
    CONFIG_KEY,
    ClippedReLU,
    activation_layers,
    check_threshold,
    clip_activations,
    clipping_thresholds,
    is_clipped_activation,
    load_clipped_model,
    profile_activations,
    unclip_activations,
)
from .evaluation import FaultAccuracy, fault_accuracy_curve, fault_injection_accuracy, predict_labels, resilience_auc
from .injection import (
    DEFAULT_FIXED_POINT_BITS,
    REPRESENTATIONS,
    WEIGHT_LAYERS,
    BitFlipResult,
    FaultInjection,
    bit_flips,
    check_fault_rate,
    check_representation,
    fault_parameters,
    fixed_point_fraction_bits,
    flip_bits,
    from_fixed_point,
    inject_bit_flips,
    sample_bit_positions,
    to_fixed_point,
)

__all__ = [
    "CLIPPABLE_ACTIVATIONS",
    "CONFIG_KEY",
    "ClippedReLU",
    "activation_layers",
    "check_threshold",
    "clip_activations",
    "clipping_thresholds",
    "is_clipped_activation",
    "load_clipped_model",
    "profile_activations",
    "unclip_activations",
    "BitFlipResult",
    "DEFAULT_FIXED_POINT_BITS",
    "FaultAccuracy",
    "FaultInjection",
    "REPRESENTATIONS",
    "WEIGHT_LAYERS",
    "bit_flips",
    "check_fault_rate",
    "check_representation",
    "fault_accuracy_curve",
    "fault_injection_accuracy",
    "fault_parameters",
    "fixed_point_fraction_bits",
    "flip_bits",
    "from_fixed_point",
    "inject_bit_flips",
    "predict_labels",
    "resilience_auc",
    "sample_bit_positions",
    "to_fixed_point",
]
