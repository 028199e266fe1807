"""Callbacks shared by every hfcifar trainer: a wall-clock budget and the training-curves plot."""

from __future__ import annotations

import math
import os
import time

import torch
from accelerate.utils import broadcast
from transformers import TrainerCallback

CURVES_FILE = "training_curves.png"


class WarpedSchedule:
    """A learning-rate multiplier `fn(step)` replayed at another speed from some step on.

    `position(step)` is the step of the original schedule that `step` stands for; it is piecewise linear and
    continuous, so retargeting mid-run never makes the learning rate jump. Positions stop at `horizon`, where the
    original schedule ends (a cosine schedule evaluated past its end would rise again).
    """

    def __init__(self, fn, horizon: int):
        self.fn, self.horizon = fn, horizon
        self.start_step, self.start_position, self.speed = 0, 0.0, 1.0

    def position(self, step: float) -> float:
        return min(self.start_position + (step - self.start_step) * self.speed, self.horizon)

    def retarget(self, step: int, end_step: float) -> None:
        """From `step` on, play the rest of the original schedule so that it ends at `end_step`."""
        here = self.position(step)
        self.start_step, self.start_position = step, here
        self.speed = (self.horizon - here) / max(end_step - step, 1.0)

    def __call__(self, step: int) -> float:
        return self.fn(self.position(step))


class TimeBudgetCallback(TrainerCallback):
    """Stop training cleanly, saving a checkpoint, once `minutes` of training wall time have passed.

    With `fit_schedule` (the default), the learning-rate schedule is also fitted into the budget: every tenth of the
    budget the callback measures the time per step so far, predicts the step at which the budget runs out and, if
    that comes before the planned end, replays the rest of the schedule faster (`WarpedSchedule`) so that warm-up
    and decay complete inside the budget — instead of stopping at a peak learning rate with an unfinished schedule.
    The main process decides and broadcasts its decisions, so every rank stops (and warps) at the same step.
    """

    def __init__(self, minutes: float, device: torch.device | str = "cpu", fit_schedule: bool = True, checks: int = 10):
        self.seconds = minutes * 60
        self.device = device
        self.fit_schedule = fit_schedule
        self.check_interval = self.seconds / checks
        self.start = None
        self.stopped_early = False
        self.fitted_end_step = None  # the step the schedule was last fitted to end at (None: never fitted)

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()
        self.first_step = state.global_step
        self.next_check = self.start + self.check_interval

    def _predicted_end(self, state, now: float) -> float:
        done = state.global_step - self.first_step
        if not self.fit_schedule or now < self.next_check or done < 5:
            return -1.0
        self.next_check = now + self.check_interval
        end = state.global_step + (self.seconds - (now - self.start)) * done / (now - self.start)
        return end if end < state.max_steps else -1.0

    def on_step_end(self, args, state, control, lr_scheduler=None, **kwargs):
        now = time.monotonic()
        decision = torch.tensor([float(now - self.start > self.seconds), self._predicted_end(state, now)], device=self.device)
        if args.world_size > 1:
            decision = broadcast(decision, from_process=0)
        over, end_step = decision.tolist()
        if end_step > 0 and isinstance(lr_scheduler, torch.optim.lr_scheduler.LambdaLR):
            if not all(isinstance(f, WarpedSchedule) for f in lr_scheduler.lr_lambdas):
                lr_scheduler.lr_lambdas = [WarpedSchedule(f, state.max_steps) for f in lr_scheduler.lr_lambdas]
            for warped in lr_scheduler.lr_lambdas:
                warped.retarget(state.global_step, end_step)
            self.fitted_end_step = int(end_step)
        finished_schedule = self.fitted_end_step is not None and state.global_step >= self.fitted_end_step
        if over > 0 or finished_schedule:
            self.stopped_early = True
            control.should_training_stop = True
            control.should_save = True
        return control


def plot_training_curves(log_history: list[dict], path: str) -> str | None:
    """Plot training loss and learning rate per step and evaluation accuracy per epoch to `path` (PNG).

    Draws on a `matplotlib.figure.Figure` with its own Agg canvas: no pyplot state, and the caller's backend (a
    notebook's inline one, say) is left as it is.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    train = [(h["step"], h["loss"]) for h in log_history if "loss" in h and "step" in h]
    lr = [(h["step"], h["learning_rate"]) for h in log_history if "learning_rate" in h and "step" in h]
    evals = [(h.get("epoch", h["step"]), h["eval_accuracy"]) for h in log_history if "eval_accuracy" in h]
    if not (train or evals):
        return None
    # No evaluation during training (eval_strategy="no") → no empty accuracy panel.
    panels = [("training loss", "step", train, "tab:blue"), ("learning rate", "step", lr, "tab:orange")]
    if evals:
        panels.append(("evaluation accuracy", "epoch", evals, "tab:green"))
    fig = Figure(figsize=(4.4 * len(panels), 3.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, xlabel, points, colour) in zip(axes, panels):
        if points:
            ax.plot(*zip(*points), color=colour, marker="o" if title == "evaluation accuracy" else None)
        ax.set(title=title, xlabel=xlabel)
    if evals:
        best = max(a for _, a in evals)
        axes[-1].set_ylim(0, max(1.0, math.ceil(best * 10) / 10))
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)
    return path


class TrainingCurvesCallback(TrainerCallback):
    """Write `training_curves.png` (loss, learning rate, evaluation accuracy) in `output_dir` at the end."""

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and args.plot_curves:
            os.makedirs(args.output_dir, exist_ok=True)
            plot_training_curves(state.log_history, os.path.join(args.output_dir, CURVES_FILE))


class LookaheadCallback(TrainerCallback):
    """Lookahead on the model's weights, as airbench uses it (Zhang et al., 2019, "Lookahead Optimizer: k steps
    forward, 1 step back"; Jordan, 2024).

    Every `every` optimizer steps the slow copy of every floating-point tensor of the model's state (weights and
    batch-norm statistics) moves toward the fast one, `slow ← d·slow + (1 − d)·fast`, and the fast weights restart
    from it; `d = decay · progress³` grows from 0 to `decay` over the run (`progress` = step / the planned last step,
    which `end_step(state)` gives — the time budget's fitted end when there is one). At the end of training the slow
    weights are copied into the model, so evaluation and the saved model use them.
    """

    def __init__(self, decay: float, every: int, end_step):
        self.decay = decay
        self.every = every
        self.end_step = end_step
        self.slow: dict[str, torch.Tensor] | None = None

    @staticmethod
    def _tensors(model) -> dict[str, torch.Tensor]:
        return {k: v for k, v in model.state_dict().items() if v.dtype.is_floating_point}

    @torch.no_grad()
    def synchronize(self, model, decay: float) -> None:
        for name, fast in self._tensors(model).items():
            slow = self.slow[name]
            slow.lerp_(fast, 1.0 - decay)
            fast.copy_(slow)

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if self.slow is None:  # a resumed run already holds the checkpoint's slow weights
            self.slow = {k: v.detach().clone() for k, v in self._tensors(model).items()}

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0:
            progress = min(1.0, state.global_step / max(1, self.end_step(state)))
            self.synchronize(model, self.decay * progress**3)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if self.slow is not None:
            self.synchronize(model, 1.0)  # the model takes the slow weights
