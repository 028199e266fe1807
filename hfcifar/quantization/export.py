"""The integer export of a quantized model: what an HLS design needs, and the check that it is exact.

`export_fixed_point` gives the integer tensors (weights, biases, folded BatchNorm coefficients) and the fixed-point
type of every tensor and activation (`FixedPointExport`); `dequantized_model` rebuilds a model from them alone and
`verify_export` checks it reproduces the quantized model's logits bit for bit. `hub.py` saves and loads the export.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from .arithmetic import FixedPointFormat, integer_range, popcount
from .calibrate import _check_images
from .modules import FixedPointBatchNorm2d, FixedPointQuantizer, fixed_point_quantizers, is_fixed_point_quantized


@dataclass
class FixedPointExport:
    """What an HLS design needs: integer tensors and the fixed-point type of every tensor and activation.

    `integers[name]` (int32) holds the weights (`<layer>.weight`, `<layer>.bias`) and the folded BatchNorm
    coefficients (`<norm>.scale`, `<norm>.shift`, from the running statistics); `formats[name]` their types, and
    the types of the activations (`<layer>.input`, `<norm>.output`, `<block>.output`), which carry no tensor.
    """

    integers: dict[str, torch.Tensor]
    formats: dict[str, FixedPointFormat]

    def dequantize(self, name: str) -> torch.Tensor:
        """The exact float values of an exported integer tensor."""
        return self.formats[name].from_integers(self.integers[name])

    def storage_tensors(self) -> dict[str, torch.Tensor]:
        """The integers in the narrowest signed dtype that holds each word (for safetensors)."""
        def dtype(bits: int, signed: bool):
            width = bits + (0 if signed else 1)
            return torch.int8 if width <= 8 else torch.int16 if width <= 16 else torch.int32
        return {name: q.to(dtype(self.formats[name].word_length, self.formats[name].signed)).contiguous()
                for name, q in self.integers.items()}

    def format_table(self) -> dict[str, dict]:
        return {name: fmt.to_dict() for name, fmt in self.formats.items()}


def _activation_name(quantizer_name: str) -> str:
    prefix, _, kind = quantizer_name.rpartition(".")
    return f"{prefix}.{kind.removesuffix('_quantizer')}" if prefix else kind.removesuffix("_quantizer")


@torch.no_grad()
def export_fixed_point(model: nn.Module) -> FixedPointExport:
    """Integer tensors and binary points of a quantized model (evaluation-mode arithmetic: running statistics)."""
    if not is_fixed_point_quantized(model):
        raise ValueError("export_fixed_point needs a quantized model: call quantize_model or post_training_quantization first.")
    integers: dict[str, torch.Tensor] = {}
    formats: dict[str, FixedPointFormat] = {}
    for name, module in model.named_modules():
        if parametrize.is_parametrized(module):
            for tensor_name, parametrization in module.parametrizations.items():
                quantizer = parametrization[0]
                key = f"{name}.{tensor_name}" if name else tensor_name
                formats[key] = quantizer.format
                integers[key] = quantizer.to_integers(parametrization.original)
        if isinstance(module, FixedPointBatchNorm2d):
            if module.running_mean is None:
                raise ValueError(f"{name} tracks no running statistics: its evaluation-mode coefficients are undefined.")
            scale, shift = module.folded_coefficients(module.running_mean, module.running_var)
            for part, quantizer, values in (("scale", module.scale_quantizer, scale), ("shift", module.shift_quantizer, shift)):
                formats[f"{name}.{part}"] = quantizer.format
                integers[f"{name}.{part}"] = quantizer.to_integers(values)
    for name, quantizer in fixed_point_quantizers(model).items():
        if name.endswith(("input_quantizer", "output_quantizer")):
            formats[_activation_name(name)] = quantizer.format
    return FixedPointExport(integers, formats)


@torch.no_grad()
def dequantized_model(model: nn.Module, export: FixedPointExport) -> nn.Module:
    """A copy of `model` whose every number comes from `export`: weights and BatchNorm coefficients are the exported
    integers times their steps, and every binary point is the exported one. Being on their grids, the values pass
    the quantizers unchanged, so the copy computes what the integers describe."""
    copied = copy.deepcopy(model).eval()

    def take_format(quantizer: FixedPointQuantizer, key: str) -> None:
        if key not in export.formats:
            raise ValueError(f"The export has no format for {key!r}: it was not exported from this architecture.")
        fmt = export.formats[key]
        if fmt.word_length != quantizer.word_length:
            raise ValueError(f"{key}: the export holds {fmt.word_length}-bit words, the model {quantizer.word_length}-bit.")
        quantizer.signed, quantizer.k_hot = fmt.signed, fmt.k_hot
        quantizer.integer_bits.fill_(float(fmt.integer_bits))

    for name, module in copied.named_modules():
        if parametrize.is_parametrized(module):
            for tensor_name, parametrization in module.parametrizations.items():
                key = f"{name}.{tensor_name}" if name else tensor_name
                take_format(parametrization[0], key)
                parametrization.original.copy_(export.dequantize(key).view_as(parametrization.original))
        if isinstance(module, FixedPointBatchNorm2d):
            # y = a·x + b exactly: γ = a, β = b, μ = 0, σ² = 1, ε = 0 give a·rsqrt(1) = a and b − a·0 = b
            take_format(module.scale_quantizer, f"{name}.scale")
            take_format(module.shift_quantizer, f"{name}.shift")
            module.weight.copy_(export.dequantize(f"{name}.scale"))
            module.bias.copy_(export.dequantize(f"{name}.shift"))
            module.running_mean.zero_()
            module.running_var.fill_(1.0)
            module.eps = 0.0
    for name, quantizer in fixed_point_quantizers(copied).items():
        if name.endswith(("input_quantizer", "output_quantizer")):
            take_format(quantizer, _activation_name(name))
    return copied


@torch.no_grad()
def verify_export(model: nn.Module, export: FixedPointExport, images: torch.Tensor) -> dict:
    """Check that the exported integers and binary points reproduce the model's quantized outputs on `images`.

    Returns `{"max_abs_logit_difference", "num_tensors", "out_of_range", "k_hot_violations", "exact"}`; `exact` is
    True when the logits are identical and every integer fits its word (and its K-hot constraint).
    """
    _check_images(images)
    out_of_range = violations = 0
    for name, integers in export.integers.items():
        fmt = export.formats[name]
        low, high = integer_range(fmt.word_length, fmt.signed)
        out_of_range += int(((integers < low) | (integers > high)).sum())
        if fmt.k_hot is not None:
            violations += int((popcount(integers) > fmt.k_hot).sum())
    was_training = model.training
    model.eval()
    try:
        reference = model(pixel_values=images).logits
        rebuilt = dequantized_model(model, export)(pixel_values=images).logits
    finally:
        model.train(was_training)
    difference = float((reference - rebuilt).abs().max()) if reference.numel() else 0.0
    return {"max_abs_logit_difference": difference, "num_tensors": len(export.integers), "out_of_range": out_of_range,
            "k_hot_violations": violations, "exact": difference == 0.0 and out_of_range == 0 and violations == 0}


__all__ = [
    "FixedPointExport",
    "dequantized_model",
    "export_fixed_point",
    "verify_export",
]
