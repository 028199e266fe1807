"""Fixed-point arithmetic emulated in PyTorch, differentiably, with learned binary points (QFX).

Dai, Zhang, Zhang, Hu, Cai, Sun & Zhang, "Trainable Fixed-Point Quantization for Deep Learning Acceleration on
FPGAs" (2024, https://arxiv.org/abs/2401.17544). A fixed-point number of word length W whose binary point sits I bits
from the top (the sign bit counted in I, as in HLS's `ap_fixed<W, I>`) is a W-bit integer q scaled by 2^(I−W):

    signed    q ∈ [−2^(W−1), 2^(W−1) − 1]        unsigned   q ∈ [0, 2^W − 1]        value = q · 2^(I−W)

`fixed_point_quantize` casts a float tensor to such a number with HLS's convergent rounding (`AP_RND_CONV`, which is
`torch.round`'s round-half-to-even) and saturation (`AP_SAT`), and returns it as a float tensor (the emulation:
products of powers of two are exact in float32 up to 24-bit words). QFX's two training signals:

- rounding has a straight-through gradient: ∂Q(x)/∂x = 1 inside the representable range, 0 where it saturates;
- the binary point I is a real-valued parameter, rounded to an integer in the forward pass (straight through), so
  the loss has a gradient with respect to it: with step s = 2^(round(I)−W) and v = x/s,
  ∂Q/∂I = s·ln 2 · (round(v) − v) inside the range and s·ln 2 · q_max (or q_min) where it saturates — the
  step-size gradient of learned step-size quantization (LSQ, Esser et al. 2020) taken in log2 space, where the
  step is restricted to powers of two so that the result is a fixed-point type.

Multiplier-free mode (the paper's multiplier-free quantization): the integers of a tensor that is multiplied
(weights, BatchNorm's scale) are restricted to K-hot values, at most K ones in the binary magnitude, so each
product is K shifts and adds instead of a DSP multiplier; K = 1 gives powers of two.

The module wrappers below (`FixedPointQuantizer`, `FixedPointBatchNorm2d`) and `quantize_model` turn any zoo model
into its fixed-point emulation without editing its code: weights through `torch.nn.utils.parametrize`, the inputs
of every convolution/linear layer through forward pre-hooks, BatchNorm by swapping in a subclass that computes
`y = Q(Q(a)·x + Q(b))` as the FPGA does, and every residual block's output (the shortcut addition) through a forward
hook. `post_training_quantization` is the baseline the paper compares with; `export_fixed_point` gives the integer
tensors and binary points an HLS design needs, and `verify_export` checks they reproduce the model's outputs.

The integer representation is deliberately plain (`to_fixed_point_integers`, `from_fixed_point_integers`,
`to_twos_complement`, `from_twos_complement`) so other code (fault injection, bit flips) can use it directly.
"""

from __future__ import annotations

import contextlib
import copy
import math
import numbers
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils import parametrize

#: float32 has a 24-bit significand: q · 2^k is exact for |q| < 2^24, so words up to 24 bits emulate exactly.
MAX_WORD_LENGTH = 24
ROUNDING_MODE = "AP_RND_CONV"  # torch.round rounds half to even: HLS's convergent rounding
OVERFLOW_MODE = "AP_SAT"  # torch.clamp: saturation
CALIBRATION_METHODS = ("max", "mse")
#: Per quantizer, the calibration keeps at most this many values for the MSE search of the binary point.
CALIBRATION_SAMPLES = 1 << 16

# ----------------------------------------------------------------------------------------------- the arithmetic


def check_word_length(word_length, name: str = "word_length") -> int:
    """Return `word_length` as an int, or raise a `ValueError` saying what a valid word length is."""
    if isinstance(word_length, bool) or not isinstance(word_length, numbers.Integral):
        raise ValueError(f"{name} must be an integer number of bits (1 to {MAX_WORD_LENGTH}); got {word_length!r}.")
    if word_length < 1:
        raise ValueError(f"{name} must be at least 1 bit (a fixed-point word needs a bit); got {word_length}.")
    if word_length > MAX_WORD_LENGTH:
        raise ValueError(
            f"{name} = {word_length} bits cannot be emulated exactly in float32 (24-bit significand); use at most "
            f"{MAX_WORD_LENGTH} bits."
        )
    return int(word_length)


def check_k_hot(k_hot) -> int | None:
    """`None` (uniform fixed point) or K ≥ 1 (at most K ones per integer: the multiplier-free mode)."""
    if k_hot is None:
        return None
    if isinstance(k_hot, bool) or not isinstance(k_hot, numbers.Integral) or k_hot < 1:
        raise ValueError(f"k_hot must be None (uniform fixed point) or an integer K ≥ 1 (at most K ones per integer, "
                         f"K = 1: powers of two); got {k_hot!r}.")
    return int(k_hot)


def integer_range(word_length: int, signed: bool = True) -> tuple[int, int]:
    """The integers a `word_length`-bit word holds: two's complement when `signed`, else unsigned."""
    word_length = check_word_length(word_length)
    if signed:
        return -(1 << (word_length - 1)), (1 << (word_length - 1)) - 1
    return 0, (1 << word_length) - 1


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """`round(x)` in the forward pass, the identity in the backward pass (the straight-through estimator)."""
    return x + (torch.round(x) - x).detach()


def _top_ones(magnitude: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep the k highest ones of non-negative integers (as floats): (kept, lowest kept power of two, rest)."""
    kept = torch.zeros_like(magnitude)
    lowest = torch.zeros_like(magnitude)
    rest = magnitude.clone()
    for _ in range(k):
        _, exponent = torch.frexp(rest)  # rest = m·2^e with m ∈ [0.5, 1): its highest one is 2^(e−1)
        power = torch.where(rest > 0, torch.ldexp(torch.ones_like(rest), exponent - 1), torch.zeros_like(rest))
        kept += power
        rest -= power
        lowest = torch.where(power > 0, power, lowest)
    return kept, lowest, rest


def k_hot_round(values: torch.Tensor, k: int, low: int, high: int) -> torch.Tensor:
    """The nearest integers in [low, high] with at most `k` ones in their binary magnitude (ties go down).

    Below |v| the nearest is the top k ones of ⌊|v|⌋; above, ⌈|v|⌉ itself when it has at most k ones, else the
    next number after its top-k truncation (adding the truncation's lowest one carries: still ≤ k ones).
    """
    magnitude = values.abs()
    down, _, _ = _top_ones(torch.floor(magnitude), k)
    ceiling = torch.ceil(magnitude)
    truncated, lowest, rest = _top_ones(ceiling, k)
    up = torch.where(rest == 0, ceiling, truncated + lowest)
    limit = torch.where(values < 0, torch.full_like(values, -low), torch.full_like(values, high))
    take_up = (up - magnitude < magnitude - down) & (up <= limit)
    return torch.copysign(torch.where(take_up, up, down), values)


class _FixedPointCast(torch.autograd.Function):
    """The cast and its two gradients in one autograd node (a handful of passes over the tensor instead of the
    dozen a composition of differentiable ops costs: quantization-aware training is dominated by these casts)."""

    @staticmethod
    def forward(ctx, x, integer_bits, word_length: int, low: int, high: int, k_hot):
        exponent = torch.round(integer_bits) - word_length
        scaled = x * torch.exp2(-exponent)  # x / step, exact: the step is a power of two
        clamped = scaled.clamp(low, high)
        inside = clamped == scaled
        target = torch.round(clamped) if k_hot is None else k_hot_round(clamped, k_hot, low, high)
        out = target.mul_(torch.exp2(exponent))
        ctx.save_for_backward(x, out, inside)
        ctx.bits_shape = integer_bits.shape
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out, inside = ctx.saved_tensors
        masked = grad * inside  # straight through inside the range, nothing where the cast saturates
        grad_bits = None
        if ctx.needs_input_grad[1]:
            # ∂out/∂I = ln 2 · (out − x) inside the range and ln 2 · out at saturation (round(I) straight through)
            grad_bits = (math.log(2.0) * ((grad * out).sum() - (masked * x).sum())).reshape(ctx.bits_shape)
        return (masked if ctx.needs_input_grad[0] else None), grad_bits, None, None, None, None


def fixed_point_quantize(
    x: torch.Tensor, word_length: int, integer_bits, signed: bool = True, k_hot: int | None = None
) -> torch.Tensor:
    """Cast `x` to `ap_[u]fixed<W, I, AP_RND_CONV, AP_SAT>` and return the value as a float tensor.

    Args:
        x: any float tensor.
        word_length: W, the number of bits of the word (1 to 24).
        integer_bits: I, the position of the binary point counted from the top (sign bit included when signed); a
            number, or a tensor (e.g. a learned `nn.Parameter`) rounded to an integer with a straight-through gradient.
        signed: two's complement (`ap_fixed`) or unsigned (`ap_ufixed`).
        k_hot: `None` for uniform fixed point; K ≥ 1 restricts the integers to at most K ones (multiplier-free).

    Gradients: to `x`, 1 inside the representable range and 0 where the cast saturates (straight-through rounding);
    to `integer_bits`, s·ln 2·(q − v) inside the range and s·ln 2·q at saturation (s = 2^(I−W), v = x/s, q the
    integer chosen), i.e. ln 2 · Σ ∂L/∂out · (out − x·1[inside]). Values already representable come back unchanged.
    """
    word_length = check_word_length(word_length)
    k_hot = check_k_hot(k_hot)
    low, high = integer_range(word_length, signed)
    if not isinstance(integer_bits, torch.Tensor):
        integer_bits = torch.tensor(float(integer_bits))
    integer_bits = integer_bits.to(device=x.device, dtype=x.dtype)
    return _FixedPointCast.apply(x, integer_bits, word_length, low, high, k_hot)


def to_fixed_point_integers(
    x: torch.Tensor, word_length: int, integer_bits: int, signed: bool = True, k_hot: int | None = None
) -> torch.Tensor:
    """The integers q of `fixed_point_quantize(x, ...)` (int32): `x ≈ q · 2^(integer_bits − word_length)`."""
    with torch.no_grad():
        quantized = fixed_point_quantize(x.detach().float(), word_length, int(integer_bits), signed, k_hot)
        return torch.ldexp(quantized, torch.tensor(word_length - int(integer_bits))).round().to(torch.int32)


def from_fixed_point_integers(integers: torch.Tensor, word_length: int, integer_bits: int) -> torch.Tensor:
    """The float values `q · 2^(integer_bits − word_length)` of fixed-point integers (exact)."""
    check_word_length(word_length)
    return torch.ldexp(integers.to(torch.float32), torch.tensor(int(integer_bits) - word_length))


def to_twos_complement(integers: torch.Tensor, word_length: int) -> torch.Tensor:
    """The W-bit code of signed integers (int64 in [0, 2^W)): the bit pattern a register holds, e.g. to flip bits."""
    word_length = check_word_length(word_length)
    low, high = integer_range(word_length, signed=True)
    integers = integers.to(torch.int64)
    if integers.numel() and (integers.min() < low or integers.max() > high):
        raise ValueError(f"integers must lie in [{low}, {high}] to fit a signed {word_length}-bit word.")
    return integers & ((1 << word_length) - 1)


def from_twos_complement(codes: torch.Tensor, word_length: int) -> torch.Tensor:
    """Signed integers (int64) from W-bit two's-complement codes (the inverse of `to_twos_complement`)."""
    word_length = check_word_length(word_length)
    codes = codes.to(torch.int64) & ((1 << word_length) - 1)
    return torch.where(codes >= (1 << (word_length - 1)), codes - (1 << word_length), codes)


def popcount(integers: torch.Tensor) -> torch.Tensor:
    """The number of ones in the binary magnitude of each integer (K of a K-hot value)."""
    rest = integers.to(torch.int64).abs()
    count = torch.zeros_like(rest)
    while bool((rest > 0).any()):
        count += rest & 1
        rest = rest >> 1
    return count


@dataclass(frozen=True)
class FixedPointFormat:
    """One tensor's fixed-point type: `ap_fixed<word_length, integer_bits>` (or `ap_ufixed`), optionally K-hot."""

    word_length: int
    integer_bits: int
    signed: bool = True
    k_hot: int | None = None

    def __post_init__(self):
        check_word_length(self.word_length)
        check_k_hot(self.k_hot)
        if isinstance(self.integer_bits, bool) or not isinstance(self.integer_bits, numbers.Integral):
            raise ValueError(f"integer_bits must be an integer (the binary point's position); got {self.integer_bits!r}.")

    @property
    def fractional_bits(self) -> int:
        return self.word_length - self.integer_bits

    @property
    def step(self) -> float:
        """The value of one least significant bit, 2^(I−W)."""
        return math.ldexp(1.0, self.integer_bits - self.word_length)

    @property
    def range(self) -> tuple[float, float]:
        low, high = integer_range(self.word_length, self.signed)
        return low * self.step, high * self.step

    @property
    def hls_type(self) -> str:
        """The Vitis HLS type that computes the same numbers, e.g. `ap_fixed<8, 3, AP_RND_CONV, AP_SAT>`."""
        name = "ap_fixed" if self.signed else "ap_ufixed"
        return f"{name}<{self.word_length}, {self.integer_bits}, {ROUNDING_MODE}, {OVERFLOW_MODE}>"

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        return fixed_point_quantize(x, self.word_length, self.integer_bits, self.signed, self.k_hot)

    def to_integers(self, x: torch.Tensor) -> torch.Tensor:
        return to_fixed_point_integers(x, self.word_length, self.integer_bits, self.signed, self.k_hot)

    def from_integers(self, integers: torch.Tensor) -> torch.Tensor:
        return from_fixed_point_integers(integers, self.word_length, self.integer_bits)

    def to_dict(self) -> dict:
        return {"word_length": self.word_length, "integer_bits": self.integer_bits,
                "fractional_bits": self.fractional_bits, "signed": self.signed, "k_hot": self.k_hot,
                "hls_type": self.hls_type}

    @classmethod
    def from_dict(cls, values: dict) -> "FixedPointFormat":
        return cls(int(values["word_length"]), int(values["integer_bits"]), bool(values.get("signed", True)),
                   values.get("k_hot"))


# ----------------------------------------------------------------------------------------------- calibration


def integer_bits_for_range(max_abs: float, word_length: int, signed: bool = True) -> int:
    """The smallest binary point I at which `max_abs` does not saturate: q_max · 2^(I−W) ≥ max_abs."""
    _, high = integer_range(word_length, signed)
    if not max_abs > 0:
        return 0
    bits = math.ceil(word_length + math.log2(max_abs / high))
    while high * math.ldexp(1.0, bits - word_length) < max_abs:  # guard against log2 rounding
        bits += 1
    return bits


def integer_bits_by_mse(values: torch.Tensor, word_length: int, signed: bool = True, k_hot: int | None = None,
                        search: int = 8, max_abs: float | None = None) -> int:
    """The binary point minimizing the mean squared cast error of `values`: I from the no-overflow position (of
    `max_abs`, default the largest |value|) down `search` bits (fewer integer bits clip the largest values but
    resolve the rest finer)."""
    values = values.detach().float().flatten()
    if max_abs is None:
        max_abs = float(values.abs().max()) if values.numel() else 0.0
    top = integer_bits_for_range(max_abs, word_length, signed)
    errors = {bits: float((fixed_point_quantize(values, word_length, bits, signed, k_hot) - values).square().mean())
              for bits in range(top - search, top + 1)}
    return min(errors, key=lambda bits: (errors[bits], -bits))  # a tie keeps the wider range


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


# ----------------------------------------------------------------------------------------------- quantize_model

#: Modules whose weights are multiplied (the matrix multiplications): their weight and input are quantized.
MATMUL_TYPES = (nn.Conv1d, nn.Conv2d, nn.Linear)


def _quantize_input(module: nn.Module, args: tuple):
    return (module.input_quantizer(args[0]), *args[1:])


def _quantize_output(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
    return module.output_quantizer(output)


def fixed_point_quantizers(model: nn.Module) -> dict[str, FixedPointQuantizer]:
    """Every `FixedPointQuantizer` of `model` by module name."""
    return {name: module for name, module in model.named_modules() if isinstance(module, FixedPointQuantizer)}


def is_fixed_point_quantized(model: nn.Module) -> bool:
    return any(isinstance(module, FixedPointQuantizer) for module in model.modules())


def binary_point_parameters(model: nn.Module) -> list[str]:
    """Names of the learned binary points (`…integer_bits`), e.g. to keep them out of weight decay."""
    return [name for name, _ in model.named_parameters() if name.endswith("integer_bits")]


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


def _record_quantization_config(model: nn.Module) -> None:
    """Keep `model.config.quantization_config` (what `save_pretrained` writes) in step with the quantizers, so a saved
    quantized model reloads with `from_pretrained` (see `hub.py`)."""
    if any(q.integer_bits.is_meta for q in fixed_point_quantizers(model).values()):
        return  # an empty model inside from_pretrained: the loader sets the config it read
    if getattr(model, "config", None) is not None and hasattr(model.config, "to_dict"):
        from .hub import attach_quantization_config

        attach_quantization_config(model)


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


def quantizer_formats(model: nn.Module) -> dict[str, dict]:
    """`{quantizer name: format dict}`: what a saved model needs to rebuild its quantizers."""
    return {name: q.format.to_dict() for name, q in fixed_point_quantizers(model).items()}


@contextlib.contextmanager
def calibration_mode(model: nn.Module):
    """Within this context every quantizer of `model` passes its input through unchanged and records it."""
    quantizers = fixed_point_quantizers(model)
    for quantizer in quantizers.values():
        quantizer._observed = {}
    try:
        yield quantizers
    finally:
        for quantizer in quantizers.values():
            quantizer._observed = None


def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or not images.is_floating_point() or images.dim() != 4:
        raise ValueError("calibration_images must be a float tensor (N, 3, 32, 32) with values in [0, 1]; got "
                         f"{type(images).__name__} {getattr(images, 'dtype', '')} {tuple(getattr(images, 'shape', ()))}. "
                         "Convert uint8 images with hfcifar.data.to_float_images.")
    if len(images) == 0:
        raise ValueError("calibration_images is empty: pass at least one image.")


@torch.no_grad()
def calibrate_model(model: nn.Module, images: torch.Tensor, method: str = "mse", batch_size: int = 256) -> dict[str, int]:
    """Post-training calibration: run `images` through the float model (every quantizer in pass-through, evaluation
    mode) and set each quantizer's binary point and signedness from the values it saw.

    `method="max"` puts the binary point where nothing saturates; `"mse"` picks the position (at most 8 bits lower)
    that minimizes the mean squared cast error, trading rare large values for resolution. Returns the binary points.
    """
    _check_images(images)
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"calibration method must be one of {CALIBRATION_METHODS}; got {method!r}.")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with calibration_mode(model) as quantizers:
            for start in range(0, len(images), batch_size):
                model(pixel_values=images[start:start + batch_size].to(device))
            points = {name: q.calibrate(method=method) for name, q in quantizers.items() if q._observed.get("samples")}
    finally:
        model.train(was_training)
    _record_quantization_config(model)
    return points


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


def set_binary_points_trainable(model: nn.Module, trainable: bool = True) -> nn.Module:
    """Let the training loop learn every binary point (QFX), or freeze them (post-training quantization)."""
    for quantizer in fixed_point_quantizers(model).values():
        quantizer.integer_bits.requires_grad_(trainable)
    return model


# ----------------------------------------------------------------------------------------------- export


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
    "CALIBRATION_METHODS",
    "MAX_WORD_LENGTH",
    "FixedPointBatchNorm2d",
    "FixedPointExport",
    "FixedPointFormat",
    "FixedPointQuantizer",
    "QuantizationPlan",
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
    "popcount",
    "post_training_quantization",
    "quantize_model",
    "quantizer_formats",
    "residual_blocks",
    "restore_formats",
    "round_ste",
    "set_binary_points_trainable",
    "to_fixed_point_integers",
    "to_twos_complement",
    "verify_export",
]
