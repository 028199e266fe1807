"""Robust accuracy: a classifier's accuracy on the adversarial examples an attack of `hfcifar.attacks` crafts.

    hfcifar eval runs/x --attack pgd --eps 8/255 --steps 10 --num-examples 1000
    evaluate_classifier("runs/x", metrics=["robust_accuracy"], attack="cw", steps=100, num_examples=200)

The metric runs through `evaluate_classifier` (same model loading and held-out split as accuracy), attacks the
first `num_examples` images of the split in batches, and reports, on those images: clean accuracy, robust accuracy,
the attack success rate and the size of the perturbations (mean/max L∞ and L2). `metric_configs` says which attack
was run, so the model card's model-index entry carries it.
"""

from __future__ import annotations

import inspect
import math

import datasets
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import AutoModelForImageClassification

from ..attacks import ATTACKS, TransferAttack, create_attack
from ..attacks.transfer import predict, success_rate
from ..data import CifarTensorDataset
from . import EvalSettings, register_metric

#: Options of the metric itself (besides them, any setting the chosen attack's constructor takes is passed on).
ROBUSTNESS_OPTIONS = ("attack", "eps", "steps", "alpha", "num_examples", "batch_size", "seed", "source_model",
                      "progress")

#: How the attacks are named in configs (the norm is the threat model).
_ATTACK_NAMES = {"fgsm": "FGSM-L∞", "pgd": "PGD-L∞", "pgdl2": "PGD-L2", "cw": "CW-L2"}


class FlipAveraged(nn.Module):
    """The classifier with flip test-time augmentation: logits of the image and its mirror, averaged.

    When a model is evaluated with TTA, the attack must target the same function (the whole averaged classifier,
    differentiable end to end), or robust and clean accuracy would describe two different classifiers.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return (self.model(pixel_values).logits + self.model(pixel_values.flip(-1)).logits) / 2


def _format_eps(value: float | None) -> str:
    """`8/255` for budgets on the 1/255 grid (how papers state L∞ budgets), else the number."""
    if value is None:
        return "∞"
    if value > 0 and abs(value * 255 - round(value * 255)) < 1e-6:
        return f"{round(value * 255)}/255"
    return f"{value:g}"


def describe_attack(name: str, attack) -> str:
    """The attack as a short config string, e.g. `PGD-L∞ ε=8/255, α=2/255, 10 steps, random start`."""
    source = attack.source_attack if isinstance(attack, TransferAttack) else attack
    parts = [f"{_ATTACK_NAMES.get(name, name)} ε={_format_eps(source.eps)}"]
    if name in ("pgd", "pgdl2"):
        parts += [f"α={_format_eps(source.alpha)}", f"{source.steps} steps"]
        parts += ["random start"] if source.random_start else []
    elif name == "cw":
        parts = [f"{_ATTACK_NAMES['cw']}" + (f" ‖δ‖₂≤{_format_eps(source.eps)}" if source.eps is not None else ""),
                 f"{source.binary_search_steps}×{source.steps} steps", f"c₀={source.initial_const:g}",
                 f"κ={source.kappa:g}", f"lr={source.lr:g}"]
    return ", ".join(parts)


def _images_and_labels(split, num_examples: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `num_examples` images of the split as float [0, 1] images and int64 labels."""
    size = len(split)
    count = size if num_examples is None else min(int(num_examples), size)
    if isinstance(split, CifarTensorDataset):
        data = CifarTensorDataset(split.images[:count], split.labels[:count])
    elif isinstance(split, datasets.Dataset):
        data = CifarTensorDataset.from_hf(split.select(range(count)), progress=False)
    else:
        raise ValueError(f"robust_accuracy evaluates a Hub-schema datasets.Dataset or a CifarTensorDataset; got "
                         f"{type(split).__name__}.")
    return data.images.float().div_(255), data.labels


def check_attack_options(name: str, options: dict) -> dict:
    """The options the attack `name` takes. eps/steps/alpha given to an attack without them is a `ValueError`
    (`hfcifar eval` checks this before any work)."""
    accepted = set(inspect.signature(ATTACKS[name].__init__).parameters) - {"self", "model", "seed"}
    explicit = {k: options[k] for k in ("eps", "steps", "alpha") if options.get(k) is not None}
    refused = sorted(set(explicit) - accepted)
    if refused:
        raise ValueError(f"The {name!r} attack takes no {', '.join(refused)} (it takes {', '.join(sorted(accepted))}); "
                         "drop the option or choose another attack.")
    extra = {k: v for k, v in options.items() if k in accepted and k not in ROBUSTNESS_OPTIONS}
    return {**extra, **explicit}


@register_metric("robust_accuracy", "Robust accuracy", hub_type="robust_accuracy")
def robust_accuracy(model: nn.Module, split, settings: EvalSettings) -> dict:
    """Accuracy under attack, on the first `num_examples` images of the split.

    Options (`settings.options`, e.g. `hfcifar eval DIR --option key=value` or the CLI's `--attack/--eps/…`):
        attack (`str`, defaults to `"pgd"`): a name of `hfcifar.attacks.ATTACKS` (`fgsm`, `pgd`, `pgdl2`, `cw`).
        eps, steps, alpha: the attack's budget, steps and step size (defaults: the attack's own, e.g. PGD-L∞
            ε=8/255, α=2/255, 10 steps); any other setting of the attack (`kappa`, `binary_search_steps`,
            `random_start`, …) is passed on too.
        num_examples (`int`, defaults to the whole split): attack only the first images of the split.
        batch_size (`int`, defaults to `settings.batch_size`): images attacked at once.
        seed (`int`, defaults to 0): seeds random starts; batch `i` uses `seed + i`, so the numbers are
            reproducible for a given batch size.
        source_model (`str`, *optional*): a model folder or Hub id; the examples are then crafted on that model
            and transferred (a black-box transfer attack, `TransferAttack`) instead of crafted on `model`.
        progress (`bool`, defaults to `True`): a progress bar over the attacked batches (`--option progress=false`
            turns it off).

    With `settings.tta`, the attacked classifier is the flip-averaged one (`FlipAveraged`), the one accuracy measures.

    Returns:
        `robust_accuracy`: fraction of the images whose adversarial example is still classified correctly
        (an image misclassified when clean counts as not robust); `clean_accuracy` on the same images;
        `attack_success_rate`: among the images classified correctly when clean, the fraction the attack makes
        misclassified (`nan` when none is correct); `perturbation_linf_mean/max`, `perturbation_l2_mean/max`: norms
        of x_adv − x over all attacked images (0 where the attack returned the image unchanged, e.g. CW without a
        success); `num_examples`; `attack` and `attack_settings`; and `metric_configs` for the model card.
    """
    options = dict(settings.options)
    name = str(options.get("attack") or "pgd")
    ATTACKS.get(name)  # an unknown name raises the registry's error, which lists the attacks
    num_examples = options.get("num_examples")
    if num_examples is not None and int(num_examples) < 1:
        raise ValueError(f"num_examples must be ≥ 1 (or unset for the whole split); got {num_examples}.")
    batch_size = int(options.get("batch_size") or settings.batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1; got {batch_size}.")
    seed = int(options.get("seed") or 0)
    attack_settings = check_attack_options(name, options)
    progress = options.get("progress", True)
    if not isinstance(progress, bool):
        raise ValueError(f"The robust_accuracy option progress must be true or false; got {progress!r}.")

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device)
    target = FlipAveraged(model) if settings.tta else model
    source_name = options.get("source_model")
    if source_name:
        source = AutoModelForImageClassification.from_pretrained(str(source_name)).to(device)
        source = FlipAveraged(source) if settings.tta else source
    else:
        source = target

    images, labels = _images_and_labels(split, num_examples)
    if images.shape[0] == 0:
        raise ValueError("The split to evaluate is empty; choose another split (--split) or dataset.")
    clean, fooled, linf, l2 = [], [], [], []
    description = None
    starts = range(0, images.shape[0], batch_size)
    bar = tqdm(starts, desc=f"Attacking ({name})", unit="batch", disable=not progress or len(starts) < 2)
    for index, start in enumerate(bar):
        x, y = images[start:start + batch_size].to(device), labels[start:start + batch_size].to(device)
        attack = create_attack(name, source, seed=seed + index, **attack_settings)
        if source_name:
            attack = TransferAttack(attack)
        description = description or describe_attack(name, attack)
        adversarial = attack(x, y)
        clean.append(predict(target, x, batch_size).cpu())
        fooled.append(predict(target, adversarial, batch_size).cpu())
        delta = (adversarial - x).flatten(1)
        linf.append(delta.abs().amax(dim=1).cpu())
        l2.append(delta.norm(dim=1).cpu())

    clean, fooled = torch.cat(clean), torch.cat(fooled)
    linf, l2 = torch.cat(linf), torch.cat(l2)
    n = labels.shape[0]
    settings_out = {k: v for k, v in attack.settings().items() if k != "targeted"}
    config = description + (f"; transferred from {source_name}" if source_name else "") + \
        (", flip TTA" if settings.tta else "") + f"; first {n} images"
    return {
        "robust_accuracy": float((fooled == labels).float().mean()),
        "clean_accuracy": float((clean == labels).float().mean()),
        # None rather than NaN when no image was correct: eval_results.json stays strict JSON
        "attack_success_rate": None if math.isnan(rate := success_rate(clean, fooled, labels)) else rate,
        "perturbation_linf_mean": float(linf.mean()),
        "perturbation_linf_max": float(linf.max()),
        "perturbation_l2_mean": float(l2.mean()),
        "perturbation_l2_max": float(l2.max()),
        "num_examples": n,
        "attack": name,
        "attack_settings": settings_out,
        **({"source_model": str(source_name)} if source_name else {}),
        "metric_configs": {"robust_accuracy": config},
    }


__all__ = ["FlipAveraged", "ROBUSTNESS_OPTIONS", "check_attack_options", "describe_attack", "robust_accuracy"]
