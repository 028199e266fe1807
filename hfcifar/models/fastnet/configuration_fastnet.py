"""FastNet configuration: the small airbench-style conv net hfcifar trains by default on CPU."""

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


HIDDEN_ACTS = ("gelu", "relu", "crrelu")


class FastNetConfig(PreTrainedConfig):
    r"""
    Configuration of a [`FastNetForImageClassification`]: a stem convolution followed by blocks of
    `conv → max-pool → BN → GELU → conv → BN → GELU`, a global max-pool and a bias-free linear head
    whose logits are multiplied by `logit_scale` (the layout of Keller Jordan's airbench, sized for CPU).

    Args:
        num_channels (`int`, *optional*, defaults to 3):
            Number of input channels.
        image_size (`int`, *optional*, defaults to 32):
            Height and width of the input images.
        stem_width (`int`, *optional*, defaults to 24):
            Output channels of the stem convolution.
        widths (`list[int]`, *optional*, defaults to `[32, 64, 128]`):
            Output channels of each block; every block halves the spatial size.
        hidden_act (`str`, *optional*, defaults to `"gelu"`):
            Activation after every batch norm: `"gelu"`, `"relu"` or `"crrelu"` (CRReLU, ReLU plus a learnable
            correction ε·x·exp(−x²/2), one ε per activation layer, initialized to 0.01).
        batch_norm_momentum (`float`, *optional*, defaults to 0.1):
            Momentum of the running statistics of every batch norm, in [0, 1] (`None`: a cumulative average).
        logit_scale (`float`, *optional*, defaults to `1/9`):
            Constant the logits are multiplied by; a small scale keeps early logits soft.
        mean (`list[float]`, *optional*, defaults to the CIFAR-10 channel means):
            Per-channel mean subtracted inside the model; inputs are images in [0, 1].
        std (`list[float]`, *optional*, defaults to the CIFAR-10 channel standard deviations):
            Per-channel standard deviation the centred input is divided by.

    Example:

    ```python
    >>> from hfcifar.models.fastnet import FastNetConfig, FastNetForImageClassification

    >>> config = FastNetConfig(widths=[64, 128, 256])
    >>> model = FastNetForImageClassification(config)
    >>> config.id2label[0]
    'airplane'
    ```
    """

    model_type = "hfcifar-fastnet"

    def __init__(
        self,
        num_channels=3,
        image_size=32,
        stem_width=24,
        widths=(32, 64, 128),
        hidden_act="gelu",
        batch_norm_momentum=0.1,
        logit_scale=1 / 9,
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        **kwargs,
    ):
        check_quantization_loadable(kwargs)
        check_image_fields(num_channels, image_size, mean, std)
        check_positive("stem_width", stem_width)
        check_positive("widths", widths)
        if 2 ** len(widths) > image_size:
            raise ValueError(f"Each of the {len(widths)} blocks halves the image: an image of size {image_size} "
                             f"allows at most {image_size.bit_length() - 1}; got widths={list(widths)}.")
        check_choice("hidden_act", hidden_act, HIDDEN_ACTS)
        if batch_norm_momentum is not None:
            check_probability("batch_norm_momentum", batch_norm_momentum)
        if isinstance(logit_scale, bool) or not isinstance(logit_scale, (int, float)) or not logit_scale > 0:
            raise ValueError(f"logit_scale must be a positive number; got {logit_scale!r}.")
        self.num_channels = num_channels
        self.image_size = image_size
        self.stem_width = stem_width
        self.widths = list(widths)
        self.hidden_act = hidden_act
        self.batch_norm_momentum = batch_norm_momentum
        self.logit_scale = logit_scale
        self.mean = list(mean)
        self.std = list(std)
        super().__init__(**default_cifar10_labels(kwargs))


__all__ = ["FastNetConfig"]
