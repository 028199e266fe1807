"""`AliasFreeUNet2DModel`: diffusers' `UNet2DModel` with alias-free up/down-sampling (Anjum 2024, Config B), and the
alias-free 2× resampling layers it is built from.

One self-contained module (torch, numpy and diffusers only), because it is also the code a saved pipeline or UNet
folder ships: `save_pretrained` of hfcifar's pipelines copies this file into `unet/` and names it in
`model_index.json` (`["modeling_alias_free_unet", "AliasFreeUNet2DModel"]`), so
`DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)` builds this UNet where hfcifar is not installed.
diffusers downloads one code file per weight folder, so the layers live here rather than in a sibling module.

**The layers** (Anjum 2024, Sec. 3 "Alias-free resampling", Config B). A UNet halves and doubles its feature
maps. diffusers' [`Downsample2D`] keeps every second output of a 3×3 conv (stride 2) and [`Upsample2D`] repeats each
pixel (nearest ×2) before a 3×3 conv: neither removes the frequencies the new sampling rate cannot represent, so
they fold back (aliasing) and tie image details to the pixel grid.
The paper follows the Shannon–Nyquist theorem as StyleGAN3 does (Karras et al. 2021, Sec. 3.2):

- downsampling: low-pass filter at the new Nyquist frequency, then keep every second sample;
- upsampling: interleave zeros, then low-pass filter (gain 4 = 2², restoring the mean the zeros diluted).

The conv weights stay: a low-pass filter is linear and shift-invariant, so it commutes with the 3×3 conv, and
"conv (stride 1) → low-pass → decimate" equals "low-pass → conv (stride 2)", which costs 4× less. The filters are
non-persistent buffers computed from the layer's settings, so the alias-free layers add no parameters and no
state-dict keys: a standard UNet's weights load into the alias-free one and vice versa ([`swap_resampling`]).

The filter (Anjum's `circularLowpassKernel`, StyleGAN3's `design_lowpass_filter`) is a windowed ideal low-pass:
a radially symmetric jinc (`filter_type="jinc"`, the paper's choice, and StyleGAN3's for rotation equivariance)
or a separable sinc (`"sinc"`, StyleGAN3's translation-only config), windowed by a Kaiser window and normalized to
unit DC gain. The defaults are the paper's Config B-0, its best CIFAR-10 resampling-only setting (FID 94.23 vs
98.77 for the baseline): 3 taps, cutoff ω_c = π/2 (0.25 cycles per high-resolution pixel, the low-resolution
Nyquist frequency), Kaiser β = 0. StyleGAN3's design (a transition band of half-width `half_width` whose Kaiser β
follows from Kaiser's formula, ~6 taps per unit of rate change) is available through the same arguments.

**The model.** A subclass, not a new architecture: `AliasFreeUNet2DModel` builds the standard UNet from the same
arguments and swaps its resamplers for [`AliasFreeDownsample2D`]/[`AliasFreeUpsample2D`]. The filter settings are
config entries (registered with diffusers' `@register_to_config`), so `save_pretrained`/`from_pretrained` round-trip
the model, and the weights are exactly a `UNet2DModel`'s (same keys and shapes): a standard checkpoint loads into it
and vice versa.

Where hfcifar is installed, its pipelines load such a folder with this class (no remote code): diffusers then finds
the class's module in `sys.modules` and looks up `ModelMixin` in it to find the loading method — hence that import.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import ModelMixin, UNet2DModel  # noqa: F401  (ModelMixin: see below)
from diffusers.configuration_utils import register_to_config
from diffusers.models.downsampling import Downsample2D
from diffusers.models.upsampling import Upsample2D
from torch import nn

FILTER_TYPES = ("jinc", "sinc")
# Anjum 2024, Config B-0 (the repository's Train.ipynb: f_kernel=3, f_beta=0…2, f_down=f_up=π/2).
DEFAULT_FILTER = {"filter_taps": 3, "filter_cutoff": 0.25, "filter_kaiser_beta": 0.0, "filter_half_width": None,
                  "filter_type": "jinc"}


def _kaiser_beta(taps: int, half_width: float) -> float:
    """Kaiser's formula for the window β of a `taps`-tap filter with a transition band of width 2 f_h (StyleGAN3's
    design; as `scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(taps, 2 f_h / 0.5))`, the width measured as a
    fraction of the Nyquist frequency 0.5 cycles per pixel)."""
    attenuation = 2.285 * (taps - 1) * math.pi * (2 * half_width / 0.5) + 7.95  # dB
    if attenuation > 50:
        return 0.1102 * (attenuation - 8.7)
    if attenuation > 21:
        return 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21)
    return 0.0


def kaiser_lowpass_filter(
    taps: int = 3,
    cutoff: float = 0.25,
    kaiser_beta: float | None = 0.0,
    half_width: float | None = None,
    filter_type: str = "jinc",
) -> torch.Tensor:
    """A 2-D Kaiser-windowed ideal low-pass filter (taps × taps, float32, unit DC gain).

    Args:
        taps (`int`, defaults to 3): filter size; odd, so the filter is centred on a pixel and shifts nothing.
        cutoff (`float`, defaults to 0.25): cutoff frequency f_c in cycles per pixel of the grid the filter runs
            on (0.5 = that grid's Nyquist frequency). For 2× resampling, 0.25 is the low-resolution Nyquist
            frequency, the paper's ω_c = π/2.
        kaiser_beta (`float`, *optional*, defaults to 0.0): the Kaiser window's β (the paper's Config B-β;
            0 = rectangular window). Give either this or `half_width`.
        half_width (`float`, *optional*): StyleGAN3's transition half-width f_h (cycles per pixel); β then follows
            from Kaiser's formula for `taps` and a transition band of width 2 f_h (`_kaiser_beta`).
        filter_type (`str`, defaults to `"jinc"`): `"jinc"` (radially symmetric: f_c J₁(2π f_c r) / r, the paper's
            `circularLowpassKernel`, StyleGAN3-R) or `"sinc"` (separable: the outer product of
            the 1-D windowed sinc of `scipy.signal.firwin`, StyleGAN3-T).
    """
    if taps < 1 or taps % 2 == 0:
        raise ValueError(f"taps must be a positive odd number (a centred filter); got {taps}.")
    if not 0.0 < cutoff <= 0.5:
        raise ValueError(f"cutoff must lie in (0, 0.5] cycles per pixel; got {cutoff}.")
    if filter_type not in FILTER_TYPES:
        raise ValueError(f"filter_type must be one of {FILTER_TYPES}; got {filter_type!r}.")
    if half_width is not None and kaiser_beta is not None:
        raise ValueError("Give either kaiser_beta (the paper's window) or half_width (StyleGAN3's), not both.")
    if half_width is not None:
        if half_width <= 0:
            raise ValueError(f"half_width must be > 0; got {half_width}.")
        kaiser_beta = _kaiser_beta(taps, half_width)
    beta = float(kaiser_beta or 0.0)
    if taps == 1:
        return torch.ones(1, 1)
    window = np.kaiser(taps, beta)
    x = np.arange(taps) - (taps - 1) / 2
    if filter_type == "sinc":  # the 1-D windowed sinc of scipy.signal.firwin, outer product
        f = 2 * cutoff * np.sinc(2 * cutoff * x) * window
        kernel = np.outer(f, f)
    else:
        r = np.hypot(*np.meshgrid(x, x))
        bessel_j1 = torch.special.bessel_j1(torch.as_tensor(2 * np.pi * cutoff * r, dtype=torch.float64)).numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            kernel = cutoff * bessel_j1 / r
        kernel[r == 0] = np.pi * cutoff**2  # the limit r → 0
        kernel = kernel * np.outer(window, window)
    kernel = kernel / kernel.sum()
    return torch.as_tensor(kernel, dtype=torch.float32)


def _filter(hidden_states: torch.Tensor, kernel: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """Depthwise convolution of every channel with one (symmetric, odd) kernel; zero padding, as the UNet's convs."""
    channels = hidden_states.shape[1]
    weight = kernel.to(hidden_states.device, hidden_states.dtype)[None, None].expand(channels, 1, *kernel.shape)
    return F.conv2d(hidden_states, weight, stride=stride, padding=kernel.shape[-1] // 2, groups=channels)


def filtered_downsample_2x(hidden_states: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Low-pass filter, then keep the samples at even positions (output i at input 2i, as a stride-2 conv)."""
    return _filter(hidden_states, kernel, stride=2)


def filtered_upsample_2x(hidden_states: torch.Tensor, kernel: torch.Tensor,
                         output_size: tuple[int, int] | None = None) -> torch.Tensor:
    """Interleave zeros (input i → output 2i, the inverse of [`filtered_downsample_2x`]'s grid), then low-pass filter.

    `kernel` must carry the interpolation gain (4 for 2× in 2-D). `output_size` (height, width) defaults to twice
    the input's.
    """
    batch, channels, height, width = hidden_states.shape
    out_h, out_w = output_size if output_size is not None else (2 * height, 2 * width)
    upsampled = hidden_states.new_zeros(batch, channels, out_h, out_w)
    rows, cols = min(height, (out_h + 1) // 2), min(width, (out_w + 1) // 2)
    upsampled[:, :, : 2 * rows : 2, : 2 * cols : 2] = hidden_states[:, :, :rows, :cols]
    return _filter(upsampled, kernel)


class _FilterSettings:
    """The low-pass filter settings shared by both layers, kept as attributes for `extra_repr` and rebuilding."""

    def _init_filter(self, filter_taps: int, filter_cutoff: float, filter_kaiser_beta: float | None,
                     filter_half_width: float | None, filter_type: str, gain: float) -> None:
        self.filter_taps = filter_taps
        self.filter_cutoff = filter_cutoff
        self.filter_kaiser_beta = filter_kaiser_beta
        self.filter_half_width = filter_half_width
        self.filter_type = filter_type
        kernel = kaiser_lowpass_filter(filter_taps, filter_cutoff, filter_kaiser_beta, filter_half_width, filter_type)
        # Non-persistent: rebuilt from the settings, so the state dict is the standard layer's (no new keys).
        self.register_buffer("lowpass_filter", kernel * gain, persistent=False)

    def extra_repr(self) -> str:
        window = (f"half_width={self.filter_half_width}" if self.filter_half_width is not None
                  else f"kaiser_beta={self.filter_kaiser_beta}")
        return f"filter={self.filter_type}, taps={self.filter_taps}, cutoff={self.filter_cutoff}, {window}"


class AliasFreeDownsample2D(_FilterSettings, Downsample2D):
    """diffusers' [`Downsample2D`] with an anti-aliasing low-pass filter before the decimation (Anjum 2024, Config B).

    conv (3×3, stride 2) ≡ decimate(conv (stride 1)) becomes decimate(low-pass(conv(x))), computed as
    conv_stride2(low-pass(x)) (the filter is depthwise and shift-invariant, so it commutes with the conv). Without a
    conv (`use_conv=False`, a 2×2 average pool in diffusers) it is low-pass → decimate. Same parameters, same
    state-dict keys and same output shape as [`Downsample2D`].

    Args:
        channels, use_conv, out_channels, padding, name, kernel_size, norm_type, eps, elementwise_affine, bias: as in
            [`Downsample2D`].
        filter_taps, filter_cutoff, filter_kaiser_beta, filter_half_width, filter_type: the low-pass filter, see
            [`kaiser_lowpass_filter`] (`filter_cutoff` in cycles per *input* pixel; defaults: the paper's Config B-0).
    """

    def __init__(self, channels: int, use_conv: bool = False, out_channels: int | None = None, padding: int = 1,
                 name: str = "conv", kernel_size: int = 3, norm_type: str | None = None, eps: float | None = None,
                 elementwise_affine: bool | None = None, bias: bool = True, filter_taps: int = 3,
                 filter_cutoff: float = 0.25, filter_kaiser_beta: float | None = 0.0,
                 filter_half_width: float | None = None, filter_type: str = "jinc"):
        super().__init__(channels, use_conv=use_conv, out_channels=out_channels, padding=padding, name=name,
                         kernel_size=kernel_size, norm_type=norm_type, eps=eps, elementwise_affine=elementwise_affine,
                         bias=bias)
        self._init_filter(filter_taps, filter_cutoff, filter_kaiser_beta, filter_half_width, filter_type, gain=1.0)

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if hidden_states.shape[1] != self.channels:
            raise ValueError(f"{type(self).__name__} expects {self.channels} channels; got {hidden_states.shape[1]}.")
        if self.norm is not None:
            hidden_states = self.norm(hidden_states.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        if not self.use_conv:  # diffusers' 2×2 average pool drops an odd last row/column: so does this
            height, width = hidden_states.shape[-2:]
            return filtered_downsample_2x(hidden_states, self.lowpass_filter)[..., : height // 2, : width // 2]
        hidden_states = _filter(hidden_states, self.lowpass_filter)
        if self.padding == 0:
            hidden_states = F.pad(hidden_states, (0, 1, 0, 1), mode="constant", value=0)
        return self.conv(hidden_states)


class AliasFreeUpsample2D(_FilterSettings, Upsample2D):
    """diffusers' [`Upsample2D`] with zero insertion + low-pass interpolation instead of nearest-neighbour repetition
    (Anjum 2024, Config B).

    Nearest ×2 is zero insertion followed by a 2×2 box filter, whose spectrum lets the images of the signal
    (copies around the old sampling frequency) through; the alias-free layer replaces the box by a low-pass filter
    with cutoff at the old Nyquist frequency and gain 4. The 3×3 conv that follows is unchanged. Same parameters,
    same state-dict keys and same output shape as [`Upsample2D`]. Transposed-conv upsamplers (`use_conv_transpose`)
    learn their own interpolation and are not supported.

    Args:
        channels, use_conv, out_channels, name, kernel_size, padding, norm_type, eps, elementwise_affine, bias,
            interpolate: as in [`Upsample2D`].
        filter_taps, filter_cutoff, filter_kaiser_beta, filter_half_width, filter_type: the low-pass filter, see
            [`kaiser_lowpass_filter`] (`filter_cutoff` in cycles per *output* pixel; defaults: Config B-0).
    """

    def __init__(self, channels: int, use_conv: bool = False, use_conv_transpose: bool = False,
                 out_channels: int | None = None, name: str = "conv", kernel_size: int | None = None, padding: int = 1,
                 norm_type: str | None = None, eps: float | None = None, elementwise_affine: bool | None = None,
                 bias: bool = True, interpolate: bool = True, filter_taps: int = 3, filter_cutoff: float = 0.25,
                 filter_kaiser_beta: float | None = 0.0, filter_half_width: float | None = None,
                 filter_type: str = "jinc"):
        if use_conv_transpose:
            raise ValueError("AliasFreeUpsample2D does not support use_conv_transpose: a transposed conv learns its "
                             "own interpolation filter. Use upsample_type='conv' (nearest + conv) in the UNet.")
        super().__init__(channels, use_conv=use_conv, use_conv_transpose=False, out_channels=out_channels, name=name,
                         kernel_size=kernel_size, padding=padding, norm_type=norm_type, eps=eps,
                         elementwise_affine=elementwise_affine, bias=bias, interpolate=interpolate)
        self._init_filter(filter_taps, filter_cutoff, filter_kaiser_beta, filter_half_width, filter_type, gain=4.0)

    def forward(self, hidden_states: torch.Tensor, output_size: int | tuple[int, int] | None = None, *args,
                **kwargs) -> torch.Tensor:
        if hidden_states.shape[1] != self.channels:
            raise ValueError(f"{type(self).__name__} expects {self.channels} channels; got {hidden_states.shape[1]}.")
        if self.norm is not None:
            hidden_states = self.norm(hidden_states.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        if self.interpolate:
            if isinstance(output_size, int):
                output_size = (output_size, output_size)
            hidden_states = filtered_upsample_2x(hidden_states, self.lowpass_filter, output_size)
        if self.use_conv:
            hidden_states = self.conv(hidden_states) if self.name == "conv" else self.Conv2d_0(hidden_states)
        return hidden_states


def _adopt(new: nn.Module, old: nn.Module) -> nn.Module:
    """Give `new` the submodules (conv, norm: the same objects, so the same weights), device and mode of `old`."""
    for key, module in old._modules.items():  # not named_children(): it skips the alias Conv2d_0 ≡ conv
        setattr(new, key, module)
    reference = next(old.parameters(), None)
    if reference is not None and reference.device.type != "meta":  # diffusers' from_pretrained builds on `meta`
        new.lowpass_filter = new.lowpass_filter.to(reference.device)
    return new.train(old.training)


def alias_free_downsample(layer: Downsample2D, **filter_kwargs) -> AliasFreeDownsample2D:
    """The alias-free twin of a diffusers [`Downsample2D`], sharing its conv/norm modules (no copy)."""
    new = AliasFreeDownsample2D(layer.channels, use_conv=False, out_channels=layer.channels, padding=layer.padding,
                                name=layer.name, **filter_kwargs)
    new.use_conv, new.out_channels = layer.use_conv, layer.out_channels
    return _adopt(new, layer)


def alias_free_upsample(layer: Upsample2D, **filter_kwargs) -> AliasFreeUpsample2D:
    """The alias-free twin of a diffusers [`Upsample2D`], sharing its conv/norm modules (no copy)."""
    if layer.use_conv_transpose:
        raise ValueError("Cannot make a transposed-conv Upsample2D alias-free (it learns its own interpolation); "
                         "build the UNet with upsample_type='conv'.")
    new = AliasFreeUpsample2D(layer.channels, use_conv=False, out_channels=layer.channels, name=layer.name,
                              interpolate=layer.interpolate, **filter_kwargs)
    new.use_conv, new.out_channels = layer.use_conv, layer.out_channels
    return _adopt(new, layer)


def swap_resampling(unet: nn.Module, **filter_kwargs) -> nn.Module:
    """Replace every diffusers `Downsample2D`/`Upsample2D` inside `unet` by its alias-free twin, in place.

    Covers the UNet's down/up blocks (`downsample_type`/`upsample_type="conv"`) and the resampling inside
    `ResnetBlock2D(down=True / up=True)` (`"resnet"` types). The swapped layers reuse the same conv modules, so the
    parameters, their count and the state-dict keys do not change. Layers already alias-free are left alone.

    Args:
        unet (`torch.nn.Module`): e.g. a diffusers [`UNet2DModel`].
        filter_kwargs: `filter_taps`, `filter_cutoff`, `filter_kaiser_beta`, `filter_half_width`, `filter_type`
            (see [`kaiser_lowpass_filter`]; defaults: the paper's Config B-0).

    Returns:
        The same `unet` object.

    Examples:

    ```python
    >>> from hfcifar.diffusion import create_unet
    >>> from hfcifar.methods.alias_free_diffusion import swap_resampling
    >>> unet = swap_resampling(create_unet("ddpm-small"))
    ```
    """
    unknown = set(filter_kwargs) - set(DEFAULT_FILTER)
    if unknown:
        raise TypeError(f"swap_resampling got unknown filter arguments {sorted(unknown)}; "
                        f"expected some of {list(DEFAULT_FILTER)}.")
    replacements = []
    for name, module in unet.named_modules():
        if isinstance(module, (AliasFreeDownsample2D, AliasFreeUpsample2D)):
            continue
        if isinstance(module, Downsample2D):
            replacements.append((name, alias_free_downsample(module, **filter_kwargs)))
        elif isinstance(module, Upsample2D):
            replacements.append((name, alias_free_upsample(module, **filter_kwargs)))
    for name, new in replacements:
        parent_name, _, child = name.rpartition(".")
        setattr(unet.get_submodule(parent_name) if parent_name else unet, child, new)
    return unet


def count_resamplers(unet: nn.Module) -> dict[str, int]:
    """How many standard and alias-free resampling layers `unet` holds (`{"standard": n, "alias_free": m}`)."""
    alias_free = sum(isinstance(m, (AliasFreeDownsample2D, AliasFreeUpsample2D)) for m in unet.modules())
    every = sum(isinstance(m, (Downsample2D, Upsample2D)) for m in unet.modules())
    return {"standard": every - alias_free, "alias_free": alias_free}


def frequency_response(kernel: torch.Tensor, size: int = 64) -> torch.Tensor:
    """|H(f)| of a 2-D filter on a size × size frequency grid (fftshifted, f from −0.5 to 0.5 cycles per pixel)."""
    padded = torch.zeros(size, size, dtype=torch.float64)
    k = kernel.shape[-1]
    padded[:k, :k] = kernel.double()
    padded = torch.roll(padded, shifts=(-(k // 2), -(k // 2)), dims=(0, 1))
    return torch.fft.fftshift(torch.fft.fft2(padded).abs())


# ----------------------------------------------------------------------------------------------------------- the model

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


__all__ = [
    "DEFAULT_FILTER",
    "FILTER_TYPES",
    "RESAMPLING_TYPES",
    "AliasFreeDownsample2D",
    "AliasFreeUNet2DModel",
    "AliasFreeUpsample2D",
    "alias_free_downsample",
    "alias_free_upsample",
    "count_resamplers",
    "filtered_downsample_2x",
    "filtered_upsample_2x",
    "frequency_response",
    "kaiser_lowpass_filter",
    "swap_resampling",
]
