"""Row 7, `usf-s3`: the unified sampling framework (USF) and its solver-schedule search (S³).

Liu, Ning, Yang & Wang, "A Unified Sampling Framework for Solver Searching of Diffusion Probabilistic Models"
(ICLR 2024, https://arxiv.org/abs/2312.07243).

- `scheduling_usf.py`   `USFScheduler` (diffusers `SchedulerMixin`/`ConfigMixin`): a multistep exponential-integrator
                        ODE solver whose every step follows a JSON *solver schedule* — timesteps, prediction type
                        (noise/data), Taylor order 1–3, derivative estimation, UniC-like corrector (Section 3);
                        the exact exponential-integrator weights of one step (`exponential_integrator_weights`).
- `solver_schedule.py`  the solver schedule itself: `SolverStep`, `validate_solver_schedule`, and
                        `make_solver_schedule`, which builds uniform schedules (DDIM, DPM-Solver++(2M/3M), UniPC-like).
- `gaussian_mixture.py` `GaussianMixtureDenoiser`: a PPCA Gaussian mixture fitted to CIFAR-10 pixels whose
                        ε-prediction is the exact score of the VP marginals, callable as `model(x, t).sample`.
- `search.py`           S³ (Section 4): the search space and encoding, the reference ODE solution and error, the MLP
                        predictor and the predictor-guided evolutionary search loop.
- `claim.py`            the claim check: searched schedules vs diffusers' DDIM / DPM-Solver++ / UniPC at 5 and 10 NFE.
"""

from .gaussian_mixture import GaussianMixtureDenoiser
from .scheduling_usf import USFScheduler, exponential_integrator_weights
from .solver_schedule import (
    DERIVATIVES,
    PREDICTIONS,
    TIMESTEP_RULES,
    SolverStep,
    make_solver_schedule,
    validate_solver_schedule,
)
from .search import (
    ErrorPredictor,
    SearchResult,
    SolverScheduleSpace,
    fit_predictor,
    reference_solution,
    rmse,
    sample,
    schedule_error,
    search_solver_schedule,
)

__all__ = [
    "DERIVATIVES",
    "PREDICTIONS",
    "TIMESTEP_RULES",
    "ErrorPredictor",
    "GaussianMixtureDenoiser",
    "SearchResult",
    "SolverScheduleSpace",
    "SolverStep",
    "USFScheduler",
    "exponential_integrator_weights",
    "fit_predictor",
    "make_solver_schedule",
    "reference_solution",
    "rmse",
    "sample",
    "schedule_error",
    "search_solver_schedule",
    "validate_solver_schedule",
]
