"""DenseNet configuration: DenseNet-BC (Huang et al., 2017) in the CIFAR layout of kuangliu/pytorch-cifar."""

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


class DenseNetConfig(PreTrainedConfig):
    r"""
    Configuration of a [`DenseNetForImageClassification`] ("Densely Connected Convolutional Networks", Huang et al.,
    CVPR 2017, https://arxiv.org/abs/1608.06993): DenseNet-BC with a 3×3 stem convolution of `2 * growth_rate`
    channels, dense blocks of bottleneck layers (`BN → ReLU → conv1×1 → BN → ReLU → conv3×3`, each adding
    `growth_rate` channels to the running concatenation), transitions (`BN → ReLU → conv1×1 → 2×2 average pool`)
    that compress the channels between blocks, a final BN-ReLU, a global average pool and a linear head. With four
    blocks this is the layout kuangliu/pytorch-cifar trains on CIFAR-10 (DenseNet-121 is `block_config=[6, 12, 24,
    16]`); the paper's own CIFAR networks have three blocks of equal depth (see the example).

    Args:
        num_channels (`int`, *optional*, defaults to 3):
            Number of input channels.
        image_size (`int`, *optional*, defaults to 32):
            Height and width of the input images.
        growth_rate (`int`, *optional*, defaults to 32):
            Channels each dense layer adds (the paper's k). The stem outputs `2 * growth_rate` channels.
        block_config (`list[int]`, *optional*, defaults to `[6, 12, 24, 16]`):
            Number of dense layers in each dense block. A transition follows every block but the last, halving
            the spatial size.
        compression (`float`, *optional*, defaults to 0.5):
            Fraction θ of the channels a transition keeps (rounded down); 0.5 is the paper's DenseNet-BC.
        bottleneck_width (`int`, *optional*, defaults to 4):
            Output channels of a dense layer's 1×1 convolution, in multiples of `growth_rate` (the paper's 4k).
        dropout_rate (`float`, *optional*, defaults to 0.0):
            Dropout probability after every convolution but the stem's; the paper uses 0.2 when it trains without
            data augmentation.
        mean (`list[float]`, *optional*, defaults to the CIFAR-10 channel means):
            Per-channel mean subtracted inside the model; inputs are images in [0, 1].
        std (`list[float]`, *optional*, defaults to the CIFAR-10 channel standard deviations):
            Per-channel standard deviation the centred input is divided by.

    Example:

    ```python
    >>> from hfcifar.models.densenet import DenseNetConfig, DenseNetForImageClassification

    >>> # DenseNet-BC (L=100, k=12), the paper's CIFAR network: three blocks of 16 bottleneck layers
    >>> config = DenseNetConfig(growth_rate=12, block_config=[16, 16, 16])
    >>> model = DenseNetForImageClassification(config)
    >>> model.num_parameters()
    769162
    ```
    """

    model_type = "hfcifar-densenet"

    def __init__(
        self,
        num_channels=3,
        image_size=32,
        growth_rate=32,
        block_config=(6, 12, 24, 16),
        compression=0.5,
        bottleneck_width=4,
        dropout_rate=0.0,
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        **kwargs,
    ):
        check_quantization_loadable(kwargs)
        check_image_fields(num_channels, image_size, mean, std)
        check_positive("growth_rate", growth_rate)
        check_positive("block_config", block_config)  # dense blocks of at least one layer
        if 2 ** (len(block_config) - 1) > image_size:
            raise ValueError(f"The {len(block_config) - 1} transitions halve the image: block_config="
                             f"{list(block_config)} has too many dense blocks for an image of size {image_size}.")
        if isinstance(compression, bool) or not isinstance(compression, (int, float)) or not 0 < compression <= 1:
            raise ValueError(f"compression must lie in (0, 1]; got {compression!r}.")
        check_positive("bottleneck_width", bottleneck_width)
        check_probability("dropout_rate", dropout_rate)
        self.num_channels = num_channels
        self.image_size = image_size
        self.growth_rate = growth_rate
        self.block_config = list(block_config)
        self.compression = compression
        self.bottleneck_width = bottleneck_width
        self.dropout_rate = dropout_rate
        self.mean = list(mean)
        self.std = list(std)
        super().__init__(**default_cifar10_labels(kwargs))


__all__ = ["DenseNetConfig"]
