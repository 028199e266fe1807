"""`train_classifier`: the one code path behind `hfcifar train`, `python -m hfcifar.train` and the examples."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch
from transformers import AutoModelForImageClassification
from transformers.trainer_utils import get_last_checkpoint

from ..data import load_train_and_eval, resolve_source
from ..image_processing_cifar import CifarImageProcessor
from ..models import DEFAULT_MODEL, PRESETS, create_model
from .args import CifarTrainingArguments
from .recipes import default_recipe, get_recipe
from .trainer import CifarTrainer

SUMMARY_FILE = "train_summary.json"


class RunDirectoryError(FileExistsError):
    """The output directory holds a previous run and neither `overwrite` nor `resume` was asked for."""


def _check_output_dir(output_dir: Path, overwrite: bool, resume: bool) -> str | None:
    """Return the checkpoint to resume from (or None); refuse to clobber a previous run silently."""
    if resume:
        last = get_last_checkpoint(output_dir) if output_dir.is_dir() else None
        if last is None:
            raise RunDirectoryError(f"--resume was given but {output_dir} holds no checkpoint-N folder to resume from.")
        return last
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite:
        raise RunDirectoryError(
            f"{output_dir} already holds a run. Pass --overwrite to replace it or --resume to continue it "
            "(`overwrite=True` / `resume=True` in Python), or choose another --output."
        )
    return None


def _parameters_in_sync(trainer: CifarTrainer) -> bool:
    """Whether every process ended with identical weights (they must, under data-parallel training)."""
    flat = torch.cat([p.detach().double().flatten() for p in trainer.model.parameters()])
    signature = torch.stack([flat.sum(), flat.square().sum(), flat[::97].sum()]).to(trainer.args.device)
    gathered = trainer.accelerator.gather(signature[None]).cpu()
    return bool((gathered == gathered[0]).all())


def recipe_settings(recipe: str, epochs: float | None = None, max_steps: int | None = None,
                    time_budget_minutes: float | None = None, batch_size: int | None = None,
                    learning_rate: float | None = None, overrides: dict | None = None) -> dict:
    """A recipe's training arguments with the explicit flags and `overrides` applied, plus the run defaults
    (evaluate and save every epoch, keep one checkpoint, log every 10 steps)."""
    settings = get_recipe(recipe)
    flags = {
        "num_train_epochs": epochs,
        "max_steps": max_steps,
        "time_budget_minutes": time_budget_minutes,
        "per_device_train_batch_size": batch_size,
        "learning_rate": learning_rate,
    }
    settings.update({k: v for k, v in flags.items() if v is not None})
    settings.update(overrides or {})
    settings.setdefault("per_device_eval_batch_size", 512)
    settings.setdefault("eval_strategy", "epoch")
    settings.setdefault("save_strategy", "epoch")
    settings.setdefault("save_total_limit", 1)
    settings.setdefault("logging_steps", 10)
    return settings


def write_summary(trainer: CifarTrainer, output_dir: Path, summary: dict) -> None:
    """Write `train_summary.json` atomically on the main process; every rank waits for it."""
    if trainer.is_world_process_zero():
        tmp = output_dir / f".{SUMMARY_FILE}.tmp"
        tmp.write_text(json.dumps(summary, indent=2, default=str) + "\n")
        os.replace(tmp, output_dir / SUMMARY_FILE)
    trainer.accelerator.wait_for_everyone()


def train_classifier(
    model: str = DEFAULT_MODEL,
    dataset: str | None = None,
    output_dir: str | os.PathLike = "runs/hfcifar",
    recipe: str | None = None,
    epochs: float | None = None,
    max_steps: int | None = None,
    time_budget_minutes: float | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    seed: int = 0,
    resume: bool = False,
    overwrite: bool = False,
    validation_size: float | None = None,
    split_seed: int = 0,
    model_overrides: dict | None = None,
    eval_dataset: str | None = None,
    trainer_class: type[CifarTrainer] = CifarTrainer,
    args_class: type[CifarTrainingArguments] = CifarTrainingArguments,
    **training_overrides,
) -> dict:
    """Train a CIFAR-10 classifier and save a `from_pretrained`-loadable folder in `output_dir`.

    Args:
        model: a preset name (`hfcifar.models.list_models()`) or a folder/Hub id to fine-tune from.
        dataset: Hub id, local folder with the Hub schema, or `None` for `$HFCIFAR_DATASET` / `uoft-cs/cifar10`.
        recipe: a name from `hfcifar.training.RECIPES`; defaults to the model's recipe.
        epochs, max_steps, time_budget_minutes, batch_size, learning_rate, seed: override the recipe.
        resume: continue from the last `checkpoint-N` in `output_dir`.
        overwrite: replace a previous run in `output_dir`.
        validation_size, split_seed: the held-out split carved when the dataset has no `test` split.
        model_overrides: config arguments applied to a preset (e.g. `{"widths": [32, 64, 128]}`).
        eval_dataset: separate evaluation data (Hub id or folder): train on the whole `train` split of `dataset`
            and evaluate on `eval_dataset`'s `test` split if it has one, else its `train` split
            (see `hfcifar.data.load_train_and_eval`).
        trainer_class, args_class: a method's trainer (a `CifarTrainer` subclass) and its arguments class; every
            method that only changes the loss or a hook trains through this one function.
        training_overrides: any other field of `args_class`.

    Returns:
        The summary also written to `output_dir/train_summary.json`.
    """
    output_dir = Path(output_dir)
    checkpoint = _check_output_dir(output_dir, overwrite, resume)
    source = resolve_source(dataset)
    train_split, held_out, data_info = load_train_and_eval(source, eval_dataset, validation_size=validation_size, seed=split_seed)
    eval_split = data_info["eval_split"]

    if model in PRESETS:
        net = create_model(model, **(model_overrides or {}))
    else:
        net = AutoModelForImageClassification.from_pretrained(model, **(model_overrides or {}))
    recipe = recipe or default_recipe(model)
    settings = recipe_settings(recipe, epochs=epochs, max_steps=max_steps, time_budget_minutes=time_budget_minutes,
                               batch_size=batch_size, learning_rate=learning_rate, overrides=training_overrides)
    if not (issubclass(trainer_class, CifarTrainer) and issubclass(args_class, CifarTrainingArguments)):
        raise TypeError("trainer_class must subclass CifarTrainer and args_class CifarTrainingArguments; got "
                        f"{trainer_class.__name__} and {args_class.__name__}.")
    args = args_class(output_dir=str(output_dir), seed=seed, **settings)

    trainer = trainer_class(
        model=net,
        args=args,
        train_dataset=train_split,
        eval_dataset=held_out,
        processing_class=CifarImageProcessor(),
    )
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    train_seconds = time.perf_counter() - start
    trainer.save_model(str(output_dir))  # safetensors + config + image processor, on the main process
    metrics = trainer.evaluate()
    in_sync = _parameters_in_sync(trainer)

    summary = {
        "model": model,
        "model_type": net.config.model_type,
        "trainer": trainer_class.__name__,
        "num_parameters": sum(p.numel() for p in net.parameters()),
        "recipe": recipe,
        "training_arguments": {k: getattr(args, k) for k in sorted(settings)},
        "dataset": source,
        "validation_size": validation_size,
        "split_seed": split_seed,
        "num_train_examples": len(trainer.train_dataset),
        "eval_dataset": data_info["eval_dataset"],
        "eval_split": eval_split,
        "num_eval_examples": metrics.get("eval_num_examples"),
        "eval_accuracy": metrics.get("eval_accuracy"),
        "eval_loss": metrics.get("eval_loss"),
        "tta": args.tta,
        "global_step": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "train_loss": result.training_loss,
        "train_runtime_seconds": train_seconds,
        "stopped_by_time_budget": trainer.stopped_by_time_budget,
        "schedule_fitted_to_step": trainer.time_budget.fitted_end_step if trainer.time_budget else None,
        "resumed_from": checkpoint,
        "num_processes": trainer.accelerator.num_processes,
        "parameters_in_sync": in_sync,
        "seed": seed,
        "device": str(args.device),
        "torch_version": torch.__version__,
        **trainer.method_summary(),
    }
    write_summary(trainer, output_dir, summary)
    return summary
