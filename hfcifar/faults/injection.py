"""Weight fault injection: random bit flips in the memory that holds a network's weights.

The fault model of FT-ClipAct (Hoang, Hanif & Shafique, DATE 2020, https://arxiv.org/abs/1912.00941, Sec. III):
hardware faults in the weight memory flip stored bits, each bit independently with probability `rate` (the *fault
rate*, faulty bits / total bits). The weights are stored either as IEEE-754 single precision (`"fp32"`: 1 sign,
8 exponent and 23 mantissa bits; a flip of the exponent's most significant bit turns a weight of magnitude < 2 into
one of magnitude ≥ 2^128 / ∞, which is what makes float networks so fragile) or as signed fixed-point numbers
(`"fixed"`: `bits`-bit two's complement with a per-tensor binary point, where the worst flip — the sign or top
magnitude bit — only moves a weight by about the tensor's largest magnitude).

    with bit_flips(model, rate=1e-5, seed=3) as faults:    # in place, restored exactly on exit
        logits = model(images).logits
        faults.num_flips                                    # bits flipped in this draw
    faulty = inject_bit_flips(model, rate=1e-4, seed=3)     # a faulty deep copy; `model` is untouched

Bits are numbered from the least significant: for fp32, 0–22 are the mantissa, 23–30 the exponent, 31 the sign;
for fixed point, `bits - 1` is the sign bit.
"""

from __future__ import annotations

import copy
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import torch
from torch import nn

#: How the weights are stored: IEEE-754 single precision, or signed fixed point with a per-tensor binary point.
REPRESENTATIONS = ("fp32", "fixed")
#: Bits of an fp32 word.
FP32_BITS = 32
#: Default word length of the fixed-point representation (a common accelerator weight width).
DEFAULT_FIXED_POINT_BITS = 16
#: The widest fixed-point word supported (codes are handled as int64, so up to 62 bits would fit; 32 is plenty).
MAX_FIXED_POINT_BITS = 32
#: Layers whose weights live in the "weight memory" the paper injects into (its code flips the `weight` tensors of
#: convolution and fully-connected layers, not batch norm).
WEIGHT_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def check_fault_rate(rate) -> float:
    """`rate` as a float, or a `ValueError` unless it is a probability in [0, 1]."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate) or not 0 <= rate <= 1:
        raise ValueError(f"The fault rate is the probability that a stored bit flips, a number in [0, 1] "
                         f"(e.g. 1e-5); got {rate!r}.")
    return float(rate)


def check_representation(representation: str, bits: int | None) -> int:
    """The word length in bits of `representation`, or a `ValueError` naming what is accepted."""
    if representation not in REPRESENTATIONS:
        raise ValueError(f"Unknown weight representation {representation!r}; choose one of {', '.join(REPRESENTATIONS)} "
                         "(IEEE-754 single precision, or signed fixed point with `bits` bits).")
    if bits is not None and (isinstance(bits, bool) or not isinstance(bits, int)):
        raise ValueError(f"bits must be an integer number of bits; got {bits!r}.")
    if representation == "fp32":
        if bits not in (None, FP32_BITS):
            raise ValueError(f"An fp32 word has {FP32_BITS} bits; got bits={bits}. For another width use "
                             "representation='fixed'.")
        return FP32_BITS
    bits = DEFAULT_FIXED_POINT_BITS if bits is None else bits
    if not 1 <= bits <= MAX_FIXED_POINT_BITS:
        raise ValueError(f"A fixed-point word needs 1 to {MAX_FIXED_POINT_BITS} bits (the sign bit included); got bits={bits}.")
    return bits


def _generator(seed: int | None, generator: torch.Generator | None) -> torch.Generator:
    if seed is not None and generator is not None:
        raise ValueError("Pass either seed or generator, not both.")
    if generator is not None:
        if generator.device.type != "cpu":
            raise ValueError("The fault generator must be a CPU torch.Generator (positions are drawn on the CPU).")
        return generator
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer; got {seed!r}.")
        return torch.Generator().manual_seed(seed)
    # Neither given: torch's global generator, so `torch.manual_seed` makes the draw reproducible.
    return torch.default_generator


def sample_bit_positions(num_bits: int, rate: float, generator: torch.Generator) -> torch.Tensor:
    """Positions in [0, num_bits) of the bits that flip when each flips independently with probability `rate`.

    Drawing num_bits Bernoulli variables would cost 32 random numbers per weight; instead the number of flips is drawn
    from Binomial(num_bits, rate) and that many distinct positions uniformly. The two are the same distribution: given
    its size, the set of flipped bits of independent equal-probability flips is a uniformly random subset.
    """
    rate = check_fault_rate(rate)
    if num_bits == 0 or rate == 0:
        return torch.empty(0, dtype=torch.long)
    if rate == 1:
        return torch.arange(num_bits)
    count = int(torch.binomial(torch.tensor([float(num_bits)], dtype=torch.float64),
                               torch.tensor([rate], dtype=torch.float64), generator=generator).item())
    if count > num_bits // 4:  # dense faults: a permutation is cheaper than rejecting repeated positions
        return torch.randperm(num_bits, generator=generator)[:count].sort().values
    positions = torch.empty(0, dtype=torch.long)
    while positions.numel() < count:  # draw with replacement, drop repeats, top up: still a uniform subset
        extra = torch.randint(num_bits, (count - positions.numel(),), generator=generator)
        positions = torch.unique(torch.cat([positions, extra]))
    return positions


def _bit_masks(positions: torch.Tensor, numel: int, bits: int) -> torch.Tensor:
    """The XOR mask of every word (int64, bits `0..bits-1`) from flat bit positions `word * bits + bit`."""
    words, bit = positions // bits, positions % bits
    # The positions are distinct, so the bits set in one word are distinct and their sum is their OR.
    return torch.zeros(numel, dtype=torch.int64).index_add_(0, words, torch.ones_like(bit) << bit)


def fixed_point_fraction_bits(tensor: torch.Tensor, bits: int) -> int:
    """The per-tensor binary point: fraction bits of the `bits`-bit signed format that still holds max |w|.

    With `f` fraction bits a code `q` stands for `q · 2^-f` and codes span [-2^(bits-1), 2^(bits-1) - 1], so the
    format holds magnitudes below 2^(bits-1-f). The largest `f` with max |w| < 2^(bits-1-f) keeps the most precision
    (f may exceed bits - 1 for a tensor of small weights, as in Q-format notation).
    """
    largest = float(tensor.detach().abs().max()) if tensor.numel() else 0.0
    if not math.isfinite(largest):
        raise ValueError("Cannot choose a fixed-point format for a tensor holding inf/NaN.")
    if largest == 0:
        return bits - 1
    integer_bits = math.floor(math.log2(largest)) + 1  # max |w| < 2^integer_bits
    return bits - 1 - integer_bits


def to_fixed_point(tensor: torch.Tensor, bits: int, fraction_bits: int) -> torch.Tensor:
    """Signed integer codes (int64) of `tensor` in the `bits`-bit format with `fraction_bits` (round to nearest)."""
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    scaled = tensor.detach().double() * 2.0 ** fraction_bits
    return torch.round(scaled).clamp_(low, high).to(torch.int64)


def from_fixed_point(codes: torch.Tensor, fraction_bits: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The values `q · 2^-f` of signed integer codes."""
    return (codes.double() * 2.0 ** -fraction_bits).to(dtype)


@dataclass(frozen=True)
class BitFlipResult:
    """A faulty copy of a tensor and what was done to it.

    `values` has the tensor's shape and dtype; `num_flips` bits out of `num_bits` flipped (`positions`, flat bit
    indices `element * bits + bit`); `fraction_bits` is the binary point of a fixed-point tensor (None for fp32).
    """

    values: torch.Tensor
    num_flips: int
    num_bits: int
    positions: torch.Tensor
    fraction_bits: int | None = None


def flip_bits(
    tensor: torch.Tensor,
    rate: float,
    representation: str = "fp32",
    bits: int | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> BitFlipResult:
    """Flip each stored bit of `tensor` independently with probability `rate`; returns a new tensor.

    Args:
        tensor: float weights (float32 for `"fp32"`).
        rate (`float`): the fault rate, in [0, 1].
        representation (`str`, defaults to `"fp32"`): `"fp32"` flips bits of the IEEE-754 words (via an int32 view and
            XOR); `"fixed"` first stores the tensor as `bits`-bit signed fixed point with a per-tensor binary point
            (`fixed_point_fraction_bits`), flips bits of the two's complement codes, and reads them back — so the result
            also carries the rounding of that format, as weights held in such a memory do.
        bits (`int`, *optional*): the word length; 32 (the only value) for fp32, defaults to 16 for fixed point.
        seed / generator: the randomness (a seed, or a CPU `torch.Generator`); neither uses torch's global generator.
    """
    bits = check_representation(representation, bits)
    rate = check_fault_rate(rate)
    if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
        raise ValueError(f"flip_bits needs a floating-point tensor of weights; got "
                         f"{tensor.dtype if isinstance(tensor, torch.Tensor) else type(tensor).__name__}.")
    if representation == "fp32" and tensor.dtype != torch.float32:
        raise ValueError(f"representation='fp32' flips bits of float32 words; the tensor is {tensor.dtype}. Convert the "
                         "model with .float() first, or use representation='fixed'.")
    generator = _generator(seed, generator)
    flat = tensor.detach().reshape(-1)
    positions = sample_bit_positions(flat.numel() * bits, rate, generator)
    masks = _bit_masks(positions, flat.numel(), bits).to(flat.device)
    if representation == "fp32":
        # int32 holds the mask of bit 31 as -2^31: wrap the unsigned masks into the signed range.
        masks = torch.where(masks >= 2 ** 31, masks - 2 ** 32, masks).to(torch.int32)
        values = (flat.contiguous().view(torch.int32) ^ masks).view(torch.float32)
        return BitFlipResult(values.reshape(tensor.shape), int(positions.numel()), flat.numel() * bits, positions)
    fraction_bits = fixed_point_fraction_bits(flat, bits)
    codes = to_fixed_point(flat, bits, fraction_bits)
    unsigned = torch.remainder(codes, 2 ** bits) ^ masks  # the two's complement word as stored, then the faults
    flipped = torch.where(unsigned >= 2 ** (bits - 1), unsigned - 2 ** bits, unsigned)
    values = from_fixed_point(flipped, fraction_bits, tensor.dtype)
    return BitFlipResult(values.reshape(tensor.shape), int(positions.numel()), flat.numel() * bits, positions, fraction_bits)


def fault_parameters(model: nn.Module, parameters: str | Iterable[str] | None = None) -> list[tuple[str, nn.Parameter]]:
    """The parameters held in the faulty memory, by name, in `named_parameters` order.

    `parameters=None` (default): the `weight` of every convolution and linear layer — the paper's weight memory
    (batch-norm parameters fold into the convolutions on an accelerator; biases are not part of the paper's injection).
    `"all"`: every floating-point parameter. A list of names: exactly those.
    """
    named = dict(model.named_parameters())
    if parameters is None:
        chosen = [f"{prefix}.weight" if prefix else "weight" for prefix, module in model.named_modules()
                  if isinstance(module, WEIGHT_LAYERS) and isinstance(getattr(module, "weight", None), nn.Parameter)]
        order = {name: i for i, name in enumerate(named)}
        chosen = sorted(set(chosen) & set(named), key=order.__getitem__)
    elif parameters == "all":
        chosen = [name for name, p in named.items() if p.is_floating_point()]
    elif isinstance(parameters, str):
        raise ValueError(f"parameters must be None (conv/linear weights), 'all', or a list of parameter names; got "
                         f"{parameters!r}.")
    else:
        chosen = list(parameters)
        unknown = [name for name in chosen if name not in named]
        if unknown:
            raise ValueError(f"No parameter(s) named {unknown} in {type(model).__name__}; see model.named_parameters().")
    if not chosen:
        raise ValueError(f"{type(model).__name__} has no parameters to inject faults into (no convolution/linear "
                         "weights); pass parameters='all' or a list of names.")
    return [(name, named[name]) for name in chosen]


@dataclass
class FaultInjection:
    """One draw of faults in a model: how many bits flipped, in which parameters.

    `num_flips` of `num_bits` stored bits flipped; `flips_per_parameter` by parameter name; `fraction_bits` the
    binary point of each parameter for fixed point.
    """

    rate: float
    representation: str
    bits: int
    num_bits: int = 0
    num_flips: int = 0
    flips_per_parameter: dict[str, int] = field(default_factory=dict)
    fraction_bits: dict[str, int] = field(default_factory=dict)

    @property
    def observed_rate(self) -> float:
        return self.num_flips / self.num_bits if self.num_bits else 0.0


def _flip_parameters(targets, rate: float, representation: str, bits: int, generator: torch.Generator) -> FaultInjection:
    """Replace each target parameter by its faulty copy (`flip_bits`), drawing in order from one generator."""
    record = FaultInjection(rate, representation, bits)
    with torch.no_grad():
        for name, parameter in targets:
            result = flip_bits(parameter, rate, representation, bits, generator=generator)
            parameter.copy_(result.values)
            record.num_bits += result.num_bits
            record.num_flips += result.num_flips
            record.flips_per_parameter[name] = result.num_flips
            if result.fraction_bits is not None:
                record.fraction_bits[name] = result.fraction_bits
    return record


@contextmanager
def bit_flips(
    model: nn.Module,
    rate: float,
    representation: str = "fp32",
    bits: int | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    parameters: str | Iterable[str] | None = None,
) -> Iterator[FaultInjection]:
    """Context manager: flip the model's stored weight bits in place for the `with` block, then restore them exactly.

    The parameters are drawn in `named_parameters` order from one generator, so a seed fixes every flipped bit; the
    same seed on two models with the same parameter shapes (e.g. a network and its clipped-activation copy) flips the
    same bits in both — a paired comparison. Arguments as in `flip_bits`; `parameters` as in `fault_parameters`.
    Yields a `FaultInjection` record.

    Example:
    ```python
    >>> with bit_flips(model, rate=1e-5, representation="fixed", bits=8, seed=0) as faults:
    ...     predictions = model(images).logits.argmax(-1)
    ```
    """
    bits = check_representation(representation, bits)
    rate = check_fault_rate(rate)
    targets = fault_parameters(model, parameters)
    generator = _generator(seed, generator)
    originals = {name: parameter.detach().clone() for name, parameter in targets}
    try:
        yield _flip_parameters(targets, rate, representation, bits, generator)
    finally:
        with torch.no_grad():
            for name, parameter in targets:
                parameter.copy_(originals[name])


def inject_bit_flips(
    model: nn.Module,
    rate: float,
    representation: str = "fp32",
    bits: int | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    parameters: str | Iterable[str] | None = None,
) -> nn.Module:
    """A deep copy of `model` whose stored weight bits flipped independently with probability `rate`.

    `model` itself is never modified. Arguments as in `bit_flips`; the copy's `fault_injection` attribute holds the
    `FaultInjection` record of the draw.

    Example:
    ```python
    >>> import hfcifar
    >>> from hfcifar.faults import inject_bit_flips
    >>> model = hfcifar.create_model("fastnet-tiny")
    >>> faulty = inject_bit_flips(model, rate=1e-3, seed=0)
    >>> faulty.fault_injection.num_flips > 0
    True
    ```
    """
    bits = check_representation(representation, bits)
    rate = check_fault_rate(rate)
    fault_parameters(model, parameters)  # a bad `parameters` fails before the copy
    generator = _generator(seed, generator)
    faulty = copy.deepcopy(model)
    faulty.fault_injection = _flip_parameters(fault_parameters(faulty, parameters), rate, representation, bits, generator)
    return faulty


__all__ = [
    "BitFlipResult",
    "DEFAULT_FIXED_POINT_BITS",
    "FaultInjection",
    "REPRESENTATIONS",
    "WEIGHT_LAYERS",
    "bit_flips",
    "check_fault_rate",
    "check_representation",
    "fault_parameters",
    "fixed_point_fraction_bits",
    "flip_bits",
    "from_fixed_point",
    "inject_bit_flips",
    "sample_bit_positions",
    "to_fixed_point",
]
