"""The diffusion family: CIFAR-10 UNets, samplers and training on diffusers.

- `unets.py`      named `UNet2DModel` presets (`ddpm-cifar10` = google/ddpm-cifar10-32's architecture, `ddpm-small`,
                  `ddpm-tiny`; `-cfg` = class-conditional with a null class) — `create_unet(name)`.
- `pipelines.py`  `CifarDDPMPipeline` (unconditional), `CifarClassConditionalPipeline` (classifier-free guidance),
                  `CifarLatentDiffusionPipeline` (an `AutoencoderKL` around the UNet): `DiffusionPipeline`s that run
                  any scheduler (DDPM, DDIM, DPM-Solver, hfcifar's USF). Their saved folders carry this module (and
                  custom components' modules) as remote code, so they load where hfcifar is not installed.
- `trainer.py`    `DiffusionTrainer` (a `CifarTrainer`: DDPM loss, label dropout, EMA, sample grids) and
                  `make_noise_scheduler` (linear, cosine, scaled-linear, sigmoid β schedules).
- `run.py`        `train_diffusion`: `hfcifar train ddpm-small …` (`vae=DIR` trains on an autoencoder's latents).
- `loading.py`    `load_pipeline`, `pipeline_class`, `load_unet`, `component_class` (the class a saved folder
                  names, from the `"diffusion component"` registry, which methods fill with `provide`) and
                  `SAMPLERS` (`set_sampler`).
- `autoencoder.py` the first stage of latent diffusion: `AutoencoderKL` presets, `AutoencoderTrainer`, `train_vae`
                  (which measures the latents' `scaling_factor`).

Methods built on it live in `hfcifar/methods/` (ddpm_ddim_cfg, usf_s3, alias_free_diffusion, …).
"""

from .autoencoder import VAE_PRESETS, AutoencoderObjective, AutoencoderTrainer, AutoencoderTrainingArguments, create_vae, train_vae
from .pipelines import (
    CifarClassConditionalPipeline,
    CifarDDPMPipeline,
    CifarLatentDiffusionPipeline,
    CifarSamplingMixin,
    ClassConditionalPipelineOutput,
)
from .loading import (
    COMPONENTS,
    DEFAULT_SAMPLER,
    SAMPLERS,
    component_class,
    load_pipeline,
    load_unet,
    pipeline_class,
    set_sampler,
)
from .run import train_diffusion
from .trainer import (
    NOISE_SCHEDULES,
    PREDICTION_TYPES,
    DiffusionTrainer,
    DiffusionTrainingArguments,
    make_noise_scheduler,
)
from .unets import NUM_CLASSES, UNET_PRESETS, create_unet, is_unet_preset, list_unets, null_class, unet_config

__all__ = [
    "AutoencoderObjective",
    "AutoencoderTrainer",
    "AutoencoderTrainingArguments",
    "VAE_PRESETS",
    "create_vae",
    "train_vae",
    "COMPONENTS",
    "DEFAULT_SAMPLER",
    "SAMPLERS",
    "component_class",
    "load_pipeline",
    "pipeline_class",
    "set_sampler",
    "CifarClassConditionalPipeline",
    "CifarDDPMPipeline",
    "CifarLatentDiffusionPipeline",
    "CifarSamplingMixin",
    "ClassConditionalPipelineOutput",
    "DiffusionTrainer",
    "DiffusionTrainingArguments",
    "NOISE_SCHEDULES",
    "NUM_CLASSES",
    "PREDICTION_TYPES",
    "UNET_PRESETS",
    "create_unet",
    "is_unet_preset",
    "list_unets",
    "load_unet",
    "make_noise_scheduler",
    "null_class",
    "train_diffusion",
    "unet_config",
]
