"""The evaluation API: one entry point that measures a saved (or in-memory) classifier on a dataset split.

It runs through `CifarTrainer.evaluate`, so evaluation is distributed the same way training is.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from transformers import AutoModelForImageClassification, PreTrainedModel

from ..data import eval_split_name, load_cifar10
from ..training.args import CifarTrainingArguments
from ..training.run import SUMMARY_FILE
from ..training.trainer import CifarTrainer

EVAL_RESULTS_FILE = "eval_results.json"


def _training_summary(model_dir: Path | None) -> dict:
    if model_dir is not None and (model_dir / SUMMARY_FILE).is_file():
        return json.loads((model_dir / SUMMARY_FILE).read_text())
    return {}


def evaluate_classifier(
    model: str | os.PathLike | PreTrainedModel,
    dataset: str | None = None,
    split: str | None = None,
    batch_size: int = 512,
    tta: bool | None = None,
    validation_size: float | None = None,
    split_seed: int | None = None,
) -> dict:
    """Top-1 accuracy of a classifier on a CIFAR-10 split.

    Args:
        model: a folder saved by `hfcifar train` / `save_pretrained`, a Hub id, or a model instance.
        dataset: the data to evaluate on; defaults to the dataset the model was trained on (from its
            `train_summary.json`), then to `$HFCIFAR_DATASET` / `uoft-cs/cifar10`.
        split: `test`, `validation`, … ; defaults to `test` when the dataset has one, else `validation`.
            A carved `validation` split uses the training run's `validation_size` and `split_seed`, so it holds
            exactly the images the model never trained on.
        tta: flip test-time augmentation; defaults to what the training recipe used.

    Returns:
        `{"accuracy", "num_examples", "loss", "split", "dataset", "tta"}`.
    """
    model_dir = None
    if not isinstance(model, PreTrainedModel):
        model_dir = Path(model) if Path(model).is_dir() else None
        model = AutoModelForImageClassification.from_pretrained(str(model))
    summary = _training_summary(model_dir)
    dataset = dataset or summary.get("dataset")
    if validation_size is None:
        validation_size = summary.get("validation_size")
    if split_seed is None:
        split_seed = summary.get("split_seed", 0)
    if tta is None:
        tta = bool(summary.get("tta", False))
    data = load_cifar10(dataset, validation_size=validation_size, seed=split_seed)
    split = eval_split_name(data, split)
    with tempfile.TemporaryDirectory() as scratch:
        args = CifarTrainingArguments(
            output_dir=scratch, per_device_eval_batch_size=batch_size, tta=tta, disable_tqdm=False, plot_curves=False
        )
        metrics = CifarTrainer(model=model, args=args, eval_dataset=data[split]).evaluate()
    return {
        "accuracy": metrics["eval_accuracy"],
        "num_examples": metrics["eval_num_examples"],
        "loss": metrics.get("eval_loss"),
        "split": split,
        "dataset": dataset or "uoft-cs/cifar10",
        "tta": tta,
    }


__all__ = ["EVAL_RESULTS_FILE", "evaluate_classifier"]
