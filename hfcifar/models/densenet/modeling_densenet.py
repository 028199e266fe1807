"""DenseNet-BC for CIFAR-10.

"Densely Connected Convolutional Networks", Huang et al., CVPR 2017 (https://arxiv.org/abs/1608.06993). Every
layer of a dense block sees the concatenated outputs of all layers before it and adds `growth_rate` new channels;
DenseNet-BC puts a 1×1 bottleneck convolution in front of each 3×3 one ("B") and compresses the channels at every
transition ("C"). The layout is that of kuangliu/pytorch-cifar: a single 3×3 stem convolution without batch norm
or max-pool, so the first block works at the full 32×32 resolution.
"""

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPoolingAndNoAttention, ImageClassifierOutput

from .configuration_densenet import DenseNetConfig


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


class DenseNetLayer(nn.Module):
    """`BN → ReLU → conv1×1 → BN → ReLU → conv3×3`, whose `growth_rate` new channels join the input's."""

    def __init__(self, in_channels: int, config: DenseNetConfig):
        super().__init__()
        inner_channels = config.bottleneck_width * config.growth_rate
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.act1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_channels, inner_channels, 1, bias=False)
        self.dropout1 = nn.Dropout(config.dropout_rate)
        self.norm2 = nn.BatchNorm2d(inner_channels)
        self.act2 = nn.ReLU()
        self.conv2 = nn.Conv2d(inner_channels, config.growth_rate, 3, padding=1, bias=False)
        self.dropout2 = nn.Dropout(config.dropout_rate)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        new_features = self.dropout1(self.conv1(self.act1(self.norm1(hidden_states))))
        new_features = self.dropout2(self.conv2(self.act2(self.norm2(new_features))))
        # New channels first, as kuangliu/pytorch-cifar concatenates: the order of the channels fixes the order of
        # the next layers' weights, so keeping it lets that repository's checkpoints be ported by renaming alone.
        return torch.cat([new_features, hidden_states], dim=1)


class DenseNetTransition(nn.Module):
    """`BN → ReLU → conv1×1 → 2×2 average pool`: compresses the channels and halves the spatial size."""

    def __init__(self, in_channels: int, out_channels: int, config: DenseNetConfig):
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.act = nn.ReLU()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.dropout = nn.Dropout(config.dropout_rate)
        self.pool = nn.AvgPool2d(2)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.pool(self.dropout(self.conv(self.act(self.norm(hidden_states)))))


class DenseNetStage(nn.Module):
    """A dense block, followed by a transition unless it is the last block."""

    def __init__(self, in_channels: int, num_layers: int, out_channels: int | None, config: DenseNetConfig):
        super().__init__()
        self.layers = nn.Sequential(
            *(DenseNetLayer(in_channels + i * config.growth_rate, config) for i in range(num_layers))
        )
        block_channels = in_channels + num_layers * config.growth_rate
        self.transition = (
            DenseNetTransition(block_channels, out_channels, config) if out_channels is not None else nn.Identity()
        )

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.transition(self.layers(hidden_states))


def plan_channels(config: DenseNetConfig) -> tuple[list[tuple[int, int | None]], int]:
    """The input channels and transition output channels (`None` after the last block) of every stage, and the
    number of channels of the final features."""
    channels = 2 * config.growth_rate
    stages = []
    for i, num_layers in enumerate(config.block_config):
        block_channels = channels + num_layers * config.growth_rate
        # Rounded down, as both the authors' and kuangliu's code do.
        out_channels = int(block_channels * config.compression) if i < len(config.block_config) - 1 else None
        stages.append((channels, out_channels))
        channels = block_channels if out_channels is None else out_channels
    return stages, channels


class DenseNetPreTrainedModel(PreTrainedModel):
    config_class = DenseNetConfig
    base_model_prefix = "densenet"
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
            # The authors' CIFAR code initializes "following ResNet": N(0, 2 / (k·k·out_channels)).
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
            if module.running_mean is not None:
                module.running_mean.zero_()
                module.running_var.fill_(1.0)
                module.num_batches_tracked.zero_()
        elif isinstance(module, nn.Linear):
            # Torch's default uniform weights with a zero bias, as in the authors' code.
            bound = module.in_features**-0.5
            nn.init.uniform_(module.weight, -bound, bound)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


class DenseNetModel(DenseNetPreTrainedModel):
    """The DenseNet backbone: normalized pixels → last (BN-ReLU'd) feature map and its global average pool."""

    def __init__(self, config: DenseNetConfig):
        super().__init__(config)
        self.normalization = PixelNormalization(config.mean, config.std)
        # A bare convolution: every dense layer starts with its own BN-ReLU, so the stem needs none.
        self.stem = nn.Conv2d(config.num_channels, 2 * config.growth_rate, 3, padding=1, bias=False)
        stages, num_features = plan_channels(config)
        self.stages = nn.ModuleList(
            DenseNetStage(c_in, num_layers, c_out, config)
            for (c_in, c_out), num_layers in zip(stages, config.block_config)
        )
        # Dense layers are pre-activation and end on a bare convolution, so the features are normalized once more.
        self.norm = nn.BatchNorm2d(num_features)
        self.act = nn.ReLU()
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
        hidden_states = self.act(self.norm(hidden_states))
        pooled = self.pooler(hidden_states).flatten(1)
        if not return_dict:
            return (hidden_states, pooled) + ((all_hidden_states,) if output_hidden_states else ())
        return BaseModelOutputWithPoolingAndNoAttention(
            last_hidden_state=hidden_states, pooler_output=pooled, hidden_states=all_hidden_states
        )


class DenseNetForImageClassification(DenseNetPreTrainedModel):
    """DenseNet with a linear head on the globally average-pooled features."""

    def __init__(self, config: DenseNetConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.densenet = DenseNetModel(config)
        self.classifier = nn.Linear(plan_channels(config)[1], config.num_labels)
        self.post_init()
        apply_clipped_activations(self)  # FT-ClipAct thresholds saved in the config

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        return_dict: bool = True,
    ):
        outputs = self.densenet(pixel_values, output_hidden_states=output_hidden_states)
        logits = self.classifier(outputs.pooler_output)
        loss = classification_loss(logits, labels)
        if not return_dict:
            output = (logits,) + ((outputs.hidden_states,) if output_hidden_states else ())
            return ((loss,) + output) if loss is not None else output
        return ImageClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


__all__ = ["DenseNetForImageClassification", "DenseNetModel", "DenseNetPreTrainedModel"]
