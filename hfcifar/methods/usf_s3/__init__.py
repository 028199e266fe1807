"""Row 7, `usf-s3`: the unified sampling framework (USF) and its solver-schedule search (S³).

Liu, Ning, Yang & Wang, "A Unified Sampling Framework for Solver Searching of Diffusion Probabilistic Models"
(ICLR 2024, https://arxiv.org/abs/2312.07243).

- `scheduling_usf.py`   `USFScheduler` (diffusers `SchedulerMixin`/`ConfigMixin`): a multistep exponential-integrator
                        ODE solver whose every step follows a JSON *solver schedule* — timesteps, prediction type
                        (noise/data), Taylor order 1–3, derivative estimation, UniC-like corrector (Section 3);
                        the exact exponential-integrator weights of one step (`exponential_integrator_weights`);
                        the solver schedule itself (`SolverStep`, `validate_solver_schedule`, and
                        `make_solver_schedule`, which builds uniform schedules: DDIM, DPM-Solver++(2M/3M),
                        UniPC-like). One self-contained file (torch, numpy, diffusers): pipeline folders ship it as
                        the scheduler's remote code.
- `gaussian_mixture.py` `GaussianMixtureDenoiser`: a PPCA Gaussian mixture fitted to CIFAR-10 pixels whose
                        ε-prediction is the exact score of the VP marginals, callable as `model(x, t).sample`.
- `search.py`           S³ (Section 4): the search space and encoding, the reference ODE solution and error, the MLP
                        predictor and the predictor-guided evolutionary search loop.
- `claim.py`            the claim check: searched schedules vs diffusers' DDIM / DPM-Solver++ / UniPC at 5 and 10 NFE.
"""

from hfcifar.methods.base import Method, lazy_exports

METHOD = Method(
    number=7,
    slug="usf-s3",
    title="A Unified Sampling Framework for Solver Searching of Diffusion Probabilistic Models",
    ship="exponential-integrator sampler with per-step solver strategy, predictor-based schedule search",
    claim="at 5 and 10 NFE the searched schedule has lower error to a reference ODE solution than DDIM/DPM-Solver (paper: FID 2.69 at 10 NFE)",
    family="generative",
    citation="""@inproceedings{liu2024unified,
  title     = {A Unified Sampling Framework for Solver Searching of Diffusion Probabilistic Models},
  author    = {Liu, Enshu and Ning, Xuefei and Yang, Huazhong and Wang, Yu},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2024},
  url       = {https://arxiv.org/abs/2312.07243}
}""",
    provides=(
        ("diffusion component", "USFScheduler", "hfcifar.methods.usf_s3.scheduling_usf:USFScheduler"),
        (
            "diffusion component",
            "GaussianMixtureDenoiser",
            "hfcifar.methods.usf_s3.gaussian_mixture:GaussianMixtureDenoiser",
        ),
        ("public name", "USFScheduler", "hfcifar.methods.usf_s3.scheduling_usf:USFScheduler"),
        ("public name", "GaussianMixtureDenoiser", "hfcifar.methods.usf_s3.gaussian_mixture:GaussianMixtureDenoiser"),
    ),
)

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".gaussian_mixture": ["GaussianMixtureDenoiser"],
        ".scheduling_usf": [
            "USFScheduler",
            "exponential_integrator_weights",
            "DERIVATIVES",
            "PREDICTIONS",
            "TIMESTEP_RULES",
            "SolverStep",
            "make_solver_schedule",
            "validate_solver_schedule",
        ],
        ".search": [
            "ErrorPredictor",
            "SearchResult",
            "SolverScheduleSpace",
            "fit_predictor",
            "reference_solution",
            "rmse",
            "sample",
            "schedule_error",
            "search_solver_schedule",
        ],
    },
)
