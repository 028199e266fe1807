"""Post-training calibration: binary points (and signedness) of a quantized model from the values it computes.

`calibration_mode` puts every `FixedPointQuantizer` of a model in pass-through and has it record its input;
`calibrate_model` runs calibration images through the model that way and sets each binary point ("max": nothing
saturates, "mse": the least squared cast error). `quantize_model(..., calibration_images=...)` and the
post-training baseline (`post_training_quantization`, both in `convert.py`) call it.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from .arithmetic import CALIBRATION_METHODS
from .config import _record_quantization_config
from .modules import fixed_point_quantizers


@contextlib.contextmanager
def calibration_mode(model: nn.Module):
    """Within this context every quantizer of `model` passes its input through unchanged and records it."""
    quantizers = fixed_point_quantizers(model)
    for quantizer in quantizers.values():
        quantizer._observed = {}
    try:
        yield quantizers
    finally:
        for quantizer in quantizers.values():
            quantizer._observed = None


def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or not images.is_floating_point() or images.dim() != 4:
        raise ValueError("calibration_images must be a float tensor (N, 3, 32, 32) with values in [0, 1]; got "
                         f"{type(images).__name__} {getattr(images, 'dtype', '')} {tuple(getattr(images, 'shape', ()))}. "
                         "Convert uint8 images with hfcifar.data.to_float_images.")
    if len(images) == 0:
        raise ValueError("calibration_images is empty: pass at least one image.")


@torch.no_grad()
def calibrate_model(model: nn.Module, images: torch.Tensor, method: str = "mse", batch_size: int = 256) -> dict[str, int]:
    """Post-training calibration: run `images` through the float model (every quantizer in pass-through, evaluation
    mode) and set each quantizer's binary point and signedness from the values it saw.

    `method="max"` puts the binary point where nothing saturates; `"mse"` picks the position (at most 8 bits lower)
    that minimizes the mean squared cast error, trading rare large values for resolution. Returns the binary points.
    """
    _check_images(images)
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"calibration method must be one of {CALIBRATION_METHODS}; got {method!r}.")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with calibration_mode(model) as quantizers:
            for start in range(0, len(images), batch_size):
                model(pixel_values=images[start:start + batch_size].to(device))
            points = {name: q.calibrate(method=method) for name, q in quantizers.items() if q._observed.get("samples")}
    finally:
        model.train(was_training)
    _record_quantization_config(model)
    return points


__all__ = [
    "calibrate_model",
    "calibration_mode",
]
