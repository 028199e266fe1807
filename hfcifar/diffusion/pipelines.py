"""CIFAR-10 samplers as diffusers `DiffusionPipeline`s: unconditional, class-conditional with classifier-free guidance,
and latent (a VAE around the UNet).

Each `__call__` is the reverse process in a few lines: noise → `scheduler.set_timesteps` → for every timestep, the
model's prediction → `scheduler.step(...).prev_sample` → images. Any diffusers scheduler works (DDPM = ancestral
sampling of Ho et al. 2020; DDIM with `eta` of Song et al. 2021; DPM-Solver; hfcifar's `USFScheduler`), since the
pipelines only speak the `SchedulerMixin` protocol.

Arguments follow diffusers' order: the condition first (`DiTPipeline(class_labels, guidance_scale, generator,
num_inference_steps, output_type, return_dict)`), then the batch size, then `DDPMPipeline(batch_size, generator,
num_inference_steps, output_type, return_dict)`; the options diffusers' pipelines have no slot for (`latents`, `eta`,
`callback_on_step_end`) come after `num_inference_steps`. Every pipeline that can condition on classes returns a
[`ClassConditionalPipelineOutput`] (`images`, `class_labels`).

A saved pipeline folder loads where hfcifar is not installed, as diffusers' custom pipelines do: `save_pretrained`
copies this module into the folder as `pipeline_cifar.py`, and each component class that diffusers cannot import
itself (an alias-free UNet, `USFScheduler`) as its own module into the component's folder, and `model_index.json`
names them (`"_class_name": ["pipeline_cifar", "CifarClassConditionalPipeline"]`, `"unet":
["modeling_alias_free_unet", "AliasFreeUNet2DModel"]`), so `DiffusionPipeline.from_pretrained(folder,
trust_remote_code=True)` samples exactly as here. An unconditional pipeline with nothing custom is saved as
diffusers' own `DDPMPipeline` (the same samples for the same generator), which needs no remote code at all. Hence
this module imports torch, numpy, PIL and diffusers only, and nothing of hfcifar. Loading such a folder into one of
these classes (`CifarDDPMPipeline.from_pretrained`) uses the class itself, and, where hfcifar is installed, its
registered component classes instead of the shipped copies (`CifarSamplingMixin.installed_component_class`).
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import PIL.Image
import torch
from diffusers import AutoencoderKL, DiffusionPipeline, ImagePipelineOutput, SchedulerMixin, UNet2DModel
from diffusers import pipelines as diffusers_pipelines
from diffusers.pipelines.pipeline_loading_utils import LOADABLE_CLASSES
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

StepCallback = Callable[["DiffusionPipeline", int, torch.Tensor, dict], dict]


@dataclass
class ClassConditionalPipelineOutput(BaseOutput):
    """Output of the class-conditional pipelines.

    Args:
        images (`list[PIL.Image.Image]`, `np.ndarray` or `torch.Tensor`): the samples, in [0, 1] (or PIL images).
        class_labels (`torch.Tensor`): the class each sample was conditioned on; `None` for an unconditional UNet in
            [`CifarLatentDiffusionPipeline`].
    """

    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor
    class_labels: torch.Tensor | None = None


def _default_batch_size(batch_size: int | None, class_labels, conditional: bool) -> int:
    """An explicit `batch_size`; else one image per label; else a balanced batch of 10 (conditional) or 16."""
    if batch_size is not None:
        return batch_size
    if class_labels is not None:
        return int(torch.as_tensor(class_labels).numel())
    return 10 if conditional else 16


def _as_class_labels(class_labels, batch_size: int, num_classes: int, device) -> torch.Tensor:
    if class_labels is None:  # a balanced batch: 0, 1, …, 9, 0, 1, …
        class_labels = torch.arange(batch_size) % num_classes
    labels = torch.as_tensor(class_labels, dtype=torch.long).reshape(-1)
    if labels.numel() == 1 and batch_size > 1:
        labels = labels.expand(batch_size)
    if labels.numel() != batch_size:
        raise ValueError(f"Got {labels.numel()} class_labels for batch_size={batch_size}; pass one label or one per sample.")
    if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        raise ValueError(f"class_labels must lie in [0, {num_classes - 1}] (index {num_classes} is the null class); "
                         f"got values in [{int(labels.min())}, {int(labels.max())}].")
    return labels.to(device)


# ------------------------------------------------------------------------------------------- the folder as code

#: The file name this module is saved under in a pipeline folder (`model_index.json` names it with the class).
PIPELINE_MODULE = "pipeline_cifar"
#: Schedulers with which diffusers' `DDPMPipeline` samples exactly as [`CifarDDPMPipeline`]: x_T scaled by
#: `init_noise_sigma` = 1, an identity `scale_model_input`, and `step(..., generator=…)` with DDIM's default η = 0.
DDPM_PIPELINE_SCHEDULERS = ("DDPMScheduler", "DDIMScheduler")


def travels_by_name(cls: type) -> bool:
    """Whether diffusers imports `cls` itself (a diffusers or transformers class), so a folder names it and ships no
    code for it."""
    return cls.__module__.split(".")[0] in LOADABLE_CLASSES


def is_shipped_component(entry) -> bool:
    """Whether a `model_index.json` component entry `[library, class]` names a module that is not a library diffusers
    loads from (a file shipped in the component's folder, or a module path of the package that saved it)."""
    return (isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[0], str)
            and entry[0] not in LOADABLE_CLASSES and not hasattr(diffusers_pipelines, entry[0]))


def ship_module(cls: type, folder: Path, stem: str | None = None) -> str:
    """Copy the module defining `cls` into `folder` (as `stem.py`; default its own name) and return the stem.

    The file travels alone — diffusers fetches one code file per weight folder and runs it as `trust_remote_code` —
    so it must not import its own package or siblings; such a file is refused with the reason.
    """
    source = Path(inspect.getsourcefile(cls))
    text = source.read_text()
    package = cls.__module__.split(".")[0]
    imported = set(re.findall(r"^\s*from\s+(\.\S*)\s+import", text, flags=re.MULTILINE))  # diffusers' own rule
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names if alias.name.split(".")[0] == package}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module.split(".")[0] == package:
            imported.add(node.module)
    if imported:
        raise ValueError(f"{cls.__name__} cannot travel with a saved pipeline: {source.name} imports "
                         f"{', '.join(sorted(imported))}. A module shipped as a pipeline folder's code must be one "
                         "self-contained file (torch, numpy, diffusers, …); move what it imports into it.")
    stem = stem or source.stem
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, folder / f"{stem}.py")
    return stem


class CifarSamplingMixin:
    """The reverse-process loop shared by hfcifar's pipelines (a mixin of `DiffusionPipeline` subclasses), and the
    saving and loading of their folders as code (see the module docstring)."""

    #: The diffusers pipeline this class saves as when nothing in it is custom (same samples); `None`: saved as code.
    diffusers_class: ClassVar[str | None] = None
    #: `class name -> class` for components a folder ships as code, where the package that saved the folder is
    #: installed (hfcifar sets its `component_class`): loading into these classes then uses the installed classes,
    #: not the folder's copies, and needs no `trust_remote_code`. `None` (this module running as a folder's remote
    #: code): diffusers loads the shipped files.
    installed_component_class: ClassVar[Callable[[str], type] | None] = None

    def to_json_file(self, json_file_path) -> None:
        """Write `model_index.json` naming the code that loads this pipeline without hfcifar, and copy that code
        beside it. `save_pretrained` writes the index last — after the components' folders, before any upload — so
        the code lands in the folder that is saved (and pushed)."""
        folder = Path(json_file_path).parent
        index = json.loads(self.to_json_string())
        index.update(self._code_entries(folder))
        Path(json_file_path).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")

    def _code_entries(self, folder: Path) -> dict:
        entries = {}
        for name, entry in self.config.items():
            component = getattr(self, name, None) if not name.startswith("_") else None
            if isinstance(entry, (list, tuple)) and component is not None and not travels_by_name(type(component)):
                entries[name] = [ship_module(type(component), folder / name), type(component).__name__]
        if not entries and type(self).__dict__.get("diffusers_class") and self._samples_as_diffusers():
            entries["_class_name"] = type(self).diffusers_class
        else:
            entries["_class_name"] = [ship_module(type(self), folder, PIPELINE_MODULE), type(self).__name__]
        return entries

    def _samples_as_diffusers(self) -> bool:
        return False

    @classmethod
    def _dict_from_json_file(cls, json_file):
        # A pipeline saved as code (`["pipeline_cifar", "CifarDDPMPipeline"]`) loads into this class itself, not into
        # a fresh copy of the shipped file (diffusers would import it as remote code).
        config = super()._dict_from_json_file(json_file)
        if isinstance(config.get("_class_name"), (list, tuple)):
            config["_class_name"] = config["_class_name"][1]
        return config

    @classmethod
    def load_config(cls, *args, **kwargs):
        """`ConfigMixin.load_config`; where `installed_component_class` is set, the components a folder ships as code
        (or names by an hfcifar module path, as older folders do) are pointed at the installed classes, so that
        `from_pretrained` builds those and needs no `trust_remote_code`."""
        loaded = super().load_config(*args, **kwargs)
        config = loaded[0] if isinstance(loaded, tuple) else loaded
        resolve = cls.installed_component_class
        for name, entry in list(config.items()):
            if resolve is None or name.startswith("_") or not is_shipped_component(entry):
                continue
            try:
                component = resolve(entry[1])
            except ValueError:  # not installed here: diffusers loads the shipped file (with trust_remote_code)
                continue
            config[name] = [component.__module__, entry[1]]
        return loaded

    def _initial_noise(self, batch_size: int, generator, latents: torch.Tensor | None) -> torch.Tensor:
        if latents is None:
            latents = randn_tensor(self._image_shape(batch_size), generator=generator, device=self._execution_device,
                                   dtype=getattr(self.unet, "dtype", torch.float32))
        elif latents.ndim != 4 or latents.shape[0] != batch_size:
            raise ValueError(f"latents must be a (batch_size={batch_size}, channels, height, width) tensor; "
                             f"got shape {tuple(latents.shape)}.")
        else:
            latents = latents.to(device=self._execution_device)
        return latents * self.scheduler.init_noise_sigma

    def _extra_step_kwargs(self, eta: float, generator) -> dict:
        # Schedulers differ in what `step` accepts (only DDIM has η; deterministic solvers take no generator).
        accepted = set(inspect.signature(self.scheduler.step).parameters)
        extra = {}
        if "eta" in accepted:
            extra["eta"] = eta
        if "generator" in accepted:
            extra["generator"] = generator
        return extra

    def model_prediction(self, sample: torch.Tensor, t, class_labels: torch.Tensor | None = None,
                         guidance_scale: float = 1.0) -> torch.Tensor:
        """The model output at `t`; with class labels and `guidance_scale` ≠ 1, classifier-free guidance:
        ε̃ = ε(x, ∅) + w (ε(x, c) − ε(x, ∅)) (Ho & Salimans 2022, Eq. 6 written with w = 1 + their w)."""
        if class_labels is None:
            return self.unet(sample, t).sample
        if guidance_scale == 1.0:  # exactly the conditional model, one evaluation
            return self.unet(sample, t, class_labels=class_labels).sample
        null = torch.full_like(class_labels, self.unet.config.num_class_embeds - 1)
        both = self.unet(torch.cat([sample, sample]), t, class_labels=torch.cat([class_labels, null])).sample
        conditional, unconditional = both.chunk(2)
        return unconditional + guidance_scale * (conditional - unconditional)

    def denoise(self, latents: torch.Tensor, num_inference_steps: int, eta: float = 0.0, generator=None,
                class_labels: torch.Tensor | None = None, guidance_scale: float = 1.0,
                callback_on_step_end: StepCallback | None = None) -> torch.Tensor:
        """Run the reverse process from `latents` = x_T to x_0 with the pipeline's scheduler."""
        self.scheduler.set_timesteps(num_inference_steps, device=latents.device)
        extra = self._extra_step_kwargs(eta, generator)
        for i, t in enumerate(self.progress_bar(self.scheduler.timesteps)):
            model_input = self.scheduler.scale_model_input(latents, t)
            output = self.model_prediction(model_input, t, class_labels, guidance_scale)
            latents = self.scheduler.step(output, t, latents, **extra).prev_sample
            if callback_on_step_end is not None:
                latents = callback_on_step_end(self, i, t, {"latents": latents}).get("latents", latents)
        return latents

    def postprocess(self, images: torch.Tensor, output_type: str):
        """[-1, 1] model space → [0, 1]; `"pt"` tensors N×3×H×W, `"np"` arrays N×H×W×3, `"pil"` images."""
        if output_type not in ("pt", "np", "pil"):
            raise ValueError(f"output_type must be 'pil', 'np' or 'pt'; got {output_type!r}.")
        images = (images / 2 + 0.5).clamp(0, 1)
        if output_type == "pt":
            return images
        images = images.cpu().permute(0, 2, 3, 1).float().numpy()
        return self.numpy_to_pil(images) if output_type == "pil" else images

    def _image_shape(self, batch_size: int) -> tuple:
        size = self.unet.config.sample_size
        size = (size, size) if isinstance(size, int) else tuple(size)
        return (batch_size, self.unet.config.in_channels, *size)


class CifarDDPMPipeline(CifarSamplingMixin, DiffusionPipeline):
    """Unconditional image generation with a CIFAR-10 UNet and any scheduler.

    Args:
        unet ([`UNet2DModel`]): the noise (or v / x₀) predictor.
        scheduler ([`SchedulerMixin`]): e.g. [`DDPMScheduler`] (1000-step ancestral sampling), [`DDIMScheduler`].

    Saved with a plain `UNet2DModel` and a DDPM or DDIM scheduler, the folder is diffusers' own `DDPMPipeline` (which
    samples the same images for the same generator); otherwise it carries this module as code.

    Examples:

    ```python
    >>> from diffusers import DDIMScheduler
    >>> from hfcifar.diffusion import CifarDDPMPipeline
    >>> pipe = CifarDDPMPipeline.from_pretrained("runs/ddpm-small")
    >>> pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    >>> images = pipe(batch_size=16, num_inference_steps=50, generator=torch.manual_seed(0)).images
    ```
    """

    model_cpu_offload_seq = "unet"
    diffusers_class = "DDPMPipeline"

    def __init__(self, unet: UNet2DModel, scheduler: SchedulerMixin):
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler)

    def _samples_as_diffusers(self) -> bool:
        # diffusers' DDPMPipeline draws x_T and steps exactly as `__call__` here for a plain UNet and these schedulers
        return (type(self.unet) is UNet2DModel and travels_by_name(type(self.scheduler))
                and type(self.scheduler).__name__ in DDPM_PIPELINE_SCHEDULERS)

    @torch.no_grad()
    def __call__(
        self,
        batch_size: int = 16,
        generator: torch.Generator | list[torch.Generator] | None = None,
        num_inference_steps: int = 1000,
        latents: torch.Tensor | None = None,
        eta: float = 0.0,
        output_type: str = "pil",
        callback_on_step_end: StepCallback | None = None,
        return_dict: bool = True,
    ) -> ImagePipelineOutput | tuple:
        """Sample `batch_size` images.

        Args:
            batch_size (`int`, defaults to 16): number of images.
            generator (`torch.Generator`, *optional*): makes sampling deterministic.
            num_inference_steps (`int`, defaults to 1000): denoising steps = model evaluations (NFE) for one-step
                solvers; DDPM is trained for 1000, DDIM reaches comparable samples in 50–100.
            latents (`torch.Tensor`, *optional*): the starting noise x_T (batch, 3, 32, 32) instead of a fresh draw.
            eta (`float`, defaults to 0.0): DDIM's η (0 = deterministic ODE sampler, 1 = DDPM-like); ignored by
                schedulers without it.
            output_type (`str`, defaults to `"pil"`): `"pil"`, `"np"` (N×H×W×3 in [0, 1]) or `"pt"` (N×3×H×W in [0, 1]).
            callback_on_step_end (`Callable`, *optional*): `f(pipe, step_index, t, {"latents": x_t}) -> {"latents": x_t'}`
                after every step (e.g. rotation-controlled sampling).
            return_dict (`bool`, defaults to `True`): return an [`ImagePipelineOutput`] rather than a tuple.
        """
        latents = self._initial_noise(batch_size, generator, latents)
        images = self.denoise(latents, num_inference_steps, eta, generator, callback_on_step_end=callback_on_step_end)
        images = self.postprocess(images, output_type)
        self.maybe_free_model_hooks()
        return ImagePipelineOutput(images=images) if return_dict else (images,)


class CifarClassConditionalPipeline(CifarSamplingMixin, DiffusionPipeline):
    """Class-conditional generation with classifier-free guidance (Ho & Salimans 2022).

    The UNet is a class-conditional `UNet2DModel` (`num_class_embeds = num_classes + 1`; the last class is the null
    class ∅ it was trained on with label dropout). `guidance_scale` w mixes ε(x, ∅) + w (ε(x, c) − ε(x, ∅)):
    w = 1 is the plain conditional model, w > 1 trades diversity for class fidelity.

    Examples:

    ```python
    >>> pipe = CifarClassConditionalPipeline.from_pretrained("runs/ddpm-small-cfg")
    >>> out = pipe(class_labels=[3] * 8, guidance_scale=3.0, num_inference_steps=50, generator=torch.manual_seed(0))
    >>> out.images, out.class_labels
    ```
    """

    model_cpu_offload_seq = "unet"

    def __init__(self, unet: UNet2DModel, scheduler: SchedulerMixin):
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler)

    @property
    def num_classes(self) -> int:
        rows = getattr(self.unet.config, "num_class_embeds", None)
        if rows is None:
            raise ValueError("This UNet has no class embedding (num_class_embeds is None): use CifarDDPMPipeline, "
                             "or create a class-conditional UNet (e.g. create_unet('ddpm-small-cfg')).")
        return int(rows) - 1

    @torch.no_grad()
    def __call__(
        self,
        class_labels: int | list[int] | torch.Tensor | None = None,
        batch_size: int | None = None,
        guidance_scale: float = 1.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        num_inference_steps: int = 1000,
        latents: torch.Tensor | None = None,
        eta: float = 0.0,
        output_type: str = "pil",
        callback_on_step_end: StepCallback | None = None,
        return_dict: bool = True,
    ) -> ClassConditionalPipelineOutput | tuple:
        """Sample images of the given classes.

        Args:
            class_labels (`int`, `list[int]` or `torch.Tensor`, *optional*): one class per image (or one for all);
                default: a balanced batch 0, 1, …, 9, 0, … of `batch_size` images.
            batch_size (`int`, *optional*): number of images; defaults to the number of labels (or 10).
            guidance_scale (`float`, defaults to 1.0): classifier-free guidance weight w (1 = no guidance; two model
                evaluations per step when w ≠ 1).
            generator, num_inference_steps, latents, eta, output_type, callback_on_step_end, return_dict: as in
                [`CifarDDPMPipeline.__call__`].
        """
        batch_size = _default_batch_size(batch_size, class_labels, conditional=True)
        labels = _as_class_labels(class_labels, batch_size, self.num_classes, self._execution_device)
        latents = self._initial_noise(batch_size, generator, latents)
        images = self.denoise(latents, num_inference_steps, eta, generator, labels, guidance_scale, callback_on_step_end)
        images = self.postprocess(images, output_type)
        self.maybe_free_model_hooks()
        return ClassConditionalPipelineOutput(images=images, class_labels=labels.cpu()) if return_dict else (images, labels.cpu())


class CifarLatentDiffusionPipeline(CifarSamplingMixin, DiffusionPipeline):
    """Latent diffusion (Rombach et al. 2022): the UNet denoises the latents of a diffusers [`AutoencoderKL`], and the
    VAE decodes the final latents to images. The UNet may be unconditional or class-conditional (then
    `class_labels`/`guidance_scale` apply as in [`CifarClassConditionalPipeline`]).

    Args:
        vae ([`AutoencoderKL`]): encoder/decoder; latents are scaled by `vae.config.scaling_factor`.
        unet ([`UNet2DModel`]): works on `vae.config.latent_channels` channels at the latent resolution.
        scheduler ([`SchedulerMixin`]).
    """

    model_cpu_offload_seq = "unet->vae"

    def __init__(self, vae: AutoencoderKL, unet: UNet2DModel, scheduler: SchedulerMixin):
        super().__init__()
        self.register_modules(vae=vae, unet=unet, scheduler=scheduler)

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] → scaled latents (the posterior mean, as the UNet was trained on)."""
        posterior = self.vae.encode(images * 2 - 1).latent_dist
        return posterior.mean * self.vae.config.scaling_factor

    @torch.no_grad()
    def __call__(
        self,
        class_labels: int | list[int] | torch.Tensor | None = None,
        batch_size: int | None = None,
        guidance_scale: float = 1.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        num_inference_steps: int = 1000,
        latents: torch.Tensor | None = None,
        eta: float = 0.0,
        output_type: str = "pil",
        callback_on_step_end: StepCallback | None = None,
        return_dict: bool = True,
    ) -> ClassConditionalPipelineOutput | tuple:
        """Sample images through the latent space; arguments and output as in
        [`CifarClassConditionalPipeline.__call__`]. `class_labels` and `guidance_scale` need a class-conditional UNet;
        with an unconditional one `batch_size` defaults to 16 and the output's `class_labels` is `None`."""
        conditional = getattr(self.unet.config, "num_class_embeds", None) is not None
        if class_labels is not None and not conditional:
            raise ValueError("class_labels were given but this UNet is unconditional (num_class_embeds is None).")
        batch_size = _default_batch_size(batch_size, class_labels, conditional)
        labels = None
        if conditional:
            labels = _as_class_labels(class_labels, batch_size, self.unet.config.num_class_embeds - 1, self._execution_device)
        latents = self._initial_noise(batch_size, generator, latents)
        latents = self.denoise(latents, num_inference_steps, eta, generator, labels, guidance_scale, callback_on_step_end)
        images = self.vae.decode(latents / self.vae.config.scaling_factor).sample
        images = self.postprocess(images, output_type)
        self.maybe_free_model_hooks()
        labels = None if labels is None else labels.cpu()
        if not return_dict:
            return (images,) if labels is None else (images, labels)
        return ClassConditionalPipelineOutput(images=images, class_labels=labels)
