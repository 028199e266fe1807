"""DRS's sub-images (Xia et al., 2024, §3 and Figure 2): the checkerboard down-sampling of an image into x^l and x^r,
their merge and up-sampling, and the noisy input a base classifier of one sub-image sees during training.
"""

from __future__ import annotations

import torch

#: The two sub-images of DRS, in the paper's names: x^l and x^r.
SUB_IMAGES = ("l", "r")


def _sub_image_columns(height: int, width: int, which: int, device) -> torch.Tensor:
    # Row i of sub-image k holds the pixels whose column j has j ≡ i + k (mod 2): a checkerboard split, so each
    # sub-image keeps every row and every other column, shifted by one on alternate rows (the paper's Figure 2).
    rows = torch.arange(height, device=device).view(-1, 1)
    pairs = torch.arange(width // 2, device=device).view(1, -1)
    return 2 * pairs + (rows + which) % 2


def downsample_sub_images(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """DRS's down-sampling (Xia et al., 2024, §3 and Figure 2): split images into the two sub-images x^l, x^r.

    The pixel indices are split in a checkerboard pattern: x^l takes the pixels (i, j) with i + j even, x^r those
    with i + j odd, each packed row by row into an H × W/2 image (32 × 16 for CIFAR-10, m = n = d/2). The two
    sub-images partition the pixels, so for any perturbation ‖δ‖² = ‖δ^l‖² + ‖δ^r‖² — what the DRS radius needs.

    Args:
        images (`torch.Tensor` of shape `(batch, channels, H, W)`, W even).

    Returns:
        `(x_l, x_r)`, each of shape `(batch, channels, H, W // 2)`.
    """
    if images.dim() != 4 or images.shape[-1] % 2:
        raise ValueError(f"images must have shape (batch, channels, height, even width); got {tuple(images.shape)}.")
    n, c, h, w = images.shape
    return tuple(
        images.gather(-1, _sub_image_columns(h, w, k, images.device).expand(n, c, h, w // 2)) for k in (0, 1)
    )


def merge_sub_images(x_l: torch.Tensor, x_r: torch.Tensor) -> torch.Tensor:
    """The inverse of `downsample_sub_images`: put every pixel of x^l and x^r back where it came from."""
    n, c, h, half = x_l.shape
    images = x_l.new_empty(n, c, h, 2 * half)
    for k, sub in enumerate((x_l, x_r)):
        images.scatter_(-1, _sub_image_columns(h, 2 * half, k, x_l.device).expand(n, c, h, half), sub)
    return images


def upsample_sub_image(sub_image: torch.Tensor) -> torch.Tensor:
    """The base classifier's view of a sub-image: nearest-neighbour interpolation back to H × W (Xia et al., §4.2).

    The paper interpolates the sub-images to the original size so that standard CIFAR-10 architectures (and
    pre-trained weights) serve as f^l and f^r. Each pixel of row i sits in the 1 × 2 cell {2q, 2q + 1} it came
    from, so duplicating it across that cell puts it back at its own position and fills the missing neighbour.
    """
    return sub_image.repeat_interleave(2, dim=-1)


def noisy_base_input(images: torch.Tensor, sigma: float, sub_image: str | None = None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """What a base classifier sees under the smoothing noise: clamp(x + ε, 0, 1) with ε ~ N(0, σ² I).

    With `sub_image="l"` or `"r"`, the DRS view of that sub-image instead: `upsample_sub_image(x^k + ε^k)`, where
    the noise ε^k lives on the sub-image's own m = d/2 pixels. Gaussian data augmentation (Cohen et al., §4;
    `GaussianNoiseTrainer`) trains base classifiers on exactly these inputs.
    """
    if sub_image not in (None, *SUB_IMAGES):
        raise ValueError(f"sub_image must be None (the whole image, RS) or one of {SUB_IMAGES} (DRS); got {sub_image!r}.")
    noise = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    noisy = (images + sigma * noise).clamp_(0, 1)
    if sub_image is None:
        return noisy
    return upsample_sub_image(downsample_sub_images(noisy)[SUB_IMAGES.index(sub_image)])
