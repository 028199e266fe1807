"""Pre-activation ResNet configuration: the CIFAR ResNets of He et al. (ECCV 2016) with `BN → ReLU → conv` blocks."""

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


class PreActResNetConfig(PreTrainedConfig):
    r"""
    Configuration of a [`PreActResNetForImageClassification`]: a 3×3 stem convolution, stages of pre-activation
    residual blocks (`BN → ReLU → conv3×3 → BN → ReLU → conv3×3`, added to the identity), a final `BN → ReLU`, a
    global average pool and a linear head ("Identity Mappings in Deep Residual Networks", He et al., ECCV 2016,
    https://arxiv.org/abs/1603.05027).

    The number of blocks of each stage (`depths`) is plain config state: a network grown during training (the
    self-expanding CNN method) saves its current `depths`, and `from_pretrained` rebuilds it at that size.

    Args:
        num_channels (`int`, *optional*, defaults to 3):
            Number of input channels.
        image_size (`int`, *optional*, defaults to 32):
            Height and width of the input images.
        stem_width (`int`, *optional*, defaults to 16):
            Output channels of the stem convolution.
        hidden_sizes (`list[int]`, *optional*, defaults to `[16, 32, 64]`):
            Output channels of each stage. The first stage keeps the spatial size, every later one halves it.
        depths (`list[int]`, *optional*, defaults to `[3, 3, 3]`):
            Number of residual blocks in each stage; as long as `hidden_sizes`. `[n, n, n]` is the paper's
            pre-activation ResNet-(6n+2).
        zero_init_residual (`bool`, *optional*, defaults to `True`):
            Initialize the last convolution of every block to zero, so that each block starts as the identity
            (the residual branch adds nothing until trained). Blocks that change the shape keep their 1×1 projection
            shortcut, so the network still passes information at initialization.
        mean (`list[float]`, *optional*, defaults to the CIFAR-10 channel means):
            Per-channel mean subtracted inside the model; inputs are images in [0, 1].
        std (`list[float]`, *optional*, defaults to the CIFAR-10 channel standard deviations):
            Per-channel standard deviation the centred input is divided by.

    Example:

    ```python
    >>> from hfcifar.models.preact_resnet import PreActResNetConfig, PreActResNetForImageClassification

    >>> # the pre-activation ResNet-20 (three stages of three blocks)
    >>> config = PreActResNetConfig(hidden_sizes=[16, 32, 64], depths=[3, 3, 3])
    >>> model = PreActResNetForImageClassification(config)
    >>> model.num_parameters()
    272282
    ```
    """

    model_type = "hfcifar-preact_resnet"

    def __init__(
        self,
        num_channels=3,
        image_size=32,
        stem_width=16,
        hidden_sizes=(16, 32, 64),
        depths=(3, 3, 3),
        zero_init_residual=True,
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        **kwargs,
    ):
        check_quantization_loadable(kwargs)
        check_image_fields(num_channels, image_size, mean, std)
        check_positive("stem_width", stem_width)
        check_positive("hidden_sizes", hidden_sizes)
        check_positive("depths", depths)
        if len(hidden_sizes) != len(depths):
            raise ValueError(f"hidden_sizes and depths need one entry per stage; got {list(hidden_sizes)} and {list(depths)}.")
        if 2 ** (len(hidden_sizes) - 1) > image_size:
            raise ValueError(f"Every stage after the first halves the image: an image of size {image_size} allows at "
                             f"most {image_size.bit_length()} stages; got hidden_sizes={list(hidden_sizes)}.")
        if not isinstance(zero_init_residual, bool):
            raise ValueError(f"zero_init_residual must be True or False; got {zero_init_residual!r}.")
        self.num_channels = num_channels
        self.image_size = image_size
        self.stem_width = stem_width
        self.hidden_sizes = list(hidden_sizes)
        self.depths = list(depths)
        self.zero_init_residual = zero_init_residual
        self.mean = list(mean)
        self.std = list(std)
        super().__init__(**default_cifar10_labels(kwargs))


__all__ = ["PreActResNetConfig"]
