"""Batched CIFAR augmentation in torch, on whatever device the batch lives on (no per-example PIL)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def to_float_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 images in 0..255 → float images in [0, 1] (float input passes through)."""
    return images.float().div_(255) if images.dtype == torch.uint8 else images


def random_crop(images: torch.Tensor, padding: int, padding_mode: str = "reflect") -> torch.Tensor:
    """Pad by `padding` pixels and take a random crop of the original size, independently per image."""
    if padding <= 0:
        return images
    n, c, h, w = images.shape
    # reflect padding needs a float tensor in F.pad; do the pad in float and cast back.
    padded = F.pad(images.float(), (padding,) * 4, mode=padding_mode).to(images.dtype)
    dy = torch.randint(0, 2 * padding + 1, (n,), device=images.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), device=images.device)
    rows = (dy[:, None] + torch.arange(h, device=images.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=images.device))[:, None, None, :]
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    channel = torch.arange(c, device=images.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def random_flip(images: torch.Tensor, p: float = 0.5) -> torch.Tensor:
    """Mirror each image left-right with probability `p`."""
    flip = torch.rand(images.shape[0], device=images.device) < p
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def cutout(images: torch.Tensor, size: int, fill: torch.Tensor | float = 0.0) -> torch.Tensor:
    """Cutout (DeVries & Taylor, 2017): fill one `size`×`size` square per image, centred anywhere."""
    if size <= 0:
        return images
    n, _, h, w = images.shape
    top = torch.randint(0, h, (n, 1, 1), device=images.device) - size // 2
    left = torch.randint(0, w, (n, 1, 1), device=images.device) - size // 2
    ys = torch.arange(h, device=images.device)[None, :, None]
    xs = torch.arange(w, device=images.device)[None, None, :]
    inside = (ys >= top) & (ys < top + size) & (xs >= left) & (xs < left + size)
    fill = torch.as_tensor(fill, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    return torch.where(inside[:, None], fill, images)


@dataclass
class BatchAugmentation:
    """The standard CIFAR augmentation applied to a whole batch: random crop, horizontal flip, optional cutout.

    Call it on uint8 (N, 3, H, W) images; it returns float images in [0, 1].

    Args:
        crop_padding: pixels of padding before the random crop (4 is the standard CIFAR recipe; 0 disables).
        padding_mode: `"reflect"` (default) or any other mode of `torch.nn.functional.pad`.
        flip: mirror half of the images left-right.
        cutout_size: side of the cutout square in pixels (0 disables; 16 in DeVries & Taylor for CIFAR-10).
        cutout_fill: value of the cut square in [0, 1] image space (per channel or scalar).
    """

    crop_padding: int = 4
    padding_mode: str = "reflect"
    flip: bool = True
    cutout_size: int = 0
    cutout_fill: tuple[float, ...] | float = (0.4914, 0.4822, 0.4465)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        images = random_crop(images, self.crop_padding, self.padding_mode)
        if self.flip:
            images = random_flip(images)
        images = to_float_images(images)
        return cutout(images, self.cutout_size, self.cutout_fill)


def translate(images: torch.Tensor, shift: int) -> torch.Tensor:
    """Images shifted by `shift` pixels down and right (up and left when negative), reflect-padded at the edges."""
    if shift == 0:
        return images
    n = abs(shift)
    padded = torch.nn.functional.pad(images, (n, n, n, n), mode="reflect")
    height, width = images.shape[-2:]
    start = 0 if shift > 0 else 2 * n
    return padded[..., start:start + height, start:start + width]


def tta_views(images: torch.Tensor, shift: int = 0) -> list[tuple[torch.Tensor, float]]:
    """Test-time augmentation views and their weights, the image itself first: the image and its mirror; with
    `shift`, each also translated by ±`shift` pixels diagonally, the unshifted view weighing 1/2 and each shifted
    one 1/4 (airbench's level-2 TTA)."""
    views = []
    for base in (images, images.flip(-1)):
        if shift:
            views += [(base, 0.5), (translate(base, shift), 0.25), (translate(base, -shift), 0.25)]
        else:
            views.append((base, 1.0))
    return views


def cutmix(images: torch.Tensor, labels: torch.Tensor, alpha: float = 1.0,
           generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, float]:
    """CutMix (Yun et al., 2019) on a whole batch: a random box of each image is replaced by the same box of another
    image of the batch (a random permutation). Returns `(images, other_labels, weight)`: the loss is
    `weight · CE(labels) + (1 − weight) · CE(other_labels)`, `weight` the kept area fraction (λ ~ Beta(α, α), the box
    clipped at the border)."""
    n, _, height, width = images.shape
    device = images.device
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    order = torch.randperm(n, device=device, generator=generator)
    cut_h, cut_w = int(height * math.sqrt(1 - lam)), int(width * math.sqrt(1 - lam))
    cy = int(torch.randint(height, (1,), generator=generator))
    cx = int(torch.randint(width, (1,), generator=generator))
    y1, y2 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
    x1, x2 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
    mixed = images.clone()
    mixed[:, :, y1:y2, x1:x2] = images[order, :, y1:y2, x1:x2]
    weight = 1.0 - (y2 - y1) * (x2 - x1) / (height * width)
    return mixed, labels[order], weight


def mixup(images: torch.Tensor, labels: torch.Tensor, alpha: float = 0.2,
          generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, float]:
    """MixUp (Zhang et al., 2018) on a whole batch: each image blended with another image of the batch (a random
    permutation), `λ·x + (1 − λ)·x_other` with one λ ~ Beta(α, α) per batch. Returns `(images, other_labels, λ)`, the
    loss being `λ · CE(labels) + (1 − λ) · CE(other_labels)` (as for [`cutmix`])."""
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    order = torch.randperm(len(images), device=images.device, generator=generator)
    return images.lerp(images[order], 1 - lam), labels[order], lam
