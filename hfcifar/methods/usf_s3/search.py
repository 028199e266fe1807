"""S³: predictor-based search of USF solver schedules under an NFE budget (Liu et al. 2024, Section 4).

The pieces, in the paper's order:

- the search space (Section 4.1): one USF solver schedule per point — the timesteps of the NFE model calls and, per
  step, prediction type, Taylor order, derivative estimation and corrector ([`SolverScheduleSpace`]), with a fixed-
  length encoding for the predictor (`encode`);
- the target metric: the paper scores a schedule by the FID of its samples; here, by the error of its final samples
  to a fine reference solution of the *same* probability-flow ODE from the same initial noises
  ([`reference_solution`], [`schedule_error`]) — the solver's own error, which FID only sees through the samples;
- the predictor (Section 4.2): a small MLP from the encoding to log-error, refitted on every schedule truly
  evaluated so far ([`fit_predictor`]);
- the search loop (Section 4.2, Algorithm 1): evaluate a few starting and random schedules → fit the predictor →
  propose many candidates (mutations of the best so far and fresh random ones) → rank them with the predictor →
  truly evaluate the top few → repeat ([`search_solver_schedule`]). The paper's multi-stage refinement (re-ranking
  with more samples) is not reproduced: every true evaluation uses the same initial noises.

Search on one set of initial noises; report the winner on *different* ones (the claim check does).
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from .scheduling_usf import USFScheduler, exponential_integrator_weights
from .scheduling_usf import DERIVATIVES, PREDICTIONS, TIMESTEP_RULES

# ----------------------------------------------------------------------------------------------- sampling


def sample(model: torch.nn.Module, scheduler, latents: torch.Tensor, num_inference_steps: int) -> torch.Tensor:
    """Run `scheduler` on `model` from the initial noise `latents` (x_T); returns the final x_0 mapped to [0, 1].

    Uses hfcifar's `CifarDDPMPipeline` (the diffusers loop: set_timesteps → for t: ε = model(x, t) → step) with
    `output_type="pt"` when `hfcifar.diffusion` is installed, else the same loop written out here.
    """
    try:
        from hfcifar.diffusion import CifarDDPMPipeline
    except ImportError:
        CifarDDPMPipeline = None
    if CifarDDPMPipeline is not None:
        pipe = CifarDDPMPipeline(unet=model, scheduler=scheduler)
        pipe.set_progress_bar_config(disable=True)
        return pipe(batch_size=latents.shape[0], num_inference_steps=num_inference_steps, latents=latents,
                    output_type="pt").images
    return _sampling_loop(model, scheduler, latents, num_inference_steps)


@torch.no_grad()
def _sampling_loop(model, scheduler, latents: torch.Tensor, num_inference_steps: int) -> torch.Tensor:
    scheduler.set_timesteps(num_inference_steps)
    x = latents * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        epsilon = model(scheduler.scale_model_input(x, t), t).sample
        x = scheduler.step(epsilon, t, x).prev_sample
    return (x / 2 + 0.5).clamp(0, 1)


@torch.no_grad()
def reference_solution(
    epsilon_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    latents: torch.Tensor,
    alpha_cumprod_start: float,
    alpha_cumprod_end: float = 1 - 1e-10,
    num_steps: int = 500,
) -> torch.Tensor:
    """A fine solution of the probability-flow ODE from x_T = `latents` at ᾱ_start to (almost) σ = 0, in float64.

    `epsilon_fn(x, alpha_cumprod)` is the ε-model at a continuous ᾱ (e.g. `GaussianMixtureDenoiser.epsilon`).
    Third-order multistep data-prediction exponential integrator (USF Eq. 5–6 with exact Taylor weights, the
    "taylor" rule) on `num_steps` steps uniform in λ from λ_start to λ_end, then x_θ at λ_end; starts with two
    lower-order steps. Returns x_0 mapped to [0, 1] (as the pipelines do). Its own error is checked by halving
    `num_steps` (the claim check reports both).
    """
    def lam(ac: float) -> float:
        return 0.5 * (math.log(ac) - math.log1p(-ac))

    lambdas = np.linspace(lam(alpha_cumprod_start), lam(alpha_cumprod_end), num_steps + 1)
    alphas = 1 / np.sqrt(1 + np.exp(-2 * lambdas))  # α = sigmoid(2λ)^{1/2}
    sigmas = 1 / np.sqrt(1 + np.exp(2 * lambdas))
    x = latents.to(torch.float64)
    recent: list[torch.Tensor] = []  # x_θ at steps i, i − 1, i − 2 (newest first)
    for i in range(num_steps):
        epsilon = epsilon_fn(x, torch.tensor(alphas[i] ** 2, dtype=torch.float64)).to(torch.float64)
        recent = [(x - sigmas[i] * epsilon) / alphas[i]] + recent[:2]
        order = len(recent)
        a, b = exponential_integrator_weights(alphas[i], sigmas[i], alphas[i + 1], sigmas[i + 1],
                                              [lambdas[i - k] for k in range(order)], order, "data", "taylor")
        x = a * x + sum(w * m for w, m in zip(b, recent))
    epsilon = epsilon_fn(x, torch.tensor(alphas[-1] ** 2, dtype=torch.float64)).to(torch.float64)
    x0 = (x - sigmas[-1] * epsilon) / alphas[-1]
    return (x0 / 2 + 0.5).clamp(0, 1)


def continuous_time_epsilon(model: torch.nn.Module, alphas_cumprod: torch.Tensor) -> Callable:
    """`epsilon_fn(x, ᾱ)` for [`reference_solution`] from a model called with diffusers timesteps (`model(x, t)`,
    e.g. a `UNet2DModel`): ᾱ is mapped to a fractional timestep by interpolating log ᾱ_t (sinusoidal time embeddings
    accept fractional t). Only ᾱ within [ᾱ_{T−1}, ᾱ_0] are defined: pass `alpha_cumprod_end=float(alphas_cumprod[0])`."""
    log_table = torch.log(alphas_cumprod.to(torch.float64)).flip(0)  # increasing with the flipped index
    last = len(alphas_cumprod) - 1

    @torch.no_grad()
    def epsilon_fn(x: torch.Tensor, alpha_cumprod: torch.Tensor) -> torch.Tensor:
        value = torch.log(torch.as_tensor(alpha_cumprod, dtype=torch.float64)).clamp(log_table[0], log_table[-1])
        upper = int(torch.searchsorted(log_table, value.reshape(1)).clamp(1, last))
        frac = float((value - log_table[upper - 1]) / (log_table[upper] - log_table[upper - 1]))
        timestep = last - (upper - 1 + frac)
        dtype = next(model.parameters()).dtype if any(True for _ in model.parameters()) else x.dtype
        return model(x.to(dtype), torch.tensor([timestep] * x.shape[0], dtype=torch.float32)).sample.to(x.dtype)

    return epsilon_fn


def rmse(images: torch.Tensor, reference: torch.Tensor) -> float:
    """Root-mean-square pixel error in [0, 1] image units (over every pixel of every image)."""
    return float(((images.to(torch.float64) - reference.to(torch.float64)) ** 2).mean().sqrt())


def per_image_rmse(images: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """RMSE of each image to its reference (N values, [0, 1] units)."""
    difference = images.to(torch.float64) - reference.to(torch.float64)
    return (difference**2).flatten(1).mean(1).sqrt()


def schedule_error(model, scheduler_config: dict, schedule: dict, latents: torch.Tensor, reference: torch.Tensor) -> float:
    """RMSE of the USF solver with `schedule` (from `latents`) to the reference ODE solution; ∞ if it diverges."""
    scheduler = USFScheduler.from_config(scheduler_config, solver_schedule=schedule)
    images = sample(model, scheduler, latents, len(schedule["steps"]))
    error = rmse(images, reference)
    return error if math.isfinite(error) else math.inf


# ----------------------------------------------------------------------------------------------- search space


def schedule_key(schedule: dict) -> str:
    return json.dumps(schedule, sort_keys=True)


@dataclass
class SolverScheduleSpace:
    """The S³ search space for `num_steps` model calls (Section 4.1): explicit timesteps + per-step decisions.

    Every schedule starts its first model call at `t_max` (the ODE's start, where x_T lives) and ends at σ = 0.
    Timesteps are drawn from a named rule (uniform in t, in √t or in λ) and jittered in λ; decisions are drawn per step
    and repaired to what the available model outputs allow ([`repair`]).

    Args:
        num_steps: the NFE budget.
        scheduler_config: the `USFScheduler` config (noise schedule) the schedules run under.
        orders, predictions, derivatives: the allowed decisions; `allow_corrector`: whether correctors may be used.
    """

    num_steps: int
    scheduler_config: dict = field(default_factory=dict)
    orders: tuple = (1, 2, 3)
    predictions: tuple = PREDICTIONS
    derivatives: tuple = DERIVATIVES
    allow_corrector: bool = True
    t_max: int | None = None

    def __post_init__(self):
        if self.num_steps < 1:
            raise ValueError(f"num_steps must be ≥ 1; got {self.num_steps}.")
        self._scheduler = USFScheduler.from_config({k: v for k, v in self.scheduler_config.items()
                                                    if k != "solver_schedule"})
        total = self._scheduler.config.num_train_timesteps
        self.t_max = total - 1 if self.t_max is None else self.t_max
        if self.num_steps > self.t_max + 1:
            raise ValueError(f"{self.num_steps} steps do not fit in timesteps 0..{self.t_max}.")
        self._lambda_table = self._scheduler._lambda_table
        self._lambda_start, self._lambda_stop = self._lambda_table[self.t_max], self._lambda_table[0]

    # ---- timesteps

    def _times_from_lambdas(self, lambdas: np.ndarray) -> list[int] | None:
        table = self._lambda_table[: self.t_max + 1]
        times = np.abs(table[None, :] - np.asarray(lambdas)[:, None]).argmin(1).tolist()
        times[0] = self.t_max
        if any(b >= a for a, b in zip(times, times[1:])):
            return None
        return times

    def random_timesteps(self, rng: np.random.Generator) -> list[int]:
        rule = TIMESTEP_RULES[rng.integers(len(TIMESTEP_RULES))]
        spec = {"rule": rule, "t_max": self.t_max}
        if rule == "logSNR":
            spec["t_min"] = int(rng.choice([0, 0, 5, 20, 50]))
        base = self._scheduler.rule_timesteps(self.num_steps, spec)
        lambdas = self._lambda_table[base]
        scale = rng.uniform(0, 0.4)
        if self.num_steps > 1 and scale > 0:
            gaps = np.diff(lambdas, append=lambdas[-1] + (lambdas[-1] - lambdas[-2] if self.num_steps > 1 else 1))
            jitter = rng.normal(0, scale, self.num_steps) * gaps
            jitter[0] = 0
            jittered = self._times_from_lambdas(lambdas + jitter)
            if jittered is not None:
                return jittered
        return [int(t) for t in base]

    # ---- schedules

    def repair(self, schedule: dict) -> dict:
        """Make a schedule runnable: orders within the available outputs, no corrector on the last step, finite
        weights on the last step (first order under data prediction, no 2nd-order "dpm" rule); order-1 steps use
        "taylor" (all rules coincide there)."""
        schedule = copy.deepcopy(schedule)
        steps = schedule["steps"]
        for i, step in enumerate(steps):
            extra = 1 if step["derivative"] == "extended" else 0
            step["order"] = int(max(1, min(step["order"], i + 1 - extra)))
            if step["derivative"] == "extended" and step["order"] + 1 > i + 1:
                step["derivative"] = "taylor"
            if i == len(steps) - 1:  # the step to σ = 0: only weights that stay finite at h = ∞
                step["corrector"] = False
                if step["prediction"] == "data":
                    step["order"] = 1
                elif step["derivative"] == "dpm" and step["order"] == 2:
                    step["derivative"] = "taylor"
            if step["order"] == 1:
                step["derivative"] = "taylor"
            if not self.allow_corrector:
                step["corrector"] = False
        return schedule

    def random(self, rng: np.random.Generator) -> dict:
        steps = []
        for _ in range(self.num_steps):
            steps.append({
                "prediction": str(self.predictions[rng.integers(len(self.predictions))]),
                "order": int(self.orders[rng.integers(len(self.orders))]),
                "corrector": bool(self.allow_corrector and rng.random() < 0.5),
                "derivative": str(self.derivatives[rng.integers(len(self.derivatives))]),
            })
        return self.repair({"timesteps": self.random_timesteps(rng), "steps": steps})

    def mutate(self, schedule: dict, rng: np.random.Generator, num_changes: int | None = None) -> dict:
        """Change 1–3 decisions (a step's prediction/order/corrector/derivative, or one timestep moved in λ)."""
        child = copy.deepcopy(schedule)
        if not isinstance(child["timesteps"], list):
            child["timesteps"] = self._scheduler.rule_timesteps(self.num_steps, child["timesteps"]).tolist()
        for _ in range(num_changes or int(rng.integers(1, 4))):
            i = int(rng.integers(self.num_steps))
            kind = int(rng.integers(5))
            step = child["steps"][i]
            if kind == 0:
                step["prediction"] = str(self.predictions[rng.integers(len(self.predictions))])
            elif kind == 1:
                step["order"] = int(self.orders[rng.integers(len(self.orders))])
            elif kind == 2:
                step["corrector"] = bool(self.allow_corrector and not step["corrector"])
            elif kind == 3:
                step["derivative"] = str(self.derivatives[rng.integers(len(self.derivatives))])
            elif self.num_steps > 1:
                j = int(rng.integers(1, self.num_steps))
                lambdas = self._lambda_table[np.asarray(child["timesteps"])]
                upper = lambdas[j + 1] if j + 1 < self.num_steps else self._lambda_stop
                new = lambdas[j] + rng.normal(0, 0.3) * (upper - lambdas[j - 1]) / 2
                lambdas[j] = float(np.clip(new, lambdas[j - 1], upper))
                times = self._times_from_lambdas(lambdas)
                if times is not None:
                    child["timesteps"] = times
        return self.repair(child)

    def encode(self, schedule: dict) -> np.ndarray:
        """Fixed-length features: the N − 1 free timesteps as normalized λ, then per step [data, order 2, order 3,
        corrector, dpm, extended]."""
        times = schedule["timesteps"]
        if not isinstance(times, list):
            times = self._scheduler.rule_timesteps(self.num_steps, times).tolist()
        lambdas = self._lambda_table[np.asarray(times[1:], dtype=np.int64)]
        position = (lambdas - self._lambda_start) / (self._lambda_stop - self._lambda_start)
        per_step = []
        for step in schedule["steps"]:
            per_step += [step["prediction"] == "data", step["order"] == 2, step["order"] == 3, step["corrector"],
                         step["derivative"] == "dpm", step["derivative"] == "extended"]
        return np.concatenate([position, np.asarray(per_step, dtype=np.float64)])


# ----------------------------------------------------------------------------------------------- predictor


class ErrorPredictor(torch.nn.Module):
    """The S³ predictor (Section 4.2): an MLP from a schedule's encoding to its (standardized) log error."""

    def __init__(self, num_features: int, hidden: int = 64):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(num_features, hidden), torch.nn.SiLU(),
                                       torch.nn.Linear(hidden, hidden), torch.nn.SiLU(), torch.nn.Linear(hidden, 1))
        self.register_buffer("feature_mean", torch.zeros(num_features))
        self.register_buffer("feature_std", torch.ones(num_features))
        self.target_mean, self.target_std = 0.0, 1.0

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net((features - self.feature_mean) / self.feature_std).squeeze(-1)

    @torch.no_grad()
    def predict_log_error(self, features: np.ndarray) -> np.ndarray:
        out = self(torch.as_tensor(features, dtype=torch.float32))
        return (out.numpy() * self.target_std + self.target_mean).astype(np.float64)


def fit_predictor(features: np.ndarray, errors: np.ndarray, epochs: int = 300, seed: int = 0) -> ErrorPredictor:
    """Fit an [`ErrorPredictor`] on (encoding, error) pairs: MSE on log error (diverged runs capped), Adam."""
    torch.manual_seed(seed)
    x = torch.as_tensor(features, dtype=torch.float32)
    log_error = np.log(np.minimum(np.asarray(errors, dtype=np.float64), 1.0))  # errors in [0, 1] units; cap ∞ at 1
    predictor = ErrorPredictor(x.shape[1])
    predictor.feature_mean.copy_(x.mean(0))
    predictor.feature_std.copy_(x.std(0).clamp_min(1e-3) if len(x) > 1 else torch.ones(x.shape[1]))
    predictor.target_mean, predictor.target_std = float(log_error.mean()), float(max(log_error.std(), 1e-6))
    y = torch.as_tensor((log_error - predictor.target_mean) / predictor.target_std, dtype=torch.float32)
    optimizer = torch.optim.Adam(predictor.parameters(), lr=3e-3, weight_decay=1e-4)
    for _ in range(epochs):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(predictor(x), y)
        loss.backward()
        optimizer.step()
    return predictor.eval()


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3:
        return float("nan")
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


# ----------------------------------------------------------------------------------------------- the search loop


@dataclass
class SearchResult:
    """What [`search_solver_schedule`] returns.

    Attributes:
        best_schedule: the schedule with the lowest true error among all evaluated.
        best_error: its error (on the search noises).
        history: one dict per true evaluation: `schedule`, `error`, `stage` ("initial", "random", "round k"),
            `predicted` (the predictor's error estimate when it chose the schedule, else None), `seconds`.
        rounds: per round, the number of candidates ranked, the evaluations, and the predictor's Spearman rank
            correlation with the true errors of the schedules it picked that round.
    """

    best_schedule: dict
    best_error: float
    history: list = field(default_factory=list)
    rounds: list = field(default_factory=list)

    @property
    def num_evaluations(self) -> int:
        return len(self.history)

    def initial_best_error(self) -> float:
        initial = [h["error"] for h in self.history if h["stage"] == "initial"]
        return min(initial) if initial else math.inf


def search_solver_schedule(
    evaluate: Callable[[dict], float],
    space: SolverScheduleSpace,
    initial: list[dict] = (),
    num_random: int = 16,
    num_rounds: int = 10,
    candidates_per_round: int = 512,
    evaluations_per_round: int = 8,
    num_parents: int = 8,
    time_budget_s: float | None = None,
    seed: int = 0,
    progress: bool = True,
) -> SearchResult:
    """S³ (Section 4.2): predictor-guided evolutionary search of a solver schedule with `space.num_steps` NFE.

    1. Truly evaluate the `initial` schedules (e.g. USF versions of DDIM / DPM-Solver) and `num_random` random ones.
    2. Each round: fit the predictor on everything evaluated; propose `candidates_per_round` new schedules (half
       mutations of the `num_parents` best, half random); truly evaluate the `evaluations_per_round` the predictor
       ranks best.
    3. Stop after `num_rounds` rounds or when `time_budget_s` is spent (checked between evaluations).

    `evaluate(schedule) -> error` is the true metric (lower is better; ∞ for a diverged run). Returns the best truly
    evaluated schedule — never worse, on the search noises, than any starting candidate.
    """
    rng = np.random.default_rng(seed)
    start = time.monotonic()
    seen: dict[str, float] = {}
    history: list[dict] = []
    rounds: list[dict] = []

    def out_of_time() -> bool:
        return time_budget_s is not None and time.monotonic() - start > time_budget_s

    total = len(initial) + num_random + num_rounds * evaluations_per_round
    bar = tqdm(total=None if time_budget_s is not None else total, desc=f"S³ search ({space.num_steps} NFE)",
               unit="eval", disable=not progress, leave=False)

    def run(schedule: dict, stage: str, predicted: float | None = None) -> None:
        key = schedule_key(schedule)
        if key in seen:
            return
        began = time.monotonic()
        error = float(evaluate(schedule))
        error = error if math.isfinite(error) else math.inf
        seen[key] = error
        history.append({"schedule": schedule, "error": error, "stage": stage, "predicted": predicted,
                        "seconds": time.monotonic() - began})
        bar.update(1)
        best = min(h["error"] for h in history)
        bar.set_postfix(best=f"{best:.4g}")

    for schedule in initial:
        run(space.repair(schedule), "initial")
    for _ in range(num_random):
        if out_of_time() and history:
            break
        run(space.random(rng), "random")

    for round_index in range(num_rounds):
        if out_of_time() or len(history) < 2:
            break
        features = np.stack([space.encode(h["schedule"]) for h in history])
        predictor = fit_predictor(features, np.array([h["error"] for h in history]), seed=seed + round_index)
        ranked = sorted(history, key=lambda h: h["error"])[:num_parents]
        pool, keys = [], set()
        for c in range(candidates_per_round):
            if c % 2 == 0:
                candidate = space.mutate(ranked[int(rng.integers(len(ranked)))]["schedule"], rng)
            else:
                candidate = space.random(rng)
            key = schedule_key(candidate)
            if key not in seen and key not in keys:
                keys.add(key)
                pool.append(candidate)
        if not pool:
            continue
        predicted = predictor.predict_log_error(np.stack([space.encode(c) for c in pool]))
        order = np.argsort(predicted)[:evaluations_per_round]
        picked_true, picked_pred = [], []
        for index in order:
            if out_of_time():
                break
            run(pool[index], f"round {round_index + 1}", float(np.exp(predicted[index])))
            picked_true.append(history[-1]["error"])
            picked_pred.append(predicted[index])
        rounds.append({"round": round_index + 1, "candidates": len(pool), "evaluated": len(picked_true),
                       "spearman_predicted_vs_true": _spearman(np.array(picked_pred), np.array(picked_true))})
    bar.close()
    best = min(history, key=lambda h: h["error"])
    return SearchResult(best_schedule=best["schedule"], best_error=best["error"], history=history, rounds=rounds)


__all__ = [
    "ErrorPredictor",
    "continuous_time_epsilon",
    "SearchResult",
    "SolverScheduleSpace",
    "fit_predictor",
    "per_image_rmse",
    "reference_solution",
    "rmse",
    "sample",
    "schedule_error",
    "schedule_key",
    "search_solver_schedule",
]
