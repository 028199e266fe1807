"""Loading saved diffusion models and choosing their sampler.

- `component_class(name)`: the class a saved folder names (`_class_name` of `model_index.json` or of a component's
  `config.json`), from the `COMPONENTS` registry (kind `"diffusion component"`), else from diffusers. hfcifar's
  diffusion family registers its own pipelines here; a method registers its components (a scheduler, an alias-free
  UNet) with `hfcifar.registry.provide("diffusion component", name, "module:attr")`, so this module never names a
  method.
- `load_pipeline(folder)`: a saved pipeline folder → its hfcifar `DiffusionPipeline` (`pipeline_class(index)`): a
  folder saved as code (`"_class_name": ["pipeline_cifar", "CifarClassConditionalPipeline"]`), as diffusers'
  `DDPMPipeline` (→ `CifarDDPMPipeline`, which samples the same) or by an older hfcifar (a plain class name) alike.
  Components shipped as code load as the registered classes (`CifarSamplingMixin.installed_component_class` is
  `component_class`), so hfcifar never needs `trust_remote_code` for its own folders.
- `load_unet(model)`: a UNet preset → a fresh UNet; a pipeline or UNet folder → its weights (its own class).
- `SAMPLERS` (kind `"sampler"`): a name → a function that installs that scheduler on a pipeline (`set_sampler`);
  `"saved"` keeps the pipeline's own.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import torch
from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, UNet2DModel

from ..registry import Registry
from .pipelines import (
    CifarClassConditionalPipeline,
    CifarDDPMPipeline,
    CifarLatentDiffusionPipeline,
    CifarSamplingMixin,
)
from .unets import create_unet, is_unet_preset, list_unets

PIPELINE_INDEX = "model_index.json"

#: Classes a saved hfcifar folder may name, by class name. Names not registered fall back to diffusers' own classes.
COMPONENTS: Registry[type] = Registry(
    "diffusion component",
    hint="Register the class with `hfcifar.registry.provide('diffusion component', name, 'module:attr')`, or name a "
         "diffusers class.",
)
for _cls in (CifarDDPMPipeline, CifarClassConditionalPipeline, CifarLatentDiffusionPipeline, UNet2DModel,
             AutoencoderKL):
    COMPONENTS.register(_cls.__name__, _cls)
del _cls


def component_class(name: str) -> type:
    """The class saved under `name` (a `_class_name`): a registered diffusion component, else a diffusers class.

    Example:

    ```python
    >>> component_class("CifarDDPMPipeline")        # hfcifar's
    >>> component_class("DDPMPipeline")             # diffusers' (e.g. google/ddpm-cifar10-32)
    >>> component_class("AliasFreeUNet2DModel")     # provided by hfcifar.methods.alias_free_diffusion
    ```
    """
    if name in COMPONENTS:
        return COMPONENTS.get(name)
    import diffusers

    cls = getattr(diffusers, name, None) if not name.startswith("_") else None
    if isinstance(cls, type):
        return cls
    return COMPONENTS.get(name)  # raises: unknown, with the registered names


# hfcifar's pipelines load the components their folders ship as code with the registered classes.
CifarSamplingMixin.installed_component_class = staticmethod(component_class)


def pipeline_class(index: dict) -> type:
    """The class that loads a saved pipeline, from its `model_index.json` (a dict): the pipeline class of a folder
    saved as code (`["pipeline_cifar", "CifarDDPMPipeline"]`), `CifarDDPMPipeline` for diffusers' `DDPMPipeline`
    (the same samples, and hfcifar's options: `latents`, `eta`, `output_type="pt"`, callbacks), else `component_class`
    of the name."""
    name = index.get("_class_name")
    if isinstance(name, (list, tuple)):
        name = name[1]
    if name == CifarDDPMPipeline.diffusers_class:
        return CifarDDPMPipeline
    return component_class(name)


def load_pipeline(pipeline_dir: str | os.PathLike):
    """A saved diffusion pipeline folder → its hfcifar `DiffusionPipeline` ([`pipeline_class`] of its
    `model_index.json`)."""
    index = Path(pipeline_dir) / PIPELINE_INDEX
    if not index.is_file():
        raise ValueError(f"{pipeline_dir} has no {PIPELINE_INDEX}: point the generator evaluation at a pipeline folder "
                         "written by `hfcifar train ddpm-…` or `DiffusionPipeline.save_pretrained`.")
    return pipeline_class(json.loads(index.read_text())).from_pretrained(pipeline_dir)


def load_unet(model: str | UNet2DModel | os.PathLike, **overrides) -> UNet2DModel:
    """A preset name → a fresh UNet; a pipeline folder (with `unet/`) or a UNet folder → its weights; an instance
    passes through."""
    if isinstance(model, torch.nn.Module):
        return model
    if is_unet_preset(str(model)):
        return create_unet(str(model), **overrides)
    path = Path(model)
    for folder, subfolder in ((path / "unet", "unet"), (path, None)):
        if (folder / "config.json").is_file():
            # the UNet's own class (e.g. the alias-free UNet): loading it as a plain UNet2DModel would drop its layers
            name = json.loads((folder / "config.json").read_text()).get("_class_name", "UNet2DModel")
            return component_class(name).from_pretrained(path, subfolder=subfolder, **overrides)
    raise ValueError(f"{model!r} is neither a diffusion UNet preset ({', '.join(list_unets())}) "
                     "nor a folder holding a UNet2DModel (a pipeline folder with unet/, or a UNet's config.json).")


# ------------------------------------------------------------------------------------------------------ samplers

#: How `evaluate_generator` samples unless told otherwise.
DEFAULT_SAMPLER = {"scheduler": "ddim", "num_inference_steps": 50}

SAMPLERS: Registry[Callable] = Registry("sampler")


def _installs(scheduler_class) -> Callable:
    def install(pipeline):
        pipeline.scheduler = scheduler_class.from_config(pipeline.scheduler.config)
        return pipeline

    install.__doc__ = f"Sample `pipeline` with a `{scheduler_class.__name__}` built from its scheduler's config."
    return install


SAMPLERS.register("ddim", _installs(DDIMScheduler))
SAMPLERS.register("ddpm", _installs(DDPMScheduler))
SAMPLERS.register("dpm-solver", _installs(DPMSolverMultistepScheduler))


@SAMPLERS.register("saved")
def _keep_saved(pipeline):
    """Sample `pipeline` with the scheduler it was saved with."""
    return pipeline


def set_sampler(pipeline, name: str):
    """Install the sampler `name` (from `SAMPLERS`) on `pipeline`, in place; returns the pipeline."""
    return SAMPLERS.get(name)(pipeline)


__all__ = [
    "COMPONENTS",
    "DEFAULT_SAMPLER",
    "PIPELINE_INDEX",
    "SAMPLERS",
    "component_class",
    "load_pipeline",
    "load_unet",
    "pipeline_class",
    "set_sampler",
]
