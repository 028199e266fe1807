"""Claim checks: `hfcifar reproduce <slug>` states a paper's claim, runs a fixed amount of work on real CIFAR-10,
measures the claimed quantity with its standard error, and the framework decides PASS / FAIL / INCONCLUSIVE.

A check is `hfcifar/methods/<slug_with_underscores>/claim.py` with two names:

    CLAIM = Claim(paper=..., claim=..., hypotheses=[Hypothesis("accuracy_margin", SUPERIORITY, "...", paper_value=0.02)],
                  scales={"smoke": Scale({...}), "cpu": Scale({...}, seeds=3, minutes=14), "paper": Scale({...})},
                  min_seeds=3, minimums={"eval_images": 400}, citation="@article{...}")

    def run(ctx: ClaimContext) -> Result:
        ...  # ctx.work, ctx.each_seed(), ctx.tensors(), ctx.train(...), ctx.correct(...), ctx.figure(...)
        return Result(measurements={"accuracy_margin": paired_difference(new, old)}, details={...},
                      sizes={"eval_images": n})

The package is split by concern: `claims` (what is declared), `verdicts` (the rules), `statistics` (estimates with
standard errors), `context` (the shared work of a run), `runner` (plan, run, decide), `report` (report files and
provenance), `summary` (the README table from reports).
"""

from .claims import (FAIL, INCONCLUSIVE, KINDS, NON_INFERIORITY, PASS, SCALES, SMOKE, SUPERIORITY, THRESHOLD, VERDICTS,
                     Claim, Hypothesis, Measurement, Result, Scale)
from .context import GUARD_FACTOR, ClaimContext, TrainRun
from .report import CLAIM_PLOT, REPORT_JSON, REPORT_MD, REPORT_SCHEMA, render_markdown
from .runner import (CLAIM_CHECKS, ClaimCheckError, check_claim_module, claim_check_slugs, load_claim_module, plan_text,
                     run_claim_check)
from .statistics import (agresti_coull_variance, bootstrap_standard_error, paired_comparison, paired_difference,
                         paired_standard_error, per_example_estimate, pool_seeds, proportion)
from .summary import summary_table, update_readme
from .verdicts import combine, critical_value, decide, decide_hypothesis

__all__ = [
    "CLAIM_CHECKS",
    "CLAIM_PLOT", "FAIL", "GUARD_FACTOR", "INCONCLUSIVE", "KINDS", "NON_INFERIORITY", "PASS", "REPORT_JSON",
    "REPORT_MD", "REPORT_SCHEMA", "SCALES", "SMOKE", "SUPERIORITY", "THRESHOLD", "VERDICTS", "Claim",
    "ClaimCheckError", "ClaimContext", "Hypothesis", "Measurement", "Result", "Scale", "TrainRun",
    "agresti_coull_variance", "bootstrap_standard_error", "check_claim_module", "claim_check_slugs", "combine", "critical_value", "decide",
    "decide_hypothesis", "load_claim_module", "paired_comparison", "paired_difference", "paired_standard_error",
    "per_example_estimate", "plan_text", "pool_seeds", "proportion", "render_markdown", "run_claim_check", "summary_table",
    "update_readme",
]
