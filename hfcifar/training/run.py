"""`TrainingRun`, the leading parameters and steps every training family shares, and `train_classifier`, the
classifier family's code path behind `hfcifar train`, `python -m hfcifar.train` and the examples."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForImageClassification, PreTrainedModel
from transformers.trainer_utils import get_last_checkpoint

from ..data import load_train_and_eval, resolve_source
from ..image_processing_cifar import CifarImageProcessor
from ..models import DEFAULT_MODEL, PRESETS, create_model, list_models
from .args import CifarTrainingArguments
from .families import TRAINING_FAMILIES, TrainingFamily
from .recipes import default_recipe, get_recipe
from .optimizers import parse_optim_args
from .trainer import CifarTrainer
from .trainers import default_trainer, trainer_classes, trainer_name

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


@dataclass
class RunArguments:
    """The options of a training run that are not `TrainingArguments` fields, shared by every training family (and
    parsed by `hfcifar train` next to the family's arguments class)."""

    dataset: str | None = field(default=None, metadata={
        "help": "Hub id or local folder with CIFAR-10's schema; default $HFCIFAR_DATASET, then uoft-cs/cifar10."})
    eval_dataset: str | None = field(default=None, metadata={
        "help": "Evaluate on this data instead (its test split, else its train split); training then uses the whole "
                "train split of --dataset."})
    validation_size: float | None = field(default=None, metadata={
        "help": "Fraction held out for validation when the dataset has no test split (default 0.1)."})
    split_seed: int = field(default=0, metadata={"help": "Seed of that held-out split."})
    recipe: str | None = field(default=None, metadata={
        "help": "Training recipe of the model's family (see --list-models); default: the model's. Explicit flags "
                "override its values."})
    resume: bool = field(default=False, metadata={"help": "Continue from the last checkpoint-N in the output folder."})
    overwrite: bool = field(default=False, metadata={"help": "Replace a previous run in the output folder."})
    config_overrides: str | None = field(default=None, metadata={
        "help": "Config arguments of the model, as transformers' example scripts take them: key=value pairs "
                "separated by commas, values as Python literals, e.g. 'hidden_act=crrelu,widths=[32,64,128]'."})

    def __post_init__(self):
        if self.resume and self.overwrite:
            raise ValueError("--resume continues the run in the output folder and --overwrite replaces it; pass one.")
        if self.validation_size is not None and not 0 < self.validation_size < 1:
            raise ValueError(f"validation_size must be a fraction in (0, 1); got {self.validation_size}.")


# Training arguments a run sets unless the recipe or the caller does.
RUN_DEFAULTS = {"per_device_eval_batch_size": 512, "eval_strategy": "epoch", "save_strategy": "epoch",
                "save_total_limit": 1, "logging_steps": 10, "seed": 0}
# Short names of training arguments the Python API accepts (`epochs=3` is `num_train_epochs=3`).
SHORTHANDS = {"epochs": "num_train_epochs", "batch_size": "per_device_train_batch_size"}
# Training arguments for which `None` means "not given: the recipe's value" (elsewhere `None` is a value).
RECIPE_FLAGS = ("num_train_epochs", "max_steps", "time_budget_minutes", "per_device_train_batch_size", "learning_rate",
                "seed")


@dataclass
class TrainingRun:
    """The leading parameters every training family shares, defined once: `train_classifier`, `train_diffusion`,
    `train_vae` (and `hfcifar train`) build one with [`TrainingRun.from_options`] and share its steps: refuse an
    occupied output folder, resolve the recipe of the model's family with the caller's overrides on top, load the
    data, time the training and write the common part of the summary.

    Args:
        model: what to train (a preset name, a folder, or a model instance where the family accepts one).
        output_dir: the run folder (default `runs/<model name>`).
        options: the [`RunArguments`] (data, recipe, resume/overwrite).
        model_overrides: config arguments applied to a preset (e.g. `{"widths": [32, 64, 128]}`).
        training_overrides: fields of the family's arguments class; they override the recipe.
    """

    model: Any
    output_dir: Path
    options: RunArguments = field(default_factory=RunArguments)
    model_overrides: dict = field(default_factory=dict)
    training_overrides: dict = field(default_factory=dict)

    @classmethod
    def from_options(cls, model, output_dir: str | os.PathLike | None = None, model_overrides: dict | None = None,
                     **options) -> "TrainingRun":
        """Split keyword arguments into [`RunArguments`] fields and training-argument overrides.

        `epochs`/`batch_size` are accepted for `num_train_epochs`/`per_device_train_batch_size`; `None` for one of
        `RECIPE_FLAGS` means "the recipe's value".
        """
        names = {f.name for f in dataclasses.fields(RunArguments)}
        run_options = RunArguments(**{key: options.pop(key) for key in list(options) if key in names})
        if run_options.config_overrides:
            parsed = parse_optim_args(run_options.config_overrides, "config_overrides")
            both = sorted(set(parsed) & set(model_overrides or {}))
            if both:
                raise TypeError(f"{', '.join(both)} given both in config_overrides and in model_overrides; pass one.")
            model_overrides = {**(model_overrides or {}), **parsed}
        for short, name in SHORTHANDS.items():
            if short in options:
                value = options.pop(short)
                if value is not None and options.get(name) is not None:
                    raise TypeError(f"Pass {short} or {name}, not both.")
                options.setdefault(name, value)
        overrides = {key: value for key, value in options.items() if not (value is None and key in RECIPE_FLAGS)}
        name = model if isinstance(model, (str, os.PathLike)) else type(model).__name__
        output_dir = Path(output_dir) if output_dir is not None else Path("runs") / Path(str(name)).name
        return cls(model, output_dir, run_options, dict(model_overrides or {}), overrides)

    @property
    def model_name(self) -> str:
        """The model as the summary names it: the preset or folder, else the instance's class."""
        return str(self.model) if isinstance(self.model, (str, os.PathLike)) else type(self.model).__name__

    def recipe_name(self, family) -> str:
        return self.options.recipe or default_recipe(self.model_name, family)

    def settings(self, family, arguments_class: type | None = None) -> dict:
        """The recipe of `family` (checked to be one of its recipes, its fields those of `arguments_class`) with
        the overrides on top, plus `RUN_DEFAULTS` (evaluate and save every epoch, keep one checkpoint, …)."""
        arguments_class = arguments_class or family.arguments_class
        settings = get_recipe(self.recipe_name(family), family, model=self.model_name)
        # A recipe's batch size is the *global* batch its learning rate was chosen for: under N processes each takes
        # 1/N of it (an explicit batch size stays per device, as in TrainingArguments), so the same recipe trains the
        # same way on 1 or N processes instead of silently doubling the batch at an unchanged learning rate.
        processes = int(os.environ.get("WORLD_SIZE", "1"))
        batch = settings.get("per_device_train_batch_size")
        if processes > 1 and batch and "per_device_train_batch_size" not in self.training_overrides:
            if batch % processes:
                raise ValueError(f"The recipe's batch of {batch} does not split over {processes} processes; pass "
                                 "--batch-size (per process) explicitly.")
            settings["per_device_train_batch_size"] = batch // processes
        # the recipe's `optim_args` belong to the recipe's optimizer: another `optim` without its own args drops them
        overrides = self.training_overrides
        if "optim" in overrides and "optim_args" not in overrides and overrides["optim"] != settings.get("optim"):
            settings.pop("optim_args", None)
        settings.update(overrides)
        for key, value in RUN_DEFAULTS.items():
            settings.setdefault(key, value)
        unknown = sorted(set(settings) - {f.name for f in dataclasses.fields(arguments_class)} - {"output_dir"})
        if unknown:
            raise TypeError(f"{', '.join(unknown)} {'is not an argument' if len(unknown) == 1 else 'are not arguments'} "
                            f"of {arguments_class.__name__} (training {self.model_name!r} as a {family.name}).")
        return settings

    def arguments(self, family, arguments_class: type | None = None):
        """`(settings, arguments)`: [`settings`] and the arguments object built from them (which validates them)."""
        arguments_class = arguments_class or family.arguments_class
        settings = self.settings(family, arguments_class)
        settings.pop("output_dir", None)
        return settings, arguments_class(output_dir=str(self.output_dir), **settings)

    def start(self) -> tuple[str | None, str, Any, Any, dict]:
        """Check the output folder and load the data: `(checkpoint, source, train_split, eval_split, data_info)`."""
        checkpoint = _check_output_dir(self.output_dir, self.options.overwrite, self.options.resume)
        source = resolve_source(self.options.dataset)
        train_split, held_out, data_info = load_train_and_eval(
            source, self.options.eval_dataset, validation_size=self.options.validation_size, seed=self.options.split_seed)
        return checkpoint, source, train_split, held_out, {**data_info, "source": source}

    @staticmethod
    def train(trainer, checkpoint: str | None):
        """`(TrainOutput, seconds)` of `trainer.train(resume_from_checkpoint=checkpoint)`."""
        start = time.perf_counter()
        result = trainer.train(resume_from_checkpoint=checkpoint)
        return result, time.perf_counter() - start

    def summary(self, trainer, settings: dict, family, data_info: dict, result, seconds: float,
                checkpoint: str | None) -> dict:
        """The summary keys every family writes (the family adds its own)."""
        args = trainer.args
        return {
            "model": self.model_name,
            "model_overrides": self.model_overrides or None,
            "training_family": family.name,
            "trainer": type(trainer).__name__,
            "recipe": self.recipe_name(family),
            "training_arguments": {k: getattr(args, k) for k in sorted(settings)},
            "dataset": data_info["source"],
            "validation_size": self.options.validation_size,
            "split_seed": self.options.split_seed,
            "num_train_examples": len(trainer.train_dataset),
            "eval_dataset": data_info["eval_dataset"],
            "eval_split": data_info["eval_split"],
            "global_step": trainer.state.global_step,
            "epochs": trainer.state.epoch,
            "train_loss": result.training_loss,
            "train_runtime_seconds": seconds,
            "stopped_by_time_budget": trainer.stopped_by_time_budget,
            "resumed_from": checkpoint,
            "num_processes": trainer.accelerator.num_processes,
            "mixed_precision": trainer.accelerator.mixed_precision,  # "bf16" where `auto_bf16` found fast bf16
            "cpu_memory_reuse": getattr(trainer, "cpu_memory_reuse", False),  # `reuse_cpu_memory` took effect
            "global_train_batch_size": args.per_device_train_batch_size * trainer.accelerator.num_processes
            * args.gradient_accumulation_steps,
            "parameters_in_sync": _parameters_in_sync(trainer),
            "seed": args.seed,
            "device": str(args.device),
            "torch_version": torch.__version__,
        }


def write_summary(trainer: CifarTrainer, output_dir: Path, summary: dict) -> None:
    """Write `train_summary.json` atomically on the main process; every rank waits for it."""
    if trainer.is_world_process_zero():
        tmp = output_dir / f".{SUMMARY_FILE}.tmp"
        tmp.write_text(json.dumps(summary, indent=2, default=str) + "\n")
        os.replace(tmp, output_dir / SUMMARY_FILE)
    trainer.accelerator.wait_for_everyone()


def train_classifier(
    model: str = DEFAULT_MODEL,
    *,
    trainer: str | None = None,
    trainer_class: type[CifarTrainer] = CifarTrainer,
    args_class: type[CifarTrainingArguments] = CifarTrainingArguments,
    **options,
) -> dict:
    """Train a CIFAR-10 classifier and save a `from_pretrained`-loadable folder in `output_dir`.

    Args:
        model: a preset name (`hfcifar.models.list_models()`) or a folder/Hub id to fine-tune from.
        trainer: the name of a registered trainer (`hfcifar.training.TRAINERS`, e.g. `"reste"`): sets
            `trainer_class` and `args_class` (its `arguments_class`). Without it (and without `trainer_class`), the
            model's default trainer (`default_trainer(model)`: ReSTE's for binary ResNets, else `CifarTrainer`).
        trainer_class, args_class: a method's trainer (a `CifarTrainer` subclass) and its arguments class; every
            method that only changes the loss or a hook trains through this one function.
        options: the run's parameters, shared by every training family (see [`TrainingRun`] and [`RunArguments`]):
            `dataset`, `output_dir` (default `runs/MODEL`), `recipe` (a classifier recipe of
            `hfcifar.training.RECIPES`; default the model's), `resume`, `overwrite`, `validation_size`, `split_seed`,
            `eval_dataset` (train on the whole `train` split of `dataset` and evaluate on this data's `test` split,
            else its `train` split), `model_overrides` (config arguments applied to a preset, e.g.
            `{"widths": [32, 64, 128]}`); and any field of `args_class`, over the recipe (`max_steps`,
            `time_budget_minutes`, `learning_rate`, `seed`, `epochs`/`batch_size` for `num_train_epochs`/
            `per_device_train_batch_size`, …).

    Returns:
        The summary also written to `output_dir/train_summary.json`.
    """
    if trainer is not None and trainer_class is not CifarTrainer:
        raise TypeError(f"Pass either trainer={trainer!r} or trainer_class={trainer_class.__name__}, not both.")
    if trainer is not None or (trainer_class is CifarTrainer and args_class is CifarTrainingArguments):
        trainer_class, args_class = trainer_classes(trainer or default_trainer(model))  # the model names its trainer
    if not (isinstance(trainer_class, type) and issubclass(trainer_class, CifarTrainer)
            and isinstance(args_class, type) and issubclass(args_class, CifarTrainingArguments)):
        raise TypeError("trainer_class must subclass CifarTrainer and args_class CifarTrainingArguments; got "
                        f"{getattr(trainer_class, '__name__', trainer_class)} and {getattr(args_class, '__name__', args_class)}.")
    run = TrainingRun.from_options(model, **options)
    settings, args = run.arguments(CLASSIFIER, args_class)
    checkpoint, source, train_split, held_out, data_info = run.start()
    if isinstance(model, str) and model in PRESETS:
        net = create_model(model, **run.model_overrides)
    elif isinstance(model, torch.nn.Module):
        net = model
    else:
        net = AutoModelForImageClassification.from_pretrained(model, **run.model_overrides)

    trainer = trainer_class(model=net, args=args, train_dataset=train_split, eval_dataset=held_out,
                            processing_class=CifarImageProcessor())
    result, seconds = run.train(trainer, checkpoint)
    trainer.save_model(str(run.output_dir))  # safetensors + config + image processor, on the main process
    metrics = trainer.evaluate()
    summary = {
        **run.summary(trainer, settings, CLASSIFIER, data_info, result, seconds, checkpoint),
        "trainer_name": trainer_name(trainer_class),
        "model_type": net.config.model_type,
        "num_parameters": sum(p.numel() for p in net.parameters()),
        "num_eval_examples": metrics.get("eval_num_examples"),
        "eval_accuracy": metrics.get("eval_accuracy"),
        "eval_loss": metrics.get("eval_loss"),
        "tta": args.tta,
        "tta_translate": args.tta_translate,
        "schedule_fitted_to_step": trainer.time_budget.fitted_end_step if trainer.time_budget else None,
        **trainer.method_summary(),
    }
    write_summary(trainer, run.output_dir, summary)
    return summary


def _is_classifier(model) -> bool:
    """A classifier preset, a transformers classifier instance, a folder whose config.json has a `model_type`
    (transformers; diffusers writes `_class_name`), or a Hub id (`owner/name` that is no local path)."""
    if isinstance(model, torch.nn.Module):
        return isinstance(model, PreTrainedModel)
    if not isinstance(model, (str, os.PathLike)):
        return False
    name = str(model)
    if name in PRESETS:
        return True
    path = Path(name)
    if path.is_dir():
        config = path / "config.json"
        return config.is_file() and "model_type" in json.loads(config.read_text())
    return not path.exists() and re.fullmatch(r"[\w.-]+/[\w.-]+", name) is not None


def _describe_classifier(summary: dict, output_dir: str) -> str:
    pruned = f", sparsity {summary['pruning']['sparsity']:.1%}" if "pruning" in summary else ""
    return (f"{summary['model']}: {summary['eval_split']} accuracy {summary['eval_accuracy']:.4f} on "
            f"{summary['num_eval_examples']} images after {summary['global_step']} steps{pruned} "
            f"({summary['train_runtime_seconds']:.0f} s, {summary['num_processes']} process(es)) → {output_dir}")


CLASSIFIER = TrainingFamily(
    name="classifier",
    description="image classifiers (transformers)",
    train=train_classifier,
    arguments_class=CifarTrainingArguments,
    default_recipe="sgd-cosine",
    recognizes=_is_classifier,
    presets=list_models,
    describe=_describe_classifier,
    trainer_class=CifarTrainer,
    listing_order=0,
)
TRAINING_FAMILIES.register("classifier", CLASSIFIER)
