"""`ReSTETrainer`: `CifarTrainer` for binary networks, with ReSTE's o annealed and the two indicators logged."""

from __future__ import annotations

from dataclasses import dataclass, field

from hfcifar.training import CifarTrainer, CifarTrainingArguments

from .indicators import EquilibriumIndicatorsCallback, PowerScheduleCallback


#: The name `ReSTETrainer` is registered under (`hfcifar train --trainer reste`); binary ResNets default to it.
TRAINER_NAME = "reste"


@dataclass
class ReSTETrainingArguments(CifarTrainingArguments):
    """[`CifarTrainingArguments`] plus whether to compute the equilibrium indicators at every update.

    The estimator itself (ReSTE or STE), o's start, end and schedule, t and m are the model's config
    (`hfcifar.models.binary_resnet.BinaryResNetConfig`): they travel with the model.
    """

    log_indicators: bool = field(
        default=True,
        metadata={"help": "Compute the estimating error and gradient stability at every update and log their means."},
    )


class ReSTETrainer(CifarTrainer):
    """Train a binary network (e.g. `hfcifar.create_model("binary-resnet20", estimator="reste")`).

    The loop and the loss are `CifarTrainer`'s; what ReSTE adds lives in two callbacks:

    - `PowerScheduleCallback` moves ReSTE's o from `config.reste_power_start` to `config.reste_power_end` along
      `config.reste_power_schedule` as training advances (the paper grows o from 1 to o_end = 3);
    - `EquilibriumIndicatorsCallback` (when `args.log_indicators`) measures the estimating error and the gradient
      stability at every update (the paper's two indicators); their means since the previous log, and the current o, are added to each
      training log entry (`state.log_history`), and every update's values stay in `trainer.indicators.history`.

    The same trainer trains the STE baseline: the model's `estimator` decides the backward pass, so the two runs
    differ in nothing else.
    """

    arguments_class = ReSTETrainingArguments

    def __init__(self, model=None, args: CifarTrainingArguments | None = None, **kwargs):
        if model is None or not hasattr(model, "set_training_progress"):
            raise ValueError(
                f"ReSTETrainer trains binary networks; got {type(model).__name__}. Create one with "
                "hfcifar.create_model('binary-resnet20', estimator='reste') (or estimator='ste' for the baseline)."
            )
        if args is None:
            args = ReSTETrainingArguments(output_dir="hfcifar_trainer")
        callbacks = list(kwargs.pop("callbacks", None) or [])
        callbacks.append(PowerScheduleCallback())
        self.indicators = EquilibriumIndicatorsCallback() if getattr(args, "log_indicators", True) else None
        if self.indicators is not None:
            callbacks.append(self.indicators)
        super().__init__(model=model, args=args, callbacks=callbacks, **kwargs)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        # only training entries (they carry the loss) average the indicators; evaluation entries are left alone
        if self.indicators is not None and "loss" in logs:
            logs.update(self.indicators.pop_means())
        super().log(logs, start_time)


__all__ = ["ReSTETrainer", "ReSTETrainingArguments"]
