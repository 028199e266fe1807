"""Binary ResNet for CIFAR-10, trained with ReSTE or the straight-through estimator.

"Estimator Meets Equilibrium Perspective: A Rectified Straight Through Estimator for Binary Neural Networks
Training", Wu, Zheng, Liu & Zheng, ICCV 2023 (https://arxiv.org/abs/2308.06689). The CIFAR ResNet-(6n+2) of He et
al. (2016) with every convolution inside the residual blocks binarized: its weights become `sign(W)·mean|W|` and its
input activations `sign(a)`, so the convolution is a 1-bit one ("1W/1A"). The stem convolution and the classifier
stay real-valued, as in the paper's CIFAR networks. `sign` has no useful gradient; the config chooses what the
backward pass uses instead:

- `"ste"`: BinaryConnect's straight-through estimator, gradient 1 where |z| ≤ 1 and 0 elsewhere;
- `"reste"`: the Rectified Straight Through Estimator, the derivative of the power function
  `f(z) = sign(z)|z|^(1/o)` (o ≥ 1), rectified: 0 where |z| > t, and the secant slope `m^(1/o)/m` where |z| ≤ m,
  because `f'` is unbounded at 0 when o > 1. `o` grows from 1 (plain STE) to `o_end` during training
  (`set_training_progress`), trading gradient stability for a smaller estimating error.
"""

import math

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPoolingAndNoAttention, ImageClassifierOutput

from .configuration_binary_resnet import BinaryResNetConfig, check_bit_width


# Copied from hfcifar.models.fastnet.modeling_fastnet.check_pixel_values
def check_pixel_values(pixel_values: torch.Tensor, num_channels: int, image_size: int) -> None:
    """Raise a `ValueError` naming the expected input unless `pixel_values` is float N×C×H×W in [0, 1]."""
    expected = f"a float tensor of shape (batch, {num_channels}, {image_size}, {image_size}) with values in [0, 1]"
    if not isinstance(pixel_values, torch.Tensor):
        raise ValueError(f"pixel_values must be {expected}; got {type(pixel_values).__name__}.")
    if not pixel_values.is_floating_point():
        raise ValueError(
            f"pixel_values must be {expected}; got dtype {pixel_values.dtype}. "
            "Convert uint8 images with `images.float() / 255` or use the model's image processor."
        )
    if pixel_values.dim() != 4 or tuple(pixel_values.shape[1:]) != (num_channels, image_size, image_size):
        raise ValueError(f"pixel_values must be {expected}; got shape {tuple(pixel_values.shape)}.")
    if pixel_values.numel() > 0:
        low, high = torch.aminmax(pixel_values.detach())
        if low < -1e-4 or high > 1 + 1e-4:
            raise ValueError(
                f"pixel_values must be {expected}; got values in [{low.item():.3g}, {high.item():.3g}]. "
                "hfcifar models normalize inside the model: pass images in [0, 1], not standardized tensors."
            )


# Copied from hfcifar.models.fastnet.modeling_fastnet.PixelNormalization
class PixelNormalization(nn.Module):
    """Standardize images in [0, 1] with the per-channel mean and std of the config.

    Normalizing inside the model (as RobustBench models do) keeps attacks, certification and data
    transforms in image space, where ε and pixel values mean what the papers say.
    """

    def __init__(self, mean, std):
        super().__init__()
        # Not persistent: the config is the source of truth, and `_init_weights` refills them on load.
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def reset_parameters(self, mean, std) -> None:
        self.mean.copy_(torch.tensor(mean, dtype=self.mean.dtype).view_as(self.mean))
        self.std.copy_(torch.tensor(std, dtype=self.std.dtype).view_as(self.std))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return (pixel_values - self.mean) / self.std


# Copied from hfcifar.models.fastnet.modeling_fastnet.classification_loss
def classification_loss(logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor | None:
    """Cross-entropy of `logits` against integer `labels` in [0, num_labels), or `None` without labels."""
    if labels is None:
        return None
    num_labels = logits.shape[-1]
    if labels.dtype.is_floating_point or labels.dim() != 1 or labels.shape[0] != logits.shape[0]:
        raise ValueError(
            f"labels must be an integer tensor of shape ({logits.shape[0]},); got {labels.dtype} {tuple(labels.shape)}."
        )
    if labels.numel() > 0 and (labels.min() < 0 or labels.max() >= num_labels):
        raise ValueError(f"labels must lie in [0, {num_labels - 1}]; got values in [{labels.min()}, {labels.max()}].")
    return nn.functional.cross_entropy(logits, labels)


# Copied from hfcifar.models.fastnet.modeling_fastnet.ClippedReLU
class ClippedReLU(nn.Module):
    """The clipped activation of FT-ClipAct (Hoang et al., DATE 2020, Sec. IV): `f(x) = x` for `0 ≤ x ≤ T`, else 0.

    Values above the threshold T are discarded (not saturated), so a fault-inflated activation contributes nothing
    downstream; a non-finite input (a faulty ∞ or NaN) also gives 0. It has no parameters or buffers.

    Args:
        threshold (`float`): the clipping threshold T ≥ 0 of this layer.
    """

    def __init__(self, threshold: float):
        super().__init__()
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not threshold >= 0 \
                or threshold == float("inf"):
            raise ValueError(f"A clipping threshold must be a finite number ≥ 0 (activations above it become 0); "
                             f"got {threshold!r}.")
        self.threshold = float(threshold)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        keep = (hidden_states > 0) & (hidden_states <= self.threshold)
        return torch.where(keep, hidden_states, torch.zeros((), dtype=hidden_states.dtype, device=hidden_states.device))

    def extra_repr(self) -> str:
        return f"threshold={self.threshold:.4g}"


# Copied from hfcifar.models.fastnet.modeling_fastnet.apply_clipped_activations
def apply_clipped_activations(model: nn.Module) -> None:
    """Swap the activation modules named in `model.config.clipped_activations` (module name → threshold) for
    `ClippedReLU`s, so a model saved with clipped activations (FT-ClipAct) loads clipped, with or without hfcifar."""
    for name, threshold in (getattr(model.config, "clipped_activations", None) or {}).items():
        parent_name, _, child = name.rpartition(".")
        try:
            parent = model.get_submodule(parent_name) if parent_name else model
            getattr(parent, child)
        except AttributeError:
            raise ValueError(f"config.clipped_activations names {name!r}, which {type(model).__name__} does not have; "
                             "the thresholds belong to another architecture or configuration.") from None
        setattr(parent, child, ClippedReLU(threshold))


def binary_sign(z: torch.Tensor) -> torch.Tensor:
    """`sign(z)` with `sign(0) = +1`, so that a binarized tensor holds only ±1 (`torch.sign` would give 0 at 0).

    The sign bit decides (so −0.0 maps to −1): `copysign` is one vectorized pass, several times faster on a CPU than
    `torch.where`, and it runs on every binarized activation.
    """
    return torch.ones_like(z).copysign_(z)


class StraightThroughSign(torch.autograd.Function):
    """BinaryConnect's straight-through estimator: forward `sign(z)`, backward `grad · 1{|z| ≤ threshold}`.

    The gradient is that of `clamp(z, −threshold, threshold)`: the identity where the latent value is small, zero
    where it is so large that no small update would flip its sign.
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, threshold: float) -> torch.Tensor:
        ctx.save_for_backward(z.abs().le_(threshold))  # 1.0 where the gradient passes, 0.0 elsewhere
        return binary_sign(z)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (passes,) = ctx.saved_tensors
        return grad_output * passes, None


def reste_gradient(z: torch.Tensor, power: float, threshold: float, interval: float) -> torch.Tensor:
    """ReSTE's backward: the rectified derivative of the power function `f(z) = sign(z)|z|^(1/o)` (Wu et al., 2023).

        f'(z) = (1/o)·|z|^((1 − o)/o)   where m < |z| ≤ t,
                m^(1/o) / m              where |z| ≤ m    (the secant slope of f over [0, m]: f' itself is
                                                            unbounded at 0 when o > 1, and would explode gradients),
                0                        where |z| > t    (clipping, as the STE does).

    With `o = 1` it is 1 on [−t, t]: the straight-through estimator with threshold t.
    """
    # notation: power -> o, threshold -> t, interval -> m
    # This runs on every binarized activation of every update: in-place arithmetic on two buffers, no `where`.
    magnitude = z.abs()
    if power == 1.0:  # f is the identity: the derivative is 1 on [−t, t] (and the pow below would be wasted work)
        return magnitude.le_(threshold)
    exponent = (1.0 - power) / power
    gradient = magnitude.clamp_min(interval).pow_(exponent).mul_(1.0 / power)  # f'(max(|z|, m))
    # on [−m, m] that is m^((1 − o)/o)/o; add the rest of the secant slope f(m)/m = m^(1/o)/m = m^((1 − o)/o)
    secant_slope = interval**exponent
    gradient.add_((magnitude <= interval).to(z.dtype), alpha=secant_slope * (1.0 - 1.0 / power))
    return gradient.mul_(magnitude.le_(threshold))


class RectifiedStraightThroughSign(torch.autograd.Function):
    """ReSTE: forward `sign(z)`, backward `grad · reste_gradient(z, o, t, m)` (Wu et al., ICCV 2023)."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, power: float, threshold: float, interval: float) -> torch.Tensor:
        ctx.save_for_backward(z)
        ctx.settings = (power, threshold, interval)
        return binary_sign(z)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (z,) = ctx.saved_tensors
        return grad_output * reste_gradient(z, *ctx.settings).to(grad_output.dtype), None, None, None


class BinaryLayerMixin:
    """What a binarized layer adds to `nn.Conv2d`/`nn.Linear`: the estimator, the bit widths and ReSTE's power o.

    Weights are binarized as `sign(W)·α` with one scaling factor α = mean|W| per layer (the official ReSTE code's
    choice): sign alone would make every layer's output scale independent of its weights. Inputs are binarized as
    `sign(a)` without a scale, so that the product is a ±1 dot product times α.
    """

    def _setup_binarization(self, estimator, weight_bits, activation_bits, power, reste_threshold, reste_interval, ste_threshold):
        if estimator not in ("reste", "ste"):
            raise ValueError(f"estimator must be 'reste' or 'ste'; got {estimator!r}.")
        if not power >= 1:
            raise ValueError(f"ReSTE's power o must be ≥ 1 (o = 1 is the plain STE); got {power}.")
        if not 0 < reste_interval < reste_threshold:
            raise ValueError(f"ReSTE needs 0 < interval m < threshold t; got m={reste_interval}, t={reste_threshold}.")
        self.estimator = estimator
        self.weight_bits = check_bit_width("weight_bits", weight_bits)
        self.activation_bits = check_bit_width("activation_bits", activation_bits)
        self.power = float(power)
        self.reste_threshold = float(reste_threshold)
        self.reste_interval = float(reste_interval)
        self.ste_threshold = float(ste_threshold)

    def binarize(self, z: torch.Tensor) -> torch.Tensor:
        """`sign(z)`, with the configured estimator's gradient in the backward pass."""
        if self.estimator == "reste":
            return RectifiedStraightThroughSign.apply(z, self.power, self.reste_threshold, self.reste_interval)
        return StraightThroughSign.apply(z, self.ste_threshold)

    def estimator_function(self, z: torch.Tensor) -> torch.Tensor:
        """The function whose derivative the backward pass uses in place of sign's (away from ReSTE's interval m).

        ReSTE: `sign(z)·min(|z|, t)^(1/o)` (flat beyond the threshold, where no gradient passes); STE:
        `clamp(z, −threshold, threshold)`. The estimating error indicator compares it with `sign(z)`.
        """
        if self.estimator == "reste":
            return binary_sign(z) * z.abs().clamp_max(self.reste_threshold).pow(1.0 / self.power)
        return z.clamp(-self.ste_threshold, self.ste_threshold)

    def binary_weight(self) -> torch.Tensor:
        """The weight the layer computes with: `sign(W)·mean|W|` at 1 bit, `W` itself at 32 bits."""
        if self.weight_bits == 32:
            return self.weight
        return self.binarize(self.weight) * self.weight.abs().mean()

    def binary_input(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.binarize(hidden_states) if self.activation_bits == 1 else hidden_states

    def _binarization_repr(self) -> str:
        power = f", o={self.power:g}" if self.estimator == "reste" else ""
        return f"estimator={self.estimator}{power}, bits=W{self.weight_bits}/A{self.activation_bits}"


class BinaryConv2d(BinaryLayerMixin, nn.Conv2d):
    """A convolution with binarized weights and inputs (no bias: the batch norm after it has one).

    Args:
        in_channels, out_channels, kernel_size, stride, padding: as `nn.Conv2d`.
        estimator: `"reste"` or `"ste"` (the gradient of sign in the backward pass).
        weight_bits, activation_bits: 1 (binarize) or 32 (keep real-valued); below 1 is a `ValueError`.
        power: ReSTE's o (≥ 1); updated during training through the model's `set_training_progress`.
        reste_threshold, reste_interval: ReSTE's t and m. ste_threshold: the STE's clipping threshold.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 estimator: str = "reste", weight_bits: int = 1, activation_bits: int = 1, power: float = 1.0,
                 reste_threshold: float = 1.5, reste_interval: float = 0.1, ste_threshold: float = 1.0):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self._setup_binarization(estimator, weight_bits, activation_bits, power, reste_threshold, reste_interval, ste_threshold)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(self.binary_input(hidden_states), self.binary_weight(), self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._binarization_repr()}"


class BinaryLinear(BinaryLayerMixin, nn.Linear):
    """A linear layer with binarized weights and inputs; the arguments are those of [`BinaryConv2d`]."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, estimator: str = "reste",
                 weight_bits: int = 1, activation_bits: int = 1, power: float = 1.0, reste_threshold: float = 1.5,
                 reste_interval: float = 0.1, ste_threshold: float = 1.0):
        super().__init__(in_features, out_features, bias=bias)
        self._setup_binarization(estimator, weight_bits, activation_bits, power, reste_threshold, reste_interval, ste_threshold)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(self.binary_input(hidden_states), self.binary_weight(), self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._binarization_repr()}"


BINARY_LAYERS = (BinaryConv2d, BinaryLinear)


def binary_conv3x3(in_channels: int, out_channels: int, stride: int, config: BinaryResNetConfig) -> BinaryConv2d:
    """A 3×3 binary convolution set up from the config (estimator, bit widths, ReSTE's o at the start, t, m)."""
    return BinaryConv2d(
        in_channels, out_channels, 3, stride=stride, padding=1, estimator=config.estimator,
        weight_bits=config.weight_bits, activation_bits=config.activation_bits, power=config.reste_power_start,
        reste_threshold=config.reste_threshold, reste_interval=config.reste_interval, ste_threshold=config.ste_threshold,
    )


def reste_power_schedule(progress: float, start: float, end: float, schedule: str = "cosine") -> float:
    """ReSTE's power o after a fraction `progress` ∈ [0, 1] of training.

    The paper anneals o from 1 (the STE: stable gradients, large estimating error) towards o_end = 3 (closer to
    sign); the official code uses `o = 1 + (o_end − 1)(1 − cos(π·progress/2))`, slow at first and fastest at the end.
    """
    if not 0.0 <= progress <= 1.0:
        raise ValueError(f"Training progress must lie in [0, 1]; got {progress}.")
    if schedule == "cosine":
        return start + (end - start) * (1.0 - math.cos(0.5 * math.pi * progress))
    if schedule == "linear":
        return start + (end - start) * progress
    raise ValueError(f"Unknown ReSTE power schedule {schedule!r}; use 'cosine' or 'linear'.")


# Copied from hfcifar.models.resnet.modeling_resnet.CifarResNetPadShortcut
class CifarResNetPadShortcut(nn.Module):
    """The paper's option A shortcut: subsample by the stride and zero-pad the new channels.

    It adds no parameters, which is how He et al. keep their CIFAR ResNets exactly as large as the plain nets
    they compare them with.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"A zero-padding shortcut cannot reduce {in_channels} channels to {out_channels}.")
        self.stride = stride
        self.extra_channels = out_channels - in_channels

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = hidden_states[:, :, :: self.stride, :: self.stride]
        return nn.functional.pad(hidden_states, (0, 0, 0, 0, 0, self.extra_channels))



class BinaryResNetBasicBlock(nn.Module):
    """The 1-bit basic block of ReSTE's CIFAR ResNets: `binary conv → ReLU → BN`, twice, plus the shortcut.

    The batch norm comes after the nonlinearity (unlike He et al.'s block) because the next layer binarizes its
    input: re-centring right before `sign` keeps both signs in use, where ReLU outputs alone would all map to +1.
    There is no activation after the addition for the same reason.
    """

    def __init__(self, in_channels: int, planes: int, stride: int, config: BinaryResNetConfig):
        super().__init__()
        self.conv1 = binary_conv3x3(in_channels, planes, stride, config)
        self.act1 = nn.ReLU()
        self.norm1 = nn.BatchNorm2d(planes)
        self.conv2 = binary_conv3x3(planes, planes, 1, config)
        self.act2 = nn.ReLU()
        self.norm2 = nn.BatchNorm2d(planes)
        # the parameter-free option A shortcut keeps the 1-bit network free of real-valued 1×1 convolutions
        same_shape = stride == 1 and in_channels == planes
        self.shortcut = nn.Identity() if same_shape else CifarResNetPadShortcut(in_channels, planes, stride)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        residual = self.shortcut(hidden_states)
        hidden_states = self.norm1(self.act1(self.conv1(hidden_states)))
        hidden_states = self.norm2(self.act2(self.conv2(hidden_states)))
        return hidden_states + residual


class BinaryResNetStage(nn.Sequential):
    """`depth` blocks of one width; the first one carries the stride and changes the number of channels."""

    def __init__(self, in_channels: int, planes: int, depth: int, stride: int, config: BinaryResNetConfig):
        super().__init__(
            *(BinaryResNetBasicBlock(in_channels if i == 0 else planes, planes, stride if i == 0 else 1, config) for i in range(depth))
        )


class BinaryResNetPreTrainedModel(PreTrainedModel):
    config_class = BinaryResNetConfig
    base_model_prefix = "binary_resnet"
    main_input_name = "pixel_values"
    # The loss is a mean over the batch and `forward` takes no loss kwargs (`num_items_in_batch`): `Trainer` must
    # neither pass them nor multiply the loss by the number of processes.
    accepts_loss_kwargs = False
    input_modalities = ("image",)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, PixelNormalization):
            module.reset_parameters(self.config.mean, self.config.std)
        elif isinstance(module, (nn.Conv2d, nn.Linear)):
            # the official ReSTE code initializes every convolution and linear layer with He's normal (fan-in) init
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
            if module.running_mean is not None:
                module.running_mean.zero_()
                module.running_var.fill_(1.0)
                module.num_batches_tracked.zero_()

    def binary_layers(self) -> dict[str, nn.Module]:
        """The binarized layers by module name (those whose weights or inputs go through the estimator)."""
        return {name: module for name, module in self.named_modules() if isinstance(module, BINARY_LAYERS)}

    def reste_power_at(self, progress: float) -> float:
        """ReSTE's o at a fraction `progress` of training, from the config's start, end and schedule."""
        config = self.config
        return reste_power_schedule(progress, config.reste_power_start, config.reste_power_end, config.reste_power_schedule)

    def set_training_progress(self, progress: float) -> float:
        """Set every binary layer's o for the fraction `progress` ∈ [0, 1] of training done; return it.

        A training callback calls this as training advances (`hfcifar.methods.reste.PowerScheduleCallback`); the
        forward pass is `sign` whatever o is, so o matters for training only.
        """
        power = self.reste_power_at(progress)
        for layer in self.binary_layers().values():
            layer.power = power
        return power


class BinaryResNetModel(BinaryResNetPreTrainedModel):
    """The binary ResNet backbone: normalized pixels → real stem → 1-bit stages → global average pool."""

    def __init__(self, config: BinaryResNetConfig):
        super().__init__(config)
        self.normalization = PixelNormalization(config.mean, config.std)
        # The stem sees the image itself and stays real-valued (a 3-channel input has too little to binarize).
        self.stem = nn.Sequential(
            nn.Conv2d(config.num_channels, config.stem_width, 3, padding=1, bias=False),
            nn.ReLU(),
            nn.BatchNorm2d(config.stem_width),
        )
        in_channels = [config.stem_width, *config.hidden_sizes[:-1]]
        self.stages = nn.ModuleList(
            BinaryResNetStage(c_in, planes, depth, 1 if i == 0 else 2, config)
            for i, (c_in, planes, depth) in enumerate(zip(in_channels, config.hidden_sizes, config.depths))
        )
        self.pooler = nn.AdaptiveAvgPool2d(1)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, output_hidden_states: bool = False, return_dict: bool = True):
        check_pixel_values(pixel_values, self.config.num_channels, self.config.image_size)
        hidden_states = self.stem(self.normalization(pixel_values))
        all_hidden_states = (hidden_states,) if output_hidden_states else None
        for stage in self.stages:
            hidden_states = stage(hidden_states)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
        pooled = self.pooler(hidden_states).flatten(1)
        if not return_dict:
            return (hidden_states, pooled) + ((all_hidden_states,) if output_hidden_states else ())
        return BaseModelOutputWithPoolingAndNoAttention(
            last_hidden_state=hidden_states, pooler_output=pooled, hidden_states=all_hidden_states
        )


class BinaryResNetForImageClassification(BinaryResNetPreTrainedModel):
    """Binary ResNet with a real-valued head: batch norm on the pooled features, then a linear classifier.

    The batch norm before the classifier is the official ReSTE code's: the 1-bit stages add residuals of very
    different scales, and normalizing the pooled features keeps the logits' scale in check.
    """

    def __init__(self, config: BinaryResNetConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.binary_resnet = BinaryResNetModel(config)
        self.feature_norm = nn.BatchNorm1d(config.hidden_sizes[-1])
        self.classifier = nn.Linear(config.hidden_sizes[-1], config.num_labels)
        self.post_init()
        apply_clipped_activations(self)  # FT-ClipAct thresholds saved in the config

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        return_dict: bool = True,
    ):
        outputs = self.binary_resnet(pixel_values, output_hidden_states=output_hidden_states)
        logits = self.classifier(self.feature_norm(outputs.pooler_output))
        loss = classification_loss(logits, labels)
        if not return_dict:
            output = (logits,) + ((outputs.hidden_states,) if output_hidden_states else ())
            return ((loss,) + output) if loss is not None else output
        return ImageClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


__all__ = [
    "BinaryConv2d",
    "BinaryLinear",
    "BinaryResNetForImageClassification",
    "BinaryResNetModel",
    "BinaryResNetPreTrainedModel",
    "RectifiedStraightThroughSign",
    "StraightThroughSign",
    "binary_sign",
    "reste_gradient",
    "reste_power_schedule",
]
