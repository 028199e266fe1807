"""The two indicators of ReSTE's equilibrium perspective, and the callbacks that compute and anneal during training.

Wu et al. (ICCV 2023) regard binary-network training as an equilibrium between two quantities:

- the **estimating error** `e = D(sign(z), f(z))`: how far the estimator f whose derivative the backward pass uses is
  from the sign function the forward pass uses (D: the L2 distance);
- the **gradient stability** `s = var(|g|)`: the variance of the gradient magnitudes of the parameters in one update
  (a *larger* s means *less* stable, more divergent gradients).

A sharper estimator (ReSTE with a larger o) lowers e and raises s. Both are measured on the latent weights of the
binarized layers, summed over layers, as the official code does.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import TrainerCallback

from hfcifar.models.binary_resnet import binary_sign
from hfcifar.training.callbacks import WarpedSchedule


def _binarized_weights(model: nn.Module) -> dict[str, nn.Module]:
    """The layers whose weights the forward pass binarizes (a 32-bit weight has no estimating error)."""
    if not hasattr(model, "binary_layers"):
        raise ValueError(
            f"{type(model).__name__} has no binarized layers: ReSTE's indicators need a binary network such as "
            "hfcifar.create_model('binary-resnet20')."
        )
    return {name: layer for name, layer in model.binary_layers().items() if layer.weight_bits == 1}


@torch.no_grad()
def estimating_error(model: nn.Module) -> float:
    """`Σ_l ‖sign(W_l) − f(W_l)‖₂` over the binarized layers: the estimating error e of each layer's estimator f
    (ReSTE: `sign(z)·min(|z|, t)^(1/o)` at the layer's current o; STE: `clamp(z, −1, 1)`), summed over layers."""
    total = 0.0
    for layer in _binarized_weights(model).values():
        weight = layer.weight.detach()
        difference = binary_sign(weight) - layer.estimator_function(weight)
        total += float(torch.linalg.vector_norm(difference))
    return total


@torch.no_grad()
def gradient_stability(model: nn.Module) -> float:
    """`Σ_l var(|∂L/∂W_l|)` over the binarized layers: the gradient stability s of the current update (larger =
    less stable). Call it between `backward()` and the optimizer step; a layer without a gradient is an error."""
    total = 0.0
    for name, layer in _binarized_weights(model).items():
        if layer.weight.grad is None:
            raise ValueError(f"{name}.weight has no gradient: measure gradient stability after backward().")
        total += float(layer.weight.grad.detach().abs().var())
    return total


def training_progress(state, lr_scheduler=None) -> float:
    """The fraction of training done, read on the learning-rate schedule's clock.

    When a time budget replays the schedule faster (`WarpedSchedule`), o follows the same clock, so the annealing of
    o completes exactly when the learning-rate decay does.
    """
    step = state.global_step
    lambdas = getattr(lr_scheduler, "lr_lambdas", None) or [None]
    if isinstance(lambdas[0], WarpedSchedule):
        warped = lambdas[0]
        return min(max(warped.position(step) / max(warped.horizon, 1), 0.0), 1.0)
    return min(step / max(state.max_steps, 1), 1.0)


class PowerScheduleCallback(TrainerCallback):
    """Anneal ReSTE's power o from the config's start to its end as training advances (`set_training_progress`).

    The official code updates o once per epoch; here it moves every step along the same curve, which matters
    when a short run has only a few epochs.
    """

    def on_step_begin(self, args, state, control, model=None, lr_scheduler=None, **kwargs):
        model.set_training_progress(training_progress(state, lr_scheduler))

    def on_train_end(self, args, state, control, model=None, **kwargs):
        model.set_training_progress(1.0)  # the trained model reports (and resumes) at its final o


class EquilibriumIndicatorsCallback(TrainerCallback):
    """Compute both indicators at every update, after the gradients are complete and before the optimizer step.

    `history` holds one row per update: `step`, `epoch`, `reste_power` (o; `None` for the STE), `estimating_error`,
    `gradient_stability`. `pop_means()` gives the means since the previous call (what `ReSTETrainer` logs).
    The gradients are read after `Trainer`'s gradient clipping (`max_grad_norm`); set it to 0 to measure the raw
    gradients, as the paper's training (which does not clip) sees them.
    """

    def __init__(self):
        self.history: list[dict] = []
        self._since_log = 0

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        layers = _binarized_weights(model)
        first = next(iter(layers.values()), None)
        self.history.append({
            "step": state.global_step + 1,  # the update about to be applied
            "epoch": state.epoch,
            "reste_power": first.power if first is not None and first.estimator == "reste" else None,
            "estimating_error": estimating_error(model),
            "gradient_stability": gradient_stability(model),
        })
        self._since_log += 1

    def pop_means(self) -> dict:
        rows, self._since_log = self.history[len(self.history) - self._since_log :], 0
        if not rows:
            return {}
        means = {key: sum(r[key] for r in rows) / len(rows) for key in ("estimating_error", "gradient_stability")}
        if rows[-1]["reste_power"] is not None:
            means["reste_power"] = rows[-1]["reste_power"]
        return means


__all__ = [
    "EquilibriumIndicatorsCallback",
    "PowerScheduleCallback",
    "estimating_error",
    "gradient_stability",
    "training_progress",
]
