"""ResNet and ResNeXt for CIFAR-10.

"Deep Residual Learning for Image Recognition", He et al., CVPR 2016 (https://arxiv.org/abs/1512.03385), and
"Aggregated Residual Transformations for Deep Neural Networks", Xie et al., CVPR 2017
(https://arxiv.org/abs/1611.05431). A 3×3 stem convolution without max-pool, stages of basic or bottleneck
residual blocks (the first stage keeps the 32×32 resolution, every later one halves it), a global average pool
and a linear head. With `stem_width=16`, three stages of 16/32/64 channels and `shortcut_type="identity_pad"` it
is the paper's CIFAR ResNet-6n+2 (Section 4.2); with four stages of 64 to 512 channels and projection shortcuts it
is the layout of kuangliu/pytorch-cifar; with a grouped bottleneck it is ResNeXt.
"""

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPoolingAndNoAttention, ImageClassifierOutput

from .configuration_resnet import CifarResNetConfig


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


class CifarResNetProjectionShortcut(nn.Module):
    """The paper's option B shortcut: a strided 1×1 convolution and batch norm to match the residual's shape."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(hidden_states))


def make_shortcut(in_channels: int, out_channels: int, stride: int, config: CifarResNetConfig) -> nn.Module:
    """The identity where the block keeps the shape, else the shortcut that `config.shortcut_type` names."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    if config.shortcut_type == "identity_pad":
        return CifarResNetPadShortcut(in_channels, out_channels, stride)
    return CifarResNetProjectionShortcut(in_channels, out_channels, stride)


class CifarResNetBasicBlock(nn.Module):
    """`conv3×3 → BN → ReLU → conv3×3 → BN`, added to the shortcut, then ReLU (the post-activation block)."""

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int, config: CifarResNetConfig):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, planes, 3, stride=stride, padding=1, bias=False)
        self.norm1 = nn.BatchNorm2d(planes)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(planes)
        self.shortcut = make_shortcut(in_channels, planes, stride, config)
        self.act2 = nn.ReLU()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        residual = self.shortcut(hidden_states)
        hidden_states = self.act1(self.norm1(self.conv1(hidden_states)))
        hidden_states = self.norm2(self.conv2(hidden_states))
        return self.act2(hidden_states + residual)


class CifarResNetBottleneckBlock(nn.Module):
    """`conv1×1 → conv3×3 (grouped for ResNeXt) → conv1×1 ×4`, each followed by BN (and ReLU but the last).

    The stride sits on the 3×3 convolution, as in torchvision's "ResNet v1.5" and kuangliu/pytorch-cifar, rather
    than on the first 1×1 as in the paper: a strided 1×1 convolution would skip three pixels out of four.
    """

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int, config: CifarResNetConfig):
        super().__init__()
        # Xie et al. keep the cost of a block fixed while trading width for cardinality; torchvision expresses
        # that as a number of channels per group at base width 64.
        width = int(planes * config.width_per_group / 64) * config.groups
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.norm1 = nn.BatchNorm2d(width)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=config.groups, bias=False)
        self.norm2 = nn.BatchNorm2d(width)
        self.act2 = nn.ReLU()
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.norm3 = nn.BatchNorm2d(out_channels)
        self.shortcut = make_shortcut(in_channels, out_channels, stride, config)
        self.act3 = nn.ReLU()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        residual = self.shortcut(hidden_states)
        hidden_states = self.act1(self.norm1(self.conv1(hidden_states)))
        hidden_states = self.act2(self.norm2(self.conv2(hidden_states)))
        hidden_states = self.norm3(self.conv3(hidden_states))
        return self.act3(hidden_states + residual)


BLOCKS = {"basic": CifarResNetBasicBlock, "bottleneck": CifarResNetBottleneckBlock}


class CifarResNetStage(nn.Sequential):
    """`depth` blocks of one width; the first one carries the stride and changes the number of channels."""

    def __init__(self, in_channels: int, planes: int, depth: int, stride: int, config: CifarResNetConfig):
        block = BLOCKS[config.block_type]
        out_channels = planes * block.expansion
        super().__init__(
            *(
                block(in_channels if i == 0 else out_channels, planes, stride if i == 0 else 1, config)
                for i in range(depth)
            )
        )


class CifarResNetPreTrainedModel(PreTrainedModel):
    config_class = CifarResNetConfig
    base_model_prefix = "resnet"
    main_input_name = "pixel_values"
    # The loss is a mean over the batch and `forward` takes no loss kwargs (`num_items_in_batch`): `Trainer` must
    # neither pass them nor multiply the loss by the number of processes.
    accepts_loss_kwargs = False
    input_modalities = ("image",)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, PixelNormalization):
            module.reset_parameters(self.config.mean, self.config.std)
        elif isinstance(module, nn.Conv2d):
            # He et al. train their CIFAR nets from the initialization of "Delving Deep into Rectifiers" (2015).
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
            if module.running_mean is not None:
                module.running_mean.zero_()
                module.running_var.fill_(1.0)
                module.num_batches_tracked.zero_()
        elif isinstance(module, nn.Linear):
            # PyTorch's default for a linear layer, which the reference CIFAR code keeps for the head.
            bound = module.in_features**-0.5
            nn.init.uniform_(module.weight, -bound, bound)
            if module.bias is not None:
                nn.init.uniform_(module.bias, -bound, bound)


class CifarResNetModel(CifarResNetPreTrainedModel):
    """The ResNet backbone: normalized pixels → last feature map and its global average pool."""

    def __init__(self, config: CifarResNetConfig):
        super().__init__(config)
        self.normalization = PixelNormalization(config.mean, config.std)
        # No 7×7 stride-2 convolution and max-pool as on ImageNet: at 32×32 they would discard most of the image.
        self.stem = nn.Sequential(
            nn.Conv2d(config.num_channels, config.stem_width, 3, padding=1, bias=False),
            nn.BatchNorm2d(config.stem_width),
            nn.ReLU(),
        )
        expansion = BLOCKS[config.block_type].expansion
        in_channels = [config.stem_width] + [planes * expansion for planes in config.hidden_sizes[:-1]]
        self.stages = nn.ModuleList(
            CifarResNetStage(c_in, planes, depth, 1 if i == 0 else 2, config)
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


class CifarResNetForImageClassification(CifarResNetPreTrainedModel):
    """ResNet with a linear head on the globally average-pooled features."""

    def __init__(self, config: CifarResNetConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.resnet = CifarResNetModel(config)
        num_features = config.hidden_sizes[-1] * BLOCKS[config.block_type].expansion
        self.classifier = nn.Linear(num_features, config.num_labels)
        self.post_init()
        apply_clipped_activations(self)  # FT-ClipAct thresholds saved in the config

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        return_dict: bool = True,
    ):
        outputs = self.resnet(pixel_values, output_hidden_states=output_hidden_states)
        logits = self.classifier(outputs.pooler_output)
        loss = classification_loss(logits, labels)
        if not return_dict:
            output = (logits,) + ((outputs.hidden_states,) if output_hidden_states else ())
            return ((loss,) + output) if loss is not None else output
        return ImageClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


__all__ = ["CifarResNetForImageClassification", "CifarResNetModel", "CifarResNetPreTrainedModel"]
