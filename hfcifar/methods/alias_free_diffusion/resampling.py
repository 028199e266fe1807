"""Alias-free 2× resampling layers for diffusers UNets (Anjum 2024, Sec. 3 "Alias-free resampling", Config B).

A UNet halves and doubles its feature maps. diffusers' [`Downsample2D`] keeps every second output of a 3×3 conv
(stride 2) and [`Upsample2D`] repeats each pixel (nearest ×2) before a 3×3 conv: neither removes the frequencies
the new sampling rate cannot represent, so they fold back (aliasing) and tie image details to the pixel grid.
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
"""

from __future__ import annotations

import numpy as np
import scipy.signal
import scipy.special
import torch
import torch.nn.functional as F
from diffusers.models.downsampling import Downsample2D
from diffusers.models.upsampling import Upsample2D
from torch import nn

FILTER_TYPES = ("jinc", "sinc")
# Anjum 2024, Config B-0 (the repository's Train.ipynb: f_kernel=3, f_beta=0…2, f_down=f_up=π/2).
DEFAULT_FILTER = {"filter_taps": 3, "filter_cutoff": 0.25, "filter_kaiser_beta": 0.0, "filter_half_width": None,
                  "filter_type": "jinc"}


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
            from Kaiser's formula for `taps` and a transition band of width 2 f_h (`scipy.signal.kaiser_beta`).
        filter_type (`str`, defaults to `"jinc"`): `"jinc"` (radially symmetric: f_c J₁(2π f_c r) / r, the paper's
            `circularLowpassKernel`, StyleGAN3-R) or `"sinc"` (separable: the outer product of
            `scipy.signal.firwin`'s 1-D windowed sinc, StyleGAN3-T).
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
        # scipy measures the transition width as a fraction of the Nyquist frequency (0.5 cycles per pixel)
        kaiser_beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(taps, 2 * half_width / 0.5))
    beta = float(kaiser_beta or 0.0)
    if taps == 1:
        return torch.ones(1, 1)
    window = scipy.signal.windows.kaiser(taps, beta)
    if filter_type == "sinc":
        f = scipy.signal.firwin(taps, cutoff, window=("kaiser", beta), fs=1.0)
        kernel = np.outer(f, f)
    else:
        x = np.arange(taps) - (taps - 1) / 2
        r = np.hypot(*np.meshgrid(x, x))
        with np.errstate(divide="ignore", invalid="ignore"):
            kernel = cutoff * scipy.special.j1(2 * np.pi * cutoff * r) / r
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


__all__ = [
    "DEFAULT_FILTER",
    "FILTER_TYPES",
    "AliasFreeDownsample2D",
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
