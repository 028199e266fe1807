"""`train_diffusion`, the diffusion training family's code path: `hfcifar train ddpm-…` (and
`accelerate launch -m hfcifar.train ddpm-…`) for UNet presets, UNet folders and pipeline folders."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffusers import UNet2DModel

from ..training.families import TrainingFamily
from ..training.run import TrainingRun, write_summary
from .loading import load_unet
from .trainer import DiffusionTrainer, DiffusionTrainingArguments
from .unets import is_unet_preset, list_unets


def train_diffusion(
    model: str | UNet2DModel = "ddpm-small",
    *,
    vae=None,
    trainer_class: type[DiffusionTrainer] = DiffusionTrainer,
    args_class: type[DiffusionTrainingArguments] = DiffusionTrainingArguments,
    **options,
) -> dict:
    """Train a denoising diffusion UNet on CIFAR-10 and save a `DiffusionPipeline` folder in `output_dir`.

    Args:
        model: a UNet preset (`hfcifar.diffusion.list_unets()`, e.g. `"ddpm-small"`, `"ddpm-small-cfg"`), a folder
            to continue from, or a `UNet2DModel` instance (e.g. an alias-free UNet).
        vae: a diffusers `AutoencoderKL` (or its folder, e.g. from `train_vae`) to train a latent diffusion model; a
            UNet preset is then built for the latents' channels and size.
        trainer_class, args_class: a method's `DiffusionTrainer` subclass and its arguments.
        options: the run's parameters, as in [`hfcifar.training.train_classifier`] (`dataset`, `output_dir`,
            `recipe` — a diffusion recipe: `"ddpm"` = the paper's settings, `"ddpm-quick"` = CPU minutes; default the
            preset's —, `resume`, `overwrite`, `validation_size`, `eval_dataset`, `model_overrides`, `max_steps`,
            `time_budget_minutes`, …) and any field of `args_class` (`noise_schedule`, `prediction_type`,
            `label_dropout`, `ema_decay`, `sample_every_steps`, …).

    Returns:
        The summary also written to `output_dir/train_summary.json`.
    """
    if not (isinstance(trainer_class, type) and issubclass(trainer_class, DiffusionTrainer)
            and isinstance(args_class, type) and issubclass(args_class, DiffusionTrainingArguments)):
        raise TypeError("trainer_class must subclass DiffusionTrainer and args_class DiffusionTrainingArguments.")
    run = TrainingRun.from_options(model, **options)
    settings, args = run.arguments(DIFFUSION_FAMILY, args_class)
    checkpoint, source, train_split, held_out, data_info = run.start()
    overrides = dict(run.model_overrides)
    if vae is not None:
        from diffusers import AutoencoderKL

        from .autoencoder import latent_shape

        vae = vae if isinstance(vae, torch.nn.Module) else AutoencoderKL.from_pretrained(vae)
        if is_unet_preset(str(model)):  # a preset works on the latents' channels and size
            channels, side = latent_shape(vae)
            overrides = {"in_channels": channels, "out_channels": channels, "sample_size": side, **overrides}
    unet = load_unet(model, **overrides)
    trainer = trainer_class(model=unet, args=args, train_dataset=train_split, eval_dataset=held_out, vae=vae)
    result, seconds = run.train(trainer, checkpoint)
    trainer.save_model(str(run.output_dir))  # the pipeline folder, EMA weights
    metrics = trainer.evaluate()
    summary = {
        **run.summary(trainer, settings, DIFFUSION_FAMILY, data_info, result, seconds, checkpoint),
        "model_type": "diffusion",
        "pipeline": trainer.pipeline_class.__name__,
        "num_parameters": sum(p.numel() for p in unet.parameters()),
        "num_eval_examples": len(trainer.eval_dataset) if trainer.eval_dataset is not None else None,
        "eval_loss": metrics.get("eval_loss"),
        **trainer.method_summary(),
    }
    write_summary(trainer, run.output_dir, summary)
    return summary


@dataclass
class LatentDiffusionArguments:
    """The diffusion family's own parameter of `train_diffusion` (`hfcifar train ddpm-small --vae DIR`)."""

    vae: str | None = field(default=None, metadata={
        "help": "Latent diffusion: train on the latents of this AutoencoderKL folder (e.g. from `hfcifar train vae-small`)."})


def _is_diffusion_model(model) -> bool:
    """A UNet preset or instance, a pipeline folder (model_index.json), or a folder holding a UNet's config."""
    if isinstance(model, torch.nn.Module):
        return isinstance(model, UNet2DModel)
    if not isinstance(model, (str, os.PathLike)):
        return False
    if is_unet_preset(str(model)):
        return True
    path = Path(model)
    if (path / "model_index.json").is_file():
        return True
    for config in (path / "unet" / "config.json", path / "config.json"):
        if config.is_file():
            return "UNet" in json.loads(config.read_text()).get("_class_name", "")
    return False


def _describe(summary: dict, output_dir: str) -> str:
    return (f"{summary['model']}: {summary['eval_split']} denoising loss {summary['eval_loss']:.4f} after "
            f"{summary['global_step']} steps ({summary['train_runtime_seconds']:.0f} s, {summary['num_processes']} "
            f"process(es)) → {output_dir} ({summary['pipeline']}; samples in {output_dir}/samples/)")


# Registered as the "diffusion" training family by `hfcifar/__init__.py` (lazily: diffusers loads on first use).
DIFFUSION_FAMILY = TrainingFamily(
    name="diffusion",
    description="diffusion UNets and pipeline folders (diffusers)",
    train=train_diffusion,
    arguments_class=DiffusionTrainingArguments,
    default_recipe="ddpm-quick",
    recognizes=_is_diffusion_model,
    presets=list_unets,
    describe=_describe,
    options_class=LatentDiffusionArguments,
    trainer_class=DiffusionTrainer,
    listing_order=10,
)
