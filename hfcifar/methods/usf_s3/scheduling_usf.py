# Longer than 500 lines because: it is the one self-contained file a pipeline folder ships as the scheduler's remote
# code (the solver schedule it executes is defined here too), so it loads where hfcifar is not installed.
# Unified Sampling Framework (USF) scheduler: an exponential-integrator ODE solver for VP (DDPM) diffusion models whose
# every step takes its own decisions — timestep, prediction type, Taylor order, derivative estimation, corrector.
"""`USFScheduler`: the unified sampling framework of Liu et al. (ICLR 2024, arXiv 2312.07243), Section 3.

Sampling a diffusion model is solving the probability-flow ODE. Written in the half log-SNR λ = log(α_t/σ_t), its
exact solution from s to t has two equivalent exponential-integral forms (USF Eq. 4 and Eq. 5; DPM-Solver Eq. 3.4,
DPM-Solver++ Eq. 8):

    noise prediction:  x_t = (α_t/α_s) x_s − α_t ∫_{λ_s}^{λ_t} e^{−λ} ε_θ(x_λ, λ) dλ
    data prediction:   x_t = (σ_t/σ_s) x_s + σ_t ∫_{λ_s}^{λ_t} e^{λ}  x_θ(x_λ, λ) dλ

USF (Section 3.2) solves one step by expanding the predicted quantity in a Taylor series around λ_s (USF Eq. 6),
estimating the derivatives from model outputs already computed (finite differences of previous steps, Section 3.3),
and integrating each Taylor term exactly. Every step of a *solver schedule* (defined and validated in
the first section below) chooses (Section 3.3, Table 1):

1. the timesteps (where the model is evaluated);
2. the prediction type, "noise" (ε_θ) or "data" (x_θ = (x − σ ε_θ)/α);
3. the Taylor expansion order p ∈ {1, 2, 3} (p model outputs: this step's and the p − 1 previous ones);
4. the derivative estimation: "taylor" (derivatives of the polynomial through the p latest outputs, each Taylor
   term integrated exactly: the exponential Adams–Bashforth / DEIS-in-λ rule), "dpm" (DPM-Solver's multistep
   weights for the same finite differences: DPM-Solver(++)-2M at p = 2, -3M at p = 3) or
   "extended" (derivatives of the polynomial through p + 1 outputs, the expansion still truncated after p terms:
   a derivative estimate one order more accurate than the expansion);
5. whether to apply a corrector: once the model has been evaluated at the new point, the step is recomputed with the
   polynomial through that fresh output and the p previous ones (an exponential Adams–Moulton step, UniC-like). It
   costs no model call: the fresh output is the one the next step needs anyway (UniPC, Zhao et al. 2023).

The paper's "starting point" decision (Section 3.3) is not implemented: every step starts from the current sample.
NFE = number of model calls = `len(scheduler.timesteps)`; the last step goes to σ = 0 (clean data), as diffusers'
`DDIMScheduler(set_alpha_to_one=True)` and `DPMSolverMultistepScheduler(final_sigmas_type="zero")` do.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers import DDPMScheduler
from diffusers.schedulers.scheduling_utils import KarrasDiffusionSchedulers, SchedulerMixin, SchedulerOutput


# ------------------------------------------------------------------------------------------------- solver schedules
# The JSON description of a USF sampler's per-step decisions (Section 3.3). A solver schedule is
# `{"timesteps": T, "steps": S}`: `T` a timestep rule (`TIMESTEP_RULES`, optionally with `t_max`/`t_min`) or an explicit
# list of timesteps, `S` one step dict per model call (prediction type, Taylor order, corrector, derivative estimation;
# `SolverStep`) or one dict used at every step. `make_solver_schedule` builds the uniform schedules (DDIM,
# DPM-Solver++(2M/3M), UniPC-like), `validate_solver_schedule` / `parse_step` check them; `USFScheduler` executes a
# schedule and S³ (`search.py`) searches them.

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


# ----------------------------------------------------------------------------------------------- exact φ-integrals


def _noise_integral(k: int, h: float) -> float:
    """I_k(h) = ∫_0^h e^{−u} u^k du = k!·P(k+1, h) (regularized lower incomplete gamma, in float64; exact also for
    h = ∞)."""
    p = torch.special.gammainc(torch.tensor(k + 1.0, dtype=torch.float64), torch.tensor(h, dtype=torch.float64))
    return math.factorial(k) * float(p)


def _data_integral(k: int, h: float) -> float:
    """J_k(h) = ∫_0^h e^{−(h−u)} u^k du = Σ_j C(k, j) h^{k−j} (−1)^j I_j(h); infinite for k ≥ 1 when h = ∞."""
    if math.isinf(h):
        return 1.0 if k == 0 else math.inf
    return sum(math.comb(k, j) * h ** (k - j) * (-1) ** j * _noise_integral(j, h) for j in range(k + 1))


def exponential_integrator_weights(
    alpha_s: float, sigma_s: float, alpha_t: float, sigma_t: float, node_lambdas: list[float], num_terms: int,
    prediction: str, derivative: str = "taylor",
) -> tuple[float, list[float]]:
    """Weights (a, [b_j]) of one USF step x_t = a·x_s + Σ_j b_j·m_j (USF Eq. 4–6), in float64.

    `node_lambdas[j]` is the λ of the model output m_j (ε for "noise", x_θ for "data"); node 0 must be λ_s (the step's
    own point; for a corrector the nodes are the fresh point and the previous ones, node 0 still at λ_s). The
    polynomial through the nodes (in u = λ − λ_s) gives the Taylor coefficients c_k = m^{(k)}(λ_s)/k!, and the first
    `num_terms` of them are integrated exactly against the exponential weight:

        noise: x_t = (α_t/α_s) x_s − (α_t σ_s/α_s) Σ_k c_k I_k(h),     data: x_t = (σ_t/σ_s) x_s + α_t Σ_k c_k J_k(h)

    with h = λ_t − λ_s (∞ when σ_t = 0). `derivative="dpm"` uses DPM-Solver's multistep weights instead (Lu et al.
    2022, DPM-Solver++ Algorithm 2 and its 3M variant, as in diffusers' `DPMSolverMultistepScheduler`): at order 2
    the first-derivative weight is ½·h·I_0 (noise) or ½·h·J_0 (data); at order 3 the second-derivative weight is
    halved (½·I_2, ½·J_2), the first exact.
    """
    lambda_s = node_lambdas[0]
    lambda_t = math.inf if sigma_t == 0 else math.log(alpha_t / sigma_t)
    h = lambda_t - lambda_s
    u = np.asarray(node_lambdas, dtype=np.float64) - lambda_s
    # Taylor coefficients of the interpolating polynomial: c = V^{-1} m with V[j, k] = u_j^k.
    vandermonde = u[:, None] ** np.arange(len(u))[None, :]
    to_coefficients = np.linalg.inv(vandermonde)  # row k: c_k as a combination of the nodes' outputs
    if prediction == "noise":
        a = alpha_t / alpha_s
        scale = -alpha_t * sigma_s / alpha_s  # = −σ_t e^{h}, finite at σ_t = 0
        integral = _noise_integral
    elif prediction == "data":
        a = sigma_t / sigma_s
        scale = alpha_t
        integral = _data_integral
    else:
        raise ValueError(f"Unknown prediction type {prediction!r}; expected one of {PREDICTIONS}.")
    term_weights = [integral(k, h) for k in range(num_terms)]
    if derivative == "dpm" and num_terms == 2:
        term_weights[1] = 0.5 * h * term_weights[0]
    elif derivative == "dpm" and num_terms == 3:
        term_weights[2] = 0.5 * term_weights[2]
    if any(math.isinf(w) for w in term_weights):
        raise ValueError(f"A {prediction}-prediction step of order {num_terms} with derivative {derivative!r} cannot "
                         "end at σ = 0: its Taylor-term weights diverge (h = ∞). The last step must be first order, "
                         "or use noise prediction with the 'taylor'/'extended' rule.")
    b = scale * (np.asarray(term_weights) @ to_coefficients[:num_terms])
    return float(a), [float(v) for v in b]


# ----------------------------------------------------------------------------------------------- the scheduler


class USFScheduler(SchedulerMixin, ConfigMixin):
    """The unified sampling framework (USF) solver of Liu et al., "A Unified Sampling Framework for Solver Searching
    of Diffusion Probabilistic Models" (ICLR 2024, https://arxiv.org/abs/2312.07243), for ε-prediction VP models.

    A multistep exponential-integrator ODE solver whose every step follows its own entry of a *solver schedule*
    (Section 3.3): prediction type, Taylor order, derivative estimation and corrector, on timesteps given by a named
    rule or explicitly. `S³` (`hfcifar.methods.usf_s3.search`) searches such schedules.

    Args:
        num_train_timesteps (`int`, defaults to 1000): diffusion steps of the trained model.
        beta_start (`float`, defaults to 0.0001): first β of the training noise schedule.
        beta_end (`float`, defaults to 0.02): last β.
        beta_schedule (`str`, defaults to `"linear"`): `"linear"`, `"scaled_linear"` or `"squaredcos_cap_v2"`; the
            ᾱ_t are computed by diffusers' `DDPMScheduler` from these four arguments (and `trained_betas`).
        trained_betas (`list[float]`, *optional*): explicit betas instead of a named schedule.
        prediction_type (`str`, defaults to `"epsilon"`): what the model outputs; only `"epsilon"` is supported.
        solver_schedule (`dict`, *optional*): JSON-serializable `{"timesteps": T, "steps": S}`.
            `T` is a rule name (`"time_uniform"`: uniform in t, i.e. diffusers' "trailing" spacing;
            `"time_quadratic"`: uniform in √t; `"logSNR"`: uniform in λ from `t_max` to `t_min`), a rule dict
            `{"rule": ..., "t_max": 999, "t_min": 0}`, or an explicit list of strictly decreasing integer timesteps
            (one per model call). `S` is a list with one dict per model call —
            `{"prediction": "noise"|"data", "order": 1..3, "corrector": bool, "derivative": "taylor"|"dpm"|"extended"}`
            — or one dict used at every step (orders then warm up as the outputs become available). Defaults to
            `make_solver_schedule`'s UniPC-3-like solver: data prediction, order 3, corrector, logSNR timesteps.

    Example:
    ```python
    >>> from hfcifar.methods.usf_s3 import USFScheduler, make_solver_schedule
    >>> scheduler = USFScheduler(solver_schedule=make_solver_schedule(10, "noise", 1, False, timesteps="time_uniform"))
    >>> scheduler.set_timesteps(10)  # DDIM with trailing spacing
    >>> scheduler.timesteps.tolist()
    [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]
    ```
    """

    _compatibles = [e.name for e in KarrasDiffusionSchedulers]
    order = 1

    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.0001,
        beta_end: float = 0.02,
        beta_schedule: str = "linear",
        trained_betas: np.ndarray | list[float] | None = None,
        prediction_type: str = "epsilon",
        solver_schedule: dict | None = None,
    ):
        if prediction_type != "epsilon":
            raise ValueError(f"USFScheduler supports prediction_type='epsilon' only; got {prediction_type!r}.")
        validate_solver_schedule(solver_schedule)
        # The ᾱ_t of the training process, computed once by diffusers (not re-derived here).
        ddpm = DDPMScheduler(num_train_timesteps=num_train_timesteps, beta_start=beta_start, beta_end=beta_end,
                             beta_schedule=beta_schedule, trained_betas=trained_betas)
        self.alphas_cumprod = ddpm.alphas_cumprod.to(torch.float64)
        ac = self.alphas_cumprod.numpy()
        self._lambda_table = 0.5 * (np.log(ac) - np.log1p(-ac))  # λ_t of every training timestep
        self.init_noise_sigma = 1.0
        self.num_inference_steps: int | None = None
        self.timesteps = torch.from_numpy(np.arange(0, num_train_timesteps)[::-1].copy())
        self._step_index: int | None = None
        self._begin_index: int | None = None

    # ------------------------------------------------------------------ timesteps

    @property
    def solver_schedule(self) -> dict:
        return self.config.solver_schedule if self.config.solver_schedule is not None else {
            "timesteps": "logSNR", "steps": {"prediction": "data", "order": 3, "corrector": True, "derivative": "taylor"}}

    def lambda_of(self, timestep: int) -> float:
        """λ_t = log(α_t/σ_t) of an integer training timestep."""
        return float(self._lambda_table[timestep])

    def rule_timesteps(self, num_steps: int, rule: str | dict) -> np.ndarray:
        """The `num_steps` model-evaluation timesteps of a named rule (Section 3.3, "timestep discretization")."""
        rule = {"rule": rule} if isinstance(rule, str) else dict(rule)
        t_max = int(rule.get("t_max", self.config.num_train_timesteps - 1))
        t_min = int(rule.get("t_min", 0))
        if not 0 <= t_min < t_max < self.config.num_train_timesteps:
            raise ValueError(f"Timestep rule {rule}: need 0 ≤ t_min < t_max < {self.config.num_train_timesteps}.")
        name = rule["rule"]
        span = t_max + 1  # the grid runs from t_max down to −1, the clean end (ᾱ = 1), where no model call is made
        if name == "time_uniform":
            # the same arithmetic as diffusers' "trailing" spacing, so DDIM/DPM-Solver grids coincide
            times = np.arange(span, 0, -span / num_steps).round()[:num_steps] - 1
        elif name == "time_quadratic":
            times = np.round(span * (1 - np.arange(num_steps) / num_steps) ** 2) - 1
        elif name == "logSNR":
            grid = np.linspace(self.lambda_of(t_max), self.lambda_of(t_min), num_steps)
            times = np.abs(self._lambda_table[None, :] - grid[:, None]).argmin(1).astype(np.float64)
        else:
            raise ValueError(f"Unknown timestep rule {name!r}; expected one of {TIMESTEP_RULES}.")
        times = times.astype(np.int64)
        for i in range(1, len(times)):  # rounding may collide when steps are dense: keep them strictly decreasing
            times[i] = min(times[i], times[i - 1] - 1)
        if times[-1] < 0:
            raise ValueError(f"{num_steps} steps do not fit between t = {t_max} and t = 0 with rule {name!r}.")
        return times

    def set_timesteps(self, num_inference_steps: int, device: str | torch.device | None = None) -> None:
        """Resolve the solver schedule for `num_inference_steps` model calls (the NFE) and check it can run.

        Raises `ValueError` when the schedule cannot be run with this many calls: a list of steps of another length,
        explicit timesteps of another length or not strictly decreasing in [0, T), a step whose order (or derivative
        estimation) needs more model outputs than exist at that point, a corrector on the last step, or a last step
        whose weights diverge at σ = 0 (data prediction of order > 1, DPM-Solver's second-order weight).
        """
        if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, (int, np.integer)) \
                or num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be a positive integer; got {num_inference_steps!r}.")
        n = int(num_inference_steps)
        if n > self.config.num_train_timesteps:
            raise ValueError(f"num_inference_steps={n} exceeds num_train_timesteps={self.config.num_train_timesteps}.")
        schedule = self.solver_schedule
        steps = schedule.get("steps", {"prediction": "data", "order": 3, "corrector": True, "derivative": "taylor"})
        if isinstance(steps, dict):
            one = parse_step(steps, "(all)")
            steps = make_solver_schedule(n, one.prediction, one.order, one.corrector, one.derivative)["steps"]
        elif len(steps) != n:
            raise ValueError(f"The solver schedule has {len(steps)} steps (one per model call), so it needs "
                             f"num_inference_steps={len(steps)}; got {n}.")
        plan = [parse_step(s, i) for i, s in enumerate(steps)]
        timesteps = schedule.get("timesteps", "logSNR")
        if isinstance(timesteps, (list, tuple)):
            times = np.asarray(timesteps, dtype=np.int64)
            if len(times) != n:
                raise ValueError(f"The solver schedule lists {len(times)} timesteps; num_inference_steps={n}.")
            if np.any(np.diff(times) >= 0) or times[0] >= self.config.num_train_timesteps or times[-1] < 0:
                raise ValueError(f"Explicit timesteps must be strictly decreasing integers in [0, "
                                 f"{self.config.num_train_timesteps}); got {times.tolist()}.")
        else:
            times = self.rule_timesteps(n, timesteps)
        for i, step in enumerate(plan):
            needed = step.order + (1 if step.derivative == "extended" else 0)
            if needed > i + 1:
                raise ValueError(f"Step {i} asks for order {step.order} with derivative {step.derivative!r}, which "
                                 f"needs {needed} model outputs; only {i + 1} exist at step {i} (NFE too small for "
                                 "this schedule's orders).")
            if step.corrector and i == n - 1:
                raise ValueError("The last step cannot use a corrector: no model call follows it (NFE too small for "
                                 "this schedule's correctors).")

        alphas = [math.sqrt(float(self.alphas_cumprod[t])) for t in times] + [1.0]
        sigmas = [math.sqrt(1.0 - float(self.alphas_cumprod[t])) for t in times] + [0.0]
        self._alphas, self._sigmas = alphas, sigmas
        self._lambdas = [math.log(a / s) for a, s in zip(alphas[:-1], sigmas[:-1])] + [math.inf]
        self._plan = plan
        # All step weights are scalars fixed by the schedule: compute them once (float64), and fail here, not mid-run.
        self._predictor_weights, self._corrector_weights = [], []
        for i, step in enumerate(plan):
            nodes = [i - k for k in range(step.order + (1 if step.derivative == "extended" else 0))]
            try:
                self._predictor_weights.append((nodes, self._weights(i, i + 1, nodes, step.order, step.prediction,
                                                                     step.derivative)))
            except ValueError as error:
                raise ValueError(f"Step {i} (the last of {n}): {error}" if i == n - 1 else f"Step {i}: {error}") from None
            corrector = None
            if step.corrector:
                nodes = [i, i + 1] + [i - k for k in range(1, step.order)]
                corrector = (nodes, self._weights(i, i + 1, nodes, step.order + 1, step.prediction, "taylor"))
            self._corrector_weights.append(corrector)
        self.num_inference_steps = n
        self.timesteps = torch.from_numpy(times).to(device)
        # model outputs by grid index (only the last MAX_ORDER + 1 are kept: no step reaches further back)
        self._epsilons: dict[int, torch.Tensor] = {}
        self._data: dict[int, torch.Tensor] = {}
        self._last_sample: torch.Tensor | None = None
        self._step_index = None
        self._begin_index = None

    # ------------------------------------------------------------------ diffusers plumbing

    @property
    def step_index(self) -> int | None:
        return self._step_index

    @property
    def begin_index(self) -> int | None:
        return self._begin_index

    def set_begin_index(self, begin_index: int = 0) -> None:
        self._begin_index = begin_index

    def _init_step_index(self, timestep: int | torch.Tensor) -> None:
        if self._begin_index is not None:
            self._step_index = self._begin_index
            return
        t = int(timestep.item() if isinstance(timestep, torch.Tensor) else timestep)
        matches = (self.timesteps.cpu() == t).nonzero()
        if len(matches) == 0:
            raise ValueError(f"Timestep {t} is not one of this schedule's timesteps {self.timesteps.tolist()}.")
        self._step_index = int(matches[0])

    def scale_model_input(self, sample: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return sample

    def __len__(self) -> int:
        return self.config.num_train_timesteps

    # ------------------------------------------------------------------ one step

    def _history(self, prediction: str) -> dict[int, torch.Tensor]:
        return self._epsilons if prediction == "noise" else self._data

    def _weights(self, start: int, end: int, nodes: list[int], num_terms: int, prediction: str,
                 derivative: str) -> tuple[float, list[float]]:
        return exponential_integrator_weights(
            self._alphas[start], self._sigmas[start], self._alphas[end], self._sigmas[end],
            [self._lambdas[j] for j in nodes], num_terms, prediction, derivative)

    def _update(self, sample: torch.Tensor, nodes: list[int], weights: tuple[float, list[float]],
                prediction: str) -> torch.Tensor:
        """x_t = a·x_s + Σ_j b_j m_j with the outputs m_j at grid indices `nodes` — USF Eq. 6 with exact weights."""
        a, b = weights
        history = self._history(prediction)
        out = a * sample
        for weight, j in zip(b, nodes):
            out = out + weight * history[j]
        return out

    def step(
        self, model_output: torch.Tensor, timestep: int | torch.Tensor, sample: torch.Tensor, return_dict: bool = True
    ) -> SchedulerOutput | tuple:
        """One USF step: from x at `timesteps[i]` (where the model gave `model_output` = ε_θ) to the next grid point.

        Args:
            model_output (`torch.Tensor`): ε_θ(x_{t_i}, t_i), the model's noise prediction.
            timestep (`int` or `torch.Tensor`): t_i, the current timestep (one of `self.timesteps`).
            sample (`torch.Tensor`): x_{t_i}, the sample the model was evaluated at.
            return_dict (`bool`, defaults to `True`): return a `SchedulerOutput` rather than a tuple.

        Returns:
            `SchedulerOutput` (or `(prev_sample,)`): x_{t_{i+1}}, or the clean sample x_0 after the last step.
        """
        # Notation (<variable name> -> <name in the paper>)
        # - self._alphas[i], self._sigmas[i] -> α_{t_i}, σ_{t_i} (α² = ᾱ, VP: α² + σ² = 1); the grid ends at α = 1, σ = 0
        # - self._lambdas[i] -> λ_{t_i} = log(α_{t_i}/σ_{t_i}) (half log-SNR), ∞ at the clean end
        # - model_output -> ε_θ(x_{t_i}, t_i);  data -> x_θ(x_{t_i}, t_i) = (x_{t_i} − σ_{t_i} ε_θ)/α_{t_i}
        # - plan.order -> the Taylor expansion order p (USF Eq. 6); plan.prediction -> Eq. 4 (noise) or Eq. 5 (data)
        # - corrected -> x^c_{t_i}, the previous step recomputed with the fresh output (UniC-like corrector)
        # - prev_sample -> x_{t_{i+1}}
        if self.num_inference_steps is None:
            raise ValueError("Number of inference steps is 'None', you need to run 'set_timesteps' after creating "
                             "the scheduler.")
        if self._step_index is None:
            self._init_step_index(timestep)
        i = self._step_index
        if i >= self.num_inference_steps:
            raise ValueError(f"All {self.num_inference_steps} steps are done; call set_timesteps again to resample.")

        # 1. Both parameterizations of the fresh output (USF Section 3.3, "prediction type"): ε_θ and x_θ.
        compute_dtype = torch.float64 if sample.dtype == torch.float64 else torch.float32
        x = sample.to(compute_dtype)
        epsilon = model_output.to(compute_dtype)
        self._epsilons[i] = epsilon
        self._data[i] = (x - self._sigmas[i] * epsilon) / self._alphas[i]

        # 2. Corrector of the previous step (UniC-like): redo step i−1 with the polynomial through the fresh output
        #    at t_i and the p outputs the predictor used — one order higher, no extra model call.
        if i > 0 and self._corrector_weights[i - 1] is not None:
            nodes, weights = self._corrector_weights[i - 1]
            x = self._update(self._last_sample, nodes, weights, self._plan[i - 1].prediction)

        # 3. Predictor (USF Eq. 6): Taylor expansion of order p around λ_{t_i}, derivatives estimated from the
        #    latest outputs (p of them, or p + 1 for "extended"), each term integrated exactly.
        nodes, weights = self._predictor_weights[i]
        prev_sample = self._update(x, nodes, weights, self._plan[i].prediction)

        # 4. Keep what the next step's corrector needs; move on.
        self._last_sample = x
        self._epsilons.pop(i - MAX_ORDER, None)
        self._data.pop(i - MAX_ORDER, None)
        self._step_index = i + 1
        prev_sample = prev_sample.to(sample.dtype)
        if not return_dict:
            return (prev_sample,)
        return SchedulerOutput(prev_sample=prev_sample)

    def add_noise(self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """The forward process q(x_t | x_0) = N(α_t x_0, σ_t² I) (for SDEdit-style use, as other schedulers have)."""
        ac = self.alphas_cumprod.to(original_samples.device)[timesteps.to(original_samples.device)]
        ac = ac.to(original_samples.dtype).reshape(-1, *([1] * (original_samples.ndim - 1)))
        return ac.sqrt() * original_samples + (1 - ac).sqrt() * noise

    def describe(self) -> str:
        """A one-line summary of the resolved schedule (after `set_timesteps`), e.g. for logs and reports."""
        if self.num_inference_steps is None:
            return json.dumps(self.solver_schedule)
        parts = [f"{int(t)}:{s.prediction[0]}{s.order}{'c' if s.corrector else ''}{s.derivative[0]}"
                 for t, s in zip(self.timesteps.tolist(), self._plan)]
        return " ".join(parts)


__all__ = ["DERIVATIVES", "MAX_ORDER", "PREDICTIONS", "STEP_KEYS", "TIMESTEP_RULES", "SolverStep", "USFScheduler",
           "exponential_integrator_weights", "make_solver_schedule", "parse_step", "validate_solver_schedule"]
