"""Wide ResNet configuration: the pre-activation CIFAR ResNets of Zagoruyko & Komodakis (2016), WRN-depth-k."""

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


# Copied from hfcifar.models.fastnet.configuration_fastnet.check_probability
def check_probability(name: str, value) -> None:
    """Raise a `ValueError` unless `value` is a number in [0, 1] (a dropout rate, a momentum)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number in [0, 1]; got {value!r}.")


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


class WideResNetConfig(PreTrainedConfig):
    r"""
    Configuration of a [`WideResNetForImageClassification`] ("Wide Residual Networks", Zagoruyko & Komodakis,
    BMVC 2016, https://arxiv.org/abs/1605.07146): a 3×3 stem convolution of 16 channels, three groups of
    pre-activation basic blocks (`BN → ReLU → conv3×3 → BN → ReLU → dropout → conv3×3`) of 16k/32k/64k channels
    for a widen factor k, a final BN-ReLU, a global average pool and a linear head. WRN-28-10 is `depth=28,
    widen_factor=10`.

    Args:
        num_channels (`int`, *optional*, defaults to 3):
            Number of input channels.
        image_size (`int`, *optional*, defaults to 32):
            Height and width of the input images.
        depth (`int`, *optional*, defaults to 28):
            Number of convolution and linear layers, counted as the paper does: `6n + 4` for `n` blocks per group,
            so it must be at least 10 with `depth - 4` a multiple of 6.
        widen_factor (`int`, *optional*, defaults to 10):
            Width multiplier k of the three groups, which have 16k, 32k and 64k channels.
        dropout_rate (`float`, *optional*, defaults to 0.0):
            Dropout probability between the two convolutions of every block (the paper uses 0.3 for its best
            CIFAR results).
        mean (`list[float]`, *optional*, defaults to the CIFAR-10 channel means):
            Per-channel mean subtracted inside the model; inputs are images in [0, 1].
        std (`list[float]`, *optional*, defaults to the CIFAR-10 channel standard deviations):
            Per-channel standard deviation the centred input is divided by.

    Example:

    ```python
    >>> from hfcifar.models.wide_resnet import WideResNetConfig, WideResNetForImageClassification

    >>> config = WideResNetConfig(depth=16, widen_factor=4, dropout_rate=0.3)  # WRN-16-4
    >>> model = WideResNetForImageClassification(config)
    >>> model.num_parameters()
    2748890
    ```
    """

    model_type = "hfcifar-wide_resnet"

    def __init__(
        self,
        num_channels=3,
        image_size=32,
        depth=28,
        widen_factor=10,
        dropout_rate=0.0,
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        **kwargs,
    ):
        check_quantization_loadable(kwargs)
        check_image_fields(num_channels, image_size, mean, std)
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 10 or (depth - 4) % 6:
            raise ValueError(f"A Wide ResNet has depth 6n + 4 with n >= 1 blocks per group (10, 16, 22, 28, ...); got {depth}.")
        check_positive("widen_factor", widen_factor)
        check_probability("dropout_rate", dropout_rate)
        self.num_channels = num_channels
        self.image_size = image_size
        self.depth = depth
        self.widen_factor = widen_factor
        self.dropout_rate = dropout_rate
        self.mean = list(mean)
        self.std = list(std)
        super().__init__(**default_cifar10_labels(kwargs))


__all__ = ["WideResNetConfig"]
