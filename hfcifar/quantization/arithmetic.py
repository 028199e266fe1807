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

`integer_bits_for_range` and `integer_bits_by_mse` choose a binary point from values (the two calibration methods,
`CALIBRATION_METHODS`). The integer representation is deliberately plain (`to_fixed_point_integers`,
`from_fixed_point_integers`, `to_twos_complement`, `from_twos_complement`) so other code (fault injection, bit flips)
can use it directly. This module is the bottom of the package: it knows nothing of modules or models.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch

#: float32 has a 24-bit significand: q · 2^k is exact for |q| < 2^24, so words up to 24 bits emulate exactly.
MAX_WORD_LENGTH = 24
ROUNDING_MODE = "AP_RND_CONV"  # torch.round rounds half to even: HLS's convergent rounding
OVERFLOW_MODE = "AP_SAT"  # torch.clamp: saturation
#: How calibration chooses a binary point: no overflow (`integer_bits_for_range`) or least squared cast error
#: (`integer_bits_by_mse`).
CALIBRATION_METHODS = ("max", "mse")

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


# -------------------------------------------------------------------------------------- choosing a binary point


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


__all__ = [
    "CALIBRATION_METHODS",
    "MAX_WORD_LENGTH",
    "FixedPointFormat",
    "check_k_hot",
    "check_word_length",
    "fixed_point_quantize",
    "from_fixed_point_integers",
    "from_twos_complement",
    "integer_bits_by_mse",
    "integer_bits_for_range",
    "integer_range",
    "k_hot_round",
    "popcount",
    "round_ste",
    "to_fixed_point_integers",
    "to_twos_complement",
]
