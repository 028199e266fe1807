"""The quantization family's shared pieces: fixed-point arithmetic emulated in PyTorch with learned binary points.

- `fixed_point.py`: the arithmetic (a differentiable cast to `ap_fixed<W, I>` with a learned binary point, K-hot
  multiplier-free integers, the plain integer representation), the module wrappers and `quantize_model` (weights,
  layer inputs, BatchNorm and residual additions of any zoo model), post-training quantization (the baseline) and
  the exporter of integer tensors and binary points with its exactness check;
- `training.py`: `QFXTrainer`, the `CifarTrainer` that trains weights and binary points together;
- `hub.py`: the `qfx` quantization config/quantizer registered with transformers (a saved QFX model reloads with
  `from_pretrained`) and the integer export folder (`save_fixed_point` / `load_fixed_point`).
"""

from .fixed_point import *  # noqa: F401,F403
from .fixed_point import __all__ as _fixed_point_all
from .hub import (
    QFXConfig,
    QFXHfQuantizer,
    attach_quantization_config,
    load_fixed_point,
    read_fixed_point,
    register_with_transformers,
    save_fixed_point,
)
from .training import QFXTrainer, QFXTrainingArguments

__all__ = [*_fixed_point_all, "QFXConfig", "QFXHfQuantizer", "QFXTrainer", "QFXTrainingArguments", "attach_quantization_config",
           "load_fixed_point", "read_fixed_point", "register_with_transformers", "save_fixed_point"]
