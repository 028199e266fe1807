"""Row 27, `qfx`: trainable fixed-point quantization with learned binary points (and a multiplier-free mode).

Dai, Zhang, Zhang, Hu, Cai, Sun & Zhang, "Trainable Fixed-Point Quantization for Deep Learning Acceleration on
FPGAs" (2024, https://arxiv.org/abs/2401.17544). The method lives in the quantization family package
(`hfcifar.quantization`): `quantize_model` converts a zoo model to its fixed-point emulation (weights, layer inputs,
BatchNorm and residual additions, each tensor with a learned binary point), `QFXTrainer` trains it through
`CifarTrainer`, `post_training_quantization` is the paper's baseline, and `export_fixed_point` / `save_fixed_point`
give the integers and binary points an HLS design needs. `claim.py` compares QFX with post-training quantization at
4, 6 and 8 bits.
"""

from ...quantization import (
    FixedPointBatchNorm2d,
    FixedPointExport,
    FixedPointFormat,
    FixedPointQuantizer,
    QFXConfig,
    QFXTrainer,
    export_fixed_point,
    fixed_point_quantize,
    load_fixed_point,
    post_training_quantization,
    quantize_model,
    save_fixed_point,
    set_binary_points_trainable,
    verify_export,
)

__all__ = [
    "FixedPointBatchNorm2d",
    "FixedPointExport",
    "FixedPointFormat",
    "FixedPointQuantizer",
    "QFXConfig",
    "QFXTrainer",
    "export_fixed_point",
    "fixed_point_quantize",
    "load_fixed_point",
    "post_training_quantization",
    "quantize_model",
    "save_fixed_point",
    "set_binary_points_trainable",
    "verify_export",
]
