"""MobileNetV2 configuration: MobileNetV2 (Sandler et al., 2018) in the CIFAR layout of kuangliu/pytorch-cifar."""

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


HIDDEN_ACTS = ("relu", "relu6")


class CifarMobileNetV2Config(PreTrainedConfig):
    r"""
    Configuration of a [`CifarMobileNetV2ForImageClassification`] ("MobileNetV2: Inverted Residuals and Linear
    Bottlenecks", Sandler et al., CVPR 2018, https://arxiv.org/abs/1801.04381): a 3×3 stem convolution, stages of
    inverted residual blocks (`conv1×1 expand → BN → ReLU → depthwise conv3×3 → BN → ReLU → conv1×1 project →
    BN`), a 1×1 convolution to `last_channels`, a global average pool and a linear head.

    The defaults are the CIFAR layout of kuangliu/pytorch-cifar: the stem and the second stage have stride 1
    instead of 2, so a 32×32 image is reduced to 4×4 rather than 1×1; blocks of expansion factor 1 keep their 1×1
    expansion convolution; a block that changes the width at stride 1 adds a 1×1 convolution + batch norm shortcut;
    and the activation is ReLU. `hidden_act="relu6"`, `unit_expansion_conv=False` and `projection_shortcuts=False`
    give the paper's blocks (and torchvision's).

    Args:
        num_channels (`int`, *optional*, defaults to 3):
            Number of input channels.
        image_size (`int`, *optional*, defaults to 32):
            Height and width of the input images.
        stem_channels (`int`, *optional*, defaults to 32):
            Output channels of the stem convolution (before `width_multiplier`).
        inverted_residual_setting (`list[list[int]]`, *optional*, defaults to `[[1, 16, 1, 1], [6, 24, 2, 1],
            [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]`):
            One row `[t, c, n, s]` per stage, as in Table 2 of the paper: expansion factor t, output channels c
            (before `width_multiplier`), number of blocks n, and stride s of the first block. The default is the
            paper's table with the second stage's stride set to 1 for 32×32 inputs.
        last_channels (`int`, *optional*, defaults to 1280):
            Output channels of the final 1×1 convolution, which the classifier reads; not scaled by
            `width_multiplier` (the paper keeps it for multipliers below one).
        width_multiplier (`float`, *optional*, defaults to 1.0):
            Scales the stem's and every stage's channels (the paper's α), each rounded to a multiple of
            `channel_divisor`.
        channel_divisor (`int`, *optional*, defaults to 8):
            Scaled channel counts are rounded to a multiple of this, never down by more than 10%.
        hidden_act (`str`, *optional*, defaults to `"relu"`):
            Activation after the stem, the expansion and depthwise convolutions and the last convolution:
            `"relu"` (kuangliu/pytorch-cifar) or `"relu6"` (the paper).
        unit_expansion_conv (`bool`, *optional*, defaults to `True`):
            Whether blocks of expansion factor 1 still have their 1×1 expansion convolution (kuangliu/pytorch-cifar)
            or start with the depthwise convolution (the paper).
        projection_shortcuts (`bool`, *optional*, defaults to `True`):
            Whether a stride-1 block that changes the number of channels gets a 1×1 convolution + batch norm shortcut
            (kuangliu/pytorch-cifar) or no residual connection (the paper).
        mean (`list[float]`, *optional*, defaults to the CIFAR-10 channel means):
            Per-channel mean subtracted inside the model; inputs are images in [0, 1].
        std (`list[float]`, *optional*, defaults to the CIFAR-10 channel standard deviations):
            Per-channel standard deviation the centred input is divided by.

    Example:

    ```python
    >>> from hfcifar.models.mobilenet_v2 import CifarMobileNetV2Config, CifarMobileNetV2ForImageClassification

    >>> # the paper's blocks, at 32×32
    >>> config = CifarMobileNetV2Config(hidden_act="relu6", unit_expansion_conv=False, projection_shortcuts=False)
    >>> model = CifarMobileNetV2ForImageClassification(config)
    >>> model.num_parameters()
    2236682
    ```
    """

    model_type = "hfcifar-mobilenet_v2"

    def __init__(
        self,
        num_channels=3,
        image_size=32,
        stem_channels=32,
        inverted_residual_setting=(
            (1, 16, 1, 1),
            (6, 24, 2, 1),
            (6, 32, 3, 2),
            (6, 64, 4, 2),
            (6, 96, 3, 1),
            (6, 160, 3, 2),
            (6, 320, 1, 1),
        ),
        last_channels=1280,
        width_multiplier=1.0,
        channel_divisor=8,
        hidden_act="relu",
        unit_expansion_conv=True,
        projection_shortcuts=True,
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        **kwargs,
    ):
        check_quantization_loadable(kwargs)
        check_image_fields(num_channels, image_size, mean, std)
        if len(inverted_residual_setting) == 0 or any(len(row) != 4 for row in inverted_residual_setting):
            raise ValueError(
                f"inverted_residual_setting needs one [t, c, n, s] row per stage; got {inverted_residual_setting!r}."
            )
        for row in inverted_residual_setting:
            check_positive("every [t, c, n, s] row of inverted_residual_setting", row)
        check_positive("stem_channels", stem_channels)
        check_positive("last_channels", last_channels)
        check_positive("channel_divisor", channel_divisor)
        if isinstance(width_multiplier, bool) or not isinstance(width_multiplier, (int, float)) or width_multiplier <= 0:
            raise ValueError(f"width_multiplier must be a positive number; got {width_multiplier!r}.")
        check_choice("hidden_act", hidden_act, HIDDEN_ACTS)
        self.num_channels = num_channels
        self.image_size = image_size
        self.stem_channels = stem_channels
        self.inverted_residual_setting = [list(row) for row in inverted_residual_setting]
        self.last_channels = last_channels
        self.width_multiplier = width_multiplier
        self.channel_divisor = channel_divisor
        self.hidden_act = hidden_act
        self.unit_expansion_conv = unit_expansion_conv
        self.projection_shortcuts = projection_shortcuts
        self.mean = list(mean)
        self.std = list(std)
        super().__init__(**default_cifar10_labels(kwargs))


__all__ = ["CifarMobileNetV2Config"]
