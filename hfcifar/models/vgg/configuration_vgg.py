"""VGG configuration: VGG with batch norm (Simonyan & Zisserman, 2015) in the CIFAR layout of kuangliu/pytorch-cifar."""

from transformers import PreTrainedConfig


# Copied from hfcifar.models.fastnet.configuration_fastnet.CIFAR10_LABELS
CIFAR10_LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
# Copied from hfcifar.models.fastnet.configuration_fastnet.CIFAR10_MEAN
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
# Copied from hfcifar.models.fastnet.configuration_fastnet.CIFAR10_STD
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


# Copied from hfcifar.models.fastnet.configuration_fastnet.default_cifar10_labels
def default_cifar10_labels(kwargs: dict) -> dict:
    """Give a config the CIFAR-10 class names unless the caller chose labels of its own."""
    if "id2label" not in kwargs and "num_labels" not in kwargs:
        kwargs["id2label"] = dict(enumerate(CIFAR10_LABELS))
        kwargs["label2id"] = {name: i for i, name in enumerate(CIFAR10_LABELS)}
    return kwargs


# Copied from hfcifar.models.fastnet.configuration_fastnet.check_positive
def check_positive(name: str, value) -> None:
    """Raise a `ValueError` unless `value` is an integer ≥ 1, or a non-empty list of them."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values or any(isinstance(v, (bool, float)) or not hasattr(v, "__index__") or v < 1 for v in values):
        kind = "a non-empty list of integers ≥ 1" if isinstance(value, (list, tuple)) else "an integer ≥ 1"
        raise ValueError(f"{name} must be {kind}; got {value!r}.")


# Copied from hfcifar.models.fastnet.configuration_fastnet.check_image_fields
def check_image_fields(num_channels, image_size, mean, std) -> None:
    """Raise a `ValueError` unless the input size is positive and `mean`/`std` hold one entry per channel, σ > 0."""
    check_positive("num_channels", num_channels)
    check_positive("image_size", image_size)
    if len(mean) != num_channels or len(std) != num_channels:
        raise ValueError(f"mean and std need one entry per input channel ({num_channels}); "
                         f"got {list(mean)} and {list(std)}.")
    if not all(s > 0 for s in std):
        raise ValueError(f"std must be positive in every channel; got {list(std)}.")


# Copied from hfcifar.models.fastnet.configuration_fastnet.check_quantization_loadable
def check_quantization_loadable(kwargs: dict) -> None:
    """Raise an `ImportError` that names the fix when the config is of a QFX fixed-point model (hfcifar's `qfx`
    quantization) and nothing registered the `qfx` quantizer with transformers: `import hfcifar` does."""
    quantization = kwargs.get("quantization_config")
    method = quantization.get("quant_method") if isinstance(quantization, dict) else getattr(quantization, "quant_method", None)
    if method == "qfx":
        from transformers.quantizers.auto import AUTO_QUANTIZER_MAPPING

        if "qfx" not in AUTO_QUANTIZER_MAPPING:
            raise ImportError("This model is a QFX fixed-point model (quantization_config.quant_method='qfx'); its "
                              "quantizer is registered with transformers by hfcifar, which cannot travel as remote "
                              "code. `pip install hfcifar`, then `import hfcifar` before `from_pretrained`.")


class VGGConfig(PreTrainedConfig):
    r"""
    Configuration of a [`VGGForImageClassification`] ("Very Deep Convolutional Networks for Large-Scale Image
    Recognition", Simonyan & Zisserman, ICLR 2015, https://arxiv.org/abs/1409.1556): a plain stack of 3×3
    convolutions, each followed by batch norm and ReLU, with 2×2 max-pools between stages, then a single linear
    layer on the flattened features. This is the CIFAR layout of kuangliu/pytorch-cifar: the paper's three
    fully-connected layers (4096-4096-1000) become one 512 → 10 layer, since five max-pools leave a 1×1 map of 512
    channels.

    Args:
        num_channels (`int`, *optional*, defaults to 3):
            Number of input channels.
        image_size (`int`, *optional*, defaults to 32):
            Height and width of the input images.
        layers (`list[int | str]`, *optional*, defaults to VGG-16's
            `[64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]`):
            The feature extractor, in order: an integer is a 3×3 convolution with that many output channels and
            `"M"` a 2×2 max-pool that halves the spatial size. The paper's configurations A, B, D and E are
            VGG-11, -13, -16 and -19.
        batch_norm (`bool`, *optional*, defaults to `True`):
            Whether every convolution is followed by batch norm (the "VGG-BN" used on CIFAR; the paper had none).
        mean (`list[float]`, *optional*, defaults to the CIFAR-10 channel means):
            Per-channel mean subtracted inside the model; inputs are images in [0, 1].
        std (`list[float]`, *optional*, defaults to the CIFAR-10 channel standard deviations):
            Per-channel standard deviation the centred input is divided by.

    Example:

    ```python
    >>> from hfcifar.models.vgg import VGGConfig, VGGForImageClassification

    >>> # VGG-11 (the paper's configuration A)
    >>> config = VGGConfig(layers=[64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"])
    >>> model = VGGForImageClassification(config)
    >>> model.num_parameters()
    9231114
    ```
    """

    model_type = "hfcifar-vgg"

    def __init__(
        self,
        num_channels=3,
        image_size=32,
        layers=(64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
        batch_norm=True,
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        **kwargs,
    ):
        check_quantization_loadable(kwargs)
        check_image_fields(num_channels, image_size, mean, std)
        if not any(isinstance(x, int) for x in layers):
            raise ValueError(f"layers needs at least one convolution (a number of channels); got {list(layers)}.")
        for x in layers:
            if x != "M" and not (isinstance(x, int) and not isinstance(x, bool) and x > 0):
                raise ValueError(f'layers holds numbers of channels and "M" for a max-pool; got {x!r}.')
        if image_size % 2 ** layers.count("M"):
            raise ValueError(f"{layers.count('M')} max-pools do not divide an image of size {image_size} evenly.")
        self.num_channels = num_channels
        self.image_size = image_size
        self.layers = list(layers)
        self.batch_norm = batch_norm
        self.mean = list(mean)
        self.std = list(std)
        super().__init__(**default_cifar10_labels(kwargs))


__all__ = ["VGGConfig"]
