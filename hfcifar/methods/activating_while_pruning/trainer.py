"""`APTrainer`: a `PruningTrainer` whose every pruning event is shared between its pruning method and AP.

    args = APTrainingArguments("runs/ap", target_sparsity=0.9, pruning_method="global", pruning_schedule="gradual",
                               pruning_end_step=400, pruning_frequency=50, ap_fraction=0.1)
    APTrainer(model=dense_model, args=args, train_dataset=data["train"]).train()

AP needs one thing a plain pruning method does not: `W_0`, the weights when the training period before the event
began, to tell which weights moved least (`activating_while_pruning_masks`). The trainer keeps it in
`reference_weights`: given by the caller (the weights the previous training period started from — in iterative
pruning, those of the previous cycle), else taken when training begins, and replaced after every pruning event (the
next training period starts there). Everything else — schedule, masks, saving plain sparse weights — is
`PruningTrainer`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from hfcifar.pruning import PruningTrainer, PruningTrainingArguments

from .ap import DEFAULT_AP_FRACTION, ap_step, check_ap_fraction, snapshot_weights


@dataclass
class APTrainingArguments(PruningTrainingArguments):
    """[`PruningTrainingArguments`] plus AP's share of every pruning event.

    `pruning_method` is the method AP works with (AP is not a pruning method of its own: it does not judge which
    weights matter, Sec. 4); `ap_fraction` of the weights each event removes are chosen by AP instead.
    """

    ap_fraction: float = field(default=DEFAULT_AP_FRACTION, metadata={
        "help": "Share of each pruning event's weights chosen by AP (the paper prunes 20% per cycle, 2% of it by AP: 0.1)."})

    def __post_init__(self):
        check_ap_fraction(self.ap_fraction)
        super().__post_init__()


class APTrainer(PruningTrainer):
    """A [`PruningTrainer`] with Activating-while-Pruning on top of `args.pruning_method`.

    Args:
        reference_weights: `W_0` for the first pruning event (`snapshot_weights(model)` taken when the training that
            precedes it began). Without it, the weights at the start of `train()` are used — right for a gradual
            schedule whose first event comes after some training, and meaningless (no weight has moved) for an event
            at step 0, which should get the previous period's snapshot.
        Others: those of [`PruningTrainer`], with `args` an [`APTrainingArguments`].

    Attributes:
        reference_weights: `W_0` of the current training period (after training, that of the last one).
        pruning_history: `PruningTrainer`'s, each event with `ap_quota` (AP's share of the
            event) and `ap_pruned` (the negative weights AP removed).
    """

    arguments_class = APTrainingArguments

    def __init__(self, model=None, args: APTrainingArguments | None = None, reference_weights: dict[str, torch.Tensor] | None = None, **kwargs):
        if args is None:
            args = APTrainingArguments(output_dir="hfcifar_trainer")
        if not isinstance(args, APTrainingArguments):
            raise TypeError("APTrainer needs APTrainingArguments (PruningTrainingArguments + ap_fraction).")
        super().__init__(model=model, args=args, **kwargs)
        self.reference_weights = reference_weights
        self._last_step = None

    def start_pruning_schedule(self, max_steps: int):
        schedule = super().start_pruning_schedule(max_steps)
        if self.reference_weights is None:
            self.reference_weights = snapshot_weights(self.model)
        return schedule

    def compute_pruning_masks(self, sparsity: float) -> dict[str, torch.Tensor]:
        """The event's masks: `args.pruning_method` prunes all but `ap_fraction` of the step, AP the rest (Sec. 4)."""
        if self.reference_weights is None:
            self.reference_weights = snapshot_weights(self.model)
        step = ap_step(self.model, sparsity, self.reference_weights, method=self.args.pruning_method,
                       ap_fraction=self.args.ap_fraction, **self.pruning_options())
        self._last_step = step
        return step.masks

    def prune_to(self, sparsity: float) -> dict:
        self._last_step = None
        report = super().prune_to(sparsity)
        if self._last_step is not None:
            self.pruning_history[-1].update(ap_quota=self._last_step.ap_quota, ap_pruned=self._last_step.ap_pruned)
        self.reference_weights = snapshot_weights(self.model)  # W_0 of the training period that starts now
        return report

    # W_0 travels with each checkpoint, so a resumed run measures |W_T − W_0| from the same reference.
    def checkpoint_tensors(self) -> dict[str, torch.Tensor]:
        return {f"{REFERENCE_PREFIX}{name}": weight for name, weight in (self.reference_weights or {}).items()}

    def load_checkpoint_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        device = next(self.model.parameters()).device
        reference = {name[len(REFERENCE_PREFIX):]: weight.to(device) for name, weight in tensors.items()
                     if name.startswith(REFERENCE_PREFIX)}
        if reference:
            self.reference_weights = reference


REFERENCE_PREFIX = "reference_weights."

__all__ = ["APTrainer", "APTrainingArguments"]
