"""Pruning schedules: the target sparsity as a function of the training step.

Two schedules, both *absolute* targets (the fraction of all prunable weights at zero, as in masks.py):

- **one-shot**: prune to the final sparsity once, at `start_step`, and fine-tune afterwards (the usual protocol of
  Global MP papers, e.g. Gupta et al. 2022: prune a trained network, then fine-tune).
- **gradual**: Zhu & Gupta, "To prune, or not to prune: exploring the efficacy of pruning for model compression"
  (2017, arXiv:1710.01878), Eq. (1): the sparsity rises from `s_i` to `s_f` over `n` pruning steps spaced
  `Δt` apart, starting at `t_0`,

      s_t = s_f + (s_i − s_f) · (1 − (t − t_0) / (n Δt))³,   t ∈ {t_0, t_0 + Δt, …, t_0 + n Δt},

  so the network is pruned fast while it has many redundant weights and ever more slowly as few remain.

A `PruningSchedule` lists its pruning events (`pruning_steps`) and the target in force at any step (`sparsity_at`);
`PruningTrainer` prunes at the start of each event's step.
"""

from __future__ import annotations

from dataclasses import dataclass

from .masks import check_sparsity

SCHEDULES = ("one-shot", "gradual")


def cubic_sparsity(step: float, final_sparsity: float, start_step: int, end_step: int, initial_sparsity: float = 0.0) -> float:
    """Zhu & Gupta (2017), Eq. (1): `s_f + (s_i − s_f)(1 − (t − t_0)/(t_end − t_0))³`, with `t_end = t_0 + nΔt`.

    Before `start_step` the value is `s_i`, after `end_step` it is `s_f` (the formula is only defined in between).
    """
    if end_step <= start_step:
        return final_sparsity if step >= start_step else initial_sparsity
    progress = min(max((step - start_step) / (end_step - start_step), 0.0), 1.0)
    return final_sparsity + (initial_sparsity - final_sparsity) * (1.0 - progress) ** 3


@dataclass(frozen=True)
class PruningSchedule:
    """When to prune and to what sparsity.

    Args:
        final_sparsity (`float`): `s_f`, the sparsity reached at the last event (in [0, 1)).
        kind (`str`, defaults to `"one-shot"`): `"one-shot"` or `"gradual"`.
        start_step (`int`, defaults to 0): `t_0`, the optimizer step of the first pruning event.
        end_step (`int`, *optional*): `t_0 + nΔt`, the step of the last event (gradual only; must be > `start_step`).
        frequency (`int`, defaults to 100): `Δt`, optimizer steps between two events (gradual only). Zhu & Gupta
            prune every 100–1000 steps on ImageNet-sized runs; a CIFAR run of a few hundred steps needs far fewer.
        initial_sparsity (`float`, defaults to 0): `s_i`, the target of the first gradual event; set it to the
            sparsity of a model that is already pruned, because masks are absolute (a lower target lets pruned
            weights grow back from zero).

    >>> schedule = PruningSchedule(0.9, kind="gradual", start_step=0, end_step=300, frequency=100)
    >>> schedule.pruning_steps()
    [0, 100, 200, 300]
    >>> [round(schedule.sparsity_at(t), 4) for t in (0, 99, 100, 250, 300, 1000)]
    [0.0, 0.0, 0.6333, 0.8667, 0.9, 0.9]
    """

    final_sparsity: float
    kind: str = "one-shot"
    start_step: int = 0
    end_step: int | None = None
    frequency: int = 100
    initial_sparsity: float = 0.0

    def __post_init__(self):
        check_sparsity(self.final_sparsity, "final_sparsity")
        check_sparsity(self.initial_sparsity, "initial_sparsity")
        if self.kind not in SCHEDULES:
            raise ValueError(f"The pruning schedule must be one of {SCHEDULES}; got {self.kind!r}.")
        if not _is_int(self.start_step) or self.start_step < 0:
            raise ValueError(f"start_step must be an integer ≥ 0 (the optimizer step of the first pruning); got {self.start_step!r}.")
        if self.kind == "gradual":
            if self.end_step is None or not _is_int(self.end_step) or self.end_step <= self.start_step:
                raise ValueError(f"A gradual schedule needs an integer end_step > start_step = {self.start_step}; "
                                 f"got end_step={self.end_step!r}.")
            if not _is_int(self.frequency) or self.frequency < 1:
                raise ValueError(f"frequency (Δt, steps between pruning events) must be an integer ≥ 1; got {self.frequency!r}.")
            if self.initial_sparsity > self.final_sparsity:
                raise ValueError(f"initial_sparsity={self.initial_sparsity} exceeds final_sparsity={self.final_sparsity}: "
                                 "a gradual schedule only raises the sparsity.")

    @property
    def last_step(self) -> int:
        """The step of the last pruning event."""
        return self.start_step if self.kind == "one-shot" else self.end_step

    def pruning_steps(self) -> list[int]:
        """The optimizer steps at which the network is pruned: `t_0, t_0 + Δt, …` and always the end step."""
        if self.kind == "one-shot":
            return [self.start_step]
        steps = list(range(self.start_step, self.end_step, self.frequency))
        return steps + [self.end_step]

    def is_pruning_step(self, step: int) -> bool:
        if self.kind == "one-shot":
            return step == self.start_step
        return step == self.end_step or (self.start_step <= step < self.end_step and (step - self.start_step) % self.frequency == 0)

    def target_at_event(self, step: int) -> float:
        """The sparsity the event at `step` prunes to (Eq. (1) evaluated at that step)."""
        if self.kind == "one-shot":
            return self.final_sparsity
        return cubic_sparsity(step, self.final_sparsity, self.start_step, self.end_step, self.initial_sparsity)

    def sparsity_at(self, step: int) -> float:
        """The target in force at `step`: that of the last event at or before it (0 before the first event).

        Between events the masks do not change, so the schedule is a staircase under Eq. (1)'s curve.
        """
        if step < self.start_step:
            return 0.0
        if self.kind == "one-shot" or step >= self.end_step:
            return self.final_sparsity
        last_event = self.start_step + (step - self.start_step) // self.frequency * self.frequency
        return self.target_at_event(last_event)


def one_shot_schedule(sparsity: float, step: int = 0) -> PruningSchedule:
    """Prune to `sparsity` once, at optimizer step `step`, then fine-tune."""
    return PruningSchedule(sparsity, kind="one-shot", start_step=step)


def gradual_schedule(sparsity: float, start_step: int, end_step: int, frequency: int = 100,
                     initial_sparsity: float = 0.0) -> PruningSchedule:
    """Zhu & Gupta's cubic schedule (Eq. (1)) from `initial_sparsity` at `start_step` to `sparsity` at `end_step`,
    pruning every `frequency` steps."""
    return PruningSchedule(sparsity, kind="gradual", start_step=start_step, end_step=end_step, frequency=frequency,
                           initial_sparsity=initial_sparsity)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


__all__ = ["SCHEDULES", "PruningSchedule", "cubic_sparsity", "gradual_schedule", "one_shot_schedule"]
