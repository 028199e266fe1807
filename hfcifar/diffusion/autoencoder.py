"""The first stage of latent diffusion on CIFAR-10: a diffusers `AutoencoderKL`, its presets and its trainer.

Rombach et al. (2022) train the autoencoder first (reconstruction + a small KL term toward N(0, I), §3 and App. G),
freeze it, and train the diffusion UNet on its latents scaled to unit variance (`scaling_factor`, "we rescale the
latents by the component-wise standard deviation", §4.3.2). `AutoencoderTrainer` is a `CifarTrainer` whose loss is
that objective (the adversarial and perceptual terms of the paper's VAE are left out: no pretrained LPIPS network is
available offline, and at 32×32 the L2 objective already reconstructs well); `train_vae` measures the scaling factor
on training images at the end and stores it in the config, so `train_diffusion(vae=DIR)` and
`CifarLatentDiffusionPipeline` use it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL

from ..data import to_float_images
from ..registry import Registry
from ..training.args import CifarTrainingArguments
from ..training.families import TrainingFamily
from ..training.run import TrainingRun, write_summary
from ..training.trainer import CifarTrainer
from .unets import NUM_CLASSES

_VAE_ARCHITECTURES: dict[str, dict] = {
    # 32×32×3 → 16×16×4 (f = 2): 1.3× fewer numbers than pixels, the mild compression CIFAR-sized images afford.
    "vae-small": dict(block_out_channels=(32, 64), down_block_types=("DownEncoderBlock2D",) * 2,
                      up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=16,
                      layers_per_block=1),
    # tests: the same shapes, 8/16 channels
    "vae-tiny": dict(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                     up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=4,
                     layers_per_block=1, mid_block_add_attention=False),
}

#: Named autoencoders → `AutoencoderKL` arguments.
VAE_PRESETS: Registry[dict] = Registry("autoencoder")
for _name, _arguments in _VAE_ARCHITECTURES.items():
    VAE_PRESETS.register(_name, _arguments)


def create_vae(name: str = "vae-small", **overrides) -> AutoencoderKL:
    """A randomly initialized `AutoencoderKL` of a named preset (`VAE_PRESETS`)."""
    return AutoencoderKL(**{"sample_size": 32, "scaling_factor": 1.0, **VAE_PRESETS.get(name), **overrides})


def latent_shape(vae: AutoencoderKL, image_size: int = 32) -> tuple[int, int]:
    """(channels, side) of the latents of `image_size`² images."""
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    return vae.config.latent_channels, image_size // factor


@dataclass
class AutoencoderTrainingArguments(CifarTrainingArguments):
    """[`CifarTrainingArguments`] for the first-stage autoencoder."""

    kl_weight: float = field(default=1e-6, metadata={"help": "Weight of KL(q(z|x) ‖ N(0, I)) next to the L2 reconstruction (LDM's KL-reg: ~1e-6)."})
    crop_padding: int = field(default=0, metadata={"help": "Random-crop padding (0: none)."})
    channels_last: bool = field(default=False, metadata={"help": "Channels-last memory format."})

    def __post_init__(self):
        super().__post_init__()
        if self.kl_weight < 0:
            raise ValueError(f"kl_weight must be ≥ 0; got {self.kl_weight}.")


class AutoencoderObjective(torch.nn.Module):
    """The autoencoder with its training objective as `forward`, so data parallelism (DDP hooks `forward` only)
    synchronizes the gradients of encoder and decoder: ‖x − D(z)‖² + β KL(q(z|x) ‖ N(0, I)), z ~ q(z|x)."""

    def __init__(self, vae: AutoencoderKL, kl_weight: float):
        super().__init__()
        self.vae = vae
        self.config = vae.config
        self.kl_weight = kl_weight

    def forward(self, pixel_values: torch.Tensor, labels=None, sample_posterior: bool = True) -> dict:
        x = pixel_values * 2 - 1
        posterior = self.vae.encode(x).latent_dist
        z = posterior.sample() if sample_posterior else posterior.mean
        reconstruction = self.vae.decode(z).sample
        mse = F.mse_loss(reconstruction, x)
        kl = posterior.kl().mean() / x[0].numel()  # per pixel, like the reconstruction term
        return {"loss": mse + self.kl_weight * kl, "mse": mse, "kl": kl}


class AutoencoderTrainer(CifarTrainer):
    """Trains a diffusers `AutoencoderKL` (passed as `model`) with [`AutoencoderObjective`]."""

    arguments_class = AutoencoderTrainingArguments

    def __init__(self, model: AutoencoderKL = None, args: AutoencoderTrainingArguments | None = None, **kwargs):
        if args is None:
            args = AutoencoderTrainingArguments(output_dir="hfcifar_vae")
        if not isinstance(args, AutoencoderTrainingArguments):
            raise TypeError("AutoencoderTrainer needs AutoencoderTrainingArguments.")
        if not isinstance(model, AutoencoderKL):
            raise TypeError(f"AutoencoderTrainer trains a diffusers AutoencoderKL; got {type(model).__name__}.")
        kwargs.setdefault("compute_metrics", None)
        self.vae = model
        super().__init__(model=AutoencoderObjective(model, args.kl_weight), args=args, **kwargs)

    @staticmethod
    def label_count(model) -> int:
        return NUM_CLASSES

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(inputs["pixel_values"])
        return (outputs["loss"], outputs) if return_outputs else outputs["loss"]

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self.prepare_batch(inputs, augment=False)
        with torch.no_grad():  # the posterior mean: the deterministic reconstruction error
            loss = model(inputs["pixel_values"], sample_posterior=False)["mse"]
        return loss.detach(), None, None

    @torch.no_grad()
    def measure_scaling_factor(self, num_images: int = 1024) -> float:
        """1 / std of the latents of training images (LDM §4.3.2), so the diffusion model sees unit-variance data."""
        images = self.train_dataset.images[:num_images]
        vae = self.vae.eval()
        latents = [vae.encode(to_float_images(images[i:i + 256]).to(self.args.device) * 2 - 1).latent_dist.sample()
                   for i in range(0, len(images), 256)]
        return float(1.0 / torch.cat(latents).std())

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False):
        if _internal_call:
            return super().save_model(output_dir, _internal_call=True)
        if self.is_world_process_zero():
            self.vae.save_pretrained(output_dir or self.args.output_dir)
        self.accelerator.wait_for_everyone()


def train_vae(model: str | AutoencoderKL = "vae-small", **options) -> dict:
    """Train the first-stage `AutoencoderKL` and save it (`AutoencoderKL.from_pretrained(output_dir)`), with the
    measured `scaling_factor` in its config.

    Args:
        model: a preset (`VAE_PRESETS`), an `AutoencoderKL` folder or instance.
        options: the run's parameters, as in [`hfcifar.training.train_classifier`] (`dataset`, `output_dir`,
            `recipe` — an autoencoder recipe, default `"vae-quick"` —, `resume`, `overwrite`, `max_steps`, …) and any
            field of `AutoencoderTrainingArguments` (`kl_weight`, …).
    """
    run = TrainingRun.from_options(model, **options)
    settings, args = run.arguments(AUTOENCODER_FAMILY)
    checkpoint, source, train_split, held_out, data_info = run.start()
    vae = create_vae(model, **run.model_overrides) if isinstance(model, str) and model in VAE_PRESETS else (
        model if isinstance(model, AutoencoderKL) else AutoencoderKL.from_pretrained(model, **run.model_overrides))
    trainer = AutoencoderTrainer(model=vae, args=args, train_dataset=train_split, eval_dataset=held_out)
    result, seconds = run.train(trainer, checkpoint)
    scaling_factor = trainer.measure_scaling_factor()
    vae.register_to_config(scaling_factor=scaling_factor)
    trainer.save_model(str(run.output_dir))
    metrics = trainer.evaluate()
    summary = {
        **run.summary(trainer, settings, AUTOENCODER_FAMILY, data_info, result, seconds, checkpoint),
        "model_type": "autoencoder",
        "num_parameters": sum(p.numel() for p in vae.parameters()),
        "eval_reconstruction_mse": metrics.get("eval_loss"),
        "latent_shape": list(latent_shape(vae)),
        "scaling_factor": scaling_factor,
    }
    write_summary(trainer, run.output_dir, summary)
    return summary


def _is_autoencoder(model) -> bool:
    """A VAE preset, an `AutoencoderKL` instance, or a folder whose config.json is an AutoencoderKL's."""
    if isinstance(model, torch.nn.Module):
        return isinstance(model, AutoencoderKL)
    if not isinstance(model, (str, os.PathLike)):
        return False
    if str(model) in VAE_PRESETS:
        return True
    config = Path(model) / "config.json"
    return config.is_file() and json.loads(config.read_text()).get("_class_name") == "AutoencoderKL"


def _describe(summary: dict, output_dir: str) -> str:
    return (f"{summary['model']}: {summary['eval_split']} reconstruction MSE {summary['eval_reconstruction_mse']:.4f} "
            f"(images in [-1, 1]), latents {summary['latent_shape'][0]}×{summary['latent_shape'][1]}² scaled by "
            f"{summary['scaling_factor']:.3f} → {output_dir} (use: hfcifar train ddpm-small --vae {output_dir})")


# Registered as the "autoencoder" training family by `hfcifar/__init__.py` (lazily: diffusers loads on first use).
AUTOENCODER_FAMILY = TrainingFamily(
    name="autoencoder",
    description="AutoencoderKL first stages of latent diffusion (diffusers)",
    train=train_vae,
    arguments_class=AutoencoderTrainingArguments,
    default_recipe="vae-quick",
    recognizes=_is_autoencoder,
    presets=lambda: sorted(VAE_PRESETS),
    describe=_describe,
    trainer_class=AutoencoderTrainer,
    listing_order=20,
)
