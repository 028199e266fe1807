"""USF solver schedules: the JSON description of a USF sampler's per-step decisions (Liu et al., ICLR 2024, §3.3).

A solver schedule is `{"timesteps": T, "steps": S}`: `T` a timestep rule (`TIMESTEP_RULES`, optionally with
`t_max`/`t_min`) or an explicit list of timesteps, `S` one step dict per model call (prediction type, Taylor order,
corrector, derivative estimation; `SolverStep`) or one dict used at every step. `make_solver_schedule` builds the
uniform schedules (DDIM, DPM-Solver++(2M/3M), UniPC-like), `validate_solver_schedule` / `parse_step` check them.
`USFScheduler` (`scheduling_usf.py`) executes a schedule and S³ (`search.py`) searches them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

PREDICTIONS = ("noise", "data")
DERIVATIVES = ("taylor", "dpm", "extended")
TIMESTEP_RULES = ("time_uniform", "time_quadratic", "logSNR")
MAX_ORDER = 3
STEP_KEYS = ("prediction", "order", "corrector", "derivative")


def make_solver_schedule(
    num_steps: int,
    prediction: str = "data",
    order: int = 3,
    corrector: bool = True,
    derivative: str = "taylor",
    timesteps: str | dict | list[int] = "logSNR",
) -> dict:
    """A solver schedule that takes the same decisions at every step (a "uniform" USF solver, Section 3.3).

    The first steps use the order the available model outputs allow (multistep warm-up, as DPM-Solver++ does), the
    last step has no corrector (no model call follows it), and the last step, which ends at σ = 0, keeps only weights
    that stay finite there: first order under data prediction (the higher Taylor terms of the data integral
    diverge), the exact "taylor" weights instead of DPM-Solver's second-order ones under noise prediction.

    Examples: `make_solver_schedule(10, "noise", 1, False, timesteps="time_uniform")` is DDIM (trailing spacing);
    `make_solver_schedule(10, "data", 3, True)` is a UniPC-3-like solver on logSNR-uniform timesteps.
    """
    if not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive integer; got {num_steps!r}.")
    steps = []
    for i in range(num_steps):
        last = i == num_steps - 1
        need = 1 if derivative == "extended" else 0  # "extended" needs one output more than its order
        p = max(1, min(order, i + 1 - need))
        step_derivative = derivative if (derivative != "extended" or i + 1 >= p + 1) else "taylor"
        if last and prediction == "data":
            p, step_derivative = 1, "taylor"
        elif last and step_derivative == "dpm" and p == 2:  # DPM-Solver's ½·h·φ₁ weight is infinite at σ = 0
            step_derivative = "taylor"
        steps.append({"prediction": prediction, "order": p, "corrector": bool(corrector and not last),
                      "derivative": step_derivative})
    return {"timesteps": timesteps, "steps": steps}


@dataclass(frozen=True)
class SolverStep:
    """The decisions of one USF step (Section 3.3): from the model evaluation at `timesteps[i]` to the next point."""

    prediction: str
    order: int
    corrector: bool
    derivative: str

    def to_dict(self) -> dict:
        return {"prediction": self.prediction, "order": self.order, "corrector": self.corrector,
                "derivative": self.derivative}


def parse_step(step: Any, index: int | str = "") -> SolverStep:
    """Validate one step description (a dict with `prediction`, `order`, `corrector`, `derivative`)."""
    if isinstance(step, SolverStep):
        return step
    if not isinstance(step, dict):
        raise ValueError(f"Solver schedule step {index}: expected a dict with keys {STEP_KEYS}; got {step!r}.")
    unknown = set(step) - set(STEP_KEYS)
    if unknown:
        raise ValueError(f"Solver schedule step {index}: unknown keys {sorted(unknown)}; allowed: {STEP_KEYS}.")
    prediction = step.get("prediction", "data")
    if prediction not in PREDICTIONS:
        raise ValueError(f"Solver schedule step {index}: unknown prediction type {prediction!r}; "
                         f"expected one of {PREDICTIONS} (the model itself must output ε: prediction_type='epsilon').")
    order = step.get("order", 1)
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or not 1 <= order <= MAX_ORDER:
        raise ValueError(f"Solver schedule step {index}: order must be an integer in 1..{MAX_ORDER}; got {order!r}.")
    corrector = step.get("corrector", False)
    if not isinstance(corrector, (bool, np.bool_)):
        raise ValueError(f"Solver schedule step {index}: corrector must be true or false; got {corrector!r}.")
    derivative = step.get("derivative", "taylor")
    if derivative not in DERIVATIVES:
        raise ValueError(f"Solver schedule step {index}: unknown derivative estimation {derivative!r}; "
                         f"expected one of {DERIVATIVES}.")
    return SolverStep(str(prediction), int(order), bool(corrector), str(derivative))


def validate_solver_schedule(schedule: dict | None) -> None:
    """Check the JSON structure of a solver schedule (everything that does not depend on the number of steps)."""
    if schedule is None:
        return
    if not isinstance(schedule, dict):
        raise ValueError(f"solver_schedule must be a dict {{'timesteps': ..., 'steps': ...}}; got {type(schedule).__name__}.")
    unknown = set(schedule) - {"timesteps", "steps"}
    if unknown:
        raise ValueError(f"solver_schedule: unknown keys {sorted(unknown)}; allowed: 'timesteps', 'steps'.")
    steps = schedule.get("steps")
    if isinstance(steps, dict):
        parse_step(steps, "(all)")
    elif isinstance(steps, (list, tuple)):
        if not steps:
            raise ValueError("solver_schedule['steps'] is empty: give one step per model call.")
        for i, step in enumerate(steps):
            parse_step(step, i)
    elif steps is not None:
        raise ValueError("solver_schedule['steps'] must be a list of step dicts (one per model call) or one dict "
                         f"used at every step; got {steps!r}.")
    timesteps = schedule.get("timesteps", "logSNR")
    if isinstance(timesteps, str):
        timesteps = {"rule": timesteps}
    if isinstance(timesteps, dict):
        if timesteps.get("rule") not in TIMESTEP_RULES:
            raise ValueError(f"solver_schedule timesteps rule {timesteps.get('rule')!r} is unknown; expected one of "
                             f"{TIMESTEP_RULES} or an explicit list of integer timesteps.")
        extra = set(timesteps) - {"rule", "t_max", "t_min"}
        if extra:
            raise ValueError(f"solver_schedule timesteps: unknown keys {sorted(extra)}; allowed: rule, t_max, t_min.")
    elif isinstance(timesteps, (list, tuple)):
        if not all(isinstance(t, (int, np.integer)) and not isinstance(t, bool) for t in timesteps):
            raise ValueError(f"solver_schedule explicit timesteps must be integers; got {list(timesteps)!r}.")
    else:
        raise ValueError(f"solver_schedule['timesteps'] must be a rule name, a rule dict or a list of ints; got {timesteps!r}.")


__all__ = ["DERIVATIVES", "MAX_ORDER", "PREDICTIONS", "STEP_KEYS", "TIMESTEP_RULES", "SolverStep", "make_solver_schedule",
           "parse_step", "validate_solver_schedule"]
