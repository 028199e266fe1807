"""Running a claim check: find it, plan it, run its fixed work, decide, write the report."""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import shlex
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from ..data import resolve_source
from ..registry import Registry
from .claims import SCALES, Claim, Result
from .context import GUARD_FACTOR, ClaimContext
from .report import REPORT_FILES, write_report
from .verdicts import decide

#: In `--budget-minutes` mode, a run longer than this many times the budget is INCONCLUSIVE.
OVERRUN_TOLERANCE = 1.2


class ClaimCheckError(RuntimeError):
    """A claim check could not run: its code raised, or it returned something that is not a `Result`."""


#: slug → the method that has a claim check: an object with `number` (its METHOD.md row; 0 for a foundation check),
#: `title` and `package` (the check is `<package>.claim`). Method discovery fills it (`hfcifar.methods.discover`).
CLAIM_CHECKS: Registry = Registry("claim check", hint="Run `hfcifar reproduce --list` for the slugs that have one.")


def claim_check_slugs() -> list[str]:
    """Slugs with a claim check: the papers first (METHODS.md order), then the foundation checks (number 0)."""
    entries = [(slug, CLAIM_CHECKS.get(slug)) for slug in CLAIM_CHECKS.names()]
    return [slug for slug, entry in sorted(entries, key=lambda item: (item[1].number == 0, item[1].number, item[0]))]


def load_claim_module(slug: str) -> ModuleType:
    """Import the claim check `slug` (`<package>.claim`) and check it declares `CLAIM` (a `Claim`) and `run(ctx)`."""
    import importlib

    entry = CLAIM_CHECKS.get(slug)  # unknown slug: "Unknown claim check …; available: …"
    module = importlib.import_module(f"{entry.package}.claim")
    check_claim_module(module, slug)
    return module


def check_claim_module(module: Any, slug: str) -> Claim:
    """Raise `ClaimCheckError` unless `module` has a `Claim` as `CLAIM` and a callable `run`."""
    claim = getattr(module, "CLAIM", None)
    if not isinstance(claim, Claim):
        raise ClaimCheckError(f"Claim check {slug!r}: claim.py must define CLAIM = Claim(...); found {claim!r}.")
    if not callable(getattr(module, "run", None)):
        raise ClaimCheckError(f"Claim check {slug!r}: claim.py must define run(ctx) -> Result.")
    return claim


def _check_output_dir(output_dir: Path, overwrite: bool) -> None:
    from ..training import RunDirectoryError

    if output_dir.exists() and not output_dir.is_dir():
        raise RunDirectoryError(f"{output_dir} exists and is not a folder; choose another --output.")
    if output_dir.is_dir() and any(output_dir.iterdir()):
        if not overwrite:
            raise RunDirectoryError(
                f"{output_dir} is not empty (a previous claim check?). Pass --overwrite (`overwrite=True` in Python) "
                "to replace it, or choose another --output."
            )
        for name in REPORT_FILES:  # a stale verdict must never survive a failed rerun
            (output_dir / name).unlink(missing_ok=True)


def resolve_scale(claim: Claim, scale: str | None) -> str:
    scale = scale or "cpu"
    if scale not in SCALES:
        raise ValueError(f"Unknown scale {scale!r}; choose one of {', '.join(SCALES)}.")
    return scale


def regenerate_command(slug: str, scale: str, seeds: int, seed: int, dataset: str, eval_dataset: str | None,
                       budget_minutes: float | None) -> str:
    """The `hfcifar reproduce` command that repeats this experiment."""
    parts = ["hfcifar", "reproduce", slug, "--scale", scale, "--seeds", str(seeds), "--seed", str(seed),
             "--dataset", dataset]
    if eval_dataset:
        parts += ["--eval-dataset", eval_dataset]
    if budget_minutes is not None:
        parts += ["--budget-minutes", f"{budget_minutes:g}"]
    return shlex.join(parts)


def plan_text(slug: str, scales: list[str] | None = None, seeds: int | None = None, module: Any = None) -> str:
    """What `hfcifar reproduce SLUG --plan` prints: the claim, its rule, and each scale's work and time estimate."""
    module = module or load_claim_module(slug)
    claim = check_claim_module(module, slug)
    lines = [f"{slug}: {claim.paper}", "", claim.claim, "",
             f"Hypotheses ({'all must pass' if claim.combine == 'all' else 'pre-registered family, one must pass'}):"]
    for h in claim.hypotheses:
        extra = f"; margin δ = {h.margin:g} ({h.margin_reason})" if h.kind == "non-inferiority" else ""
        paper = f"; paper: {h.paper_value:g}" if h.paper_value is not None else ""
        lines.append(f"  - {h.name} [{h.kind}]: {h.statement} — PASS iff {h.rule}{extra}{paper}")
    if claim.minimums or claim.min_seeds > 1:
        minimums = {**claim.minimums, **({"seeds": claim.min_seeds} if claim.min_seeds > 1 else {})}
        lines.append("Minimum sizes for a verdict: " + ", ".join(f"{k} ≥ {v:g}" for k, v in minimums.items()))
    for name in scales or list(SCALES):
        scale = claim.scales[name]
        n_seeds = seeds or scale.seeds
        estimate = (f"~{scale.minutes * n_seeds / scale.seeds:.3g} min on a {scale.device}" if scale.minutes is not None
                    else "no time estimate")
        lines += ["", f"[{name}] {n_seeds} seed(s), {estimate}" + (f" — {scale.description}" if scale.description else ""),
                  "  work: " + json.dumps(scale.work)]
    return "\n".join(lines)


def run_claim_check(
    slug: str,
    dataset: str | os.PathLike | None = None,
    eval_dataset: str | os.PathLike | None = None,
    output_dir: str | os.PathLike | None = None,
    scale: str | None = None,
    seeds: int | None = None,
    seed: int = 0,
    budget_minutes: float | None = None,
    guard_minutes: float | None = None,
    overwrite: bool = False,
    progress: bool = True,
    module: ModuleType | Any | None = None,
) -> dict:
    """Run the claim check `slug` at a fixed scale and write `report.json`, `report.md` and `claim.png`.

    Args:
        slug: a method's (or foundation check's) slug; `hfcifar reproduce --list` shows those with a check.
        dataset: training data (Hub id or folder); default `$HFCIFAR_DATASET`, then `uoft-cs/cifar10`.
        eval_dataset: separate evaluation data (see `hfcifar.data.load_train_and_eval`).
        output_dir: default `reproduce/<slug>`; refused when not empty unless `overwrite`.
        scale: `"smoke"`, `"cpu"` (default) or `"paper"`: the fixed work the claim declares for it.
        seeds: number of training seeds (default: the scale's); seeds are `seed, seed + 1, …`.
        budget_minutes: run the same work under a deadline (budget mode): training stops there, and a run cut short
            or longer than 1.2× the budget is INCONCLUSIVE. Without it, the guard is 3× the scale's estimate.
        guard_minutes: the time guard of a fixed-work run instead (0: none — e.g. on a machine shared with other
            jobs, where the estimate does not hold); a run the guard stops is INCONCLUSIVE.
        progress: progress bars in the run.
        module: use this object (with `CLAIM` and `run`) instead of importing the slug's claim.py.

    Returns:
        The report (the content of `report.json`).
    """
    if module is None:
        module = load_claim_module(slug)
    claim = check_claim_module(module, slug)
    scale = resolve_scale(claim, scale)
    declared = claim.scales[scale]
    n_seeds = declared.seeds if seeds is None else int(seeds)
    if n_seeds < 1:
        raise ValueError(f"--seeds must be ≥ 1; got {seeds}.")
    if budget_minutes is not None and (not math.isfinite(budget_minutes) or budget_minutes <= 0):
        raise ValueError(f"The budget must be a positive number of minutes; got {budget_minutes!r}.")
    mode = "budget" if budget_minutes is not None else "fixed"
    if mode == "budget":
        guard = float(budget_minutes)
    elif guard_minutes is not None:
        guard = float(guard_minutes) if guard_minutes > 0 else None
    elif declared.minutes is not None and scale != "smoke":
        guard = GUARD_FACTOR * declared.minutes * n_seeds / declared.seeds
    else:
        guard = None
    output_dir = Path(output_dir) if output_dir is not None else Path("reproduce") / slug
    _check_output_dir(output_dir, overwrite)
    output_dir.mkdir(parents=True, exist_ok=True)
    source = resolve_source(dataset)
    eval_source = str(eval_dataset) if eval_dataset not in (None, "") else None
    seed_list = [seed + i for i in range(n_seeds)]

    from transformers import set_seed

    set_seed(seed)
    ctx = ClaimContext(slug=slug, claim=claim, scale=scale, work=dict(declared.work), seeds=seed_list, dataset=source,
                       eval_dataset=eval_source, output_dir=output_dir, progress=progress, guard_minutes=guard, mode=mode)
    started_at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    try:
        result = module.run(ctx)
    except Exception as error:
        raise ClaimCheckError(f"Claim check {slug!r} failed: {type(error).__name__}: {error}") from error
    wall = time.monotonic() - ctx.start_time
    if not isinstance(result, Result):
        raise ClaimCheckError(f"Claim check {slug!r}: run(ctx) must return a Result; got {type(result).__name__}.")
    plots = list(ctx.plots) + [str(p) for p in result.plots if str(p) not in ctx.plots]
    missing = [p for p in plots if not (output_dir / p).is_file()]
    if missing:
        raise ClaimCheckError(f"Claim check {slug!r} listed plots it did not write in {output_dir}: {missing}.")
    if result.model_dir is not None and not (output_dir / result.model_dir).is_dir():
        raise ClaimCheckError(f"Claim check {slug!r} named model_dir={result.model_dir!r}, which is not a folder in {output_dir}.")
    if mode == "budget" and wall > OVERRUN_TOLERANCE * budget_minutes * 60:
        ctx.incomplete(f"the run took {wall / 60:.1f} min, over {OVERRUN_TOLERANCE:g}× its {budget_minutes:g}-minute budget")
    decision = decide(claim, result.measurements, scale=scale, incomplete=ctx.incomplete_reasons, sizes=result.sizes,
                      seeds=n_seeds)
    headline = decision.sub_verdicts[0]
    data_info = ctx.data_info if ctx._data is not None else {"dataset": source, "eval_dataset": eval_source}
    command = regenerate_command(slug, scale, n_seeds, seed, source, eval_source, budget_minutes)

    from .report import provenance

    report = {
        "slug": slug,
        "paper": claim.paper,
        "claim": claim.claim,
        "kind": claim.kind,
        "metric": claim.metric,
        "paper_value": headline.paper_value,
        "estimate": headline.estimate,
        "standard_error": headline.standard_error,
        "interval": headline.interval,
        "n": headline.n,
        "verdict": decision.verdict,
        "magnitude": headline.magnitude,
        "reason": decision.reason,
        "sub_verdicts": [s.to_dict() for s in decision.sub_verdicts],
        "combine": claim.combine,
        "scale": scale,
        "mode": mode,
        "work": declared.work,
        "seeds": seed_list,
        "wall_time_seconds": round(wall, 2),
        "guard_minutes": guard,
        "provenance": provenance(command, scale, seed_list, wall, started_at),
        "details": result.details,
        "sizes": result.sizes,
        "notes": result.notes,
        "training_runs": [run.summary() for run in ctx.training_runs],
        "incomplete": list(ctx.incomplete_reasons),
        "data": data_info,
        "plots": ["claim.png", *plots],
        "model_dir": result.model_dir,
        "citation": claim.citation,
    }
    return write_report(report, output_dir)
