"""FastNet: a small, fast CIFAR-10 conv net in the layout of Keller Jordan's airbench.

Three blocks of `conv → max-pool → BN → GELU → conv → BN → GELU` after a stem convolution, then a global
max-pool and a bias-free linear head with a small logit scale. It is the default model of
`hfcifar train`: cheap enough to train to good accuracy on a laptop CPU in minutes.
"""

import math

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPoolingAndNoAttention, ImageClassifierOutput

from .configuration_fastnet import FastNetConfig


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



# Copied from hfcifar.methods.crrelu.activation.CRReLU
class CRReLU(nn.Module):
    r"""Correction Regularized ReLU: `CRReLU(x) = max(x, 0) + ε · x · exp(−x²/2)`, with ε a learnable scalar.

    The correction is the first-order term of the entropy-based activation function optimization (EAFO) applied to
    ReLU under a standard-Gaussian input: it moves the output distribution away from the maximum-entropy (worst)
    activation (see `hfcifar.methods.crrelu.eafo`). As in the paper, ε is one scalar per activation layer, initialized
    to 0.01 and trained with the network's weights; its sign and size are learned.

    Args:
        epsilon (`float`, *optional*, defaults to 0.01):
            Initial value of the learnable correction weight ε; any finite number (0 starts as a plain ReLU).

    Example:

    ```python
    >>> import torch
    >>> from hfcifar.methods.crrelu import CRReLU

    >>> act = CRReLU(epsilon=0.5)
    >>> act(torch.tensor([-1.0, 0.0, 1.0]))
    tensor([-0.3033,  0.0000,  1.3033], grad_fn=<AddBackward0>)
    ```
    """

    def __init__(self, epsilon: float = 0.01):
        super().__init__()
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not math.isfinite(epsilon):
            raise ValueError(f"CRReLU's initial epsilon must be a finite number (the paper starts at 0.01); "
                             f"got {epsilon!r}.")
        self.initial_epsilon = float(epsilon)
        self.epsilon = nn.Parameter(torch.tensor(self.initial_epsilon))

    @torch.no_grad()
    def reset_parameters(self) -> None:
        nn.init.constant_(self.epsilon, self.initial_epsilon)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        correction = hidden_states * torch.exp(-0.5 * hidden_states * hidden_states)
        return torch.relu(hidden_states) + self.epsilon.to(hidden_states.dtype) * correction

    def extra_repr(self) -> str:
        return f"initial_epsilon={self.initial_epsilon:g}"


ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "crrelu": CRReLU}


class FastNetConvBlock(nn.Module):
    """`conv → max-pool → BN → act → conv → BN → act`: halves the spatial size (airbench's block)."""

    def __init__(self, in_channels: int, out_channels: int, config: FastNetConfig):
        super().__init__()
        act = ACTIVATIONS[config.hidden_act]
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = nn.BatchNorm2d(out_channels, momentum=config.batch_norm_momentum)
        self.act1 = act()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(out_channels, momentum=config.batch_norm_momentum)
        self.act2 = act()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.act1(self.norm1(self.pool(self.conv1(hidden_states))))
        return self.act2(self.norm2(self.conv2(hidden_states)))


class FastNetPreTrainedModel(PreTrainedModel):
    config_class = FastNetConfig
    base_model_prefix = "fastnet"
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
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
            if module.running_mean is not None:
                module.running_mean.zero_()
                module.running_var.fill_(1.0)
                module.num_batches_tracked.zero_()
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=module.in_features**-0.5)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, CRReLU):
            module.reset_parameters()


class FastNetModel(FastNetPreTrainedModel):
    """The FastNet backbone: normalized pixels → last feature map and its global max-pool."""

    def __init__(self, config: FastNetConfig):
        super().__init__(config)
        act = ACTIVATIONS[config.hidden_act]
        self.normalization = PixelNormalization(config.mean, config.std)
        self.stem = nn.Sequential(
            nn.Conv2d(config.num_channels, config.stem_width, 3, padding=1, bias=False),
            nn.BatchNorm2d(config.stem_width, momentum=config.batch_norm_momentum),
            act(),
        )
        in_channels = [config.stem_width] + config.widths[:-1]
        self.blocks = nn.ModuleList(
            FastNetConvBlock(c_in, c_out, config) for c_in, c_out in zip(in_channels, config.widths)
        )
        self.pooler = nn.AdaptiveMaxPool2d(1)
        self.post_init()

    @torch.no_grad()
    def init_stem_whitening(self, pixel_values: torch.Tensor, eps: float = 5e-4, freeze: bool = True) -> None:
        """Set the stem convolution to whiten the k×k patches of `pixel_values` (airbench's first layer).

        The patch covariance's top `stem_width // 2` eigenvectors v, scaled by 1/√(λ + eps), become filters in
        ± pairs (so the activation after the stem keeps both signs). With `freeze` the filters stay fixed in training.
        """
        check_pixel_values(pixel_values, self.config.num_channels, self.config.image_size)
        conv = self.stem[0]
        size = conv.kernel_size[0]
        patches = nn.functional.unfold(self.normalization(pixel_values).double(), size)  # N × (C·k·k) × L
        patches = patches.transpose(1, 2).reshape(-1, patches.shape[1])
        patches = patches - patches.mean(dim=0)
        eigenvalues, eigenvectors = torch.linalg.eigh(patches.T @ patches / len(patches))
        count = min(conv.out_channels // 2, eigenvectors.shape[1])
        top = eigenvectors[:, -count:].flip(-1) / (eigenvalues[-count:].flip(-1) + eps).sqrt()
        filters = torch.cat([top, -top], dim=1).T.reshape(2 * count, *conv.weight.shape[1:])
        conv.weight.zero_()
        conv.weight[: 2 * count].copy_(filters.to(conv.weight.dtype))
        conv.weight.requires_grad_(not freeze)

    def forward(self, pixel_values: torch.Tensor, output_hidden_states: bool = False, return_dict: bool = True):
        check_pixel_values(pixel_values, self.config.num_channels, self.config.image_size)
        hidden_states = self.stem(self.normalization(pixel_values))
        all_hidden_states = (hidden_states,) if output_hidden_states else None
        for block in self.blocks:
            hidden_states = block(hidden_states)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
        pooled = self.pooler(hidden_states).flatten(1)
        if not return_dict:
            return (hidden_states, pooled) + ((all_hidden_states,) if output_hidden_states else ())
        return BaseModelOutputWithPoolingAndNoAttention(
            last_hidden_state=hidden_states, pooler_output=pooled, hidden_states=all_hidden_states
        )


class FastNetForImageClassification(FastNetPreTrainedModel):
    """FastNet with a bias-free linear head; logits are scaled by `config.logit_scale`."""

    def __init__(self, config: FastNetConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.fastnet = FastNetModel(config)
        self.classifier = nn.Linear(config.widths[-1], config.num_labels, bias=False)
        self.post_init()
        apply_clipped_activations(self)  # FT-ClipAct thresholds saved in the config

    def init_stem_whitening(self, pixel_values: torch.Tensor, eps: float = 5e-4, freeze: bool = True) -> None:
        """See [`FastNetModel.init_stem_whitening`] (`CifarTrainingArguments.whiten_stem` calls it)."""
        self.fastnet.init_stem_whitening(pixel_values, eps=eps, freeze=freeze)

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        return_dict: bool = True,
    ):
        outputs = self.fastnet(pixel_values, output_hidden_states=output_hidden_states)
        logits = self.classifier(outputs.pooler_output) * self.config.logit_scale
        loss = classification_loss(logits, labels)
        if not return_dict:
            output = (logits,) + ((outputs.hidden_states,) if output_hidden_states else ())
            return ((loss,) + output) if loss is not None else output
        return ImageClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


__all__ = ["FastNetForImageClassification", "FastNetModel", "FastNetPreTrainedModel"]
