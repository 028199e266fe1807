"""Binary ResNet configuration: the 1-bit CIFAR ResNets of ReSTE (Wu et al., ICCV 2023), with the estimator that
trains them (ReSTE or the straight-through estimator) chosen in the config."""

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


ESTIMATORS = ("reste", "ste")
POWER_SCHEDULES = ("cosine", "linear")
#: A binary network binarizes (1 bit) or keeps a tensor real-valued (32 bits, the paper's "1W/32A" activations).
SUPPORTED_BITS = (1, 32)


def check_bit_width(name: str, bits) -> int:
    """`bits` if it is a bit width a binary ResNet supports (1 or 32), else a `ValueError` saying what to pass."""
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise ValueError(f"{name} must be an integer number of bits (1 or 32); got {bits!r}.")
    if bits < 1:
        raise ValueError(f"{name} must be at least 1 bit; got {bits}. Use 1 to binarize or 32 to keep full precision.")
    if bits not in SUPPORTED_BITS:
        raise ValueError(
            f"{name}={bits} is not supported: a binary ResNet binarizes a tensor (1) or keeps it real-valued (32)."
        )
    return bits


class BinaryResNetConfig(PreTrainedConfig):
    r"""
    Configuration of a [`BinaryResNetForImageClassification`]: the CIFAR ResNet-(6n+2) of He et al. (2016) with
    every convolution inside the residual blocks binarized (weights and input activations to ±1), as trained in
    "Estimator Meets Equilibrium Perspective: A Rectified Straight Through Estimator for Binary Neural Networks
    Training" (Wu, Zheng, Liu & Zheng, ICCV 2023, https://arxiv.org/abs/2308.06689). The stem convolution and the
    classifier stay real-valued, as in the paper's CIFAR experiments.

    Args:
        num_channels (`int`, *optional*, defaults to 3):
            Number of input channels.
        image_size (`int`, *optional*, defaults to 32):
            Height and width of the input images.
        stem_width (`int`, *optional*, defaults to 16):
            Output channels of the real-valued stem convolution.
        hidden_sizes (`list[int]`, *optional*, defaults to `[16, 32, 64]`):
            Channels of each stage. The first stage keeps the 32×32 resolution, every later one halves it; a stage
            that widens uses the parameter-free option A shortcut (subsample and zero-pad).
        depths (`list[int]`, *optional*, defaults to `[3, 3, 3]`):
            Residual blocks per stage (ResNet-20: `[3, 3, 3]`); as long as `hidden_sizes`.
        estimator (`str`, *optional*, defaults to `"reste"`):
            How the gradient passes the sign function: `"reste"` (the Rectified Straight Through Estimator, a power
            function `sign(z)|z|^(1/o)` in the backward pass) or `"ste"` (BinaryConnect's straight-through
            estimator, gradient 1 where |z| ≤ `ste_threshold`). The forward pass is `sign` either way.
        weight_bits (`int`, *optional*, defaults to 1):
            1 binarizes the block convolutions' weights (sign times their mean magnitude), 32 keeps them real.
        activation_bits (`int`, *optional*, defaults to 1):
            1 binarizes the block convolutions' inputs ("1W/1A"), 32 keeps them real ("1W/32A").
        reste_power_start (`float`, *optional*, defaults to 1.0):
            ReSTE's power `o` at the start of training (`o = 1` is the straight-through estimator).
        reste_power_end (`float`, *optional*, defaults to 3.0):
            `o` at the end of training (the paper's `o_end = 3`); a larger `o` brings the estimator closer to
            `sign` (smaller estimating error) at the cost of less stable gradients.
        reste_power_schedule (`str`, *optional*, defaults to `"cosine"`):
            How `o` moves from start to end with training progress p ∈ [0, 1]: `"cosine"`
            (`o = start + (end − start)(1 − cos(πp/2))`, the official code's schedule) or `"linear"`.
        reste_threshold (`float`, *optional*, defaults to 1.5):
            ReSTE's clipping threshold `t`: no gradient passes where |z| > t.
        reste_interval (`float`, *optional*, defaults to 0.1):
            ReSTE's rectified interval `m`: where |z| ≤ m the gradient is the secant slope `m^(1/o) / m` instead of
            the power function's derivative, which is unbounded at 0 for `o > 1`.
        ste_threshold (`float`, *optional*, defaults to 1.0):
            The straight-through estimator's clipping threshold (gradient 1 where |z| ≤ it, 0 elsewhere).
        mean (`list[float]`, *optional*, defaults to the CIFAR-10 channel means):
            Per-channel mean subtracted inside the model; inputs are images in [0, 1].
        std (`list[float]`, *optional*, defaults to the CIFAR-10 channel standard deviations):
            Per-channel standard deviation the centred input is divided by.

    Example:

    ```python
    >>> from hfcifar.models.binary_resnet import BinaryResNetConfig, BinaryResNetForImageClassification

    >>> # the paper's 1W/1A ResNet-20, trained with ReSTE (o annealed from 1 to 3)
    >>> config = BinaryResNetConfig(depths=[3, 3, 3], estimator="reste", reste_power_end=3.0)
    >>> model = BinaryResNetForImageClassification(config)
    >>> model.num_parameters()
    269850
    ```
    """

    model_type = "hfcifar-binary_resnet"

    def __init__(
        self,
        num_channels=3,
        image_size=32,
        stem_width=16,
        hidden_sizes=(16, 32, 64),
        depths=(3, 3, 3),
        estimator="reste",
        weight_bits=1,
        activation_bits=1,
        reste_power_start=1.0,
        reste_power_end=3.0,
        reste_power_schedule="cosine",
        reste_threshold=1.5,
        reste_interval=0.1,
        ste_threshold=1.0,
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        **kwargs,
    ):
        check_quantization_loadable(kwargs)
        check_image_fields(num_channels, image_size, mean, std)
        check_choice("estimator", estimator, ESTIMATORS)
        check_choice("reste_power_schedule", reste_power_schedule, POWER_SCHEDULES)
        check_positive("stem_width", stem_width)
        check_positive("hidden_sizes", hidden_sizes)
        check_positive("depths", depths)
        if len(hidden_sizes) != len(depths):
            raise ValueError(f"hidden_sizes and depths need one entry per stage; got {list(hidden_sizes)} and {list(depths)}.")
        if any(later < earlier for earlier, later in zip([stem_width, *hidden_sizes], hidden_sizes)):
            raise ValueError(
                f"Each stage must be at least as wide as the one before (zero-padding shortcuts cannot drop channels); "
                f"got stem_width={stem_width}, hidden_sizes={list(hidden_sizes)}."
            )
        for name, power in (("reste_power_start", reste_power_start), ("reste_power_end", reste_power_end)):
            if not power >= 1:  # also rejects NaN
                raise ValueError(f"{name} must be ≥ 1 (ReSTE's power o ≥ 1; o = 1 is the plain STE); got {power}.")
        if not 0 < reste_interval < reste_threshold:
            raise ValueError(
                f"ReSTE needs 0 < reste_interval (m) < reste_threshold (t); got m={reste_interval}, t={reste_threshold}."
            )
        if not ste_threshold > 0:
            raise ValueError(f"ste_threshold must be > 0; got {ste_threshold}.")
        self.num_channels = num_channels
        self.image_size = image_size
        self.stem_width = stem_width
        self.hidden_sizes = list(hidden_sizes)
        self.depths = list(depths)
        self.estimator = estimator
        self.weight_bits = check_bit_width("weight_bits", weight_bits)
        self.activation_bits = check_bit_width("activation_bits", activation_bits)
        self.reste_power_start = float(reste_power_start)
        self.reste_power_end = float(reste_power_end)
        self.reste_power_schedule = reste_power_schedule
        self.reste_threshold = float(reste_threshold)
        self.reste_interval = float(reste_interval)
        self.ste_threshold = float(ste_threshold)
        self.mean = list(mean)
        self.std = list(std)
        # A config.json saved before the `hfcifar-<folder>` rule says "hfcifar-binary-resnet": the class attribute wins.
        kwargs.pop("model_type", None)
        super().__init__(**default_cifar10_labels(kwargs))


__all__ = ["BinaryResNetConfig"]
