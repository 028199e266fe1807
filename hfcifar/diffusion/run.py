"""`train_diffusion`: the code path of `hfcifar train ddpm-…` (and `accelerate launch -m hfcifar.train ddpm-…`)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from diffusers import UNet2DModel

from ..data import load_train_and_eval, resolve_source
from ..training.recipes import default_recipe
from ..training.run import _check_output_dir, _parameters_in_sync, recipe_settings, write_summary
from .loading import load_unet
from .trainer import DiffusionTrainer, DiffusionTrainingArguments
from .unets import is_unet_preset


def train_diffusion(
    model: str | UNet2DModel = "ddpm-small",
    dataset: str | None = None,
    output_dir: str | os.PathLike = "runs/ddpm-small",
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
    vae=None,
    trainer_class: type[DiffusionTrainer] = DiffusionTrainer,
    args_class: type[DiffusionTrainingArguments] = DiffusionTrainingArguments,
    **training_overrides,
) -> dict:
    """Train a denoising diffusion UNet on CIFAR-10 and save a `DiffusionPipeline` folder in `output_dir`.

    Args:
        model: a UNet preset (`hfcifar.diffusion.list_unets()`, e.g. `"ddpm-small"`, `"ddpm-small-cfg"`), a folder
            to continue from, or a `UNet2DModel` instance (e.g. an alias-free UNet).
        dataset, eval_dataset, validation_size, split_seed, resume, overwrite, seed: as in
            [`hfcifar.training.train_classifier`].
        recipe: a name from `hfcifar.training.RECIPES` (`"ddpm"` = the paper's settings, `"ddpm-quick"` = CPU minutes);
            defaults to the preset's.
        epochs, max_steps, time_budget_minutes, batch_size, learning_rate: override the recipe.
        vae: a diffusers `AutoencoderKL` (or its folder, e.g. from `train_vae`) to train a latent diffusion model; a
            UNet preset is then built for the latents' channels and size.
        trainer_class, args_class: a method's `DiffusionTrainer` subclass and its arguments.
        training_overrides: any other field of `args_class` (`noise_schedule`, `prediction_type`, `label_dropout`,
            `ema_decay`, `sample_every_steps`, …).

    Returns:
        The summary also written to `output_dir/train_summary.json`.
    """
    output_dir = Path(output_dir)
    checkpoint = _check_output_dir(output_dir, overwrite, resume)
    source = resolve_source(dataset)
    train_split, held_out, data_info = load_train_and_eval(source, eval_dataset, validation_size=validation_size, seed=split_seed)
    overrides = dict(model_overrides or {})
    if vae is not None:
        from diffusers import AutoencoderKL

        from .autoencoder import latent_shape

        vae = vae if isinstance(vae, torch.nn.Module) else AutoencoderKL.from_pretrained(vae)
        if is_unet_preset(str(model)):  # a preset works on the latents' channels and size
            channels, side = latent_shape(vae)
            overrides = {"in_channels": channels, "out_channels": channels, "sample_size": side, **overrides}
    unet = load_unet(model, **overrides)
    name = model if isinstance(model, str) else type(model).__name__
    recipe = recipe or default_recipe(name if is_unet_preset(str(name)) else "ddpm-small")
    settings = recipe_settings(recipe, epochs=epochs, max_steps=max_steps, time_budget_minutes=time_budget_minutes,
                               batch_size=batch_size, learning_rate=learning_rate, overrides=training_overrides)
    if not (issubclass(trainer_class, DiffusionTrainer) and issubclass(args_class, DiffusionTrainingArguments)):
        raise TypeError("trainer_class must subclass DiffusionTrainer and args_class DiffusionTrainingArguments.")
    args = args_class(output_dir=str(output_dir), seed=seed, **settings)
    trainer = trainer_class(model=unet, args=args, train_dataset=train_split, eval_dataset=held_out, vae=vae)

    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    train_seconds = time.perf_counter() - start
    trainer.save_model(str(output_dir))  # the pipeline folder, EMA weights
    metrics = trainer.evaluate()
    summary = {
        "model": name,
        "model_type": "diffusion",
        "pipeline": trainer.pipeline_class.__name__,
        "trainer": trainer_class.__name__,
        "num_parameters": sum(p.numel() for p in unet.parameters()),
        "recipe": recipe,
        "training_arguments": {k: getattr(args, k) for k in sorted(settings)},
        "dataset": source,
        "validation_size": validation_size,
        "split_seed": split_seed,
        "num_train_examples": len(trainer.train_dataset),
        "eval_dataset": data_info["eval_dataset"],
        "eval_split": data_info["eval_split"],
        "num_eval_examples": len(trainer.eval_dataset) if trainer.eval_dataset is not None else None,
        "eval_loss": metrics.get("eval_loss"),
        "global_step": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "train_loss": result.training_loss,
        "train_runtime_seconds": train_seconds,
        "stopped_by_time_budget": trainer.stopped_by_time_budget,
        "resumed_from": checkpoint,
        "num_processes": trainer.accelerator.num_processes,
        "parameters_in_sync": _parameters_in_sync(trainer),
        "seed": seed,
        "device": str(args.device),
        "torch_version": torch.__version__,
        **trainer.method_summary(),
    }
    write_summary(trainer, output_dir, summary)
    return summary
