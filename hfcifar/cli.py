"""The `hfcifar` command line: `train`, `eval`, `push`, `methods`, `reproduce`.

`hfcifar train` and `accelerate launch -m hfcifar.train` share one code path (`run_train`): it finds the model's
training family (`hfcifar.training.TRAINING_FAMILIES`: classifier, diffusion, autoencoder, …), parses the flags with
`transformers.HfArgumentParser` over that family's arguments class, and calls the family's train function.

Exit status: 0 done, 2 an argument error found before the run starts, 1 a failure during the run (see `main`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import traceback
from fractions import Fraction
from pathlib import Path

EXIT_USAGE = 2
EXIT_FAILURE = 1


def _number(text: str) -> float:
    """Parse `0.03`, `8/255` and the like."""
    try:
        return float(Fraction(text))
    except (ValueError, ZeroDivisionError) as error:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from error


def _metric_option(text: str) -> tuple[str, object]:
    """Parse `KEY=VALUE` (VALUE a number such as `8/255` or `0.5`, `true`/`false`, or text)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    if value.lower() in ("true", "false"):
        return key, value.lower() == "true"
    try:
        number = Fraction(value)
    except (ValueError, ZeroDivisionError):
        return key, value
    return key, int(number) if number.denominator == 1 and "." not in value else float(number)


class UsageError(Exception):
    """A command-line argument error found before any work starts: printed without a traceback, exit status 2."""


# The short flags of `hfcifar train` that name a training argument: flag → (field, type, help).
TRAINING_ARGUMENT_ALIASES = {
    "--output": ("output_dir", str, "run folder (default runs/MODEL)"),
    "--epochs": ("num_train_epochs", _number, "training epochs (overrides the recipe)"),
    "--batch-size": ("per_device_train_batch_size", int, "per-process batch size"),
    "--lr": ("learning_rate", _number, "peak learning rate, e.g. 0.05 or 1/20"),
}


def _pruning_applies(family) -> bool:
    """Pruning (`--prune`) trains through `PruningTrainer`, whose arguments extend the family's."""
    from .pruning import PruningTrainingArguments

    return issubclass(PruningTrainingArguments, family.arguments_class)


def _add_pruning_arguments(parser: argparse.ArgumentParser) -> None:
    pruning = parser.add_argument_group("pruning", "train (or fine-tune a folder) with hfcifar.pruning.PruningTrainer")
    pruning.add_argument("--prune", default=None, metavar="METHOD",
                         help="pruning method: global (Global MP), uniform (layer-wise MP) or one a method registers (rd)")
    pruning.add_argument("--sparsity", type=_number, default=None, help="target sparsity in [0, 1), e.g. 0.9")
    pruning.add_argument("--pruning-schedule", choices=["one-shot", "gradual"], default="one-shot")
    pruning.add_argument("--pruning-start-step", type=int, default=0, help="step of the (first) pruning event")
    pruning.add_argument("--pruning-end-step", type=int, default=None, help="gradual: step of the last event")
    pruning.add_argument("--pruning-frequency", type=int, default=100, help="gradual: steps between events")
    pruning.add_argument("--min-keep-fraction", type=_number, default=0.0,
                         help="Global MP's minimum: every layer keeps at least this fraction (prevents layer collapse)")
    pruning.add_argument("--pruning-target", choices=["params", "flops"], default="params",
                         help="what --sparsity counts: weights, or multiply-accumulates removed")
    pruning.add_argument("--pruning-calibration-examples", type=int, default=None,
                         help="training images handed to the mask function (RD's distortion curves); default 128 for "
                              "--prune rd, else 0")


def train_parser(family, add_help: bool = True) -> argparse.ArgumentParser:
    """The parser of `hfcifar train` for a model of `family`: a `transformers.HfArgumentParser` over the shared run
    options (`RunArguments`), the family's arguments class (every `TrainingArguments` flag, in both spellings:
    `--gradient_accumulation_steps` / `--gradient-accumulation-steps`) and the family's own options, plus the short
    flags (`--output`, `--epochs`, `--batch-size`, `--lr`, `--no-progress`) and, for classifiers, pruning.

    Training-argument flags have no parsed default: what the command line does not set comes from the recipe.
    """
    from transformers import HfArgumentParser

    from .models import DEFAULT_MODEL
    from .training import RunArguments

    classes = [RunArguments, family.arguments_class, *([family.options_class] if family.options_class else [])]
    parser = HfArgumentParser(
        classes, prog="hfcifar train", add_help=add_help, formatter_class=argparse.HelpFormatter,
        usage="hfcifar train [MODEL] [--dataset DIR] [--output DIR] [--recipe NAME] [--max-steps N] "
              "[--time-budget-minutes M] [any TrainingArguments flag …]",
        description=f"Train a model of the {family.name} family: {family.description} (same job as "
                    f"`accelerate launch -m hfcifar.train`). Every "
                    f"{family.arguments_class.__name__} field is a flag; the recipe gives the values not set here.")
    parser.add_argument("model", nargs="?", default=DEFAULT_MODEL,
                        help=f"model preset (see `hfcifar train --list-models`) or a folder to fine-tune; default {DEFAULT_MODEL}")
    parser.add_argument("--list-models", action="store_true", help="list model presets and recipes, then exit")
    short = parser.add_argument_group("short flags", "aliases of training arguments")
    for flag, (dest, kind, text) in TRAINING_ARGUMENT_ALIASES.items():
        short.add_argument(flag, dest=dest, type=kind, help=f"{text} (= --{dest})")
    short.add_argument("--no-progress", dest="disable_tqdm", action="store_const", const=True,
                       help="no progress bars, logs only (= --disable_tqdm true)")
    if _pruning_applies(family):
        _add_pruning_arguments(parser)
    training_fields = {f.name for f in dataclasses.fields(family.arguments_class)}
    for action in parser._actions:
        if action.dest in training_fields:
            action.default = argparse.SUPPRESS  # explicit flags only: the recipe fills the rest
    return parser


def _unrecognized(arguments: list[str], family, model: str) -> str:
    """The error for flags the model's parser does not know, naming the family a flag belongs to."""
    from .training import families

    flags = [a.split("=", 1)[0] for a in arguments if a.startswith("--")]
    for other in families():
        if other.name == family.name:
            continue
        known = train_parser(other, add_help=False)._option_string_actions
        theirs = [flag for flag in flags if flag in known]
        if theirs:
            example = next(iter(other.presets()), "")
            return (f"{'/'.join(theirs)} {'is an option' if len(theirs) == 1 else 'are options'} of the {other.name} "
                    f"family ({other.description}{f', e.g. {example}' if example else ''}), but {model!r} is in the "
                    f"{family.name} family ({family.description}).")
    return f"unrecognized arguments: {' '.join(arguments)}"


def _method_trainer(args: argparse.Namespace) -> dict:
    """The `train_classifier` arguments of a method trainer chosen on the command line (today: pruning)."""
    if getattr(args, "prune", None) is None and getattr(args, "sparsity", None) is None:
        return {}
    if args.prune is None or args.sparsity is None:
        raise UsageError("--prune METHOD and --sparsity S go together, e.g. --prune global --sparsity 0.9.")
    from .pruning import PruningTrainer, PruningTrainingArguments

    return dict(trainer_class=PruningTrainer, args_class=PruningTrainingArguments, pruning_method=args.prune,
                target_sparsity=args.sparsity, pruning_schedule=args.pruning_schedule,
                pruning_start_step=args.pruning_start_step, pruning_end_step=args.pruning_end_step,
                pruning_frequency=args.pruning_frequency, min_keep_fraction=args.min_keep_fraction,
                pruning_target=args.pruning_target,
                pruning_calibration_examples=(args.pruning_calibration_examples if args.pruning_calibration_examples
                                              is not None else 128 if args.prune == "rd" else 0))


def list_models() -> int:
    from .training import default_recipe, families, recipes_of

    for family in families():
        for name in family.presets():
            print(f"{name:24s} recipe={default_recipe(name, family):12s} {family.name}")
    print("recipes:", "; ".join(f"{', '.join(recipes_of(f.name))} ({f.name})" for f in families() if recipes_of(f.name)))
    return 0


@dataclasses.dataclass
class TrainCommand:
    """`hfcifar train …` parsed and checked: the model's family, and the keyword arguments of its train function."""

    family: object
    model: str
    run: object  # the TrainingRun
    train_options: dict

    def training_arguments(self):
        """The arguments object the run will train with (built and validated again by the train function)."""
        return self.run.arguments(self.family, self.train_options.get("args_class"))[1]


def parse_train(argv: list[str]) -> TrainCommand | None:
    """Parse `hfcifar train` flags (None after --list-models); bad ones raise `UsageError` or exit 2 (argparse)."""
    from .models import DEFAULT_MODEL
    from .training import RunArguments, TrainingRun, family_of

    first, _ = train_parser(family_of(DEFAULT_MODEL), add_help=False).parse_known_args(argv)
    if first.list_models:
        list_models()
        return None
    try:
        family = family_of(first.model)
    except ValueError as error:
        raise UsageError(str(error)) from error
    parser = train_parser(family)
    namespace, unknown = parser.parse_known_args(argv)
    if unknown:
        parser.error(_unrecognized(unknown, family, namespace.model))  # exits with status 2

    values = vars(namespace)
    training_fields = {f.name for f in dataclasses.fields(family.arguments_class)}
    explicit = {key: value for key, value in values.items() if key in training_fields}
    output_dir = explicit.pop("output_dir", None)
    run_options = {f.name: values[f.name] for f in dataclasses.fields(RunArguments)}
    family_options = {f.name: values[f.name] for f in dataclasses.fields(family.options_class)
                      if values[f.name] is not None} if family.options_class else {}
    method = _method_trainer(namespace)
    classes = {key: method.pop(key) for key in ("trainer_class", "args_class") if key in method}
    try:  # every value is checked before the run: the recipe of the model's family, the arguments it builds
        run = TrainingRun.from_options(namespace.model, output_dir=output_dir, **run_options, **explicit, **method)
        run.arguments(family, classes.get("args_class"))
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from error
    options = {"output_dir": run.output_dir, **run_options, **explicit, **method, **classes, **family_options}
    return TrainCommand(family, namespace.model, run, options)


def run_train(argv: list[str]) -> int:
    """`hfcifar train [MODEL] [flags]`: find the model's training family, parse its flags, check them, train."""
    command = parse_train(argv)
    if command is None:
        return 0
    summary = command.family.train(command.model, **command.train_options)
    from accelerate import PartialState

    if PartialState().is_main_process and command.family.describe is not None:
        print(command.family.describe(summary, str(command.run.output_dir)))
    return 0


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
    from .evaluation import METRICS, evaluate_classifier, write_eval_results

    metrics, options = _eval_metrics_and_options(args)
    unknown = [name for name in args.metric or [] if name not in METRICS]
    if unknown:
        raise UsageError(f"unknown metric(s) {', '.join(unknown)}; available: {', '.join(METRICS.names())}.")
    if not Path(args.model_dir).exists() and args.model_dir.count("/") != 1:
        raise UsageError(f"{args.model_dir} is neither a folder nor a Hub id (OWNER/NAME).")
    if "robust_accuracy" in metrics:  # the attack's options, before any image is evaluated
        from .evaluation.robustness import check_attack_options

        try:
            check_attack_options(str(options.get("attack") or "pgd"), options)
        except ValueError as error:
            raise UsageError(str(error)) from error
    if (Path(args.model_dir) / "model_index.json").is_file():  # a diffusion pipeline: FID / IS of its samples
        from .evaluation.generative import evaluate_generator

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
    from .hub.push import run

    return run(args)


def run_methods(args: argparse.Namespace) -> int:
    from .methods import list_methods

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


def _positive_minutes(text: str) -> float:
    value = _number(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"the budget must be a positive number of minutes, not {text!r}")
    return value


def run_reproduce(args: argparse.Namespace) -> int:
    from .data import DatasetSchemaError, DatasetUnavailableError
    from .methods import method_info
    from .registry import RegistryError
    from .reproduce import (ClaimCheckError, claim_check_slugs, load_claim_module, plan_text, run_claim_check,
                            summary_table, update_readme)
    from .reproduce.summary import find_reports
    from .training import RunDirectoryError

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
    from .reproduce.report import estimate_text

    print(f"\n{report['slug']} ({claim.paper}), {report['scale']} scale, {len(report['seeds'])} seed(s), "
          f"{report['wall_time_seconds']:.0f} s:")
    for row in report["sub_verdicts"]:
        paper = f"paper {row['paper_value']:.4g} ({row['magnitude']})" if row["paper_value"] is not None else "no paper value"
        print(f"  {row['name']}: measured {estimate_text(row)} | PASS iff {row['rule']} | {paper} → {row['verdict']}")
    print(f"{report['verdict']}: {report['reason']}")
    print(f"report: {Path(output) / 'report.md'} (report.json, claim.png)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hfcifar", description="CIFAR-10 research methods, the Hugging Face way.")
    commands = parser.add_subparsers(dest="command", required=True)

    # `main` hands `hfcifar train …` to `run_train`, whose parser depends on the model's training family; this entry
    # only lists the command.
    commands.add_parser("train", add_help=False,
                        help="train a classifier, a diffusion UNet or an autoencoder; `hfcifar train MODEL --help` lists "
                             "its flags (same job as `accelerate launch -m hfcifar.train`)")

    evaluate = commands.add_parser("eval", help="evaluate a saved classifier, or a diffusion pipeline folder (FID/IS)")
    evaluate.add_argument("model_dir", help="folder written by `hfcifar train` (or any from_pretrained path)")
    evaluate.add_argument("--dataset", default=None, help="default: the dataset the model was trained on")
    evaluate.add_argument("--split", default="auto", help="test, validation, … (default: test if present, else validation)")
    evaluate.add_argument("--batch-size", type=int, default=512)
    evaluate.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                          help="flip test-time augmentation (default: as in training)")
    evaluate.add_argument("--metric", action="append", default=None, metavar="NAME",
                          help="a metric of hfcifar.evaluation.METRICS (repeatable; default accuracy)")
    evaluate.add_argument("--option", action="append", default=[], type=_metric_option, metavar="KEY=VALUE",
                          help="an option of the metrics (repeatable), e.g. --option sigma=0.25; numbers like 8/255 work")
    robust = evaluate.add_argument_group("robust accuracy", "any of these adds the robust_accuracy metric "
                                         "(an attack of hfcifar.attacks on the held-out images)")
    robust.add_argument("--attack", default=None, metavar="NAME",
                        help="fgsm, pgd, pgdl2 or cw (default when another flag of this group is given: pgd)")
    robust.add_argument("--eps", type=_number, default=None, metavar="X",
                        help="perturbation budget, e.g. 8/255 (L∞) or 0.5 (L2); default: the attack's own")
    robust.add_argument("--steps", type=int, default=None, metavar="N", help="attack iterations (PGD, CW)")
    robust.add_argument("--alpha", type=_number, default=None, metavar="X", help="PGD step size, e.g. 2/255")
    robust.add_argument("--num-examples", type=int, default=None, metavar="N",
                        help="attack only the first N images of the split")
    evaluate.add_argument("--output-json", default=None, help="also write the results here")
    evaluate.set_defaults(func=run_eval)

    from .hub.push import build_parser as build_push_parser

    push = commands.add_parser("push", help="render the model card and upload a run folder to the Hub (= push_to_hub.py)")
    build_push_parser(push)
    push.set_defaults(func=run_push)

    methods = commands.add_parser("methods", help="list the catalog's methods and what exists for each")
    methods.set_defaults(func=run_methods)

    reproduce = commands.add_parser("reproduce", help="run a paper's claim check and write a PASS/FAIL report")
    reproduce.add_argument("slug", nargs="?", default=None, help="the claim check to run (see --list)")
    reproduce.add_argument("--list", action="store_true", help="list the claim checks, then exit")
    reproduce.add_argument("--dataset", default=None,
                           help="Hub id or local folder with CIFAR-10's schema; default $HFCIFAR_DATASET, then uoft-cs/cifar10")
    reproduce.add_argument("--eval-dataset", default=None,
                           help="evaluate on this data (its test split, else its train split); training then uses "
                                "the whole train split of --dataset")
    reproduce.add_argument("--output", default=None, help="report folder (default reproduce/SLUG)")
    reproduce.add_argument("--scale", choices=("smoke", "cpu", "paper"), default=None,
                           help="the fixed work to run: smoke (seconds), cpu (default; ~15 min on 2 cores), paper (GPU)")
    reproduce.add_argument("--seeds", type=int, default=None, help="training seeds (default: the scale's)")
    reproduce.add_argument("--plan", action="store_true", help="print the work and the time estimate, train nothing")
    reproduce.add_argument("--budget-minutes", type=_positive_minutes, default=None,
                           help="budget mode: the same work under a deadline; cut short or >1.2x over → INCONCLUSIVE")
    reproduce.add_argument("--guard-minutes", type=float, default=None,
                           help="time guard of a fixed-work run (default 3x the scale's estimate; 0: none)")
    reproduce.add_argument("--seed", type=int, default=0, help="the first seed (seeds are SEED, SEED+1, …)")
    reproduce.add_argument("--overwrite", action="store_true", help="replace a previous report in --output")
    reproduce.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    reproduce.add_argument("--summary", nargs="*", default=None, metavar="DIR",
                           help="print the claim table from the report.json files under DIR (default reproduce/)")
    reproduce.add_argument("--update-readme", default=None, metavar="README",
                           help="with --summary: write the table between README's claim-table markers")
    reproduce.set_defaults(func=run_reproduce)
    return parser


def _report(command: str, error: BaseException) -> None:
    """Print a failure's cause on one line; the traceback too when HFCIFAR_DEBUG is set (to anything but 0)."""
    if os.environ.get("HFCIFAR_DEBUG", "0") not in ("", "0"):
        traceback.print_exception(error, file=sys.stderr)
    print(f"hfcifar {command}: error: {error}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run one `hfcifar` command; returns its exit status.

    0: done. 2: an argument error — argparse's, a bad value or name found before any work starts (an unknown model or
    recipe, a recipe of another training family, training arguments that do not validate, an occupied --output
    without --overwrite/--resume, a --dataset that cannot be read). 1: a failure once the run has started; its cause is
    printed on one line (`HFCIFAR_DEBUG=1` adds the traceback).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    from .data import DatasetSchemaError, DatasetUnavailableError
    from .training import RunDirectoryError

    # found by the first step of a run, before any training: the fix is a flag (--output/--overwrite/--resume, --dataset)
    before_the_run = (DatasetSchemaError, DatasetUnavailableError, RunDirectoryError)
    command = argv[0] if argv else "?"
    try:
        if command == "train":
            return run_train(argv[1:])
        args = build_parser().parse_args(argv)
        return args.func(args)  # each command raises UsageError for what it checks before its work starts
    except (UsageError, *before_the_run) as error:
        print(f"hfcifar {command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:
        _report(command, error)
        return EXIT_FAILURE
    finally:
        from accelerate import PartialState

        # Without this, rank 0 of a gloo job sometimes aborts at exit ("terminate called without an active exception").
        PartialState().destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
