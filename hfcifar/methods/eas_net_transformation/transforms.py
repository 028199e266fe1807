"""Net2Net's function-preserving transformations on the plain CNN (VGG: 3×3 conv → batch norm → ReLU, max-pools).

Chen, Goodfellow & Shlens, "Net2Net: Accelerating Learning via Knowledge Transfer" (ICLR 2016,
https://arxiv.org/abs/1511.05641), section 2, as EAS (Cai et al., AAAI 2018) uses them as its actions:

- [`net2wider`] (Net2WiderNet, their eq. 2–3): conv layer `l` goes from `C` to `C' > C` output channels. Channel `j`
  of the new layer copies channel `g(j)` of the old one, `g(j) = j` for `j < C` and uniform over `[0, C)` otherwise
  (conv weights, bias and the batch-norm scale, shift and running statistics); the next layer's weights reading
  channel `j` are the old ones reading `g(j)`, divided by the number of copies of `g(j)`. Replicated channels have
  identical activations in eval *and* train mode (identical batch statistics), so the function is preserved in both.
- [`net2deeper`] (Net2DeeperNet): a new 3×3 conv layer after conv layer `l` with the identity kernel (centre 1), batch
  norm set to the identity, and ReLU, which is the identity on the non-negative output of `l`'s ReLU (and commutes with
  the max-pool that may follow).

Both return a *new* [`VGGForImageClassification`] (a new config and a new state dict, the input untouched) that
`save_pretrained`/`from_pretrained` round-trip like any zoo model; [`function_change`] measures max |Δlogits|.
Conv layers are numbered 0, 1, … in the order of the integers of `config.layers` (the `"M"` max-pools are not layers).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from hfcifar.models.vgg import VGGConfig, VGGForImageClassification


def conv_widths(config: VGGConfig) -> list[int]:
    """The output channels of every conv layer, in order (`config.layers` without its max-pools)."""
    return [entry for entry in config.layers if entry != "M"]


def conv_blocks(config: VGGConfig) -> list[list[int]]:
    """The conv layer indices of every block (the layers between two max-pools, EAS's "blocks"), in order; a block
    may be empty (two max-pools in a row)."""
    blocks, current, index = [], [], 0
    for entry in config.layers:
        if entry == "M":
            blocks.append(current)
            current = []
        else:
            current.append(index)
            index += 1
    if current:
        blocks.append(current)
    return blocks


def _check_model(model, what: str) -> None:
    if not isinstance(model, VGGForImageClassification):
        raise TypeError(
            f"{what} transforms the plain CNN `VGGForImageClassification` (e.g. "
            f"`hfcifar.create_model('vgg11', layers=[16, 'M', 32, 'M', 64, 'M'])`); got {type(model).__name__}."
        )


def _check_layer(config: VGGConfig, layer, name: str, what: str) -> int:
    count = len(conv_widths(config))
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < count:
        raise ValueError(f"{what}: {name} must be the index of a conv layer, an integer in [0, {count - 1}] (the "
                         f"network has {count} conv layers, widths {conv_widths(config)}); got {layer!r}.")
    return layer


def _conv_layers(model: VGGForImageClassification) -> list[nn.Module]:
    """The `VGGConvLayer` modules (conv, norm, act) in the order of `conv_widths`."""
    return [layer for stage in model.vgg.stages for layer in stage.layers]


def _final_size(config: VGGConfig) -> int:
    return config.image_size // 2 ** config.layers.count("M")


def _with_layers(model: VGGForImageClassification, layers: list) -> VGGForImageClassification:
    """A new, randomly initialized model whose config is `model.config` with `layers` (validated by `VGGConfig`)."""
    settings = model.config.to_dict()
    settings["layers"] = list(layers)
    config = type(model.config).from_dict(settings)
    parameter = next(model.parameters())
    return type(model)(config).to(device=parameter.device, dtype=parameter.dtype)


def _load(new_model: VGGForImageClassification, layer_states: list[dict], classifier_state: dict,
          training: bool) -> VGGForImageClassification:
    layers = _conv_layers(new_model)
    if len(layers) != len(layer_states):
        raise AssertionError(f"{len(layer_states)} layer states for {len(layers)} conv layers")
    for layer, state in zip(layers, layer_states):
        layer.load_state_dict(state, strict=True)
    new_model.classifier.load_state_dict(classifier_state, strict=True)
    return new_model.train(training)


def _states(model: VGGForImageClassification) -> tuple[list[dict], dict]:
    clone = lambda state: {key: value.detach().clone() for key, value in state.items()}  # noqa: E731
    return [clone(layer.state_dict()) for layer in _conv_layers(model)], clone(model.classifier.state_dict())


def replication_mapping(old_width: int, new_width: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Net2Net's random mapping `g`: `g(j) = j` for `j < old_width`, then uniform draws from `[0, old_width)`."""
    extra = torch.randint(0, old_width, (new_width - old_width,), generator=generator)
    return torch.cat([torch.arange(old_width), extra])


def outgoing_split(mapping: torch.Tensor, old_width: int, noise: float = 0.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """The factor each new channel's outgoing weights are multiplied by: `1 / count(g(j))` (Net2Net's eq. 3), or, with
    `noise > 0`, random fractions `(1 + noise·ε_j) / Σ_{k: g(k)=g(j)} (1 + noise·ε_k)` that still sum to 1 over the
    copies of each channel, so the function is preserved while the copies' gradients differ (the symmetry breaking
    Net2Net gets from noise, without changing the function)."""
    weights = torch.ones(mapping.shape[0], dtype=torch.float64)
    if noise > 0:
        weights = (1 + noise * torch.randn(mapping.shape[0], generator=generator, dtype=torch.float64)).abs()
    totals = torch.zeros(old_width, dtype=torch.float64).index_add_(0, mapping, weights)
    return weights / totals[mapping]


@torch.no_grad()
def net2wider(model: VGGForImageClassification, layer: int, new_width: int, *, noise: float = 0.0,
              generator: torch.Generator | None = None) -> VGGForImageClassification:
    r"""Net2WiderNet: conv layer `layer` of `model` with `new_width` output channels, computing the same function.

    Args:
        model (`VGGForImageClassification`):
            The network to widen; it is not modified.
        layer (`int`):
            Index of the conv layer to widen (0 is the first conv; max-pools do not count).
        new_width (`int`):
            Its new number of output channels, larger than the current one.
        noise (`float`, *optional*, defaults to 0.0):
            0 splits each replicated channel's outgoing weights equally among its copies (Net2Net's eq. 3); a value
            > 0 splits them by random fractions (relative spread `noise`) that still sum to one, so the function is
            the same but the copies stop receiving identical gradients.
        generator (`torch.Generator`, *optional*):
            Source of the random replication (and of the split with `noise`), for reproducible results.

    Returns:
        A new `VGGForImageClassification` whose `config.layers` has `new_width` at that conv, in the train/eval mode
        of `model`.

    Example:

    ```python
    >>> import torch
    >>> from hfcifar.models import create_model
    >>> from hfcifar.methods.eas_net_transformation import function_change, net2wider
    >>> model = create_model("vgg11", layers=[8, "M", 16, "M"]).eval()
    >>> wider = net2wider(model, layer=0, new_width=12, generator=torch.Generator().manual_seed(0))
    >>> wider.config.layers, function_change(model, wider, torch.rand(4, 3, 32, 32)) < 1e-5
    ([12, 'M', 16, 'M'], True)
    ```
    """
    _check_model(model, "net2wider")
    config = model.config
    _check_layer(config, layer, "layer", "net2wider")
    widths = conv_widths(config)
    old_width = widths[layer]
    if isinstance(new_width, bool) or not isinstance(new_width, int) or new_width <= old_width:
        raise ValueError(f"net2wider: new_width must be an integer larger than conv layer {layer}'s current width "
                         f"{old_width} (Net2Net only widens; build a new network to narrow one); got {new_width!r}.")
    if not (isinstance(noise, (int, float)) and not isinstance(noise, bool) and 0 <= noise < 1):
        raise ValueError(f"net2wider: noise must be a number in [0, 1) (0 for the equal split); got {noise!r}.")
    mapping = replication_mapping(old_width, new_width, generator)
    split = outgoing_split(mapping, old_width, float(noise), generator)

    layer_states, classifier_state = _states(model)
    # the widened layer: every per-output-channel tensor (conv weight/bias, BN scale/shift/running stats) is copied
    for key, value in layer_states[layer].items():
        if value.dim() >= 1 and value.shape[0] == old_width:
            layer_states[layer][key] = value[mapping].clone()
    # its consumer reads channel j with the weights of channel g(j), scaled by j's share of g(j)'s outgoing weight
    if layer + 1 < len(widths):
        weight = layer_states[layer + 1]["conv.weight"]
        factor = split.to(weight.dtype).view(1, -1, 1, 1)
        layer_states[layer + 1]["conv.weight"] = weight[:, mapping] * factor
    else:
        # the classifier reads the flattened (channels, size, size) map: feature c·size² + p
        weight = classifier_state["weight"]
        area = _final_size(config) ** 2
        grouped = weight.view(weight.shape[0], old_width, area)
        factor = split.to(weight.dtype).view(1, -1, 1)
        classifier_state["weight"] = (grouped[:, mapping] * factor).reshape(weight.shape[0], new_width * area)

    layers = list(config.layers)
    positions = [i for i, entry in enumerate(layers) if entry != "M"]
    layers[positions[layer]] = new_width
    return _load(_with_layers(model, layers), layer_states, classifier_state, model.training)


@torch.no_grad()
def input_statistics(model: VGGForImageClassification, layer: int, pixel_values: torch.Tensor):
    """Per-channel mean and (biased) variance of conv layer `layer`'s output after its ReLU, in eval mode."""
    captured = {}
    hook = _conv_layers(model)[layer].act.register_forward_hook(lambda m, i, output: captured.update(x=output))
    training = model.training
    try:
        model.eval()
        parameter = next(model.parameters())
        model(pixel_values.to(device=parameter.device, dtype=parameter.dtype))
    finally:
        hook.remove()
        model.train(training)
    x = captured["x"].transpose(0, 1).flatten(1)
    return x.mean(dim=1), x.var(dim=1, unbiased=False)


@torch.no_grad()
def net2deeper(model: VGGForImageClassification, after_layer: int, *,
               calibration: torch.Tensor | None = None) -> VGGForImageClassification:
    r"""Net2DeeperNet: a new 3×3 conv layer (+ batch norm + ReLU) after conv layer `after_layer`, computing the same
    function.

    The new conv has the identity kernel (weight[i, i, 1, 1] = 1, zero elsewhere, zero bias). Its batch norm is the
    identity in eval mode: running mean m, running variance v, scale √(v + ε), shift m, so (x − m)/√(v + ε)·√(v + ε) +
    m = x. With `calibration` images, m and v are the per-channel statistics of the new layer's input on them (as EAS
    sets its new layers from a batch of training data), so the layer also stays close to the identity in train mode,
    where batch statistics replace the running ones; without, m = 0 and v = 1 − ε (scale 1, shift 0). The ReLU after it
    is the identity on its input, the output of `after_layer`'s ReLU.

    Args:
        model (`VGGForImageClassification`):
            The network to deepen; it is not modified.
        after_layer (`int`):
            Index of the conv layer the new one follows (in the same block, before any max-pool).
        calibration (`torch.Tensor`, *optional*):
            Images (float N×3×32×32 in [0, 1]) to set the new batch norm's statistics from.

    Returns:
        A new `VGGForImageClassification` with one more conv layer (of `after_layer`'s width), in the train/eval mode
        of `model`.
    """
    _check_model(model, "net2deeper")
    config = model.config
    _check_layer(config, after_layer, "after_layer", "net2deeper")
    width = conv_widths(config)[after_layer]
    layer_states, classifier_state = _states(model)
    template = layer_states[after_layer]
    new_state = {}
    reference = template["conv.weight"]
    kernel = reference.new_zeros(width, width, *reference.shape[-2:])
    kernel[torch.arange(width), torch.arange(width), kernel.shape[-2] // 2, kernel.shape[-1] // 2] = 1
    new_state["conv.weight"] = kernel
    new_state["conv.bias"] = torch.zeros_like(template["conv.bias"])
    if "norm.weight" in template:
        eps = _conv_layers(model)[after_layer].norm.eps
        if calibration is not None:
            mean, var = input_statistics(model, after_layer, calibration)
            mean, var = mean.to(template["norm.running_mean"].dtype), var.to(template["norm.running_var"].dtype)
        else:
            mean = torch.zeros_like(template["norm.running_mean"])
            var = torch.full_like(template["norm.running_var"], 1 - eps)
        new_state.update({"norm.weight": torch.sqrt(var + eps), "norm.bias": mean.clone(),
                          "norm.running_mean": mean.clone(), "norm.running_var": var.clone(),
                          "norm.num_batches_tracked": torch.zeros_like(template["norm.num_batches_tracked"])})
    layer_states.insert(after_layer + 1, new_state)

    layers = list(config.layers)
    positions = [i for i, entry in enumerate(layers) if entry != "M"]
    layers.insert(positions[after_layer] + 1, width)
    return _load(_with_layers(model, layers), layer_states, classifier_state, model.training)


@torch.no_grad()
def function_change(model_a: nn.Module, model_b: nn.Module, pixel_values: torch.Tensor,
                    dtype: torch.dtype | None = torch.float64) -> float:
    """max |logits_a − logits_b| over `pixel_values` (float N×3×32×32 in [0, 1]), both models in eval mode.

    By default both forward passes run in float64 on copies of the models (their float32 weights cast exactly), so the
    number is the transform's own error — the rounding of its float32 weights (a weight divided by 3, an identity
    scale √(v + ε)) — and not the rounding of a float32 forward pass, which differs between any two summation orders of
    the same network and grows with the logits. `dtype=None` compares the models as they are (their own precision).
    """
    if dtype is not None:
        model_a, model_b = copy.deepcopy(model_a).to(dtype), copy.deepcopy(model_b).to(dtype)
        pixel_values = pixel_values.to(dtype)
    modes = model_a.training, model_b.training
    try:
        model_a.eval(), model_b.eval()
        a = model_a(pixel_values.to(next(model_a.parameters()).device)).logits
        b = model_b(pixel_values.to(next(model_b.parameters()).device)).logits.to(a.device)
    finally:
        model_a.train(modes[0]), model_b.train(modes[1])
    return float((a.double() - b.double()).abs().max())


__all__ = ["conv_blocks", "conv_widths", "function_change", "input_statistics", "net2deeper", "net2wider",
           "outgoing_split", "replication_mapping"]
