"""Image processor for hfcifar classifiers: any image → RGB 32×32 `pixel_values` in [0, 1].

hfcifar models normalize inside the model, so the processor only converts to RGB, resizes to the model's
input size and rescales to [0, 1]. It is built on transformers' PIL backend and imports nothing from hfcifar,
so it can travel with a model as Hub remote code.
"""

from transformers.image_processing_backends import PilBackend
from transformers.image_utils import PILImageResampling


class CifarImageProcessor(PilBackend):
    r"""
    Turns PIL images, numpy arrays or tensors (any size, any mode, uint8 or float) into the `pixel_values` an
    hfcifar classifier expects: float32, shape (batch, 3, 32, 32), values in [0, 1], not standardized.

    Args:
        do_resize (`bool`, *optional*, defaults to `True`):
            Resize images whose size differs from `size` (32×32 images pass through unchanged).
        size (`dict[str, int]`, *optional*, defaults to `{"height": 32, "width": 32}`):
            The model's input size.
        resample (`PILImageResampling`, *optional*, defaults to `BILINEAR`):
            Filter used when resizing.
        do_rescale (`bool`, *optional*, defaults to `True`):
            Divide uint8 pixel values by 255.
        do_convert_rgb (`bool`, *optional*, defaults to `True`):
            Convert grayscale, palette and RGBA images to RGB.

    Example:

    ```python
    >>> from PIL import Image
    >>> from hfcifar import CifarImageProcessor

    >>> processor = CifarImageProcessor()
    >>> processor(Image.new("L", (64, 48)), return_tensors="pt")["pixel_values"].shape
    torch.Size([1, 3, 32, 32])
    ```
    """

    model_input_names = ["pixel_values"]
    resample = PILImageResampling.BILINEAR
    size = {"height": 32, "width": 32}
    do_resize = True
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = False
    do_convert_rgb = True


__all__ = ["CifarImageProcessor"]
