"""Callbacks shared by every hfcifar trainer: a wall-clock budget and the training-curves plot."""

from __future__ import annotations

import math
import os
import time

import torch
from accelerate.utils import broadcast
from transformers import TrainerCallback

CURVES_FILE = "training_curves.png"


class TimeBudgetCallback(TrainerCallback):
    """Stop training cleanly, saving a checkpoint, once `minutes` of training wall time have passed.

    The main process decides and broadcasts its decision, so every rank stops at the same step.
    """

    def __init__(self, minutes: float, device: torch.device | str = "cpu"):
        self.seconds = minutes * 60
        self.device = device
        self.start = None
        self.stopped_early = False

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        over = torch.tensor([float(time.monotonic() - self.start > self.seconds)], device=self.device)
        if args.world_size > 1:
            over = broadcast(over, from_process=0)
        if over.item() > 0:
            self.stopped_early = True
            control.should_training_stop = True
            control.should_save = True
        return control


def plot_training_curves(log_history: list[dict], path: str) -> str | None:
    """Plot training loss and learning rate per step and evaluation accuracy per epoch to `path` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(h["step"], h["loss"]) for h in log_history if "loss" in h and "step" in h]
    lr = [(h["step"], h["learning_rate"]) for h in log_history if "learning_rate" in h and "step" in h]
    evals = [(h.get("epoch", h["step"]), h["eval_accuracy"]) for h in log_history if "eval_accuracy" in h]
    if not (train or evals):
        return None
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    if train:
        axes[0].plot(*zip(*train), color="tab:blue")
    axes[0].set(title="training loss", xlabel="step")
    if lr:
        axes[1].plot(*zip(*lr), color="tab:orange")
    axes[1].set(title="learning rate", xlabel="step")
    if evals:
        axes[2].plot(*zip(*evals), marker="o", color="tab:green")
        best = max(a for _, a in evals)
        axes[2].set_ylim(0, max(1.0, math.ceil(best * 10) / 10))
    axes[2].set(title="evaluation accuracy", xlabel="epoch")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path


class TrainingCurvesCallback(TrainerCallback):
    """Write `training_curves.png` (loss, learning rate, evaluation accuracy) in `output_dir` at the end."""

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and args.plot_curves:
            os.makedirs(args.output_dir, exist_ok=True)
            plot_training_curves(state.log_history, os.path.join(args.output_dir, CURVES_FILE))
