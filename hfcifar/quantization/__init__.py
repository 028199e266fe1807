"""The quantization family's shared pieces: fixed-point arithmetic emulated in PyTorch with learned binary points.

One module per concern; each imports only the ones above it in this list:

- `arithmetic.py`: the arithmetic (`FixedPointFormat`, a differentiable cast to `ap_fixed<W, I>` with a learned
  binary point and straight-through gradients, K-hot multiplier-free integers, the plain integer representation,
  choosing a binary point from values);
- `modules.py`: the module wrappers (`FixedPointQuantizer`, `FixedPointBatchNorm2d`) and finding a model's
  quantizers and binary points;
- `config.py`: `QFXConfig`, the model's `quantization_config` (what `save_pretrained` writes), kept in step with its
  quantizers;
- `calibrate.py`: post-training calibration of the binary points (`calibration_mode`, `calibrate_model`);
- `convert.py`: model surgery, `quantize_model` (weights, layer inputs, BatchNorm and residual additions of any zoo
  model), and post-training quantization (the baseline);
- `export.py`: the exporter of integer tensors and binary points with its exactness check;
- `training.py`: `QFXTrainer`, the `CifarTrainer` that trains weights and binary points together;
- `hub.py`: the `qfx` quantization config and quantizer registered with transformers (a saved QFX model reloads with
  `from_pretrained`) and the integer export folder (`save_fixed_point` / `load_fixed_point`).
"""

from .arithmetic import (
    CALIBRATION_METHODS,
    MAX_WORD_LENGTH,
    FixedPointFormat,
    check_word_length,
    fixed_point_quantize,
    from_fixed_point_integers,
    from_twos_complement,
    integer_bits_by_mse,
    integer_bits_for_range,
    integer_range,
    k_hot_round,
    popcount,
    round_ste,
    to_fixed_point_integers,
    to_twos_complement,
)
from .calibrate import calibrate_model, calibration_mode
from .config import QFXConfig, attach_quantization_config
from .convert import (
    QuantizationPlan,
    post_training_quantization,
    quantize_model,
    residual_blocks,
    restore_formats,
)
from .export import FixedPointExport, dequantized_model, export_fixed_point, verify_export
from .hub import QFXHfQuantizer, load_fixed_point, read_fixed_point, register_with_transformers, save_fixed_point
from .modules import (
    FixedPointBatchNorm2d,
    FixedPointQuantizer,
    binary_point_parameters,
    fixed_point_quantizers,
    is_fixed_point_quantized,
    quantizer_formats,
    set_binary_points_trainable,
)
from .training import QFXTrainer, QFXTrainingArguments

__all__ = [
    "CALIBRATION_METHODS",
    "MAX_WORD_LENGTH",
    "FixedPointBatchNorm2d",
    "FixedPointExport",
    "FixedPointFormat",
    "FixedPointQuantizer",
    "QFXConfig",
    "QFXHfQuantizer",
    "QFXTrainer",
    "QFXTrainingArguments",
    "QuantizationPlan",
    "attach_quantization_config",
    "binary_point_parameters",
    "calibrate_model",
    "calibration_mode",
    "check_word_length",
    "dequantized_model",
    "export_fixed_point",
    "fixed_point_quantize",
    "fixed_point_quantizers",
    "from_fixed_point_integers",
    "from_twos_complement",
    "integer_bits_by_mse",
    "integer_bits_for_range",
    "integer_range",
    "is_fixed_point_quantized",
    "k_hot_round",
    "load_fixed_point",
    "popcount",
    "post_training_quantization",
    "quantize_model",
    "quantizer_formats",
    "read_fixed_point",
    "register_with_transformers",
    "residual_blocks",
    "restore_formats",
    "round_ste",
    "save_fixed_point",
    "set_binary_points_trainable",
    "to_fixed_point_integers",
    "to_twos_complement",
    "verify_export",
]
