"""ResNet configuration: the CIFAR ResNets of He et al. (2016), the ImageNet-style ResNets of the kuangliu/pytorch-cifar
layout and ResNeXt (Xie et al., 2017), all in one config."""

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


# Copied from hfcifar.models.fastnet.configuration_fastnet.check_choice
def check_choice(name: str, value, choices: tuple) -> None:
    """Raise a `ValueError` listing `choices` unless `value` is one of them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}.")


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


BLOCK_TYPES = ("basic", "bottleneck")
SHORTCUT_TYPES = ("projection", "identity_pad")


class CifarResNetConfig(PreTrainedConfig):
    r"""
    Configuration of a [`CifarResNetForImageClassification`]: a 3×3 stem convolution (no max-pool, CIFAR images are
    small), stages of residual blocks, a global average pool and a linear head ("Deep Residual Learning for Image
    Recognition", He et al., CVPR 2016, https://arxiv.org/abs/1512.03385).

    The same config describes the paper's CIFAR networks (ResNet-20/32/56: three stages of 16/32/64 channels and
    parameter-free shortcuts), the ImageNet-style networks adapted to CIFAR by kuangliu/pytorch-cifar (ResNet-18 to
    101: four stages of 64 to 512 channels and projection shortcuts), and ResNeXt ("Aggregated Residual
    Transformations for Deep Neural Networks", Xie et al., CVPR 2017, https://arxiv.org/abs/1611.05431), which is a
    bottleneck ResNet whose 3×3 convolution is grouped.

    Args:
        num_channels (`int`, *optional*, defaults to 3):
            Number of input channels.
        image_size (`int`, *optional*, defaults to 32):
            Height and width of the input images.
        stem_width (`int`, *optional*, defaults to 64):
            Output channels of the stem convolution.
        hidden_sizes (`list[int]`, *optional*, defaults to `[64, 128, 256, 512]`):
            Base width ("planes") of each stage. A stage of basic blocks outputs this many channels, a stage of
            bottleneck blocks four times as many. The first stage keeps the spatial size, every later one halves it.
        depths (`list[int]`, *optional*, defaults to `[2, 2, 2, 2]`):
            Number of residual blocks in each stage; as long as `hidden_sizes`.
        block_type (`str`, *optional*, defaults to `"basic"`):
            `"basic"` (two 3×3 convolutions) or `"bottleneck"` (1×1 reduce, 3×3, 1×1 expand by 4).
        shortcut_type (`str`, *optional*, defaults to `"projection"`):
            Shortcut of a block that changes the shape: `"projection"` (1×1 convolution + batch norm, the paper's
            option B) or `"identity_pad"` (parameter-free: subsample by the stride and zero-pad the new channels,
            the paper's option A, used for its CIFAR networks).
        groups (`int`, *optional*, defaults to 1):
            Number of groups of the 3×3 convolution of a bottleneck block (ResNeXt's cardinality). Basic blocks
            need 1.
        width_per_group (`int`, *optional*, defaults to 64):
            Channels per group of a bottleneck's 3×3 convolution for a stage of base width 64: the inner width of
            a bottleneck is `int(planes * width_per_group / 64) * groups`. Basic blocks need 64.
        mean (`list[float]`, *optional*, defaults to the CIFAR-10 channel means):
            Per-channel mean subtracted inside the model; inputs are images in [0, 1].
        std (`list[float]`, *optional*, defaults to the CIFAR-10 channel standard deviations):
            Per-channel standard deviation the centred input is divided by.

    Example:

    ```python
    >>> from hfcifar.models.resnet import CifarResNetConfig, CifarResNetForImageClassification

    >>> # ResNet-20 of He et al. (2016), Section 4.2
    >>> config = CifarResNetConfig(stem_width=16, hidden_sizes=[16, 32, 64], depths=[3, 3, 3], shortcut_type="identity_pad")
    >>> model = CifarResNetForImageClassification(config)
    >>> model.num_parameters()
    269722
    ```
    """

    model_type = "hfcifar-resnet"

    def __init__(
        self,
        num_channels=3,
        image_size=32,
        stem_width=64,
        hidden_sizes=(64, 128, 256, 512),
        depths=(2, 2, 2, 2),
        block_type="basic",
        shortcut_type="projection",
        groups=1,
        width_per_group=64,
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        **kwargs,
    ):
        check_quantization_loadable(kwargs)
        check_image_fields(num_channels, image_size, mean, std)
        check_choice("block_type", block_type, BLOCK_TYPES)
        check_choice("shortcut_type", shortcut_type, SHORTCUT_TYPES)
        check_positive("stem_width", stem_width)
        check_positive("hidden_sizes", hidden_sizes)
        check_positive("depths", depths)
        check_positive("groups", groups)
        check_positive("width_per_group", width_per_group)
        if len(hidden_sizes) != len(depths):
            raise ValueError(f"hidden_sizes and depths need one entry per stage; got {list(hidden_sizes)} and {list(depths)}.")
        if block_type == "basic" and (groups != 1 or width_per_group != 64):
            raise ValueError("Basic blocks have no grouped convolution: use groups=1 and width_per_group=64.")
        self.num_channels = num_channels
        self.image_size = image_size
        self.stem_width = stem_width
        self.hidden_sizes = list(hidden_sizes)
        self.depths = list(depths)
        self.block_type = block_type
        self.shortcut_type = shortcut_type
        self.groups = groups
        self.width_per_group = width_per_group
        self.mean = list(mean)
        self.std = list(std)
        super().__init__(**default_cifar10_labels(kwargs))


__all__ = ["CifarResNetConfig"]
