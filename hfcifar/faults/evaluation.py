"""Fault-injection evaluation: a classifier's accuracy over several seeded draws of weight faults.

FT-ClipAct (Hoang et al., DATE 2020, Sec. III) measures resilience as the classification accuracy of the network with
faults injected at a fault rate, averaged over repeated fault-injection experiments, and compares networks by their
accuracy-vs-fault-rate curves. `fault_injection_accuracy` is one point of such a curve (mean and spread over draws);
`fault_accuracy_curve` is the curve; `resilience_auc` is the area under it that the paper's threshold selection
maximizes.

Draw `i` uses seed `seed + i`, so two models with the same parameter shapes (a network and its clipped-activation
copy) see the same flipped bits draw by draw and their difference is paired.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from .injection import bit_flips, check_fault_rate, check_representation


def predict_labels(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The classes `model` predicts for float images in [0, 1] (eval mode, batches); -1 where the logits are not finite.

    A fault can make the logits inf/NaN (an exponent flip to all ones, or ∞ − ∞ downstream); `argmax` would still name
    a class there, so such outputs count as a failure rather than as whatever class the NaN lands on.
    """
    from ..attacks.transfer import predict

    return predict(model, images, batch_size, non_finite_label=-1).cpu()


@dataclass
class FaultAccuracy:
    """Accuracy under weight faults at one fault rate, over `len(accuracies)` seeded draws.

    `accuracies[i]` is the accuracy with the faults of seed `seeds[i]` (`num_flips[i]` bits flipped;
    `non_finite[i]`: the fraction of images whose logits were inf/NaN, counted as misclassified); `mean`, `std`
    (sample standard deviation over draws) and `standard_error` summarize them; `fault_free_accuracy` is the same
    model on the same images without faults.
    """

    rate: float
    representation: str
    bits: int
    accuracies: list[float]
    seeds: list[int]
    num_flips: list[int]
    num_examples: int
    fault_free_accuracy: float
    non_finite: list[float] = field(default_factory=list)
    correct: list[torch.Tensor] = field(default_factory=list, repr=False)  # per draw: which images stayed correct

    @property
    def mean(self) -> float:
        return sum(self.accuracies) / len(self.accuracies)

    @property
    def std(self) -> float:
        n = len(self.accuracies)
        if n < 2:
            return 0.0
        return math.sqrt(sum((a - self.mean) ** 2 for a in self.accuracies) / (n - 1))

    @property
    def standard_error(self) -> float:
        return self.std / math.sqrt(len(self.accuracies))

    def to_dict(self) -> dict:
        return {"rate": self.rate, "representation": self.representation, "bits": self.bits, "mean": self.mean,
                "std": self.std, "standard_error": self.standard_error, "min": min(self.accuracies),
                "max": max(self.accuracies), "accuracies": list(self.accuracies), "seeds": list(self.seeds),
                "num_flips": list(self.num_flips), "non_finite": list(self.non_finite), "num_examples": self.num_examples,
                "fault_free_accuracy": self.fault_free_accuracy}


def _check_images(images: torch.Tensor, labels: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or not images.is_floating_point() or images.dim() != 4:
        raise ValueError("images must be a float tensor (N, 3, 32, 32) in [0, 1]; convert uint8 images with "
                         "`images.float() / 255`.")
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(f"labels must be a 1-D tensor with one label per image ({images.shape[0]}).")
    if images.shape[0] == 0:
        raise ValueError("No images to evaluate on.")


def fault_injection_accuracy(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    rate: float,
    representation: str = "fp32",
    bits: int | None = None,
    num_draws: int = 5,
    seed: int = 0,
    batch_size: int = 256,
    parameters: str | Iterable[str] | None = None,
    fault_free_accuracy: float | None = None,
    progress: bool = False,
) -> FaultAccuracy:
    """Accuracy of `model` on `images` with weight bit flips at `rate`, over `num_draws` draws (seeds seed…seed+n-1).

    The faults are injected in place and undone after every draw (`bit_flips`), so `model` ends as it started.

    Args:
        rate, representation, bits, parameters: the fault model (see `hfcifar.faults.bit_flips`).
        num_draws (`int`, defaults to 5): independent fault draws; the spread over them is the experiment's noise.
        seed (`int`, defaults to 0): draw `i` uses `seed + i`.
        fault_free_accuracy (`float`, *optional*): the model's accuracy without faults, if already measured.
        progress (`bool`, defaults to `False`): a progress bar over the draws (off by default: this function is
            called in loops, e.g. by FT-ClipAct's threshold search; the `fault_accuracy` metric turns it on).
    """
    rate = check_fault_rate(rate)
    bits = check_representation(representation, bits)
    if isinstance(num_draws, bool) or not isinstance(num_draws, int) or num_draws < 1:
        raise ValueError(f"num_draws must be a positive integer; got {num_draws!r}.")
    _check_images(images, labels)
    labels = labels.cpu()
    if fault_free_accuracy is None:
        fault_free_accuracy = float((predict_labels(model, images, batch_size) == labels).float().mean())
    result = FaultAccuracy(rate, representation, bits, [], [], [], images.shape[0], fault_free_accuracy)
    for draw in tqdm(range(num_draws), desc=f"Fault draws (rate {rate:g})", unit="draw", leave=False,
                     disable=not progress or num_draws < 2):
        with bit_flips(model, rate, representation, bits, seed=seed + draw, parameters=parameters) as faults:
            predictions = predict_labels(model, images, batch_size)
        correct = predictions == labels
        result.accuracies.append(float(correct.float().mean()))
        result.non_finite.append(float((predictions < 0).float().mean()))
        result.seeds.append(seed + draw)
        result.num_flips.append(faults.num_flips)
        result.correct.append(correct)
    return result


def fault_accuracy_curve(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    rates: Sequence[float],
    progress: bool = False,
    **settings,
) -> dict[float, FaultAccuracy]:
    """`fault_injection_accuracy` at each fault rate (same draws' seeds at every rate); the fault-free accuracy once.

    `progress` shows one bar over the rates (the draws of each rate get none); `settings` are
    `fault_injection_accuracy`'s.
    """
    if not rates:
        raise ValueError("rates must name at least one fault rate.")
    rates = [check_fault_rate(r) for r in rates]
    batch_size = settings.get("batch_size", 256)
    if settings.get("fault_free_accuracy") is None:
        _check_images(images, labels)
        settings["fault_free_accuracy"] = float((predict_labels(model, images, batch_size) == labels.cpu()).float().mean())
    return {rate: fault_injection_accuracy(model, images, labels, rate, **settings)
            for rate in tqdm(rates, desc="Fault rates", unit="rate", disable=not progress or len(rates) < 2)}


def resilience_auc(rates: Sequence[float], accuracies: Sequence[float]) -> float:
    """Area under the accuracy-vs-fault-rate curve on a log₁₀ rate axis, divided by its width.

    FT-ClipAct compares candidate clipping thresholds by the area under this curve (Sec. IV). Fault rates are swept in
    decades, so the area is taken over log₁₀(rate) (equal weight per decade) and normalized to the axis' width: the
    result is in accuracy units (1.0 = perfect at every rate). A single rate gives its accuracy.
    """
    if len(rates) != len(accuracies) or not rates:
        raise ValueError(f"resilience_auc needs one accuracy per fault rate; got {len(rates)} rates and "
                         f"{len(accuracies)} accuracies.")
    if any(r <= 0 for r in rates):
        raise ValueError(f"resilience_auc takes the area over log10(rate): rates must be > 0; got {list(rates)}.")
    order = sorted(range(len(rates)), key=lambda i: rates[i])
    x = [math.log10(rates[i]) for i in order]
    y = [float(accuracies[i]) for i in order]
    if len(x) == 1 or x[-1] == x[0]:
        return sum(y) / len(y)
    area = sum((x[i + 1] - x[i]) * (y[i + 1] + y[i]) / 2 for i in range(len(x) - 1))
    return area / (x[-1] - x[0])


__all__ = ["FaultAccuracy", "fault_accuracy_curve", "fault_injection_accuracy", "predict_labels", "resilience_auc"]
