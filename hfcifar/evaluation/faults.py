"""Accuracy under weight faults: random bit flips in the stored weights at a fault rate, over seeded draws.

    hfcifar eval runs/x --metric fault_accuracy --option rate=1e-5 --option num_draws=10
    hfcifar eval runs/x --metric fault_accuracy --option rate=1e-4 --option representation=fixed --option bits=8
    evaluate_classifier("runs/x", metrics=["fault_accuracy"], rate=1e-5, num_draws=10)

Options (all optional):
    rate            the fault rate: probability that each stored weight bit flips (default 1e-5), in [0, 1]
    representation  "fp32" (IEEE-754 words, default) or "fixed" (signed fixed point, per-tensor binary point)
    bits            the fixed-point word length (default 16; fp32 words have 32)
    num_draws       independent fault draws (default 5); draw i uses seed + i
    seed            first seed (default 0)
    num_examples    evaluate on the first N images of the split (default: all)
    batch_size      images per forward pass (default: the evaluation batch size)
    parameters      "weights" (conv/linear weights, the paper's weight memory; default) or "all" (every parameter)
    clip            whether to apply the clipped activations a FT-ClipAct model's config carries
                    (`config.clipped_activations`, see hfcifar/faults/clipping.py); default true
    progress        a progress bar over the draws (default true; `--option progress=false` turns it off)

The headline `fault_accuracy` is the mean over draws; the spread (std, min, max, every draw) and the fault-free
accuracy of the same model on the same images are reported beside it. A draw whose logits are inf/NaN counts as
misclassified. Predictions are single forward passes (no flip test-time augmentation, whatever `--tta` says): the
fault model is about one inference of one faulty network.
"""

from __future__ import annotations

import datasets
import torch
from torch import nn

from ..data import CifarTensorDataset
from ..faults import check_fault_rate, check_representation, fault_injection_accuracy
from . import EvalSettings, register_metric

FAULT_OPTIONS = ("rate", "representation", "bits", "num_draws", "seed", "num_examples", "batch_size", "parameters",
                 "clip", "progress")
PARAMETER_SETS = {"weights": None, "all": "all"}


def _positive_integer(options: dict, name: str, default: int | None) -> int | None:
    value = options.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < 1:
        raise ValueError(f"The fault_accuracy option {name} must be an integer ≥ 1; got {value!r}.")
    return int(value)


def _split_tensors(split, num_examples: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `num_examples` images of the split as float [0, 1] images and int64 labels."""
    count = len(split) if num_examples is None else min(num_examples, len(split))
    if isinstance(split, CifarTensorDataset):
        data = CifarTensorDataset(split.images[:count], split.labels[:count])
    elif isinstance(split, datasets.Dataset):
        data = CifarTensorDataset.from_hf(split.select(range(count)), progress=False)
    else:
        raise ValueError(f"fault_accuracy evaluates a Hub-schema datasets.Dataset or a CifarTensorDataset; got "
                         f"{type(split).__name__}.")
    if count == 0:
        raise ValueError("The split to evaluate is empty; choose another split (--split) or dataset.")
    return data.images.float().div_(255), data.labels


def _clip_flag(value, name: str = "clip") -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"The fault_accuracy option {name} must be true or false; got {value!r}.")


@register_metric("fault_accuracy", "Accuracy under weight faults", hub_type="fault_accuracy")
def fault_accuracy(model: nn.Module, split, settings: EvalSettings) -> dict:
    """Mean accuracy over `num_draws` seeded draws of random weight bit flips at `rate` (options: module docstring).

    The caller's model is not changed: faults are undone after each draw, and clipping (when the config carries
    FT-ClipAct thresholds) is applied to a copy.
    """
    # Options of other metrics evaluated in the same call (an attack's eps, …) are passed here too: ignored.
    options = dict(settings.options)
    rate = check_fault_rate(options.get("rate", 1e-5))
    representation = str(options.get("representation", "fp32"))
    bits = check_representation(representation, _positive_integer(options, "bits", None))
    num_draws = _positive_integer(options, "num_draws", 5)
    seed = options.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"The fault_accuracy option seed must be an integer; got {seed!r}.")
    num_examples = _positive_integer(options, "num_examples", None)
    batch_size = _positive_integer(options, "batch_size", settings.batch_size)
    parameter_set = str(options.get("parameters", "weights"))
    if parameter_set not in PARAMETER_SETS:
        raise ValueError(f"The fault_accuracy option parameters must be one of {', '.join(PARAMETER_SETS)}; got "
                         f"{parameter_set!r}.")
    clip = _clip_flag(options.get("clip", True))
    progress = _clip_flag(options.get("progress", True), "progress")
    thresholds = getattr(getattr(model, "config", None), "clipped_activations", None) if clip else None
    if thresholds:
        from ..faults.clipping import clip_activations

        model = clip_activations(model, thresholds)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device)
    images, labels = _split_tensors(split, num_examples)
    result = fault_injection_accuracy(model, images, labels, rate, representation, bits, num_draws=num_draws, seed=seed,
                                      batch_size=batch_size, parameters=PARAMETER_SETS[parameter_set],
                                      progress=progress)
    format_name = "fp32" if representation == "fp32" else f"{bits}-bit fixed point"
    config = (f"random bit flips at rate {rate:g} in {'all parameters' if parameter_set == 'all' else 'conv/linear weights'} "
              f"({format_name}), mean of {num_draws} draws (seeds {seed}–{seed + num_draws - 1})"
              + (f", FT-ClipAct clipped activations ({len(thresholds)} layers)" if thresholds else "")
              + f"; first {result.num_examples} images")
    summary = result.to_dict()
    return {
        "fault_accuracy": summary["mean"],
        "fault_accuracy_std": summary["std"],
        "fault_accuracy_min": summary["min"],
        "fault_accuracy_max": summary["max"],
        "fault_accuracy_draws": summary["accuracies"],
        "fault_free_accuracy": summary["fault_free_accuracy"],
        "fault_rate": rate,
        "fault_representation": representation,
        "fault_bits": bits,
        "fault_seeds": summary["seeds"],
        "fault_mean_flipped_bits": sum(summary["num_flips"]) / num_draws,
        "fault_non_finite_output_fraction": sum(summary["non_finite"]) / num_draws,
        "clipped_activations": len(thresholds) if thresholds else 0,
        "num_examples": result.num_examples,
        "metric_configs": {"fault_accuracy": config},
    }


__all__ = ["FAULT_OPTIONS", "fault_accuracy"]
