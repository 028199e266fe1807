"""Alias-free resampling for diffusion UNets and rotation-controlled sampling (METHODS.md row 42, alias-free-diffusion).

Paper: Md Fahim Anjum, "Advancing Diffusion Models: Alias-Free Resampling and Enhanced Rotational Equivariance",
arXiv:2411.09174 (2024); code: github.com/MDFahimAnjum/AliasFree-Diffusion-Models-PyTorch. It follows StyleGAN3
(Karras et al. 2021, "Alias-Free Generative Adversarial Networks").

What lives where:

- `resampling.py`: the paper's alias-free resampling (Config B) for diffusers UNets: `kaiser_lowpass_filter`
  (Kaiser-windowed jinc/sinc low-pass), `AliasFreeDownsample2D` / `AliasFreeUpsample2D` (drop-in subclasses of
  diffusers' `Downsample2D` / `Upsample2D`, same weights, no new parameters) and `swap_resampling(unet)`.
- `modeling_alias_free_unet.py`: `AliasFreeUNet2DModel`, a `UNet2DModel` subclass whose config carries the filter
  settings (`save_pretrained` / `from_pretrained` / `DiffusionPipeline` folders round-trip it).
- `equivariance.py`: alias-free `rotate` (band-limited Fourier interpolation), `rotational_equivariance_error`
  (normalized MSE and StyleGAN3's EQ-R PSNR) and `RotationControl`, the paper's rotation-controlled reverse
  process as a diffusers `callback_on_step_end`.
- `claim.py`: `hfcifar reproduce alias-free-diffusion` — the alias-free UNet's denoiser has a lower rotational
  equivariance error than the standard UNet's.
"""

from .equivariance import (
    EquivarianceResult,
    RotationControl,
    circular_mask,
    disc_lowpass,
    rotate,
    rotational_equivariance_error,
)
from .modeling_alias_free_unet import RESAMPLING_TYPES, AliasFreeUNet2DModel
from .resampling import (
    DEFAULT_FILTER,
    AliasFreeDownsample2D,
    AliasFreeUpsample2D,
    count_resamplers,
    kaiser_lowpass_filter,
    swap_resampling,
)

__all__ = [
    "DEFAULT_FILTER",
    "RESAMPLING_TYPES",
    "AliasFreeDownsample2D",
    "AliasFreeUNet2DModel",
    "AliasFreeUpsample2D",
    "EquivarianceResult",
    "RotationControl",
    "circular_mask",
    "count_resamplers",
    "disc_lowpass",
    "kaiser_lowpass_filter",
    "rotate",
    "rotational_equivariance_error",
    "swap_resampling",
]
