"""The claim-check table (README's "Claim checks") generated from `report.json` files, never written by hand.

`hfcifar reproduce --summary [DIR …]` prints it; `--update-readme README.md` rewrites the block between
`<!-- claim-table:start -->` and `<!-- claim-table:end -->`.
"""

from __future__ import annotations

import json
from pathlib import Path

from .report import REPORT_JSON, estimate_text

START, END = "<!-- claim-table:start -->", "<!-- claim-table:end -->"


def find_reports(paths: list) -> list[dict]:
    """Every report.json under `paths` (folders searched recursively, or report files), sorted by slug."""
    reports = {}
    for path in map(Path, paths):
        files = [path] if path.is_file() else sorted(path.rglob(REPORT_JSON))
        for file in files:
            report = json.loads(file.read_text())
            if "sub_verdicts" not in report:  # a v1 report: no intervals, not comparable
                continue
            reports[(report["slug"], str(file))] = report
    return [reports[key] for key in sorted(reports)]


def _minutes(seconds: float) -> str:
    minutes, rest = divmod(float(seconds), 60)
    return f"{int(minutes)} min {rest:.0f} s"


def summary_table(reports: list[dict], slugs: list[str] | None = None) -> str:
    """A markdown table: one row per report (and a row saying so for each slug in `slugs` without one)."""
    lines = ["| slug | verdict | hypotheses: estimate ± SE [95% interval] → sub-verdict (paper value, magnitude) | "
             "scale, seeds | wall time (threads) | regenerate |", "|---|---|---|---|---|---|"]
    seen = set()
    for report in reports:
        seen.add(report["slug"])
        parts = []
        for row in report["sub_verdicts"]:
            paper = f"paper {row['paper_value']:.4g}, {row['magnitude']}" if row.get("paper_value") is not None else "no paper value"
            parts.append(f"`{row['name']}` {estimate_text(row)} → {row['verdict']} ({paper})")
        prov = report["provenance"]
        lines.append(f"| {report['slug']} | **{report['verdict']}** | {'<br>'.join(parts)} | {report['scale']}, "
                     f"{len(report['seeds'])} | {_minutes(report['wall_time_seconds'])} ({prov.get('threads')}) | "
                     f"`{prov['command']}` |")
    for slug in slugs or []:
        if slug not in seen:
            lines.append(f"| {slug} | not yet run under claim checks v2 | — | — | — | `hfcifar reproduce {slug}` |")
    return "\n".join(lines)


def update_readme(readme: str | Path, table: str) -> bool:
    """Replace the block between the claim-table markers in `readme` with `table`; True if the file changed."""
    path = Path(readme)
    text = path.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{path} has no {START} … {END} block to fill.")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{table}\n{END}{tail}"
    if new != text:
        path.write_text(new)
    return new != text
