"""The evaluation API: one entry point that measures a saved (or in-memory) classifier on a dataset split.

`evaluate_classifier(model, dataset, split, metrics=("accuracy",))` loads the model and the split once and runs
each requested metric from the `METRICS` registry. A metric is a function `(model, split, settings) -> dict`
registered with `@register_metric`; the method issues add theirs (robust accuracy under an attack, certified
accuracy, sparsity, bit-width, FID…) the same way, in a module of this package (`evaluation/<family>.py`, imported
automatically), and every registered metric that appears in
`eval_results.json` becomes a model-index entry of the model card (`hfcifar.hub.render_card`).
Accuracy runs through `CifarTrainer.evaluate`, so evaluation is distributed the same way training is.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import datasets
from transformers import AutoModelForImageClassification, PreTrainedModel

from ..data import eval_split_name, load_cifar10
from ..registry import Registry
from ..training.args import CifarTrainingArguments
from ..training.run import SUMMARY_FILE
from ..training.trainer import CifarTrainer

EVAL_RESULTS_FILE = "eval_results.json"


@dataclass(frozen=True)
class EvalSettings:
    """What every metric function receives besides the model and the split."""

    batch_size: int = 512
    tta: bool = False
    options: dict = field(default_factory=dict)  # metric-specific options (an attack, ε, noise level, …)


@dataclass(frozen=True)
class Metric:
    """A named measurement of a classifier on a split.

    `name` is the key of the value in the results (and in `eval_results.json`); `hub_type` and `pretty_name`
    are the `type` and `name` of its model-index entry; `higher_is_better` orders the card's table.
    """

    name: str
    compute: Callable[[PreTrainedModel, datasets.Dataset, EvalSettings], dict]
    pretty_name: str
    hub_type: str
    higher_is_better: bool = True


METRICS: Registry[Metric] = Registry("metric")


def register_metric(name: str, pretty_name: str, hub_type: str | None = None, higher_is_better: bool = True):
    """Decorator: register `fn(model, split, settings) -> dict` as the metric `name`.

    The returned dict must hold `name` (the value) and `num_examples`; it may hold more (a loss, the attack's
    settings, a mean perturbation norm), all of which go to `eval_results.json`. A metric whose meaning depends on
    its settings also returns `metric_configs: {name: "PGD-L∞ ε=8/255, 10 steps"}`; the model card shows it as the
    model-index entry's `config`.
    """

    def decorate(fn):
        METRICS.register(name, Metric(name, fn, pretty_name, hub_type or name, higher_is_better))
        return fn

    return decorate


@register_metric("accuracy", "Accuracy")
def accuracy(model: PreTrainedModel, split: datasets.Dataset, settings: EvalSettings) -> dict:
    """Top-1 accuracy (with flip test-time augmentation when `settings.tta`), and the mean cross-entropy."""
    with tempfile.TemporaryDirectory() as scratch:
        args = CifarTrainingArguments(
            output_dir=scratch, per_device_eval_batch_size=settings.batch_size, tta=settings.tta, plot_curves=False
        )
        metrics = CifarTrainer(model=model, args=args, eval_dataset=split).evaluate()
    return {"accuracy": metrics["eval_accuracy"], "num_examples": metrics["eval_num_examples"], "loss": metrics.get("eval_loss")}


def training_summary(model_dir: str | os.PathLike | None) -> dict:
    """The `train_summary.json` of a run folder, or `{}`."""
    path = Path(model_dir) / SUMMARY_FILE if model_dir is not None else None
    return json.loads(path.read_text()) if path is not None and path.is_file() else {}


def evaluate_classifier(
    model: str | os.PathLike | PreTrainedModel,
    dataset: str | None = None,
    split: str | None = None,
    batch_size: int = 512,
    tta: bool | None = None,
    validation_size: float | None = None,
    split_seed: int | None = None,
    metrics: tuple[str, ...] | list[str] = ("accuracy",),
    **metric_options,
) -> dict:
    """Measure a classifier on a CIFAR-10 split.

    Args:
        model: a folder saved by `hfcifar train` / `save_pretrained`, a Hub id, or a model instance.
        dataset: the data to evaluate on; defaults to the dataset the model was trained on (from its
            `train_summary.json`), then to `$HFCIFAR_DATASET` / `uoft-cs/cifar10`.
        split: `test`, `validation`, … ; defaults to `test` when the dataset has one, else `validation`.
            A carved `validation` split uses the training run's `validation_size` and `split_seed`, so it holds
            exactly the images the model never trained on.
        tta: flip test-time augmentation; defaults to what the training recipe used.
        metrics: names from `METRICS` (default: accuracy).
        metric_options: passed to every metric as `settings.options`.

    Returns:
        A flat dict: each metric's values (`accuracy`, `loss`, `robust_accuracy`, …) plus `split`, `dataset`, `tta`,
        `metrics` (the names measured), `metric_num_examples` (images each metric was measured on) and
        `num_examples` (that of the first metric).
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"Unknown metric(s) {unknown}; registered metrics: {', '.join(METRICS.names())}.")
    model_dir = None
    if not isinstance(model, PreTrainedModel):
        model_dir = Path(model) if Path(model).is_dir() else None
        model = AutoModelForImageClassification.from_pretrained(str(model))
        from .faults import _clip_flag

        if getattr(model.config, "clipped_activations", None):
            # FT-ClipAct thresholds travel in config.json; every metric measures the clipped network, as deployed
            # (the zoo's models clip themselves on load; `--option clip=false` measures the unclipped one).
            from ..faults.clipping import clip_activations, unclip_activations

            if _clip_flag(metric_options.get("clip", True)):
                model = clip_activations(model, model.config.clipped_activations, inplace=True)
            else:
                model = unclip_activations(model, inplace=True)
    summary = training_summary(model_dir)
    if tta is None:
        tta = bool(summary.get("tta", False))
    if dataset is None and summary.get("eval_dataset"):
        # Trained with a separate evaluation set: evaluate where training did (its test split, else all of it).
        dataset = summary["eval_dataset"]
        data = load_cifar10(dataset, validation_size=0, require_train=False)
        split = split if split not in (None, "auto") else ("test" if "test" in data else "train")
    else:
        dataset = dataset or summary.get("dataset")
        if validation_size is None:
            validation_size = summary.get("validation_size")
        if split_seed is None:
            split_seed = summary.get("split_seed", 0)
        data = load_cifar10(dataset, validation_size=validation_size, seed=split_seed, require_train=False)
    split = eval_split_name(data, split)
    settings = EvalSettings(batch_size=batch_size, tta=tta, options=dict(metric_options))
    results: dict = {}
    counts: dict[str, int] = {}
    for name in metrics:
        values = METRICS[name].compute(model, data[split], settings)
        configs = {**results.get("metric_configs", {}), **values.pop("metric_configs", {})}
        # Metrics may measure different numbers of images (an attack on the first N): each keeps its own count, and
        # the top-level `num_examples` stays that of the first metric.
        counts[name] = values.pop("num_examples", None)
        results.update(values)
        if configs:
            results["metric_configs"] = configs
    results["num_examples"] = counts[metrics[0]] if metrics else None
    results["metric_num_examples"] = counts
    results.update({
        "split": split,
        "dataset": dataset or "uoft-cs/cifar10",
        "tta": tta,
        "metrics": list(metrics),
    })
    if split == "validation":
        results["carved_from"] = {"split": "train", "validation_size": validation_size or 0.1, "split_seed": split_seed}
    return results


def write_eval_results(model_dir: str | os.PathLike, results: dict) -> Path:
    """Write `results` to `model_dir/eval_results.json` atomically (the model card reads it)."""
    target = Path(model_dir) / EVAL_RESULTS_FILE
    tmp = target.with_name(f".{EVAL_RESULTS_FILE}.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(tmp, target)
    return target


def _load_metric_modules() -> None:
    """Import every module of this package: each registers its metrics (robustness.py, certification.py, …)."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


_load_metric_modules()

__all__ = [
    "EVAL_RESULTS_FILE",
    "EvalSettings",
    "METRICS",
    "Metric",
    "evaluate_classifier",
    "register_metric",
    "training_summary",
    "write_eval_results",
]
