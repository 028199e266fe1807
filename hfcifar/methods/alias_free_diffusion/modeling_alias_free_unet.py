"""`AliasFreeUNet2DModel`: diffusers' `UNet2DModel` with alias-free up/down-sampling (Anjum 2024, Config B).

A subclass, not a new architecture: it builds the standard UNet from the same arguments and swaps its resamplers
for [`AliasFreeDownsample2D`]/[`AliasFreeUpsample2D`]. The filter settings are config entries (registered with
diffusers' `@register_to_config`), so `save_pretrained`/`from_pretrained` round-trip the model, and the weights are
exactly a `UNet2DModel`'s (same keys and shapes): a standard checkpoint loads into it and vice versa.

Pipeline folders: diffusers 0.42 records this class in `model_index.json` as
`["hfcifar.methods.alias_free_diffusion.modeling_alias_free_unet", "AliasFreeUNet2DModel"]` and, when loading, takes
that module from `sys.modules` (it imports no module a repository names) and looks up `ModelMixin` in it to find
the loading method — hence the `ModelMixin` import here. So `import hfcifar.methods.alias_free_diffusion` (or
anything importing it) before `DiffusionPipeline.from_pretrained`.
"""

from __future__ import annotations

from diffusers import ModelMixin, UNet2DModel  # noqa: F401  (ModelMixin: see the note below)
from diffusers.configuration_utils import register_to_config

from .resampling import swap_resampling

RESAMPLING_TYPES = ("alias_free", "standard")


class AliasFreeUNet2DModel(UNet2DModel):
    r"""A [`UNet2DModel`] whose down/up-sampling layers low-pass filter around the rate change (Anjum 2024, Sec. 3,
    Config B: "A + alias-free up and downsampling"), with no extra trainable parameters.

    Args:
        sample_size … num_train_timesteps: exactly [`UNet2DModel`]'s arguments (`downsample_type` and
            `upsample_type` must keep diffusers' `"conv"` default or be `"resnet"`: both use the swappable
            `Downsample2D`/`Upsample2D`).
        resampling (`str`, *optional*, defaults to `"alias_free"`): `"alias_free"` swaps the resamplers;
            `"standard"` keeps diffusers' (the same network as `UNet2DModel`, for paired comparisons).
        filter_taps (`int`, *optional*, defaults to 3): low-pass filter size (odd); the paper's `f_kernel`.
        filter_cutoff (`float`, *optional*, defaults to 0.25): cutoff in cycles per high-resolution pixel
            (0.25 = the low-resolution Nyquist frequency = the paper's ω_c = π/2).
        filter_kaiser_beta (`float`, *optional*, defaults to 0.0): Kaiser window β (the paper's Config B-β).
        filter_half_width (`float`, *optional*, defaults to `None`): StyleGAN3's transition half-width instead of β.
        filter_type (`str`, *optional*, defaults to `"jinc"`): `"jinc"` (radially symmetric, the paper's) or
            `"sinc"` (separable).

    Examples:

    ```python
    >>> from hfcifar import AliasFreeUNet2DModel
    >>> from hfcifar.diffusion import unet_config
    >>> unet = AliasFreeUNet2DModel(**unet_config("ddpm-small"))  # same parameters as create_unet("ddpm-small")
    >>> unet.save_pretrained("runs/af-unet")
    >>> unet = AliasFreeUNet2DModel.from_pretrained("runs/af-unet")
    ```
    """

    @register_to_config
    def __init__(
        self,
        sample_size: int | tuple[int, int] | None = None,
        in_channels: int = 3,
        out_channels: int = 3,
        center_input_sample: bool = False,
        time_embedding_type: str = "positional",
        time_embedding_dim: int | None = None,
        freq_shift: int = 0,
        flip_sin_to_cos: bool = True,
        down_block_types: tuple[str, ...] = ("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
        mid_block_type: str | None = "UNetMidBlock2D",
        up_block_types: tuple[str, ...] = ("AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        block_out_channels: tuple[int, ...] = (224, 448, 672, 896),
        layers_per_block: int = 2,
        mid_block_scale_factor: float = 1,
        downsample_padding: int = 1,
        downsample_type: str = "conv",
        upsample_type: str = "conv",
        dropout: float = 0.0,
        act_fn: str = "silu",
        attention_head_dim: int | None = 8,
        norm_num_groups: int = 32,
        attn_norm_num_groups: int | None = None,
        norm_eps: float = 1e-5,
        resnet_time_scale_shift: str = "default",
        add_attention: bool = True,
        class_embed_type: str | None = None,
        num_class_embeds: int | None = None,
        num_train_timesteps: int | None = None,
        resampling: str = "alias_free",
        filter_taps: int = 3,
        filter_cutoff: float = 0.25,
        filter_kaiser_beta: float | None = 0.0,
        filter_half_width: float | None = None,
        filter_type: str = "jinc",
    ):
        if resampling not in RESAMPLING_TYPES:
            raise ValueError(f"resampling must be one of {RESAMPLING_TYPES}; got {resampling!r}.")
        super().__init__(
            sample_size=sample_size, in_channels=in_channels, out_channels=out_channels,
            center_input_sample=center_input_sample, time_embedding_type=time_embedding_type,
            time_embedding_dim=time_embedding_dim, freq_shift=freq_shift, flip_sin_to_cos=flip_sin_to_cos,
            down_block_types=down_block_types, mid_block_type=mid_block_type, up_block_types=up_block_types,
            block_out_channels=block_out_channels, layers_per_block=layers_per_block,
            mid_block_scale_factor=mid_block_scale_factor, downsample_padding=downsample_padding,
            downsample_type=downsample_type, upsample_type=upsample_type, dropout=dropout, act_fn=act_fn,
            attention_head_dim=attention_head_dim, norm_num_groups=norm_num_groups,
            attn_norm_num_groups=attn_norm_num_groups, norm_eps=norm_eps,
            resnet_time_scale_shift=resnet_time_scale_shift, add_attention=add_attention,
            class_embed_type=class_embed_type, num_class_embeds=num_class_embeds,
            num_train_timesteps=num_train_timesteps,
        )
        if filter_half_width is not None and filter_kaiser_beta == 0.0:
            self.register_to_config(filter_kaiser_beta=None)  # StyleGAN3's transition band replaces the default β
        if resampling == "alias_free":
            swap_resampling(self, **self.filter_settings)

    @property
    def filter_settings(self) -> dict:
        """The low-pass filter arguments of [`swap_resampling`], from the config."""
        return {key: self.config[key] for key in ("filter_taps", "filter_cutoff", "filter_kaiser_beta",
                                                  "filter_half_width", "filter_type")}

    @classmethod
    def from_unet(cls, unet: UNet2DModel, **filter_config) -> "AliasFreeUNet2DModel":
        """The alias-free twin of a standard `unet`: same config (+ `filter_config`), a copy of its weights.

        Examples:

        ```python
        >>> standard = UNet2DModel.from_pretrained("runs/ddpm-small/unet")
        >>> alias_free = AliasFreeUNet2DModel.from_unet(standard)  # no retraining: a parameter-free swap
        ```
        """
        config = {key: value for key, value in unet.config.items() if not key.startswith("_")}
        model = cls.from_config({**config, **filter_config})
        model.load_state_dict(unet.state_dict(), strict=True)
        reference = next(unet.parameters())
        model.to(reference.device)
        if reference.dtype != model.dtype:
            model.to(reference.dtype)
        return model.train(unet.training)


__all__ = ["RESAMPLING_TYPES", "AliasFreeUNet2DModel"]
