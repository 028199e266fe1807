"""Report files of a claim check — `report.json` (one schema for every check), `report.md`, `claim.png` — and the
provenance that lets anyone regenerate them."""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import subprocess
import textwrap
from pathlib import Path
from typing import Any

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
CLAIM_PLOT = "claim.png"
REPORT_FILES = (REPORT_JSON, REPORT_MD, CLAIM_PLOT)
#: The fields every report.json has (tools may rely on them).
REPORT_SCHEMA = ("slug", "paper", "claim", "kind", "metric", "paper_value", "estimate", "standard_error", "interval",
                 "n", "verdict", "magnitude", "reason", "sub_verdicts", "combine", "scale", "mode", "work", "seeds",
                 "wall_time_seconds", "provenance", "details", "training_runs", "incomplete", "data", "plots",
                 "model_dir", "citation")
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def jsonable(value: Any) -> Any:
    """Plain JSON values: numpy/torch scalars become numbers, non-finite floats `None`, paths strings."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist"):
        try:
            return jsonable(value.tolist())
        except Exception:
            pass
    if hasattr(value, "item"):
        try:
            return jsonable(value.item())
        except Exception:
            pass
    return str(value)


def write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------- provenance


def source_identity() -> dict:
    """`{"commit", "dirty"}` from git when the package is in a checkout, else `{"source_sha256"}` of its files."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PACKAGE_ROOT, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--", str(PACKAGE_ROOT)], cwd=PACKAGE_ROOT,
                                capture_output=True, text=True, timeout=10, check=True).stdout
        return {"commit": commit, "dirty": bool(status.strip())}
    except (OSError, subprocess.SubprocessError):
        digest = hashlib.sha256()
        for path in sorted(PACKAGE_ROOT.rglob("*.py")):
            digest.update(path.relative_to(PACKAGE_ROOT).as_posix().encode())
            digest.update(path.read_bytes())
        return {"commit": None, "source_sha256": digest.hexdigest()}


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in ("hfcifar", "torch", "transformers", "diffusers", "accelerate", "datasets", "numpy"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


def device_description() -> str:
    import torch

    if torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)}"
    return f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores"


def provenance(command: str, scale: str, seeds: list, wall_time_seconds: float, started_at: str) -> dict:
    import torch

    return {**source_identity(), "versions": versions(), "threads": torch.get_num_threads(),
            "device": device_description(), "scale": scale, "seeds": list(seeds),
            "wall_time_seconds": round(wall_time_seconds, 2), "started_at": started_at, "command": command}


# ----------------------------------------------------------------------------------------------- report.md


def fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if value is None:
        return "—"
    if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
        return "[" + ", ".join(fmt(v, digits) for v in value) + "]"
    return str(value)


def estimate_text(row: dict) -> str:
    """`0.0412 ± 0.012 [0.018, 0.065]`, or `—` when nothing was measured."""
    if row.get("estimate") is None:
        return "—"
    text = f"{fmt(row['estimate'])} ± {fmt(row.get('standard_error'), 2)}"
    if row.get("interval"):
        text += f" [{fmt(row['interval'][0])}, {fmt(row['interval'][1])}]"
    return text


def render_markdown(report: dict) -> str:
    """report.md from the content of report.json."""
    minutes, seconds = divmod(report["wall_time_seconds"], 60)
    lines = [
        f"# Claim check `{report['slug']}`: {report['verdict']}",
        "",
        f"**Paper.** {report['paper']}",
        "",
        f"**Claim.** {report['claim']}",
        "",
        f"**Verdict: {report['verdict']}.** {report['reason']}.",
        "",
        f"Kind: {report['kind']} (combined: {report['combine']}); scale `{report['scale']}`"
        f" ({report['mode']} mode), seeds {report['seeds']}.",
        "",
        "| hypothesis | kind | rule | estimate ± SE [95% interval] | n (images, seeds) | paper | magnitude | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["sub_verdicts"]:
        n = row.get("n") or {}
        lines.append(f"| `{row['name']}`: {row['statement']} | {row['kind']} | {row['rule']} | {estimate_text(row)} | "
                     f"{fmt(n.get('images'))}, {fmt(n.get('seeds'))} | {fmt(row['paper_value'])} | {row['magnitude']} | "
                     f"**{row['verdict']}** |")
    per_seed = [row for row in report["sub_verdicts"] if row.get("per_seed") and len(row["per_seed"]) > 1]
    if per_seed:
        lines += ["", "Per seed:", ""]
        lines += [f"- `{row['name']}`: {fmt(row['per_seed'])}" for row in per_seed]
    if report.get("incomplete"):
        lines += ["", "**Incomplete:** " + "; ".join(report["incomplete"]) + "."]
    if report.get("notes"):
        lines += ["", f"Notes: {report['notes']}"]
    lines += ["", "## Measured", "", "| quantity | value |", "|---|---|"]
    lines += [f"| {key} | {fmt(value)} |" for key, value in report["details"].items()]
    if report.get("training_runs"):
        lines += ["", "## Training runs", "", "| run | steps (planned) | epochs | seconds | cut short |", "|---|---|---|---|---|"]
        lines += [f"| {r['name']} | {r['steps']} ({r['planned_steps']}) | {fmt(r['epochs'])} | {fmt(r['seconds'])} | "
                  f"{'yes' if r['cut_short'] else 'no'} |" for r in report["training_runs"]]
    data, prov = report["data"], report["provenance"]
    eval_source = f"`{data.get('eval_dataset')}`" if data.get("eval_dataset") else f"held out from `{data.get('dataset')}`"
    lines += [
        "",
        "## Run",
        "",
        f"- regenerate: `{prov['command']}`",
        f"- training data: `{data.get('dataset')}`, {fmt(data.get('num_train_examples'))} images; evaluation: "
        f"{eval_source}, split `{data.get('eval_split')}`, {fmt(data.get('num_eval_examples'))} images",
        f"- work ({report['scale']}): {json.dumps(report['work'])}",
        f"- wall time {int(minutes)} min {seconds:.0f} s; {prov['threads']} torch threads on {prov['device']}",
        f"- source: commit {prov.get('commit') or prov.get('source_sha256')}" + (" (uncommitted changes)" if prov.get("dirty") else ""),
        "- versions: " + ", ".join(f"{k} {v}" for k, v in prov["versions"].items()),
        f"- started {prov['started_at']}",
        f"- model folder: `{report['model_dir']}`" if report["model_dir"] else "- model folder: none saved",
        "",
        "## Plots",
        "",
    ]
    lines += [f"![{Path(plot).stem}]({plot})" + "\n" for plot in report["plots"]]
    if report.get("citation"):
        lines += ["## Citation", "", "```bibtex", report["citation"].strip(), "```", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- claim.png

COLOURS = {"PASS": "tab:green", "FAIL": "tab:red", "INCONCLUSIVE": "tab:orange", "SMOKE": "tab:gray"}


def plot_claim(report: dict, path: Path) -> None:
    """claim.png: per hypothesis, the estimate with its 95% interval, the bound it must clear and the paper's value."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = report["sub_verdicts"]
    fig = Figure(figsize=(7.5, 1.2 + 1.35 * len(rows)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
    for ax, row in zip(axes, rows):
        colour = COLOURS.get(row["verdict"], "black")
        points = [row["bound"]] + [v for v in (row["paper_value"], row["estimate"]) if v is not None]
        if row.get("interval"):
            points += row["interval"]
            low, high = row["interval"]
            ax.errorbar([row["estimate"]], [0], xerr=[[row["estimate"] - low], [high - row["estimate"]]], fmt="o",
                        color=colour, capsize=6, markersize=7, label=f"measured {estimate_text(row)}")
        span = (max(points) - min(points)) or max(abs(points[0]), 1e-3)
        left, right = min(points) - 0.15 * span, max(points) + 0.15 * span
        if row["higher_is_better"]:
            ax.axvspan(row["bound"], right, color="tab:green", alpha=0.08)
        else:
            ax.axvspan(left, row["bound"], color="tab:green", alpha=0.08)
        ax.axvline(row["bound"], color="black", linestyle="--", linewidth=1.1, label=f"bound {fmt(row['bound'])} ({row['kind']})")
        if row["paper_value"] is not None:
            ax.plot([row["paper_value"]], [0], marker="*", color="tab:gray", markersize=13, linestyle="none",
                    label=f"paper {fmt(row['paper_value'])}")
        ax.set_xlim(left, right)
        ax.set_yticks([])
        shown = f"{row['verdict']} by the rule (a smoke run decides nothing)" if report["verdict"] == "SMOKE" else row["verdict"]
        ax.set_title("\n".join(textwrap.wrap(f"{row['name']}: {shown}", 70)), color=colour, fontsize=9,
                     fontweight="bold")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3, fontsize=7, frameon=False)
        ax.grid(axis="x", alpha=0.3)
    title = f"{report['slug']}: {report['verdict']} ({report['scale']} scale, {len(report['seeds'])} seed(s))"
    fig.suptitle("\n".join(textwrap.wrap(title, 70)), color=COLOURS.get(report["verdict"], "black"), fontweight="bold",
                 fontsize=10)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)


def write_report(report: dict, output_dir: Path) -> dict:
    """Write claim.png, report.md and report.json (last, atomically: a report.json means a finished run)."""
    report = jsonable(report)
    plot_claim(report, output_dir / CLAIM_PLOT)
    write_text_atomic(output_dir / REPORT_MD, render_markdown(report))
    write_text_atomic(output_dir / REPORT_JSON, json.dumps(report, indent=2, allow_nan=False) + "\n")
    return report
