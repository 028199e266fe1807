"""Claim checks: `hfcifar reproduce <slug>` states a paper's claim, runs a small experiment, measures, and judges.

A method (or a foundation check) declares its check in `hfcifar/methods/<slug_with_underscores>/claim.py`:

    CLAIM = Claim(paper=..., claim=..., paper_value=0.60, metric="accuracy", comparison=">=", tolerance=0.0,
                  budget_minutes=10, citation="@article{...}")

    def run(ctx: ClaimContext) -> Measurement:
        ...  # train / attack / prune within ctx.budget_minutes, write files under ctx.output_dir
        return Measurement(value=accuracy, measured={...}, plots=[...], model_dir="model")

[`run_claim_check`] imports the module, runs it, computes the verdict (PASS iff the measured value clears
`paper_value ∓ tolerance`, unless the measurement decides a compound claim itself with `passed`), and writes
`report.json`, `report.md` and `claim.png` into the output folder. Every number in the report comes from the run.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import numbers
import os
import platform
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from .data import load_train_and_eval, resolve_source

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
CLAIM_PLOT = "claim.png"
REPORT_FILES = (REPORT_JSON, REPORT_MD, CLAIM_PLOT)
COMPARISONS = (">=", "<=")
PASS, FAIL = "PASS", "FAIL"


class ClaimCheckError(RuntimeError):
    """A claim check could not produce a verdict: its run raised, or it measured no usable number."""


@dataclass(frozen=True)
class Claim:
    """What a paper claims, and how the check's measured value is compared with it.

    Args:
        paper: the paper's title.
        claim: the claim in words, with the paper's own number.
        paper_value: the number the measured value is compared against.
        metric: the name of the measured quantity (e.g. `"accuracy"`), as it appears in `Measurement.measured`.
        comparison: `">="` (higher is better: PASS iff value ≥ paper_value − tolerance) or `"<="`
            (lower is better: PASS iff value ≤ paper_value + tolerance).
        tolerance: absolute slack allowed around `paper_value` (≥ 0), in the metric's units.
        budget_minutes: the default compute budget (2-core CPU minutes) of the check.
        citation: BibTeX of the paper (may be empty).
    """

    paper: str
    claim: str
    paper_value: float
    metric: str
    comparison: str = ">="
    tolerance: float = 0.0
    budget_minutes: float = 10.0
    citation: str = ""

    def __post_init__(self):
        if self.comparison not in COMPARISONS:
            raise ValueError(f"Claim.comparison must be one of {COMPARISONS}; got {self.comparison!r}.")
        for name in ("paper_value", "tolerance", "budget_minutes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise ValueError(f"Claim.{name} must be a finite number; got {value!r}.")
        if self.tolerance < 0:
            raise ValueError(f"Claim.tolerance must be ≥ 0; got {self.tolerance}.")
        if self.budget_minutes <= 0:
            raise ValueError(f"Claim.budget_minutes must be > 0; got {self.budget_minutes}.")
        if not self.metric:
            raise ValueError("Claim.metric must name the measured quantity.")

    @property
    def threshold(self) -> float:
        """The value the measurement must reach: `paper_value − tolerance` for ">=", `+ tolerance` for "<="."""
        return self.paper_value - self.tolerance if self.comparison == ">=" else self.paper_value + self.tolerance

    def holds(self, value: float) -> bool:
        """Whether a measured `value` supports the claim (the default, single-number verdict)."""
        return value >= self.threshold if self.comparison == ">=" else value <= self.threshold


@dataclass
class Measurement:
    """What a claim check's `run(ctx)` returns.

    Args:
        value: the number compared against `Claim.paper_value` (must be finite).
        measured: every number the run measured (JSON-serializable values), shown in the report's table.
        passed: for a compound claim, the run's own verdict; overrides the single-number comparison.
        reason: why, in words (required in spirit when `passed` is given; the default explains the comparison).
        plots: files the run wrote, relative to `ctx.output_dir` (each must exist), embedded in report.md.
        model_dir: a trained model folder the run saved, relative to `ctx.output_dir`.
        data_info: the data the run actually used (`eval_split`, `num_train_examples`, `num_eval_examples`, …);
            defaults to `ctx.data_info`.
    """

    value: float
    measured: dict = field(default_factory=dict)
    passed: bool | None = None
    reason: str = ""
    plots: list = field(default_factory=list)
    model_dir: str | None = None
    data_info: dict | None = None


@dataclass
class ClaimContext:
    """Everything a claim check's `run(ctx)` needs: data sources, where to write, the budget and the seed.

    `train_split`, `eval_split` and `data_info` load lazily through [`hfcifar.data.load_train_and_eval`]
    (the rule for `eval_dataset` is documented there); a run that trains through `train_classifier` can pass
    `dataset`/`eval_dataset` on instead and never touch them.
    """

    slug: str
    claim: Claim
    dataset: str
    eval_dataset: str | None
    output_dir: Path
    budget_minutes: float
    seed: int = 0
    overwrite: bool = False
    progress: bool = True
    start_time: float = field(default_factory=time.monotonic)
    _data: tuple | None = field(default=None, init=False, repr=False)

    @property
    def deadline(self) -> float:
        """`time.monotonic()` value at which the budget is spent."""
        return self.start_time + self.budget_minutes * 60

    def minutes_left(self) -> float:
        """Budget minutes not yet used (never negative)."""
        return max(0.0, (self.deadline - time.monotonic()) / 60)

    def minutes_elapsed(self) -> float:
        return (time.monotonic() - self.start_time) / 60

    def _load(self) -> tuple:
        if self._data is None:
            self._data = load_train_and_eval(self.dataset, self.eval_dataset)
        return self._data

    @property
    def train_split(self):
        """The training split (`datasets.Dataset`, Hub schema)."""
        return self._load()[0]

    @property
    def eval_split(self):
        """The held-out split to measure on (`datasets.Dataset`, Hub schema)."""
        return self._load()[1]

    @property
    def data_info(self) -> dict:
        """`{"dataset", "eval_dataset", "eval_split", "num_train_examples", "num_eval_examples"}`."""
        return dict(self._load()[2])


def seconds_per_step(model_name: "str | torch.nn.Module" = "fastnet", batch_size: int = 128, steps: int = 5,
                     channels_last: bool = False) -> float:
    """The median time of one training step (forward, backward, SGD) of a fresh `model_name` on this machine now.

    Claim checks that size their experiment to the budget by the machine's speed measure it with this. `model_name`
    may be a model instance already set up as it will train (e.g. a binary net at its dearest estimator setting);
    it is put in training mode and its weights change.
    `channels_last=True` times the memory format `CifarTrainer` trains in by default: for some nets (ResNet-20) a
    channels-last CPU step takes half the time of a contiguous one. The default (contiguous) is what the robustness
    checks were calibrated against; new checks should pass `channels_last=True`.
    """
    import torch

    from .models import create_model

    model = (create_model(model_name) if isinstance(model_name, str) else model_name).train()
    images, labels = torch.rand(batch_size, 3, 32, 32), torch.randint(0, 10, (batch_size,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    times = []
    for _ in range(steps + 2):  # two warm-up steps: allocations, momentum buffers
        start = time.perf_counter()
        optimizer.zero_grad()
        model(images, labels=labels).loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return sorted(times[2:])[steps // 2]


def paired_comparison(correct_a: Any, correct_b: Any) -> dict:
    """Accuracy of `a` minus that of `b`, measured on the same examples, with its standard error.

    `correct_a`/`correct_b` are per-example correctness vectors (bool/0-1; numpy, torch or lists) of the same length.
    The error is that of the mean per-example difference d ∈ {−1, 0, 1}: std(d, ddof=1)/√n. Examples both models get
    right (or both wrong) carry no noise, so it is smaller than the unpaired error of two independent accuracies —
    the tolerance most claim checks compare margins against.

    Returns `{"margin", "standard_error", "a_only_right", "b_only_right", "num_examples"}`.
    """
    import numpy as np

    def as_array(values):
        values = values.detach().cpu().numpy() if hasattr(values, "detach") else values
        return np.asarray(values, dtype=float)

    a, b = as_array(correct_a), as_array(correct_b)
    if a.shape != b.shape or a.ndim != 1 or a.size < 2:
        raise ValueError("paired_comparison needs two per-example correctness vectors of the same length ≥ 2; got "
                         f"shapes {a.shape} and {b.shape}.")
    difference = a - b
    return {"margin": float(difference.mean()), "standard_error": float(difference.std(ddof=1) / math.sqrt(a.size)),
            "a_only_right": int((difference > 0).sum()), "b_only_right": int((difference < 0).sum()),
            "num_examples": int(a.size)}


def paired_standard_error(correct_a: Any, correct_b: Any) -> float:
    """The standard error of `paired_comparison`'s margin."""
    return paired_comparison(correct_a, correct_b)["standard_error"]


# ----------------------------------------------------------------------------------------------- registry


def claim_check_slugs() -> list[str]:
    """Slugs with a claim check: the 46 papers first (METHODS.md order), then the foundation checks."""
    from .methods import list_methods

    return [s.info.slug for s in list_methods(include_foundation=True) if s.has_claim_check]


def load_claim_module(slug: str) -> ModuleType:
    """Import `hfcifar.methods.<slug>.claim` and check it declares `CLAIM` (a `Claim`) and `run(ctx)`."""
    from .methods import load_method_module, method_status

    try:
        status = method_status(slug)
    except ValueError:
        raise ValueError(
            f"No claim check named {slug!r}. Run `hfcifar reproduce --list` for the slugs that have one."
        ) from None
    if not status.has_claim_check:
        state = "is not implemented yet" if not status.implemented else "has no claim check yet"
        raise ValueError(
            f"Method {slug!r} ({status.info.title}) {state}. Run `hfcifar reproduce --list` for the slugs that have one."
        )
    module = load_method_module(slug, "claim")
    check_claim_module(module, slug)
    return module


def check_claim_module(module: Any, slug: str) -> Claim:
    """Raise `ClaimCheckError` unless `module` has a `Claim` as `CLAIM` and a callable `run`."""
    claim = getattr(module, "CLAIM", None)
    if not isinstance(claim, Claim):
        raise ClaimCheckError(f"Claim check {slug!r}: claim.py must define CLAIM = Claim(...); found {claim!r}.")
    if not callable(getattr(module, "run", None)):
        raise ClaimCheckError(f"Claim check {slug!r}: claim.py must define run(ctx) -> Measurement.")
    return claim


# ----------------------------------------------------------------------------------------------- running


def _check_output_dir(output_dir: Path, overwrite: bool) -> None:
    from .training import RunDirectoryError

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


def _finite_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        try:  # numpy / torch scalars
            value = value.item()
        except Exception:
            return None
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return None
    value = float(value)
    return value if math.isfinite(value) else None


def _jsonable(value: Any) -> Any:
    """Plain JSON values: numpy/torch scalars become numbers, non-finite floats `None`, paths strings."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item"):
        try:
            return _jsonable(value.item())
        except Exception:
            pass
    return str(value)


def _verdict(claim: Claim, value: float, measurement: Measurement) -> tuple[str, str]:
    if measurement.passed is not None:
        verdict = PASS if bool(measurement.passed) else FAIL
        reason = measurement.reason or f"the claim check's own criterion (compound claim) was {'met' if measurement.passed else 'not met'}"
        return verdict, reason
    holds = claim.holds(value)
    if claim.comparison == ">=":
        relation, bound = ("≥" if holds else "<"), f"paper value {claim.paper_value:.4g} − tolerance {claim.tolerance:.4g}"
    else:
        relation, bound = ("≤" if holds else ">"), f"paper value {claim.paper_value:.4g} + tolerance {claim.tolerance:.4g}"
    reason = f"measured {claim.metric} = {value:.4g} {relation} {claim.threshold:.4g} ({bound})"
    if measurement.reason:
        reason += f"; {measurement.reason}"
    return (PASS if holds else FAIL), reason


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def run_claim_check(
    slug: str,
    dataset: str | os.PathLike | None = None,
    eval_dataset: str | os.PathLike | None = None,
    output_dir: str | os.PathLike | None = None,
    budget_minutes: float | None = None,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
    module: ModuleType | Any | None = None,
) -> dict:
    """Run the claim check `slug` and write `report.json`, `report.md` and `claim.png` into `output_dir`.

    Args:
        slug: a method's (or foundation check's) slug; `hfcifar reproduce --list` shows those with a check.
        dataset: training data (Hub id or folder); default `$HFCIFAR_DATASET`, then `uoft-cs/cifar10`.
        eval_dataset: separate evaluation data (see `hfcifar.data.load_train_and_eval`).
        output_dir: default `reproduce/<slug>`; refused when not empty unless `overwrite`.
        budget_minutes: compute budget; default the claim's `budget_minutes`.
        seed: seeds Python, numpy and torch before the run and is passed on as `ctx.seed`.
        progress: progress bars in the run.
        module: use this object (with `CLAIM` and `run`) instead of importing the slug's claim.py.

    Returns:
        The report (the content of `report.json`).

    Raises:
        ValueError: unknown slug, or a slug without a claim check.
        RunDirectoryError: `output_dir` is not empty and `overwrite` is False.
        ClaimCheckError: the run raised, or returned no finite value, or named plots it did not write.
    """
    if module is None:
        module = load_claim_module(slug)
    claim = check_claim_module(module, slug)
    budget = claim.budget_minutes if budget_minutes is None else float(budget_minutes)
    if not math.isfinite(budget) or budget <= 0:
        raise ValueError(f"The budget must be a positive number of minutes; got {budget_minutes!r}.")
    output_dir = Path(output_dir) if output_dir is not None else Path("reproduce") / slug
    _check_output_dir(output_dir, overwrite)
    output_dir.mkdir(parents=True, exist_ok=True)
    source = resolve_source(dataset)
    eval_source = str(eval_dataset) if eval_dataset not in (None, "") else None

    from transformers import set_seed

    set_seed(seed)
    ctx = ClaimContext(slug=slug, claim=claim, dataset=source, eval_dataset=eval_source, output_dir=output_dir,
                       budget_minutes=budget, seed=seed, overwrite=overwrite, progress=progress)
    started_at = _dt.datetime.now(_dt.timezone.utc)
    try:
        measurement = module.run(ctx)
    except Exception as error:
        raise ClaimCheckError(f"Claim check {slug!r} failed: {type(error).__name__}: {error}") from error
    wall = time.monotonic() - ctx.start_time

    if not isinstance(measurement, Measurement):
        raise ClaimCheckError(f"Claim check {slug!r}: run(ctx) must return a Measurement; got {type(measurement).__name__}.")
    value = _finite_number(measurement.value)
    if value is None:
        raise ClaimCheckError(
            f"Claim check {slug!r} measured {claim.metric} = {measurement.value!r}, which is not a finite number; "
            "no verdict can be given (did training diverge?)."
        )
    plots = [str(p) for p in measurement.plots]
    missing = [p for p in plots if not (output_dir / p).is_file()]
    if missing:
        raise ClaimCheckError(f"Claim check {slug!r} listed plots it did not write in {output_dir}: {missing}.")
    if measurement.model_dir is not None and not (output_dir / measurement.model_dir).is_dir():
        raise ClaimCheckError(f"Claim check {slug!r} named model_dir={measurement.model_dir!r}, which is not a folder in {output_dir}.")
    data_info = dict(measurement.data_info) if measurement.data_info is not None else ctx.data_info
    verdict, reason = _verdict(claim, value, measurement)

    import torch

    from . import __version__

    report = {
        "slug": slug,
        "paper": claim.paper,
        "claim": claim.claim,
        "paper_value": claim.paper_value,
        "metric": claim.metric,
        "comparison": claim.comparison,
        "tolerance": claim.tolerance,
        "threshold": claim.threshold,
        "value": value,
        "measured": _jsonable(measurement.measured),
        "verdict": verdict,
        "reason": reason,
        # the run's own criterion decided (a claim one number cannot settle): the threshold is then for reference
        "compound": measurement.passed is not None,
        "dataset": data_info.get("dataset", source),
        "eval_dataset": data_info.get("eval_dataset", eval_source),
        "eval_split": data_info.get("eval_split"),
        "num_train_examples": data_info.get("num_train_examples"),
        "num_eval_examples": data_info.get("num_eval_examples"),
        "budget_minutes": budget,
        "wall_time_seconds": round(wall, 2),
        "within_budget": wall <= budget * 60,
        "seed": seed,
        "plots": [CLAIM_PLOT, *plots],
        "model_dir": measurement.model_dir,
        "started_at": started_at.isoformat(timespec="seconds"),
        "citation": claim.citation,
        "hfcifar_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
    }
    report = _jsonable(report)
    _plot_claim(report, output_dir / CLAIM_PLOT)
    _write_text_atomic(output_dir / REPORT_MD, render_markdown(report))
    _write_text_atomic(output_dir / REPORT_JSON, json.dumps(report, indent=2, allow_nan=False) + "\n")
    return report


# ----------------------------------------------------------------------------------------------- report files


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return "—"
    return str(value)


def render_markdown(report: dict) -> str:
    """The human-readable report (report.md) from the content of report.json."""
    sign = "≥" if report["comparison"] == ">=" else "≤"
    minutes, seconds = divmod(report["wall_time_seconds"], 60)
    lines = [
        f"# Claim check `{report['slug']}`: {report['verdict']}",
        "",
        f"**Paper.** {report['paper']}",
        "",
        f"**Claim.** {report['claim']}",
        "",
        "| | |",
        "|---|---|",
        f"| paper value ({report['metric']}) | {_fmt(report['paper_value'])} |",
        f"| tolerance | {_fmt(report['tolerance'])} |",
        (f"| PASS when | the compound criterion below (the threshold {sign} {_fmt(report['threshold'])} is for reference) |"
         if report.get("compound") else f"| PASS when {report['metric']} | {sign} {_fmt(report['threshold'])} |"),
        f"| **measured {report['metric']}** | **{_fmt(report['value'])}** |",
        f"| **verdict** | **{report['verdict']}** |",
        "",
        f"Reason: {report['reason']}.",
        "",
        "## Measured",
        "",
        "| quantity | value |",
        "|---|---|",
    ]
    lines += [f"| {key} | {_fmt(value)} |" for key, value in report["measured"].items()]
    if report["eval_dataset"]:
        eval_source = f"`{report['eval_dataset']}`"
    else:
        eval_source = f"held out from `{report['dataset']}`"
    within = "within" if report.get("within_budget") else "over"
    lines += [
        "",
        "## Run",
        "",
        f"- training data: `{report['dataset']}`, {_fmt(report['num_train_examples'])} images",
        f"- evaluation data: {eval_source}, split `{report['eval_split']}`, {_fmt(report['num_eval_examples'])} images",
        f"- budget: {_fmt(report['budget_minutes'])} min; wall time {int(minutes)} min {seconds:.0f} s ({within} budget)",
        f"- seed: {report['seed']}",
        f"- model folder: `{report['model_dir']}`" if report["model_dir"] else "- model folder: none saved",
        f"- hfcifar {report['hfcifar_version']}, torch {report['torch_version']}, Python {report.get('python_version', '?')};"
        f" started {report.get('started_at', '?')}",
        "",
        "## Plots",
        "",
    ]
    lines += [f"![{Path(plot).stem}]({plot})" + "\n" for plot in report["plots"]]
    if report.get("citation"):
        lines += ["## Citation", "", "```bibtex", report["citation"].strip(), "```", ""]
    return "\n".join(lines)


def _plot_claim(report: dict, path: Path) -> None:
    """claim.png: the paper's number, the PASS threshold and the measured value on one axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paper, threshold, value = report["paper_value"], report["threshold"], report["value"]
    passed = report["verdict"] == PASS
    colour = "tab:green" if passed else "tab:red"
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    ax.barh([1, 0], [paper, value], color=["tab:gray", colour], height=0.55)
    ax.set_yticks([1, 0], ["paper (claim)", "measured"])
    low = min(0.0, paper, value, threshold)
    high = max(paper, value, threshold)
    span = (high - low) or 1.0
    right = high + 0.18 * span
    if report.get("compound"):
        # The verdict came from the run's own compound criterion (its reason); no single-number PASS region exists.
        ax.axvline(threshold, color="black", linestyle=":", linewidth=1.0, label=f"paper value {paper:.4g} (reference)")
    else:
        if report["comparison"] == ">=":
            ax.axvspan(threshold, right, color="tab:green", alpha=0.08, label=f"PASS region (≥ {threshold:.4g})")
        else:
            ax.axvspan(low, threshold, color="tab:green", alpha=0.08, label=f"PASS region (≤ {threshold:.4g})")
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1.2, label=f"threshold {threshold:.4g}")
    for y, number in ((1, paper), (0, value)):
        ax.text(number + 0.01 * span, y, f"{number:.4g}", va="center", ha="left", fontsize=10)
    ax.set_xlim(low, right)
    ax.set_xlabel(report["metric"])
    how = "compound criterion, see report" if report.get("compound") else f"{report['metric']} {value:.4g} vs paper {paper:.4g}"
    # Two lines, wrapped: a long slug and metric name used to run off the figure.
    title = "\n".join(textwrap.wrap(f"{report['slug']}: {report['verdict']}", 60) + textwrap.wrap(f"({how})", 80))
    ax.set_title(title, color=colour, fontweight="bold", fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


__all__ = [
    "CLAIM_PLOT",
    "REPORT_JSON",
    "REPORT_MD",
    "Claim",
    "ClaimCheckError",
    "ClaimContext",
    "Measurement",
    "check_claim_module",
    "claim_check_slugs",
    "load_claim_module",
    "paired_comparison",
    "paired_standard_error",
    "render_markdown",
    "run_claim_check",
    "seconds_per_step",
]
