"""`QFXConfig`: the `quantization_config` of a QFX model (a transformers quantization config).

`quantize_model` and `calibrate_model` keep `model.config.quantization_config` in step with the model's quantizers
(word lengths, mode, residual blocks, each quantizer's format), so `save_pretrained` writes it into `config.json`;
`hub.py` registers `QFXConfig` with transformers, so `from_pretrained` rebuilds the quantized model from it.
"""

from __future__ import annotations

from torch import nn
from transformers.utils.quantization_config import QuantizationConfigMixin

from .modules import fixed_point_quantizers, quantizer_formats

QUANT_METHOD = "qfx"


class QFXConfig(QuantizationConfigMixin):
    """`quantization_config` of a QFX model: how `quantize_model` rebuilds it (a transformers quantization config).

    Args:
        weight_bits (`int`, *optional*, defaults to 8): word length of Conv/Linear weights.
        activation_bits (`int`, *optional*, defaults to 8): word length of layer inputs.
        elementwise_bits (`int`, *optional*, defaults to 8): word length of BatchNorm, residual additions and biases.
        multiplier_free (`bool`, *optional*, defaults to `False`): K-hot weights and BatchNorm scales.
        k_hot (`int`, *optional*, defaults to 1): K of the multiplier-free mode.
        quantize_elementwise (`bool`, *optional*, defaults to `True`): quantize BatchNorm and residual additions.
        residual_blocks (`list[str]`, *optional*): the blocks whose outputs are cast.
        formats (`dict`, *optional*): per quantizer `{"signed": bool, "integer_bits": int, ...}` at save time.
    """

    def __init__(self, weight_bits: int = 8, activation_bits: int = 8, elementwise_bits: int = 8,
                 multiplier_free: bool = False, k_hot: int = 1, quantize_elementwise: bool = True,
                 residual_blocks: list | None = None, formats: dict | None = None, **kwargs):
        self.quant_method = QUANT_METHOD
        self.weight_bits = weight_bits
        self.activation_bits = activation_bits
        self.elementwise_bits = elementwise_bits
        self.multiplier_free = multiplier_free
        self.k_hot = k_hot
        self.quantize_elementwise = quantize_elementwise
        self.residual_blocks = residual_blocks
        self.formats = formats or {}

    @classmethod
    def from_model(cls, model) -> "QFXConfig":
        plan = getattr(model, "fixed_point_plan", None)
        if plan is None:
            raise ValueError("The model was not quantized with quantize_model: it has no fixed_point_plan.")
        return cls(plan.weight_bits, plan.activation_bits, plan.elementwise_bits, plan.multiplier_free, plan.k_hot,
                   plan.quantize_elementwise, list(plan.residual_blocks), quantizer_formats(model))

    def quantize_options(self) -> dict:
        """The keyword arguments of `quantize_model` that rebuild the quantizers (binary points load as weights)."""
        return {"weight_bits": self.weight_bits, "activation_bits": self.activation_bits,
                "elementwise_bits": self.elementwise_bits, "multiplier_free": self.multiplier_free,
                "k_hot": self.k_hot, "quantize_elementwise": self.quantize_elementwise,
                "blocks": self.residual_blocks,
                "formats": {name: {"signed": f.get("signed", True)} for name, f in (self.formats or {}).items()}}


def attach_quantization_config(model) -> QFXConfig:
    """Write the model's current quantizer formats into `model.config.quantization_config` (before saving)."""
    config = QFXConfig.from_model(model)
    model.config.quantization_config = config
    return config


def _record_quantization_config(model: nn.Module) -> None:
    """Keep `model.config.quantization_config` (what `save_pretrained` writes) in step with the quantizers, so a saved
    quantized model reloads with `from_pretrained` (`hub.py` registers `QFXConfig`)."""
    if any(q.integer_bits.is_meta for q in fixed_point_quantizers(model).values()):
        return  # an empty model inside from_pretrained: the loader sets the config it read
    if getattr(model, "config", None) is not None and hasattr(model.config, "to_dict"):
        attach_quantization_config(model)


__all__ = ["QUANT_METHOD", "QFXConfig", "attach_quantization_config"]
