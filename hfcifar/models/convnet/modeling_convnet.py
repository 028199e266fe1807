"""ConvNet: the small conv net of the dataset-distillation literature, for CIFAR-10.

"Dataset Condensation with Gradient Matching", Zhao, Mopuri & Bilen, ICLR 2021 (https://arxiv.org/abs/2006.05929),
and its successors (DSA, DM, MTT, TESLA, ...), which learn and evaluate synthetic training sets with it:
`net_depth` blocks of `conv3×3 → instance norm → ReLU → 2×2 average pool` and a linear layer on the flattened
features. Instance norm rather than batch norm: it normalizes each image on its own, so the network behaves the
same on the few images of a condensed set as on a large batch of real ones.
"""

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPoolingAndNoAttention, ImageClassifierOutput

from .configuration_convnet import ConvNetConfig


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


ACTIVATIONS = {
    "relu": nn.ReLU,
    "leakyrelu": lambda: nn.LeakyReLU(negative_slope=0.01),
    "sigmoid": nn.Sigmoid,
    # x·σ(x), which the reference code writes out by hand
    "swish": nn.SiLU,
}
POOLINGS = {"avgpooling": lambda: nn.AvgPool2d(2), "maxpooling": lambda: nn.MaxPool2d(2), "none": nn.Identity}


def make_norm(net_norm: str, channels: int, size: int) -> nn.Module:
    """The normalization `net_norm` names, for a `channels`×`size`×`size` feature map."""
    if net_norm == "instancenorm":
        # A GroupNorm of one group per channel, as in the reference code: the normalization of
        # `nn.InstanceNorm2d(affine=True)` (per image and channel, no running statistics) under that code's names.
        return nn.GroupNorm(channels, channels, affine=True)
    if net_norm == "batchnorm":
        return nn.BatchNorm2d(channels)
    if net_norm == "layernorm":
        return nn.LayerNorm([channels, size, size])
    if net_norm == "groupnorm":
        return nn.GroupNorm(4, channels, affine=True)
    return nn.Identity()


class ConvNetBlock(nn.Module):
    """`conv3×3 → norm → activation → pool`."""

    def __init__(self, in_channels: int, size: int, config: ConvNetConfig):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, config.net_width, 3, padding=1)
        self.norm = make_norm(config.net_norm, config.net_width, size)
        self.act = ACTIVATIONS[config.net_act]()
        self.pool = POOLINGS[config.net_pooling]()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.norm(self.conv(hidden_states))))


def output_size(config: ConvNetConfig) -> int:
    """Height and width of the last feature map."""
    return config.image_size if config.net_pooling == "none" else config.image_size // 2**config.net_depth


class ConvNetPreTrainedModel(PreTrainedModel):
    config_class = ConvNetConfig
    base_model_prefix = "convnet"
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
            # The reference code keeps PyTorch's default initialization: weights and biases uniform in ±1/√fan_in
            # (what `kaiming_uniform_(a=√5)` amounts to). weight[0] holds one output's fan-in.
            bound = module.weight[0].numel() ** -0.5
            nn.init.uniform_(module.weight, -bound, bound)
            if module.bias is not None:
                nn.init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
            if isinstance(module, nn.BatchNorm2d) and module.running_mean is not None:
                module.running_mean.zero_()
                module.running_var.fill_(1.0)
                module.num_batches_tracked.zero_()


class ConvNetModel(ConvNetPreTrainedModel):
    """The ConvNet backbone: normalized pixels → last feature map and its flattening (the "embedding" that
    distribution-matching methods such as DM compare)."""

    def __init__(self, config: ConvNetConfig):
        super().__init__(config)
        self.normalization = PixelNormalization(config.mean, config.std)
        in_channels = [config.num_channels] + [config.net_width] * (config.net_depth - 1)
        # Each block normalizes at the resolution of its convolution, before that block's pooling.
        shrink = 1 if config.net_pooling == "none" else 2
        sizes = [config.image_size // shrink**i for i in range(config.net_depth)]
        self.blocks = nn.ModuleList(ConvNetBlock(c_in, size, config) for c_in, size in zip(in_channels, sizes))
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, output_hidden_states: bool = False, return_dict: bool = True):
        check_pixel_values(pixel_values, self.config.num_channels, self.config.image_size)
        hidden_states = self.normalization(pixel_values)
        all_hidden_states = () if output_hidden_states else None
        for block in self.blocks:
            hidden_states = block(hidden_states)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
        # Flattened, not pooled: the reference classifier reads every position of the last feature map.
        pooled = hidden_states.flatten(1)
        if not return_dict:
            return (hidden_states, pooled) + ((all_hidden_states,) if output_hidden_states else ())
        return BaseModelOutputWithPoolingAndNoAttention(
            last_hidden_state=hidden_states, pooler_output=pooled, hidden_states=all_hidden_states
        )


class ConvNetForImageClassification(ConvNetPreTrainedModel):
    """ConvNet with a linear head on the flattened features."""

    def __init__(self, config: ConvNetConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.convnet = ConvNetModel(config)
        self.classifier = nn.Linear(config.net_width * output_size(config) ** 2, config.num_labels)
        self.post_init()
        apply_clipped_activations(self)  # FT-ClipAct thresholds saved in the config

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        return_dict: bool = True,
    ):
        outputs = self.convnet(pixel_values, output_hidden_states=output_hidden_states)
        logits = self.classifier(outputs.pooler_output)
        loss = classification_loss(logits, labels)
        if not return_dict:
            output = (logits,) + ((outputs.hidden_states,) if output_hidden_states else ())
            return ((loss,) + output) if loss is not None else output
        return ImageClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


__all__ = ["ConvNetForImageClassification", "ConvNetModel", "ConvNetPreTrainedModel"]
