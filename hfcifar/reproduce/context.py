"""`ClaimContext`: the shared work of every claim check, so a `claim.py` holds only its experiment.

It gives a check its scale's work and seeds, the data (decoded once), one training call that records whether the
planned work was done, per-image correctness, figures saved the same way every time, and a place to say that the
run is incomplete. The framework reads what it recorded when it decides the verdict.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..data import load_train_and_eval
from .claims import Claim

#: The time guard of a fixed-work run is this many times the scale's estimated minutes: generous enough for a
#: loaded machine, small enough that a runaway run stops (and is reported INCONCLUSIVE, never PASS).
GUARD_FACTOR = 3.0


@dataclass
class TrainRun:
    """One `ctx.train` call: the trainer, and whether the planned work was done."""

    name: str
    trainer: Any
    steps: int
    planned_steps: int
    epochs: float
    seconds: float
    cut_short: bool

    @property
    def model(self):
        return self.trainer.model

    def summary(self) -> dict:
        return {"name": self.name, "steps": self.steps, "planned_steps": self.planned_steps,
                "epochs": round(float(self.epochs or 0), 4), "seconds": round(self.seconds, 2),
                "cut_short": self.cut_short}


@dataclass
class ClaimContext:
    """Everything a claim check's `run(ctx)` needs.

    Attributes:
        scale: `"smoke"`, `"cpu"` or `"paper"`; `work` is that scale's work dict, `seeds` the training seeds.
        dataset / eval_dataset: the data sources (see [`hfcifar.data.load_train_and_eval`]).
        output_dir: where every file of the run goes.
        guard_minutes: the time guard (`None`: none); training stops there and the run is INCONCLUSIVE.
        mode: `"fixed"` (the scale's work) or `"budget"` (`--budget-minutes`: the same work under a deadline).
    """

    slug: str
    claim: Claim
    scale: str
    work: dict
    seeds: list
    dataset: str
    eval_dataset: str | None
    output_dir: Path
    progress: bool = True
    guard_minutes: float | None = None
    mode: str = "fixed"
    start_time: float = field(default_factory=time.monotonic)
    incomplete_reasons: list = field(default_factory=list)
    plots: list = field(default_factory=list)
    training_runs: list = field(default_factory=list)
    _data: tuple | None = field(default=None, init=False, repr=False)
    _tensors: tuple | None = field(default=None, init=False, repr=False)

    # -- scale ------------------------------------------------------------------------------------------------
    @property
    def smoke(self) -> bool:
        return self.scale == "smoke"

    @property
    def seed(self) -> int:
        """The first seed (for what does not vary with training randomness: data subsets, attack noise)."""
        return self.seeds[0]

    def each_seed(self) -> Iterator[int]:
        """Iterate over the run's seeds, seeding Python, numpy and torch before each."""
        from transformers import set_seed

        for seed in self.seeds:
            set_seed(seed)
            yield seed

    def minutes_elapsed(self) -> float:
        return (time.monotonic() - self.start_time) / 60

    def guard_minutes_left(self) -> float | None:
        """Minutes before the time guard (`None` without a guard; never negative)."""
        if self.guard_minutes is None:
            return None
        return max(0.0, self.guard_minutes - self.minutes_elapsed())

    # -- completeness -----------------------------------------------------------------------------------------
    def incomplete(self, reason: str) -> None:
        """Record that the planned work was not done (the verdict becomes INCONCLUSIVE with `reason`)."""
        if reason not in self.incomplete_reasons:
            self.incomplete_reasons.append(reason)

    def require(self, condition: bool, reason: str) -> bool:
        """`incomplete(reason)` unless `condition`; returns `condition`."""
        if not condition:
            self.incomplete(reason)
        return bool(condition)

    # -- data -------------------------------------------------------------------------------------------------
    def _load(self) -> tuple:
        if self._data is None:
            self._data = load_train_and_eval(self.dataset, self.eval_dataset)
        return self._data

    @property
    def train_split(self):
        """The training split (`datasets.Dataset`, Hub schema)."""
        return self._load()[0]

    @property
    def eval_split(self):
        """The held-out split measured on (`datasets.Dataset`, Hub schema)."""
        return self._load()[1]

    @property
    def data_info(self) -> dict:
        """`{"dataset", "eval_dataset", "eval_split", "num_train_examples", "num_eval_examples"}`."""
        return dict(self._load()[2])

    def tensors(self) -> tuple:
        """`(train, held_out)` as `CifarTensorDataset`s, decoded once for the whole run."""
        if self._tensors is None:
            from ..data import CifarTensorDataset

            self._tensors = (CifarTensorDataset.from_hf(self.train_split, "train", progress=self.progress),
                             CifarTensorDataset.from_hf(self.eval_split, "eval", progress=self.progress))
        return self._tensors

    @staticmethod
    def head(dataset, n: int | None):
        """The first `n` examples of a `CifarTensorDataset` (all when `n` is `None` or larger). The held-out split is
        already a stratified shuffle, so its head is a fair sample."""
        from ..data import CifarTensorDataset

        if n is None or n >= len(dataset):
            return dataset
        return CifarTensorDataset(dataset.images[:n], dataset.labels[:n])

    # -- training ---------------------------------------------------------------------------------------------
    def train(self, model, recipe: dict | str | None = None, *, name: str, trainer_class=None, args_class=None,
              train_dataset=None, eval_dataset=None, epochs: float | None = None, max_steps: int | None = None,
              seed: int | None = None, save: bool = False, **trainer_kwargs) -> TrainRun:
        """Train `model` with `trainer_class` (a `CifarTrainer` subclass) for a fixed amount of work.

        `recipe` is a dict of training arguments or a recipe name; `epochs`/`max_steps` override it. The time guard
        is passed as a pure guard (`fit_schedule_to_budget=False`: the learning-rate schedule is never squeezed to
        fit the clock); if it stops training, the run is recorded as incomplete. `save=True` saves the model to
        `output_dir/name`. Extra keyword arguments go to the trainer (e.g. `callbacks`, `teacher_model`).
        """
        from ..training import CifarTrainer, CifarTrainingArguments
        from ..training.recipes import get_recipe

        trainer_class = trainer_class or CifarTrainer
        args_class = args_class or CifarTrainingArguments
        settings = dict(get_recipe(recipe) if isinstance(recipe, str) else (recipe or {}))
        if epochs is not None:
            settings["num_train_epochs"] = epochs
        if max_steps is not None:
            settings["max_steps"] = max_steps
        settings.pop("time_budget_minutes", None)
        guard = self.guard_minutes_left()
        settings.update(time_budget_minutes=guard if guard else None, fit_schedule_to_budget=False,
                        seed=self.seed if seed is None else seed, disable_tqdm=not self.progress)
        settings.setdefault("save_strategy", "no")
        settings.setdefault("eval_strategy", "no")
        settings.setdefault("logging_steps", 10)
        settings.setdefault("per_device_eval_batch_size", 512)
        folder = self.output_dir / name
        args = args_class(output_dir=str(folder), **settings)
        train_dataset = train_dataset if train_dataset is not None else self.tensors()[0]
        trainer = trainer_class(model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
                                **trainer_kwargs)
        started = time.monotonic()
        trainer.train()
        seconds = time.monotonic() - started
        planned = int(trainer.state.max_steps)
        cut = bool(trainer.stopped_by_time_budget) or trainer.state.global_step < planned
        run = TrainRun(name=name, trainer=trainer, steps=int(trainer.state.global_step), planned_steps=planned,
                       epochs=float(trainer.state.epoch or 0), seconds=seconds, cut_short=cut)
        self.training_runs.append(run)
        if cut:
            self.incomplete(f"training {name!r} stopped at step {run.steps} of {planned} (time guard "
                            f"{self.guard_minutes:.3g} min)" if self.guard_minutes else
                            f"training {name!r} stopped at step {run.steps} of {planned}")
        if save:
            trainer.save_model(str(folder))
        return run

    def same_work(self, runs: list[TrainRun], what: str = "arms") -> bool:
        """Record the run as incomplete unless every run in `runs` trained the same number of steps."""
        steps = {run.name: run.steps for run in runs}
        return self.require(len(set(steps.values())) <= 1, f"the {what} trained different numbers of steps: {steps}")

    # -- evaluation -------------------------------------------------------------------------------------------
    @staticmethod
    def correct(model, dataset, batch_size: int = 512) -> np.ndarray:
        """Per-image correctness (bool array) on a `CifarTensorDataset`: a trainer predicts as it evaluates (its
        `tta`, its processes); a bare model predicts in eval mode (restored after)."""
        if hasattr(model, "predict") and hasattr(model, "args"):
            logits = model.predict(dataset).predictions
            return np.argmax(logits, axis=-1) == dataset.labels.cpu().numpy()
        from ..attacks.transfer import predict
        from ..data.augment import to_float_images

        predictions = predict(model, to_float_images(dataset.images), batch_size=batch_size)
        return (predictions.cpu() == dataset.labels.cpu()).numpy()

    # -- figures ----------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def figure(self, name: str, nrows: int = 1, ncols: int = 1, figsize: tuple | None = None, **subplots):
        """`with ctx.figure("curves.png", 1, 2) as (fig, axes): ...` — a Matplotlib figure (no global state, Agg
        canvas) saved atomically to `output_dir/name` on exit and listed in the report."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize or (5.0 * ncols, 3.8 * nrows))
        FigureCanvasAgg(fig)
        axes = fig.subplots(nrows, ncols, **subplots)
        yield fig, axes
        fig.tight_layout()
        path = self.output_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
        if name not in self.plots:
            self.plots.append(name)
