"""The dead neuron rate (DNR) of a ReLU network, counted with forward hooks (Liu et al., Sec. 3).

A ReLU node is *dead* for an input when its output is exactly zero (its pre-activation is ≤ 0): it passes neither a
signal forward nor a gradient back. The DNR is the fraction of node outputs that are zero, over every ReLU node of
the network and every input. The paper's *dynamic* DNR is that fraction measured while the network is being
optimized: over the training batches as they go through the network in training mode (batch-norm batch statistics,
augmentation), tracked over the course of training. Its observation — the more a network is pruned, the lower its
dynamic DNR — is what AP builds on.

`DeadNeuronRate` counts (it works on any model with `nn.ReLU` modules, in any mode); `DynamicDNRCallback` attaches
one to any `CifarTrainer` and records the dynamic DNR of every logging interval and every epoch;
`dead_neuron_rate` measures the DNR of a model on a batch of images at evaluation time.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from transformers import TrainerCallback

#: The activations a node can die in: outputs exactly zero for a whole half-line of pre-activations.
ACTIVATION_TYPES = (nn.ReLU,)


def relu_modules(model: nn.Module, names: Iterable[str] | None = None) -> dict[str, nn.Module]:
    """The `nn.ReLU` modules of `model` by name (`named_modules()` order), or the named ones.

    Raises:
        ValueError: the model has no ReLU module (the DNR is defined for ReLU networks; FastNet uses GELU unless
            built with `hidden_act="relu"`), or `names` names a module that is not a ReLU of the model.
    """
    found = {name: module for name, module in model.named_modules() if isinstance(module, ACTIVATION_TYPES)}
    if not found:
        raise ValueError(
            f"{type(model).__name__} has no nn.ReLU module, and the dead neuron rate is defined for ReLU nodes (a node "
            "is dead when its output is 0). Use a ReLU network, e.g. create_model('fastnet', hidden_act='relu') or "
            "create_model('resnet20')."
        )
    if names is None:
        return found
    names = list(names)
    unknown = [name for name in names if name not in found]
    if unknown:
        raise ValueError(f"These names are not nn.ReLU modules of {type(model).__name__}: {unknown}; "
                         f"its ReLU modules are {list(found)}.")
    return {name: found[name] for name in names}


class DeadNeuronRate:
    """Counts zero outputs of a model's ReLU nodes with forward hooks: `rate` = zeros / outputs since `reset()`.

    Every element of a ReLU's output is one node for one input (a convolutional feature map has one node per channel
    and position), so the rate is the fraction of dead (node, input) pairs over all ReLU layers together, each layer
    weighted by its number of nodes.

    Args:
        model: a network with `nn.ReLU` modules.
        layers: names of the ReLU modules to watch (default: all of them).
        training_only: count only forward passes in training mode — the *dynamic* DNR of the paper, measured during
            optimization, not mixed with the evaluations a trainer runs in between. `False` counts every pass.

    Use as a context manager (hooks removed on exit) or with `attach()`/`detach()`. Counts accumulate on the model's
    device (no synchronization per batch) and are read with `rate`, `per_layer()` or `counts()`.
    """

    def __init__(self, model: nn.Module, layers: Iterable[str] | None = None, training_only: bool = True):
        self.model = model
        self.layers = relu_modules(model, layers)
        self.training_only = training_only
        self._hooks: list = []
        self.reset()

    def reset(self) -> None:
        self._zeros = {name: 0 for name in self.layers}
        self._outputs = {name: 0 for name in self.layers}

    def _count(self, name: str, module: nn.Module, output: torch.Tensor) -> None:
        if self.training_only and not module.training:
            return
        # `== 0` is the definition (ReLU outputs exactly 0 for every pre-activation ≤ 0); detached, no graph kept.
        self._zeros[name] = self._zeros[name] + (output.detach() == 0).sum()
        self._outputs[name] += output.numel()

    def attach(self) -> "DeadNeuronRate":
        if not self._hooks:
            self._hooks = [module.register_forward_hook(lambda m, i, o, n=name: self._count(n, m, o))
                           for name, module in self.layers.items()]
        return self

    def detach(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []

    def __enter__(self) -> "DeadNeuronRate":
        return self.attach()

    def __exit__(self, *exc) -> None:
        self.detach()

    def counts(self) -> tuple[int, int]:
        """(dead node outputs, all node outputs) counted since `reset()`, over every watched layer."""
        zeros = sum(int(z) for z in self._zeros.values())
        return zeros, sum(self._outputs.values())

    @property
    def rate(self) -> float:
        """Dead node outputs / node outputs since `reset()` (NaN before anything was counted)."""
        zeros, outputs = self.counts()
        return zeros / outputs if outputs else float("nan")

    def per_layer(self) -> dict[str, float]:
        """The DNR of each watched ReLU layer since `reset()` (NaN for a layer that saw no input)."""
        return {name: int(self._zeros[name]) / self._outputs[name] if self._outputs[name] else float("nan")
                for name in self.layers}


@torch.no_grad()
def dead_neuron_rate(model: nn.Module, pixel_values: torch.Tensor, batch_size: int = 256, per_layer: bool = False):
    """The DNR of `model` on float images (N×3×32×32 in [0, 1]) in evaluation mode (a *static* DNR: one network,
    fixed inputs). Returns the rate, or `(rate, {layer: rate})` with `per_layer`. The model's mode is restored."""
    if not isinstance(pixel_values, torch.Tensor) or pixel_values.dim() != 4 or not pixel_values.is_floating_point():
        raise ValueError("pixel_values must be a float tensor of shape (N, 3, 32, 32) in [0, 1]; got "
                         f"{getattr(pixel_values, 'dtype', type(pixel_values))} {tuple(getattr(pixel_values, 'shape', ()))}.")
    was_training = model.training
    device = next(model.parameters()).device
    counter = DeadNeuronRate(model, training_only=False)
    try:
        model.eval()
        with counter:
            for start in range(0, len(pixel_values), batch_size):
                model(pixel_values[start:start + batch_size].to(device))
    finally:
        model.train(was_training)
    return (counter.rate, counter.per_layer()) if per_layer else counter.rate


class DynamicDNRCallback(TrainerCallback):
    """Records the dynamic DNR while a `Trainer` trains: a `DeadNeuronRate` (training passes only) on the trained
    model from `on_train_begin` to `on_train_end`.

    - `history`: one `{"step", "epoch", "dynamic_dnr"}` per logging interval (the rate over the training batches
      since the previous log), also written into that entry of `state.log_history` as `dynamic_dnr`;
    - `epoch_history`: one `{"epoch", "step", "dynamic_dnr"}` per epoch (the rate over that epoch's batches), the
      paper's dynamic DNR per training epoch.

    Counts are those of the local process (under data parallelism every rank sees a shard of similar batches).
    """

    def __init__(self, layers: Iterable[str] | None = None):
        self.layer_names = list(layers) if layers is not None else None
        self.counter: DeadNeuronRate | None = None
        self.history: list[dict] = []
        self.epoch_history: list[dict] = []
        self._at_log = (0, 0)
        self._at_epoch = (0, 0)

    @property
    def rate(self) -> float:
        """The dynamic DNR over every training batch seen so far (NaN before training)."""
        return self.counter.rate if self.counter is not None else float("nan")

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if model is None:
            raise ValueError("DynamicDNRCallback needs the model: use it with a transformers Trainer.")
        if self.counter is None or self.counter.model is not model:
            self.counter = DeadNeuronRate(model, self.layer_names, training_only=True)
        self.counter.attach()

    def _since(self, mark: tuple[int, int]) -> tuple[float, tuple[int, int]]:
        zeros, outputs = self.counter.counts()
        seen = outputs - mark[1]
        return ((zeros - mark[0]) / seen if seen else float("nan")), (zeros, outputs)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.counter is None:
            return
        rate, mark = self._since(self._at_log)
        if mark[1] == self._at_log[1]:  # nothing trained since the last log (e.g. an evaluation log)
            return
        self._at_log = mark
        self.history.append({"step": state.global_step, "epoch": state.epoch, "dynamic_dnr": rate})
        if state.log_history and state.log_history[-1].get("step") == state.global_step:
            state.log_history[-1]["dynamic_dnr"] = rate  # so the run's log history carries it too

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.counter is None:
            return
        rate, mark = self._since(self._at_epoch)
        if mark[1] != self._at_epoch[1]:
            self._at_epoch = mark
            self.epoch_history.append({"epoch": state.epoch, "step": state.global_step, "dynamic_dnr": rate})

    def on_train_end(self, args, state, control, **kwargs):
        if self.counter is not None:
            # a run stopped mid-epoch (max_steps, time budget) still reports its last partial epoch
            self.on_epoch_end(args, state, control)
            self.counter.detach()
