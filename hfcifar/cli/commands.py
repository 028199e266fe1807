"""`hfcifar eval`, `hfcifar push`, `hfcifar methods` and `hfcifar reproduce`: each checks its arguments before any work
(raising `UsageError`, exit 2) and lets a failure inside its run propagate (exit 1)."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

from .common import EXIT_FAILURE, EXIT_USAGE, UsageError

def _eval_metrics_and_options(args: argparse.Namespace) -> tuple[list[str], dict]:
    """The metrics and options of `hfcifar eval`: `--attack/--eps/--steps/--alpha/--num-examples` select robust
    accuracy (hfcifar/evaluation/robustness.py) and set its options, over any `--option` of the same name."""
    options = dict(args.option)
    metrics = list(args.metric or ["accuracy"])
    robust = {key: value for key, value in (("attack", args.attack), ("eps", args.eps), ("steps", args.steps),
                                            ("alpha", args.alpha), ("num_examples", args.num_examples))
              if value is not None}
    if robust:
        options.update(robust)
        if "robust_accuracy" not in metrics:
            metrics.append("robust_accuracy")
    return metrics, options


def run_eval(args: argparse.Namespace) -> int:
    from ..evaluation import METRICS, evaluate_classifier, write_eval_results

    metrics, options = _eval_metrics_and_options(args)
    unknown = [name for name in args.metric or [] if name not in METRICS]
    if unknown:
        raise UsageError(f"unknown metric(s) {', '.join(unknown)}; available: {', '.join(METRICS.names())}.")
    if not Path(args.model_dir).exists() and args.model_dir.count("/") != 1:
        raise UsageError(f"{args.model_dir} is neither a folder nor a Hub id (OWNER/NAME).")
    if "robust_accuracy" in metrics:  # the attack's options, before any image is evaluated
        from ..evaluation.robustness import check_attack_options

        try:
            check_attack_options(str(options.get("attack") or "pgd"), options)
        except ValueError as error:
            raise UsageError(str(error)) from error
    if (Path(args.model_dir) / "model_index.json").is_file():  # a diffusion pipeline: FID / IS of its samples
        from ..evaluation.generative import evaluate_generator

        results = evaluate_generator(args.model_dir, dataset=args.dataset, split=args.split, batch_size=args.batch_size,
                                     metrics=args.metric or ("fid", "inception_score"), **options)
    else:
        results = evaluate_classifier(args.model_dir, dataset=args.dataset, split=args.split, batch_size=args.batch_size,
                                      tta=args.tta, metrics=metrics, **options)
    text = json.dumps(results, indent=2, ensure_ascii=False)
    print(text)
    if args.output_json:
        target = Path(args.output_json)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text + "\n")
    if Path(args.model_dir).is_dir():
        write_eval_results(args.model_dir, results)  # the model card's model-index is built from this file
    return 0


def run_push(args: argparse.Namespace) -> int:
    from ..hub.push import run

    return run(args)


def run_methods(args: argparse.Namespace) -> int:
    from ..methods import list_methods

    statuses = list_methods()
    for status in statuses:
        print(f"{status.info.number:2d}  {status.info.slug:34s} {status.summary:34s} {status.info.title[:70]}")
    done = sum(s.implemented for s in statuses)
    print(f"\n{done} of {len(statuses)} methods implemented; {sum(s.has_claim_check for s in statuses)} with a claim check.")
    foundation = [s for s in list_methods(include_foundation=True) if s.info.number == 0]
    if foundation:
        print("\nfoundation checks (hfcifar's own defaults, not papers of METHODS.md):")
        for status in foundation:
            state = "claim check available" if status.has_claim_check else "no claim check yet"
            print(f"    {status.info.slug:34s} {state:34s} {status.info.title[:70]}")
    return 0


def run_reproduce(args: argparse.Namespace) -> int:
    from ..data import DatasetSchemaError, DatasetUnavailableError
    from ..methods import method_info
    from ..registry import RegistryError
    from ..reproduce import (ClaimCheckError, claim_check_slugs, load_claim_module, plan_text, run_claim_check,
                            summary_table, update_readme)
    from ..reproduce.summary import find_reports
    from ..training import RunDirectoryError

    if args.list:
        slugs = claim_check_slugs()
        for slug in slugs:
            info = method_info(slug)
            try:
                claim = load_claim_module(slug).CLAIM
                cpu = claim.scales["cpu"]
                minutes = f"~{cpu.minutes:g} min" if cpu.minutes is not None else "?"
                text = f"[{claim.kind}; cpu: {cpu.seeds} seed(s), {minutes}] {claim.claim}"
            except Exception as error:  # a broken claim.py must not hide the others
                text = f"(claim.py does not load: {type(error).__name__}: {error})"
            kind = "foundation" if info.family == "foundation" else f"#{info.number}"
            print(f"{slug:34s} {kind:10s} {text}")
        print(f"\n{len(slugs)} claim check(s). `hfcifar reproduce SLUG --plan` shows the work; "
              "`hfcifar reproduce SLUG --dataset PATH` runs it.")
        return 0
    if args.summary is not None:
        table = summary_table(find_reports(args.summary or ["reproduce"]), slugs=claim_check_slugs())
        if args.update_readme:
            changed = update_readme(args.update_readme, table)
            print(f"{args.update_readme}: {'updated' if changed else 'already up to date'}")
        else:
            print(table)
        return 0
    if not args.slug:
        raise UsageError("name a claim check (`hfcifar reproduce SLUG`) or pass --list; `hfcifar reproduce --list` shows them.")
    try:
        module = load_claim_module(args.slug)  # unknown slug / no claim check: a clear error before any work
    except RegistryError as error:
        raise UsageError(str(error)) from error
    if args.plan:
        print(plan_text(args.slug, [args.scale] if args.scale else None, seeds=args.seeds, module=module))
        return 0
    output = args.output or f"reproduce/{args.slug}"
    claim = module.CLAIM
    scale = args.scale or "cpu"
    print(plan_text(args.slug, [scale], seeds=args.seeds, module=module))
    print(f"\nseed {args.seed}, output {output}" + (f", budget {args.budget_minutes:g} min" if args.budget_minutes else ""))
    try:
        report = run_claim_check(
            args.slug,
            dataset=args.dataset,
            eval_dataset=args.eval_dataset,
            output_dir=output,
            scale=scale,
            seeds=args.seeds,
            seed=args.seed,
            budget_minutes=args.budget_minutes,
            guard_minutes=args.guard_minutes,
            overwrite=args.overwrite,
            progress=not args.no_progress,
            module=module,
        )
    except ClaimCheckError as error:
        # found by the run's first step, before any work (fix with --dataset/--output/--overwrite): usage errors;
        # anything else (a ValueError included) failed inside the run: exit 1
        user_error = isinstance(error.__cause__, (DatasetSchemaError, DatasetUnavailableError, RunDirectoryError))
        if not user_error:  # a crash of the check's code: show where
            traceback.print_exception(error.__cause__ or error, file=sys.stderr)
        print(f"hfcifar reproduce: error: {error}", file=sys.stderr)
        return EXIT_USAGE if user_error else EXIT_FAILURE
    from ..reproduce.report import estimate_text

    print(f"\n{report['slug']} ({claim.paper}), {report['scale']} scale, {len(report['seeds'])} seed(s), "
          f"{report['wall_time_seconds']:.0f} s:")
    for row in report["sub_verdicts"]:
        paper = f"paper {row['paper_value']:.4g} ({row['magnitude']})" if row["paper_value"] is not None else "no paper value"
        print(f"  {row['name']}: measured {estimate_text(row)} | PASS iff {row['rule']} | {paper} → {row['verdict']}")
    print(f"{report['verdict']}: {report['reason']}")
    print(f"report: {Path(output) / 'report.md'} (report.json, claim.png)")
    return 0
