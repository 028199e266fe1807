"""Wide ResNet for CIFAR-10.

"Wide Residual Networks", Zagoruyko & Komodakis, BMVC 2016 (https://arxiv.org/abs/1605.07146). A 3×3 stem
convolution, three groups of pre-activation basic blocks ("Identity Mappings in Deep Residual Networks", He et al.,
ECCV 2016) that are k times wider than in the CIFAR ResNets of He et al., with dropout between the two
convolutions of each block, then BN-ReLU, a global average pool and a linear head. The paper's finding is that a
shallow, wide network (WRN-28-10) trains faster and generalizes better than a thin, very deep one (ResNet-1001).
"""

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPoolingAndNoAttention, ImageClassifierOutput

from .configuration_wide_resnet import WideResNetConfig


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


class WideResNetBlock(nn.Module):
    """`BN → ReLU → conv3×3 → BN → ReLU → dropout → conv3×3`, added to the shortcut (no activation after the sum)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, dropout_rate: float):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.act1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(out_channels)
        self.act2 = nn.ReLU()
        # The paper puts dropout inside the block, not on the shortcut, so the identity path stays clean.
        self.dropout = nn.Dropout(dropout_rate)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
        else:
            self.shortcut = None

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        preactivated = self.act1(self.norm1(hidden_states))
        # A block that changes the shape projects the pre-activated input, as the authors' code does, so both
        # paths see the same normalized signal; otherwise the shortcut is the untouched identity.
        residual = hidden_states if self.shortcut is None else self.shortcut(preactivated)
        hidden_states = self.conv1(preactivated)
        hidden_states = self.conv2(self.dropout(self.act2(self.norm2(hidden_states))))
        return hidden_states + residual


class WideResNetGroup(nn.Sequential):
    """`depth` blocks of one width; the first one carries the stride and changes the number of channels."""

    def __init__(self, in_channels: int, out_channels: int, depth: int, stride: int, dropout_rate: float):
        super().__init__(
            *(
                WideResNetBlock(in_channels if i == 0 else out_channels, out_channels, stride if i == 0 else 1, dropout_rate)
                for i in range(depth)
            )
        )


class WideResNetPreTrainedModel(PreTrainedModel):
    config_class = WideResNetConfig
    base_model_prefix = "wide_resnet"
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
            # The authors' code draws convolutions from N(0, 2 / (k·k·out_channels)) (He et al., 2015, fan-out).
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


class WideResNetModel(WideResNetPreTrainedModel):
    """The Wide ResNet backbone: normalized pixels → last (BN-ReLU'd) feature map and its global average pool."""

    def __init__(self, config: WideResNetConfig):
        super().__init__(config)
        blocks_per_group = (config.depth - 4) // 6
        widths = [16 * config.widen_factor, 32 * config.widen_factor, 64 * config.widen_factor]
        self.normalization = PixelNormalization(config.mean, config.std)
        # A bare convolution: in a pre-activation network the next block's BN-ReLU normalizes its output.
        self.stem = nn.Conv2d(config.num_channels, 16, 3, padding=1, bias=False)
        self.groups = nn.ModuleList(
            WideResNetGroup(c_in, c_out, blocks_per_group, 1 if i == 0 else 2, config.dropout_rate)
            for i, (c_in, c_out) in enumerate(zip([16] + widths[:-1], widths))
        )
        # Pre-activation blocks end on a bare sum, so the features are normalized once more before pooling.
        self.norm = nn.BatchNorm2d(widths[-1])
        self.act = nn.ReLU()
        self.pooler = nn.AdaptiveAvgPool2d(1)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, output_hidden_states: bool = False, return_dict: bool = True):
        check_pixel_values(pixel_values, self.config.num_channels, self.config.image_size)
        hidden_states = self.stem(self.normalization(pixel_values))
        all_hidden_states = (hidden_states,) if output_hidden_states else None
        for group in self.groups:
            hidden_states = group(hidden_states)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
        hidden_states = self.act(self.norm(hidden_states))
        pooled = self.pooler(hidden_states).flatten(1)
        if not return_dict:
            return (hidden_states, pooled) + ((all_hidden_states,) if output_hidden_states else ())
        return BaseModelOutputWithPoolingAndNoAttention(
            last_hidden_state=hidden_states, pooler_output=pooled, hidden_states=all_hidden_states
        )


class WideResNetForImageClassification(WideResNetPreTrainedModel):
    """Wide ResNet with a linear head on the globally average-pooled features."""

    def __init__(self, config: WideResNetConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.wide_resnet = WideResNetModel(config)
        self.classifier = nn.Linear(64 * config.widen_factor, config.num_labels)
        self.post_init()
        apply_clipped_activations(self)  # FT-ClipAct thresholds saved in the config

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        return_dict: bool = True,
    ):
        outputs = self.wide_resnet(pixel_values, output_hidden_states=output_hidden_states)
        logits = self.classifier(outputs.pooler_output)
        loss = classification_loss(logits, labels)
        if not return_dict:
            output = (logits,) + ((outputs.hidden_states,) if output_hidden_states else ())
            return ((loss,) + output) if loss is not None else output
        return ImageClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


__all__ = ["WideResNetForImageClassification", "WideResNetModel", "WideResNetPreTrainedModel"]
