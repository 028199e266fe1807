"""ConvNet configuration: the small conv net of the dataset-distillation literature (Zhao et al., 2021)."""

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


NET_NORMS = ("instancenorm", "batchnorm", "layernorm", "groupnorm", "none")
NET_ACTS = ("relu", "leakyrelu", "sigmoid", "swish")
NET_POOLINGS = ("avgpooling", "maxpooling", "none")


class ConvNetConfig(PreTrainedConfig):
    r"""
    Configuration of a [`ConvNetForImageClassification`], the "ConvNet" that dataset condensation and distillation
    papers learn and evaluate their synthetic images with ("Dataset Condensation with Gradient Matching", Zhao et
    al., ICLR 2021, https://arxiv.org/abs/2006.05929; also DSA, DM, MTT and their successors): `net_depth` blocks of
    `conv3×3 (with bias) → norm → activation → 2×2 pool`, then a linear layer on the flattened features. The
    default (width 128, depth 3, instance norm, ReLU, average pooling) is the ConvNet of those papers' CIFAR
    tables; the other values are the variants of their ablations (ConvNetBN, ConvNetD4, ConvNetW256, ...).

    Args:
        num_channels (`int`, *optional*, defaults to 3):
            Number of input channels.
        image_size (`int`, *optional*, defaults to 32):
            Height and width of the input images.
        net_width (`int`, *optional*, defaults to 128):
            Output channels of every convolution.
        net_depth (`int`, *optional*, defaults to 3):
            Number of blocks.
        net_norm (`str`, *optional*, defaults to `"instancenorm"`):
            Normalization after every convolution: `"instancenorm"` (a `GroupNorm` with one group per channel, as
            in the reference code, so it keeps a learnable scale and shift per channel), `"batchnorm"`,
            `"layernorm"` (over channels and positions, with a learnable scale and shift per element),
            `"groupnorm"` (4 groups) or `"none"`.
        net_act (`str`, *optional*, defaults to `"relu"`):
            Activation of every block: `"relu"`, `"leakyrelu"` (slope 0.01), `"sigmoid"` or `"swish"`.
        net_pooling (`str`, *optional*, defaults to `"avgpooling"`):
            Pooling that ends every block: `"avgpooling"` or `"maxpooling"` (2×2, stride 2, halving the spatial
            size) or `"none"`.
        mean (`list[float]`, *optional*, defaults to the CIFAR-10 channel means):
            Per-channel mean subtracted inside the model; inputs are images in [0, 1].
        std (`list[float]`, *optional*, defaults to the CIFAR-10 channel standard deviations):
            Per-channel standard deviation the centred input is divided by.

    Example:

    ```python
    >>> from hfcifar.models.convnet import ConvNetConfig, ConvNetForImageClassification

    >>> # ConvNetBN of the ablations: batch norm instead of instance norm
    >>> config = ConvNetConfig(net_norm="batchnorm")
    >>> model = ConvNetForImageClassification(config)
    >>> model.num_parameters()
    320010
    ```
    """

    model_type = "hfcifar-convnet"

    def __init__(
        self,
        num_channels=3,
        image_size=32,
        net_width=128,
        net_depth=3,
        net_norm="instancenorm",
        net_act="relu",
        net_pooling="avgpooling",
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        **kwargs,
    ):
        check_quantization_loadable(kwargs)
        check_image_fields(num_channels, image_size, mean, std)
        check_choice("net_norm", net_norm, NET_NORMS)
        check_choice("net_act", net_act, NET_ACTS)
        check_choice("net_pooling", net_pooling, NET_POOLINGS)
        check_positive("net_width", net_width)
        check_positive("net_depth", net_depth)
        if net_pooling != "none" and image_size % 2**net_depth:
            raise ValueError(f"{net_depth} 2×2 poolings do not divide an image of size {image_size} evenly.")
        if net_norm == "groupnorm" and net_width % 4:
            raise ValueError(f"net_norm='groupnorm' uses 4 groups: net_width must be a multiple of 4, not {net_width}.")
        self.num_channels = num_channels
        self.image_size = image_size
        self.net_width = net_width
        self.net_depth = net_depth
        self.net_norm = net_norm
        self.net_act = net_act
        self.net_pooling = net_pooling
        self.mean = list(mean)
        self.std = list(std)
        super().__init__(**default_cifar10_labels(kwargs))


__all__ = ["ConvNetConfig"]
