"""Alias-free resampling for diffusion UNets and rotation-controlled sampling (METHODS.md row 42, alias-free-diffusion).

Paper: Md Fahim Anjum, "Advancing Diffusion Models: Alias-Free Resampling and Enhanced Rotational Equivariance",
arXiv:2411.09174 (2024); code: github.com/MDFahimAnjum/AliasFree-Diffusion-Models-PyTorch. It follows StyleGAN3
(Karras et al. 2021, "Alias-Free Generative Adversarial Networks").

What lives where:

- `modeling_alias_free_unet.py`: the paper's alias-free resampling (Config B) for diffusers UNets —
  `kaiser_lowpass_filter` (Kaiser-windowed jinc/sinc low-pass), `AliasFreeDownsample2D` / `AliasFreeUpsample2D`
  (drop-in subclasses of diffusers' `Downsample2D` / `Upsample2D`, same weights, no new parameters),
  `swap_resampling(unet)` — and `AliasFreeUNet2DModel`, a `UNet2DModel` subclass whose config carries the filter
  settings (`save_pretrained` / `from_pretrained` / `DiffusionPipeline` folders round-trip it). One self-contained
  file: pipeline folders ship it as remote code, so they load where hfcifar is not installed.
- `equivariance.py`: alias-free `rotate` (band-limited Fourier interpolation), `rotational_equivariance_error`
  (normalized MSE and StyleGAN3's EQ-R PSNR) and `RotationControl`, the paper's rotation-controlled reverse
  process as a diffusers `callback_on_step_end`.
- `claim.py`: `hfcifar reproduce alias-free-diffusion` — the alias-free UNet's denoiser has a lower rotational
  equivariance error than the standard UNet's.
"""

from hfcifar.methods.base import Method, lazy_exports

METHOD = Method(
    number=42,
    slug="alias-free-diffusion",
    title="Advancing Diffusion Models: Alias-Free Resampling and Enhanced Rotational Equivariance",
    ship="alias-free up/down-sampling layers for the diffusion UNet; rotation-controlled sampling",
    claim="lower rotational equivariance error than the standard UNet",
    family="generative",
    citation="""@misc{anjum2024advancing,
  title={Advancing Diffusion Models: Alias-Free Resampling and Enhanced Rotational Equivariance},
  author={Anjum, Md Fahim},
  year={2024},
  eprint={2411.09174},
  archivePrefix={arXiv},
  primaryClass={cs.CV}
}""",
    provides=(
        (
            "diffusion component",
            "AliasFreeUNet2DModel",
            "hfcifar.methods.alias_free_diffusion.modeling_alias_free_unet:AliasFreeUNet2DModel",
        ),
        (
            "public name",
            "AliasFreeUNet2DModel",
            "hfcifar.methods.alias_free_diffusion.modeling_alias_free_unet:AliasFreeUNet2DModel",
        ),
    ),
)

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".equivariance": [
            "EquivarianceResult",
            "RotationControl",
            "circular_mask",
            "disc_lowpass",
            "rotate",
            "rotational_equivariance_error",
        ],
        ".modeling_alias_free_unet": [
            "RESAMPLING_TYPES",
            "AliasFreeUNet2DModel",
            "DEFAULT_FILTER",
            "AliasFreeDownsample2D",
            "AliasFreeUpsample2D",
            "count_resamplers",
            "kaiser_lowpass_filter",
            "swap_resampling",
        ],
    },
)
