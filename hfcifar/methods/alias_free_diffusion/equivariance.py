"""Rotation in torch without aliasing, the rotational-equivariance error (StyleGAN3's EQ-R), and rotation-controlled
sampling (Anjum 2024, Sec. "Improving rotational consistency").

[`rotate`] treats an image as samples of a band-limited periodic signal (its DFT), keeps the frequencies inside the
disc |f| < ½ cycle per pixel, and evaluates that signal at the rotated pixel positions (exact trigonometric
interpolation, no bilinear/bicubic blur). The disc is the largest band that survives every rotation: a frequency
in a corner of the square spectrum would leave the square when rotated and fold back (alias). A 90° rotation of a
disc-band-limited image therefore equals `torch.rot90`, and `rotate(x, 0)` is the band-limiting projection itself
([`disc_lowpass`]). Other angles cannot be exact near the frame of a finite image: the rotated corners show the
periodic continuation of the image (as `scipy.ndimage.rotate(mode="grid-wrap")`, the paper's rotation).

[`rotational_equivariance_error`] measures how far a map f (e.g. the denoiser ε(·, t)) is from commuting with
rotation: f(R_θ x) against R_θ f(x), inside the disc inscribed in the image (by default 0.85 of its radius: the
corners are invented), as normalized MSE and as PSNR in dB (Karras et al. 2021, "Alias-Free Generative
Adversarial Networks", Sec. 3 / App. E: EQ-R = 10 log₁₀(peak² / MSE), peak = 2 for images in [−1, 1]). As
StyleGAN3 compares against a "pseudo-rotation" of matching bandwidth, f(R_θ x) is band-limited to the same disc
before the comparison, and the input is band-limited first, so that θ = 0 (and the identity map at any θ) gives
exactly zero error.

[`RotationControl`] is Anjum's modified reverse process: after every denoising step x_t is rotated by a constant
small angle θ / n, so the sample turns by θ over the n steps, with no training (the paper rotates with
`scipy.ndimage.rotate`; here with [`rotate`]). It is a diffusers [`PipelineCallback`] for `callback_on_step_end`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from diffusers.callbacks import PipelineCallback
from diffusers.configuration_utils import register_to_config

_CHUNK = 4096  # output pixels per interpolation block: bounds the (frequencies × pixels) matrix's memory


def _frequencies(height: int, width: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(f_y, f_x) in cycles per pixel for every DFT bin, and the mask of the open disc |f| < ½."""
    fy = torch.fft.fftfreq(height, device=device, dtype=torch.float64)[:, None].expand(height, width)
    fx = torch.fft.fftfreq(width, device=device, dtype=torch.float64)[None, :].expand(height, width)
    return fy, fx, fy**2 + fx**2 < 0.25


def disc_lowpass(images: torch.Tensor) -> torch.Tensor:
    """Keep only the frequencies |f| < ½ cycle per pixel (the band that every rotation preserves); `rotate(x, 0)`."""
    height, width = images.shape[-2:]
    _, _, disc = _frequencies(height, width, images.device)
    spectrum = torch.fft.fft2(images.double())
    return torch.fft.ifft2(spectrum * disc).real.to(images.dtype)


def rotate(images: torch.Tensor, angle_degrees: float) -> torch.Tensor:
    """Rotate images counter-clockwise (as displayed, y down; `torch.rot90(x, 1, (-2, -1))` at 90°) about their centre.

    Alias-free: the rotation of the band-limited (|f| < ½) periodic interpolant of the image, sampled on the pixel
    grid and band-limited to the same disc again, so the result always lies in the band [`disc_lowpass`] keeps. The
    corners outside the inscribed disc are filled from the periodic continuation of the image, so compare rotated
    images inside [`circular_mask`].

    Args:
        images (`torch.Tensor`): (..., H, W) real tensor.
        angle_degrees (`float`): the rotation angle θ in degrees.

    Returns:
        `torch.Tensor` of the same shape and dtype.
    """
    if not torch.is_floating_point(images):
        raise TypeError(f"rotate expects a floating-point tensor; got {images.dtype}.")
    if float(angle_degrees) % 360.0 == 0.0:
        return disc_lowpass(images)
    height, width = images.shape[-2:]
    device = images.device
    fy, fx, disc = _frequencies(height, width, device)
    spectrum = torch.fft.fft2(images.double()).reshape(-1, height * width)[:, disc.reshape(-1)]  # (B, K)
    fy, fx = fy[disc], fx[disc]  # (K,)
    theta = math.radians(float(angle_degrees))
    cos, sin = math.cos(theta), math.sin(theta)
    cy, cx = (height - 1) / 2, (width - 1) / 2
    # g(p) = f(c + R⁻¹(p − c)) with f(q) = 1/(HW) Σ_k X_k e^{2πi f_k·q}; as f·R⁻¹d = (R f)·d for a rotation R,
    # each kept frequency f_k contributes X_k e^{2πi f_k·c} e^{2πi (R f_k)·(p − c)}. With y pointing down, a
    # counter-clockwise turn maps (x, y) ↦ (x cos θ + y sin θ, −x sin θ + y cos θ).
    rx, ry = fx * cos + fy * sin, -fx * sin + fy * cos
    phase0 = torch.exp(2j * math.pi * (fy * cy + fx * cx)) / (height * width)
    coefficients = spectrum * phase0  # (B, K)
    ys = torch.arange(height, device=device, dtype=torch.float64) - cy
    xs = torch.arange(width, device=device, dtype=torch.float64) - cx
    dy, dx = ys[:, None].expand(height, width).reshape(-1), xs[None, :].expand(height, width).reshape(-1)
    # Phases in float64 (exact angles); the sum itself in complex64 for float32/16 images (4× faster, ~1e-6 error).
    complex_dtype = torch.complex128 if images.dtype == torch.float64 else torch.complex64
    coefficients = coefficients.to(complex_dtype)
    out = torch.empty(coefficients.shape[0], height * width, dtype=coefficients.real.dtype, device=device)
    for start in range(0, height * width, _CHUNK):
        stop = min(start + _CHUNK, height * width)
        basis = torch.exp(2j * math.pi * (rx[:, None] * dx[None, start:stop] + ry[:, None] * dy[None, start:stop]))
        out[:, start:stop] = (coefficients @ basis.to(complex_dtype)).real
    # The rotated interpolant is not periodic on the pixel grid (the frame cuts it), so its samples carry some energy
    # outside the disc again; project it out so every rotated image lies in the same band (and rotate ∘ P = rotate).
    return disc_lowpass(out.reshape(images.shape).to(images.dtype))


def circular_mask(height: int, width: int, radius_fraction: float = 1.0, device=None) -> torch.Tensor:
    """Boolean (H, W) mask of the pixels whose centres lie within `radius_fraction` × the inscribed circle's radius."""
    cy, cx = (height - 1) / 2, (width - 1) / 2
    ys = torch.arange(height, device=device, dtype=torch.float64)[:, None] - cy
    xs = torch.arange(width, device=device, dtype=torch.float64)[None, :] - cx
    return ys**2 + xs**2 <= (radius_fraction * min(height, width) / 2) ** 2


@dataclass
class EquivarianceResult:
    """Per-angle, per-image rotational-equivariance errors of a map f.

    Attributes:
        angles (`list[float]`): the rotation angles θ (degrees).
        mse (`torch.Tensor`): (angles, images): mean squared difference of f(R_θ x) and R_θ f(x) inside the mask.
        nmse (`torch.Tensor`): (angles, images): `mse` divided by the mean square of R_θ f(x) inside the mask
            (scale-free: comparable across models whose outputs differ in size).
        peak (`float`): the signal peak-to-peak range for PSNR (2 for outputs in [−1, 1], StyleGAN3's choice).
    """

    angles: list[float]
    mse: torch.Tensor
    nmse: torch.Tensor
    peak: float = 2.0

    @property
    def nmse_per_angle(self) -> list[float]:
        return [float(v) for v in self.nmse.mean(dim=1)]

    @property
    def psnr_per_angle(self) -> list[float]:
        """EQ-R in dB per angle: 10 log₁₀(peak² / MSE), the MSE averaged over images first (as StyleGAN3)."""
        return [float(10 * torch.log10(self.peak**2 / v.clamp_min(1e-30))) for v in self.mse.mean(dim=1)]

    @property
    def mean_nmse(self) -> float:
        return float(self.nmse.mean())

    @property
    def psnr(self) -> float:
        """EQ-R in dB over all angles and images."""
        return float(10 * torch.log10(self.peak**2 / self.mse.mean().clamp_min(1e-30)))

    @property
    def nmse_per_image(self) -> torch.Tensor:
        """(images,): each image's normalized error averaged over the angles (the unit of a paired comparison)."""
        return self.nmse.mean(dim=0)

    def to_dict(self) -> dict:
        return {"angles": list(self.angles), "nmse_per_angle": self.nmse_per_angle,
                "psnr_per_angle": self.psnr_per_angle, "mean_nmse": self.mean_nmse, "psnr": self.psnr}


@torch.no_grad()
def rotational_equivariance_error(
    fn: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    angles: Sequence[float] = (15.0, 30.0, 45.0, 60.0, 90.0),
    mask_radius: float = 0.85,
    peak: float = 2.0,
    batch_size: int = 256,
) -> EquivarianceResult:
    """How far `fn` is from rotation equivariance: ‖P f(R_θ x) − R_θ f(x)‖² inside the inscribed disc.

    x is first band-limited to the rotation-invariant disc (x ← P x, P = `rotate(·, 0)`), and f(R_θ x) is
    band-limited by the same P before the comparison (StyleGAN3's pseudo-rotation of matching bandwidth: R_θ's
    output lies in that band, and energy f puts outside it could never be matched), so the identity scores exactly
    0 at every θ and any f scores exactly 0 at θ = 0.

    Args:
        fn (`Callable`): maps (N, C, H, W) to (N, C', H, W), e.g. `lambda x: unet(x, t).sample`.
        images (`torch.Tensor`): (N, C, H, W) inputs (e.g. noisy images x_t).
        angles (`Sequence[float]`, defaults to 15°…90°): rotation angles θ in degrees.
        mask_radius (`float`, defaults to 0.85): the compared disc's radius as a fraction of the inscribed circle's.
            The rim is left out because the rotated input's corners are invented (the periodic continuation) and
            reach the rim through any filter: for an isotropic 9×9 Gaussian blur (an equivariant map up to
            boundaries) the error floor is ~1e-2 normalized MSE over the whole disc but ~1e-3 inside 0.85 of it.
        peak (`float`, defaults to 2.0): peak-to-peak range for the PSNR (2 for [−1, 1] images).
        batch_size (`int`, defaults to 256): images per call of `fn`.

    Returns:
        [`EquivarianceResult`] (per-angle and per-image MSE and normalized MSE; EQ-R PSNR in dB).
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W); got shape {tuple(images.shape)}.")

    def apply(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([fn(chunk) for chunk in x.split(batch_size)])

    images = disc_lowpass(images)
    outputs = apply(images)
    mask = circular_mask(*images.shape[-2:], radius_fraction=mask_radius, device=images.device)
    count = mask.sum() * outputs.shape[1]
    mse, nmse = [], []
    for angle in angles:
        reference = rotate(outputs, angle).float()
        rotated_first = disc_lowpass(apply(rotate(images, angle))).float()
        squared = ((rotated_first - reference) ** 2 * mask).sum(dim=(1, 2, 3)) / count
        energy = (reference**2 * mask).sum(dim=(1, 2, 3)) / count
        mse.append(squared)
        nmse.append(squared / energy.clamp_min(1e-12))
    return EquivarianceResult(angles=[float(a) for a in angles], mse=torch.stack(mse).cpu(),
                              nmse=torch.stack(nmse).cpu(), peak=peak)


class RotationControl(PipelineCallback):
    """Rotation-controlled sampling (Anjum 2024, "Improving rotational consistency"): turn the sample by
    `angle_degrees` during the reverse process, without training.

    The target rotation is spread evenly over the steps: after each of the first m denoising steps, x_t is rotated
    by θ / m ([`rotate`]), m = all n steps by default (the paper's process), or `cutoff_step_ratio`·n /
    `cutoff_step_index` steps. The later (detail) steps then refine an already-turned image. An equivariant denoiser
    makes the result match the unrotated sample turned by θ; the alias-free UNet is meant to come closer to that.

    Use it as `callback_on_step_end` of a diffusers-style pipeline (hfcifar's `CifarDDPMPipeline`, …):

    ```python
    >>> from hfcifar.methods.alias_free_diffusion import RotationControl
    >>> images = pipe(batch_size=8, num_inference_steps=50, generator=torch.manual_seed(0),
    ...               callback_on_step_end=RotationControl(45.0)).images
    ```

    Args:
        angle_degrees (`float`): total counter-clockwise rotation θ (degrees). 0 leaves sampling unchanged.
        cutoff_step_ratio (`float`, *optional*, defaults to 1.0): rotate during this fraction of the steps.
        cutoff_step_index (`int`, *optional*): or during this many steps (give one of the two).
    """

    tensor_inputs = ["latents"]

    @register_to_config
    def __init__(self, angle_degrees: float = 0.0, cutoff_step_ratio: float | None = 1.0,
                 cutoff_step_index: int | None = None):
        if cutoff_step_index is not None and cutoff_step_ratio == 1.0:
            cutoff_step_ratio = None  # an explicit index replaces the default ratio
        super().__init__(cutoff_step_ratio=cutoff_step_ratio, cutoff_step_index=cutoff_step_index)

    def rotating_steps(self, num_steps: int) -> int:
        """m: how many of `num_steps` steps rotate."""
        if self.config.cutoff_step_index is not None:
            return max(0, min(int(self.config.cutoff_step_index), num_steps))
        return max(1, int(round(num_steps * self.config.cutoff_step_ratio))) if self.config.cutoff_step_ratio else 0

    def callback_fn(self, pipeline, step_index: int, timestep, callback_kwargs: dict) -> dict:
        angle = float(self.config.angle_degrees)
        steps = self.rotating_steps(len(pipeline.scheduler.timesteps))
        if angle == 0.0 or step_index >= steps:
            return callback_kwargs
        return {**callback_kwargs, "latents": rotate(callback_kwargs["latents"], angle / steps)}


__all__ = [
    "EquivarianceResult",
    "RotationControl",
    "circular_mask",
    "disc_lowpass",
    "rotate",
    "rotational_equivariance_error",
]
