"""The fixed-point modules (QFX): a quantizer with a learned binary point, BatchNorm as the FPGA computes it.

`FixedPointQuantizer` casts its input with `fixed_point_quantize` (see `arithmetic.py`); its binary point
`integer_bits` is an ordinary `nn.Parameter`, and under `calibration_mode` (`calibrate.py`) it passes its input
through and records it. `FixedPointBatchNorm2d` computes `y = Q(Q(a)·x + Q(b))`. The helpers at the end find the
quantizers of a model (`fixed_point_quantizers`, `binary_point_parameters`, `quantizer_formats`) and freeze or free
their binary points.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .arithmetic import (
    CALIBRATION_METHODS,
    FixedPointFormat,
    check_k_hot,
    check_word_length,
    fixed_point_quantize,
    integer_bits_by_mse,
    integer_bits_for_range,
)

#: Per quantizer, the calibration keeps at most this many values for the MSE search of the binary point.
CALIBRATION_SAMPLES = 1 << 16

# ----------------------------------------------------------------------------------------------- modules


class FixedPointQuantizer(nn.Module):
    """Casts its input to a fixed-point type whose binary point is a learned parameter (QFX).

    Args:
        word_length (`int`): W, bits per word (1 to 24).
        integer_bits (`float`, *optional*, defaults to 0): the initial binary point I (bits above it, sign included);
            `calibrate` sets it from data.
        signed (`bool`, *optional*, defaults to `True`): `ap_fixed` (two's complement) or `ap_ufixed`.
        k_hot (`int`, *optional*): at most K ones per integer (multiplier-free mode); `None`: uniform fixed point.
        learn_binary_point (`bool`, *optional*, defaults to `True`): whether `integer_bits` receives gradients.

    `integer_bits` is an ordinary `nn.Parameter` (a scalar: one binary point per tensor): the optimizer of the
    training loop updates it like any weight.

    Example:
        >>> quantizer = FixedPointQuantizer(8, integer_bits=2)     # ap_fixed<8, 2>: steps of 1/64 in [-2, 2)
        >>> quantizer(torch.tensor([0.3, 5.0])).detach()    # rounded to a multiple of 2^-6; saturated
        tensor([0.2969, 1.9844])
    """

    def __init__(self, word_length: int, integer_bits: float = 0.0, signed: bool = True, k_hot: int | None = None,
                 learn_binary_point: bool = True):
        super().__init__()
        self.word_length = check_word_length(word_length)
        self.signed = bool(signed)
        self.k_hot = check_k_hot(k_hot)
        if not math.isfinite(float(integer_bits)):
            raise ValueError(f"integer_bits must be a finite number; got {integer_bits!r}.")
        self.integer_bits = nn.Parameter(torch.tensor(float(integer_bits)), requires_grad=learn_binary_point)
        self._observed: dict | None = None  # set by `calibration_mode`: observe and pass the input through

    @property
    def binary_point(self) -> int:
        """The integer binary point the forward pass uses (`integer_bits` rounded)."""
        return int(torch.round(self.integer_bits.detach()).item())

    @property
    def format(self) -> FixedPointFormat:
        return FixedPointFormat(self.word_length, self.binary_point, self.signed, self.k_hot)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._observed is not None:
            self._observe(x)
            return x
        return fixed_point_quantize(x, self.word_length, self.integer_bits, self.signed, self.k_hot)

    def to_integers(self, x: torch.Tensor) -> torch.Tensor:
        return self.format.to_integers(x)

    def _observe(self, x: torch.Tensor) -> None:
        values = x.detach().float().flatten()
        seen = self._observed
        seen["min"] = min(seen.get("min", math.inf), float(values.min())) if values.numel() else seen.get("min", math.inf)
        seen["max_abs"] = max(seen.get("max_abs", 0.0), float(values.abs().max())) if values.numel() else seen.get("max_abs", 0.0)
        if values.numel() > CALIBRATION_SAMPLES:
            generator = torch.Generator().manual_seed(len(seen.setdefault("samples", [])))
            values = values[torch.randint(values.numel(), (CALIBRATION_SAMPLES,), generator=generator)]
        seen.setdefault("samples", []).append(values.cpu())

    @torch.no_grad()
    def calibrate(self, values: torch.Tensor | None = None, method: str = "mse", signed: bool | None = None) -> int:
        """Set the binary point (and, unless `signed` is given, the signedness: unsigned when no value is negative)
        from `values`, or from what the quantizer observed under `calibration_mode`. Returns the binary point."""
        if method not in CALIBRATION_METHODS:
            raise ValueError(f"calibration method must be one of {CALIBRATION_METHODS}; got {method!r}.")
        if values is None:
            if not self._observed or not self._observed.get("samples"):
                raise ValueError("This quantizer saw no data: run images through the model under calibration_mode(...) "
                                 "first, or pass the values to calibrate.")
            values = torch.cat(self._observed["samples"])
            lowest, max_abs = self._observed["min"], self._observed["max_abs"]
        else:
            values = values.detach().float().flatten()
            lowest, max_abs = float(values.min()), float(values.abs().max())
        self.signed = bool(lowest < 0) if signed is None else bool(signed)
        if method == "max":
            bits = integer_bits_for_range(max_abs, self.word_length, self.signed)
        else:
            if values.numel() > CALIBRATION_SAMPLES:
                values = values[torch.randperm(values.numel(), generator=torch.Generator().manual_seed(0))[:CALIBRATION_SAMPLES]]
            bits = integer_bits_by_mse(values, self.word_length, self.signed, self.k_hot, max_abs=max_abs)
        self.integer_bits.fill_(float(bits))
        return bits

    def extra_repr(self) -> str:
        kind = "ap_fixed" if self.signed else "ap_ufixed"
        hot = f", k_hot={self.k_hot}" if self.k_hot else ""
        return f"{kind}<{self.word_length}, {self.binary_point}>{hot}, learn_binary_point={self.integer_bits.requires_grad}"


class FixedPointBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm as fixed-point hardware computes it: `y = Q_out(Q_scale(a) · x + Q_shift(b))` per channel.

    a = γ / √(σ² + ε) and b = β − a·μ, with the batch statistics in training mode (the running ones updated as
    `nn.BatchNorm2d` does) and the running statistics in evaluation mode: QFX quantizes element-wise layers such as
    BatchNorm instead of leaving them in floating point (paper, Section 1). With every quantizer in pass-through
    (`calibration_mode`) it computes exactly what `nn.BatchNorm2d` computes. The state-dict keys of the batch norm
    are kept; the three quantizers are added as submodules.
    """

    def __init__(self, num_features: int, word_length: int = 8, scale_k_hot: int | None = None, eps: float = 1e-5,
                 momentum: float | None = 0.1, affine: bool = True, track_running_stats: bool = True,
                 learn_binary_point: bool = True, device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device=device, dtype=dtype)
        self.scale_quantizer = FixedPointQuantizer(word_length, k_hot=scale_k_hot, learn_binary_point=learn_binary_point)
        self.shift_quantizer = FixedPointQuantizer(word_length, learn_binary_point=learn_binary_point)
        self.output_quantizer = FixedPointQuantizer(word_length, learn_binary_point=learn_binary_point)

    @classmethod
    def from_batch_norm(cls, norm: nn.BatchNorm2d, word_length: int, scale_k_hot: int | None = None,
                        learn_binary_point: bool = True) -> "FixedPointBatchNorm2d":
        """The fixed-point twin of `norm`, sharing its parameters and running statistics."""
        reference = norm.running_mean if norm.running_mean is not None else norm.weight
        device = reference.device if reference is not None else None
        new = cls(norm.num_features, word_length, scale_k_hot, norm.eps, norm.momentum, norm.affine,
                  norm.track_running_stats, learn_binary_point, device=device)
        for name in ("weight", "bias"):
            if getattr(norm, name) is not None:
                setattr(new, name, getattr(norm, name))
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            if getattr(norm, name, None) is not None:
                setattr(new, name, getattr(norm, name))
        for quantizer in (new.scale_quantizer, new.shift_quantizer, new.output_quantizer):
            quantizer.to(device=device)
        return new.train(norm.training)

    def statistics(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, σ²): the batch's in training mode (updating the running statistics), else the running ones."""
        use_batch = self.training or self.running_mean is None
        if not use_batch:
            return self.running_mean, self.running_var
        var, mean = torch.var_mean(x, dim=(0, 2, 3), unbiased=False)
        if self.training and self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                count = x.numel() / x.shape[1]
                self.running_mean.lerp_(mean.detach(), momentum)
                # like nn.BatchNorm2d: normalize with the biased variance, track the unbiased one
                self.running_var.lerp_(var.detach() * count / max(count - 1, 1), momentum)
        return mean, var

    def folded_coefficients(self, mean: torch.Tensor, var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(a, b) of `y = a·x + b` before quantization."""
        scale = torch.rsqrt(var + self.eps)
        if self.affine:
            scale = self.weight * scale
        shift = -scale * mean
        if self.affine:
            shift = self.bias + shift
        return scale, shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        scale, shift = self.folded_coefficients(*self.statistics(x))
        scale, shift = self.scale_quantizer(scale), self.shift_quantizer(shift)
        return self.output_quantizer(torch.addcmul(shift.view(1, -1, 1, 1), x, scale.view(1, -1, 1, 1)))


# ------------------------------------------------------------------------------------ the quantizers of a model


def fixed_point_quantizers(model: nn.Module) -> dict[str, FixedPointQuantizer]:
    """Every `FixedPointQuantizer` of `model` by module name."""
    return {name: module for name, module in model.named_modules() if isinstance(module, FixedPointQuantizer)}


def is_fixed_point_quantized(model: nn.Module) -> bool:
    return any(isinstance(module, FixedPointQuantizer) for module in model.modules())


def binary_point_parameters(model: nn.Module) -> list[str]:
    """Names of the learned binary points (`…integer_bits`), e.g. to keep them out of weight decay."""
    return [name for name, _ in model.named_parameters() if name.endswith("integer_bits")]


def set_binary_points_trainable(model: nn.Module, trainable: bool = True) -> nn.Module:
    """Let the training loop learn every binary point (QFX), or freeze them (post-training quantization)."""
    for quantizer in fixed_point_quantizers(model).values():
        quantizer.integer_bits.requires_grad_(trainable)
    return model


def quantizer_formats(model: nn.Module) -> dict[str, dict]:
    """`{quantizer name: format dict}`: what a saved model needs to rebuild its quantizers."""
    return {name: q.format.to_dict() for name, q in fixed_point_quantizers(model).items()}


__all__ = [
    "FixedPointBatchNorm2d",
    "FixedPointQuantizer",
    "binary_point_parameters",
    "fixed_point_quantizers",
    "is_fixed_point_quantized",
    "quantizer_formats",
    "set_binary_points_trainable",
]
