"""Model surgery: `quantize_model` turns any zoo model into its fixed-point emulation without editing its code.

Weights go through `torch.nn.utils.parametrize`, the inputs of every convolution/linear layer through forward
pre-hooks, BatchNorm is swapped for `FixedPointBatchNorm2d`, and every residual block's output (the shortcut
addition) is cast by a forward hook. `post_training_quantization` is the baseline the paper compares with: the same
conversion with binary points from calibration (`calibrate.py`), frozen. `restore_formats` and
`model.fixed_point_plan` (a `QuantizationPlan`) are what a saved model needs to rebuild its quantizers (`hub.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils import parametrize

from .arithmetic import CALIBRATION_METHODS, check_k_hot, check_word_length
from .calibrate import calibrate_model
from .config import _record_quantization_config
from .modules import FixedPointBatchNorm2d, FixedPointQuantizer, fixed_point_quantizers, is_fixed_point_quantized

#: Modules whose weights are multiplied (the matrix multiplications): their weight and input are quantized.
MATMUL_TYPES = (nn.Conv1d, nn.Conv2d, nn.Linear)


def _quantize_input(module: nn.Module, args: tuple):
    return (module.input_quantizer(args[0]), *args[1:])


def _quantize_output(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
    return module.output_quantizer(output)


def residual_blocks(model: nn.Module) -> list[str]:
    """The residual blocks of a zoo model: modules with a `shortcut` (their output follows the shortcut addition)."""
    return [name for name, module in model.named_modules() if name and hasattr(module, "shortcut")
            and isinstance(getattr(module, "shortcut"), (nn.Module, type(None)))]


def _check_bits(value, name: str) -> int:
    try:
        return check_word_length(value, name)
    except ValueError as error:
        raise ValueError(f"{error} Pass bit widths of at least 1, e.g. quantize_model(model, bits=8).") from None


@dataclass
class QuantizationPlan:
    """The bit widths `quantize_model` applies (kept on the model as `model.fixed_point_plan`)."""

    weight_bits: int = 8
    activation_bits: int = 8
    elementwise_bits: int = 8
    multiplier_free: bool = False
    k_hot: int = 1
    quantize_elementwise: bool = True
    residual_blocks: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def quantize_model(
    model: nn.Module,
    bits: int = 8,
    *,
    weight_bits: int | None = None,
    activation_bits: int | None = None,
    elementwise_bits: int | None = None,
    multiplier_free: bool = False,
    k_hot: int = 1,
    quantize_elementwise: bool = True,
    blocks: list[str] | None = None,
    learn_binary_point: bool = True,
    calibration_images: torch.Tensor | None = None,
    calibration: str = "mse",
    batch_size: int = 256,
    formats: dict | None = None,
) -> nn.Module:
    """Turn `model` (any hfcifar classifier) into its fixed-point emulation, in place, and return it.

    What is quantized (each tensor its own fixed-point type, one binary point per tensor):
    - every Conv/Linear weight (`weight_bits`; K-hot in the multiplier-free mode) and bias (`elementwise_bits`),
      through `torch.nn.utils.parametrize`, and its input (`activation_bits`) through a forward pre-hook;
    - with `quantize_elementwise`: every BatchNorm2d (scale, shift and output; `elementwise_bits`) is swapped for
      `FixedPointBatchNorm2d`, and every residual block's output (the shortcut addition) is cast by a forward hook.
    Accumulators (the outputs of convolutions before BatchNorm) stay at full precision, as an HLS design keeps wide
    accumulators.

    Args:
        bits: the word length of every tensor unless one of the next three is given.
        weight_bits, activation_bits, elementwise_bits: word lengths of weights, layer inputs, and element-wise
            layers (BatchNorm, residual additions, biases).
        multiplier_free: restrict weights and BatchNorm scales to K-hot integers (`k_hot` ones: shifts and adds).
        blocks: names of the residual blocks whose output to cast; default `residual_blocks(model)`.
        learn_binary_point: whether the binary points receive gradients (QFX); `False` for post-training quantization.
        calibration_images: float images (N, 3, 32, 32) in [0, 1]; when given, every binary point (and the signedness
            of every tensor) is set from them (`calibration`: "mse" or "max", see `calibrate_model`).
        formats: `{quantizer name: {"signed": bool, "integer_bits": int}}` to restore (from a saved model).

    Raises:
        ValueError: a bit width below 1 (or above 24), an unknown calibration method, a model already quantized.
    """
    bits = _check_bits(bits, "bits")
    weight_bits = _check_bits(weight_bits if weight_bits is not None else bits, "weight_bits")
    activation_bits = _check_bits(activation_bits if activation_bits is not None else bits, "activation_bits")
    elementwise_bits = _check_bits(elementwise_bits if elementwise_bits is not None else bits, "elementwise_bits")
    k_hot = check_k_hot(k_hot) or 1
    if calibration not in CALIBRATION_METHODS:
        raise ValueError(f"calibration must be one of {CALIBRATION_METHODS}; got {calibration!r}.")
    if is_fixed_point_quantized(model):
        raise ValueError("This model is already quantized (it has FixedPointQuantizer modules); start from the float model.")
    weight_k_hot = k_hot if multiplier_free else None
    block_names = residual_blocks(model) if blocks is None else list(blocks)
    modules = dict(model.named_modules())
    missing = [name for name in block_names if name not in modules]
    if missing:
        raise ValueError(f"blocks names modules the model does not have: {missing}.")

    for name, module in list(model.named_modules()):
        if isinstance(module, MATMUL_TYPES):
            parametrize.register_parametrization(
                module, "weight", FixedPointQuantizer(weight_bits, k_hot=weight_k_hot, learn_binary_point=learn_binary_point),
                unsafe=True)
            if module.bias is not None:
                parametrize.register_parametrization(
                    module, "bias", FixedPointQuantizer(elementwise_bits, learn_binary_point=learn_binary_point), unsafe=True)
            module.add_module("input_quantizer", FixedPointQuantizer(activation_bits, learn_binary_point=learn_binary_point))
            module.register_forward_pre_hook(_quantize_input)
        elif quantize_elementwise and isinstance(module, nn.BatchNorm2d) and not isinstance(module, FixedPointBatchNorm2d):
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, FixedPointBatchNorm2d.from_batch_norm(module, elementwise_bits, weight_k_hot, learn_binary_point))
    if quantize_elementwise:
        for name in block_names:
            block = model.get_submodule(name)
            block.add_module("output_quantizer", FixedPointQuantizer(elementwise_bits, learn_binary_point=learn_binary_point))
            block.register_forward_hook(_quantize_output)
    model.fixed_point_plan = QuantizationPlan(weight_bits, activation_bits, elementwise_bits, bool(multiplier_free),
                                              k_hot, bool(quantize_elementwise), block_names)
    if formats:
        restore_formats(model, formats)
    if calibration_images is not None:
        calibrate_model(model, calibration_images, method=calibration, batch_size=batch_size)
    _record_quantization_config(model)
    return model


def restore_formats(model: nn.Module, formats: dict) -> None:
    """Set each quantizer's signedness (and binary point, when given) from `{name: {"signed", "integer_bits"}}`."""
    quantizers = fixed_point_quantizers(model)
    unknown = sorted(set(formats) - set(quantizers))
    if unknown:
        raise ValueError(f"formats names quantizers this model does not have: {unknown[:5]}.")
    for name, values in formats.items():
        quantizers[name].signed = bool(values.get("signed", True))
        if values.get("integer_bits") is not None:
            with torch.no_grad():
                quantizers[name].integer_bits.fill_(float(values["integer_bits"]))


def post_training_quantization(model: nn.Module, bits: int, calibration_images: torch.Tensor, calibration: str = "mse",
                               **options) -> nn.Module:
    """The baseline: cast a trained float model to fixed point without training (binary points from calibration).

    `options` go to `quantize_model` (e.g. `multiplier_free=True`, `elementwise_bits=...`). Returns the model, in
    evaluation mode, with fixed binary points.
    """
    if calibration_images is None:
        raise ValueError("post_training_quantization needs calibration images (float (N, 3, 32, 32) in [0, 1]).")
    quantize_model(model, bits, learn_binary_point=False, calibration_images=calibration_images,
                   calibration=calibration, **options)
    return model.eval()


__all__ = [
    "QuantizationPlan",
    "post_training_quantization",
    "quantize_model",
    "residual_blocks",
    "restore_formats",
]
