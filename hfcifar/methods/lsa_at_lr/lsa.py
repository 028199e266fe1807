"""Layer Sustainability Analysis (LSA): how much each layer's representation moves under an adversarial input.

"Layer-wise Regularized Adversarial Training using Layers Sustainability Analysis (LSA) framework" (Khalooei,
Homayounpour & Amirmazlaghani, 2022, https://arxiv.org/abs/2202.02626; official code https://github.com/khalooei/LSA),
Section 3:

- the comparison measure CM is the relative error of a layer's output representation φ_l for a clean input x and its
  perturbed counterpart x̂: `CM(φ_l(x), φ_l(x̂)) = ‖φ_l(x) − φ_l(x̂)‖_F / ‖φ_l(x)‖_F`;
- μ and σ are the mean and standard deviation of CM over all M samples and all L_y probed layers (Eq. 12);
- Algorithm 1: layer l is one of the Most Vulnerable Layers when `CM_l − μ > η·σ`; the MVL list is sorted;
- Algorithm 2: train the model normally, attack it, run Algorithm 1 with a tuned cut-off η.

The probes are forward hooks. As in the official code, the default probes are the model's activation modules (whose
outputs are the layers' representations): for hfcifar's nets every activation is its own module, called once per
forward.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

#: Module types whose outputs LSA probes by default (the official code probes ReLU, ELU and LeakyReLU; hfcifar's
#: FastNet uses GELU).
ACTIVATION_TYPES = (nn.ReLU, nn.ReLU6, nn.GELU, nn.ELU, nn.LeakyReLU, nn.SiLU, nn.Mish, nn.Hardswish)


def probe_layers(model: nn.Module) -> list[str]:
    """The names of the modules LSA probes by default: every activation module, in definition order.

    A model without activation modules (e.g. one using `torch.nn.functional`) falls back to its learnable layers
    (`Conv2d`, `Linear`), the "learnable layers" of the paper's figures.
    """
    names = [name for name, module in model.named_modules() if isinstance(module, ACTIVATION_TYPES)]
    if not names:
        names = [name for name, module in model.named_modules() if isinstance(module, (nn.Conv2d, nn.Linear))]
    return names


class LayerRepresentations:
    """Context manager recording the outputs φ_l of the named modules during each forward pass.

    Example:
        >>> with LayerRepresentations(model, ["fastnet.blocks.0.act2"]) as probe:
        ...     model(images)
        ...     representations = probe.pop()  # {"fastnet.blocks.0.act2": tensor}
    """

    def __init__(self, model: nn.Module, layers: list[str]):
        modules = dict(model.named_modules())
        missing = [name for name in layers if name not in modules]
        if missing:
            raise ValueError(f"No module named {missing} in {type(model).__name__}; pass names from "
                             f"`model.named_modules()` (LSA's default probes: {probe_layers(model)[:8]}…).")
        if not layers:
            raise ValueError("LSA needs at least one layer to probe; got an empty list.")
        self.model, self.layers = model, list(layers)
        self._modules = [modules[name] for name in self.layers]
        self._handles: list = []
        self.outputs: dict[str, torch.Tensor] = {}

    def _hook(self, name: str):
        def record(module, inputs, output):
            if name in self.outputs:
                raise ValueError(f"Module {name!r} ran twice in one forward pass, so its representation is ambiguous; "
                                 "probe a module that is called once (e.g. its parent block).")
            self.outputs[name] = output
        return record

    def __enter__(self) -> "LayerRepresentations":
        self._handles = [m.register_forward_hook(self._hook(n)) for n, m in zip(self.layers, self._modules)]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles, self.outputs = [], {}

    def pop(self) -> dict[str, torch.Tensor]:
        """The representations of the last forward pass (and forget them, ready for the next one)."""
        unseen = [name for name in self.layers if name not in self.outputs]
        if unseen:
            raise ValueError(f"Modules {unseen} did not run in the forward pass; probe modules the model uses.")
        outputs, self.outputs = self.outputs, {}
        return outputs


def relative_error(clean: torch.Tensor, perturbed: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """The comparison measure of LSA, per example: `‖φ_l(x) − φ_l(x̂)‖_F / ‖φ_l(x)‖_F` (one value per row)."""
    clean, perturbed = clean.flatten(1), perturbed.flatten(1)
    return (clean - perturbed).norm(dim=1) / clean.norm(dim=1).clamp_min(eps)


def most_vulnerable_layers(relative_errors: torch.Tensor, eta: float = 1.0) -> list[int]:
    """Algorithm 1: the (sorted) indices l with `CM_l − μ > η·σ`.

    Args:
        relative_errors: CM values of shape `(M, L)` (M samples, L layers) — μ and σ are then taken over all M × L
            values as in Eq. 12 and CM_l is the mean over the samples — or `(L,)` for one sample.
        eta: the cut-off η (Algorithm 2 tunes it per network).
    """
    errors = relative_errors if relative_errors.dim() == 2 else relative_errors[None]
    if errors.dim() != 2 or errors.numel() == 0:
        raise ValueError(f"relative_errors must have shape (samples, layers) or (layers,); got {tuple(relative_errors.shape)}.")
    mu, sigma = errors.mean(), errors.std(unbiased=False)  # Eq. 12: the 1/(M·L) population statistics
    per_layer = errors.mean(dim=0)
    return sorted(int(i) for i in torch.nonzero(per_layer - mu > eta * sigma).flatten())


@dataclass
class LayerSustainabilityOutput:
    """The result of [`layer_sustainability_analysis`].

    Attributes:
        layers: the probed module names, in forward order.
        relative_errors: CM_l, the mean relative error of each layer over the samples, shape `(L,)`.
        per_example: the relative error of every sample and layer, shape `(M, L)`.
        mean, std: μ and σ of Eq. 12 (over all M × L values).
        eta: the cut-off η of Algorithm 1.
        most_vulnerable_layers: the MVL list (module names, in forward order).
        attack: the attack's name and settings.
    """

    layers: list[str]
    relative_errors: torch.Tensor
    per_example: torch.Tensor
    mean: float
    std: float
    eta: float
    most_vulnerable_layers: list[str]
    attack: str = ""

    def to_dict(self) -> dict:
        return {"layers": self.layers, "relative_errors": [round(float(v), 6) for v in self.relative_errors],
                "mean": self.mean, "std": self.std, "eta": self.eta,
                "most_vulnerable_layers": self.most_vulnerable_layers, "attack": self.attack}


@torch.no_grad()
def layer_representations(model: nn.Module, images: torch.Tensor, layers: list[str], batch_size: int = 256) -> dict[str, torch.Tensor]:
    """φ_l(images) for every named layer (eval mode is the caller's business), batched, concatenated on the CPU."""
    collected: dict[str, list] = {name: [] for name in layers}
    with LayerRepresentations(model, layers) as probe:
        for start in range(0, images.shape[0], batch_size):
            model(images[start : start + batch_size])
            for name, output in probe.pop().items():
                collected[name].append(output.detach().flatten(1).cpu())
    return {name: torch.cat(parts) for name, parts in collected.items()}


def layer_sustainability_analysis(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    attack,
    layers: list[str] | None = None,
    eta: float = 1.0,
    batch_size: int = 256,
) -> LayerSustainabilityOutput:
    """LSA (Section 3, Algorithms 1–2): the relative error of every probed layer under `attack`, and the MVL list.

    Args:
        model: a trained classifier taking images in [0, 1] (an hfcifar model).
        images, labels: clean samples x (float N×3×32×32 in [0, 1]) and their classes.
        attack: an `hfcifar.attacks.Attack` on `model` (e.g. `PGD(model, eps=8/255)`) crafting x̂.
        layers: module names to probe (`model.named_modules()`); default [`probe_layers`]: every activation module.
        eta: the cut-off η of Algorithm 1.
        batch_size: images per forward pass.

    Returns:
        [`LayerSustainabilityOutput`] with per-layer relative errors and `most_vulnerable_layers`.

    Example:
        >>> from hfcifar.attacks import PGD
        >>> out = layer_sustainability_analysis(model, images, labels, PGD(model, eps=8 / 255, steps=10))
        >>> out.most_vulnerable_layers
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[0] == 0:
        raise ValueError(f"images must be a non-empty float tensor (N, 3, 32, 32) in [0, 1]; got {getattr(images, 'shape', type(images))}.")
    if not callable(attack):
        raise ValueError(f"attack must be an hfcifar attack (e.g. hfcifar.attacks.PGD(model, eps=8/255)); got {attack!r}.")
    layers = list(layers) if layers is not None else probe_layers(model)
    adversarial = torch.cat([attack(images[s : s + batch_size], labels[s : s + batch_size])
                             for s in range(0, images.shape[0], batch_size)])
    training = model.training
    model.eval()
    try:
        clean = layer_representations(model, images, layers, batch_size)
        perturbed = layer_representations(model, adversarial, layers, batch_size)
    finally:
        model.train(training)
    per_example = torch.stack([relative_error(clean[name], perturbed[name]) for name in layers], dim=1)
    mvl = most_vulnerable_layers(per_example, eta)
    return LayerSustainabilityOutput(
        layers=layers,
        relative_errors=per_example.mean(dim=0),
        per_example=per_example,
        mean=float(per_example.mean()),
        std=float(per_example.std(unbiased=False)),
        eta=float(eta),
        most_vulnerable_layers=[layers[i] for i in mvl],
        attack=repr(attack),
    )


def draw_layer_sustainability(ax, output: LayerSustainabilityOutput, title: str | None = None) -> None:
    """Draw each layer's relative error on `ax`, MVL bars highlighted, with μ and the cut-off μ + η·σ."""
    values = output.relative_errors.tolist()
    vulnerable = set(output.most_vulnerable_layers)
    colours = ["tab:red" if name in vulnerable else "tab:blue" for name in output.layers]
    ax.bar(range(len(values)), values, color=colours)
    ax.axhline(output.mean, color="black", linewidth=1, label=f"μ = {output.mean:.3f} (Eq. 12)")
    cut = output.mean + output.eta * output.std
    ax.axhline(cut, color="tab:red", linestyle="--", linewidth=1, label=f"μ + ησ = {cut:.3f} (η = {output.eta:g})")
    labels = [name.replace("fastnet.", "") for name in output.layers]
    ax.set_xticks(range(len(values)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("relative error ‖φ(x) − φ(x̂)‖ / ‖φ(x)‖")
    ax.set_title(title or f"LSA: MVL = {', '.join(labels[output.layers.index(n)] for n in output.most_vulnerable_layers) or 'none'}",
                 fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def plot_layer_sustainability(output: LayerSustainabilityOutput, path, title: str | None = None) -> str:
    """A bar chart of each layer's relative error (see `draw_layer_sustainability`) saved to `path` (no global
    Matplotlib state: a `Figure` with an Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(6.0, 0.55 * len(output.layers) + 2), 4.0))
    FigureCanvasAgg(fig)
    draw_layer_sustainability(fig.subplots(), output, title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return str(path)


__all__ = [
    "ACTIVATION_TYPES",
    "LayerRepresentations",
    "LayerSustainabilityOutput",
    "layer_representations",
    "draw_layer_sustainability",
    "layer_sustainability_analysis",
    "most_vulnerable_layers",
    "plot_layer_sustainability",
    "probe_layers",
    "relative_error",
]
