"""The `hfcifar` command line: `train`, `eval`, `push`, `methods`, `reproduce`.

`hfcifar train` and `accelerate launch -m hfcifar.train` share one code path (`train_classifier`).
"""

from __future__ import annotations

import argparse
import json
import sys
from fractions import Fraction
from pathlib import Path

EXIT_USAGE = 2


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


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    from .models import DEFAULT_MODEL

    parser.add_argument("model", nargs="?", default=DEFAULT_MODEL,
                        help=f"model preset (see `hfcifar train --list-models`) or a folder to fine-tune; default {DEFAULT_MODEL}")
    parser.add_argument("--dataset", default=None,
                        help="Hub id or local folder with CIFAR-10's schema; default $HFCIFAR_DATASET, then uoft-cs/cifar10")
    parser.add_argument("--eval-dataset", default=None,
                        help="evaluate on this data instead (its test split, else its train split); "
                             "training then uses the whole train split of --dataset")
    parser.add_argument("--output", default=None, help="run folder (default runs/MODEL)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=float, default=None, help="training epochs (overrides the recipe)")
    length.add_argument("--max-steps", type=int, default=None, help="training steps (overrides --epochs)")
    parser.add_argument("--time-budget-minutes", type=float, default=None, help="fit the learning-rate schedule into M minutes of training, then stop cleanly and save")
    parser.add_argument("--batch-size", type=int, default=None, help="per-process batch size")
    parser.add_argument("--lr", type=_number, default=None, help="peak learning rate")
    parser.add_argument("--recipe", default=None, help="training recipe (see --list-models); default: the model's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--validation-size", type=_number, default=None,
                        help="fraction held out for validation when the dataset has no test split (default 0.1)")
    run = parser.add_mutually_exclusive_group()
    run.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --output")
    run.add_argument("--overwrite", action="store_true", help="replace a previous run in --output")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    parser.add_argument("--list-models", action="store_true", help="list model presets and recipes, then exit")
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
    diffusion = parser.add_argument_group("diffusion", "for UNet presets (ddpm-small, ddpm-small-cfg, …; see --list-models) "
                                                       "and pipeline folders: hfcifar.diffusion.DiffusionTrainer")
    diffusion.add_argument("--noise-schedule", default=None, help="β schedule: linear (default), cosine, scaled-linear, sigmoid")
    diffusion.add_argument("--prediction-type", default=None, help="epsilon (default), v_prediction or sample")
    diffusion.add_argument("--label-dropout", type=_number, default=None,
                           help="class-conditional UNets: null-class probability for classifier-free guidance (default 0.1)")
    diffusion.add_argument("--ema-decay", type=_number, default=None, help="EMA decay of the saved weights (default: the recipe's)")
    diffusion.add_argument("--sample-every-steps", type=int, default=None, help="save a sample grid every N steps (default: at the end)")
    diffusion.add_argument("--vae", default=None, metavar="DIR",
                           help="latent diffusion: train on the latents of this AutoencoderKL (e.g. from `hfcifar train vae-small`)")


def _is_diffusion_model(model: str) -> bool:
    from .diffusion.unets import is_unet_preset

    return is_unet_preset(model) or (Path(model) / "model_index.json").is_file()


def _is_autoencoder(model: str) -> bool:
    from .diffusion.autoencoder import VAE_PRESETS

    return model in VAE_PRESETS


def _diffusion_options(args: argparse.Namespace) -> dict:
    options = {"noise_schedule": args.noise_schedule, "prediction_type": args.prediction_type,
               "label_dropout": args.label_dropout, "ema_decay": args.ema_decay,
               "sample_every_steps": args.sample_every_steps, "vae": args.vae}
    return {k: v for k, v in options.items() if v is not None}


def _method_trainer(args: argparse.Namespace) -> dict:
    """The `train_classifier` arguments of a method trainer chosen on the command line (today: pruning)."""
    if args.prune is None and args.sparsity is None:
        return {}
    if args.prune is None or args.sparsity is None:
        raise ValueError("--prune METHOD and --sparsity S go together, e.g. --prune global --sparsity 0.9.")
    from .pruning import PruningTrainer, PruningTrainingArguments

    return dict(trainer_class=PruningTrainer, args_class=PruningTrainingArguments, pruning_method=args.prune,
                target_sparsity=args.sparsity, pruning_schedule=args.pruning_schedule,
                pruning_start_step=args.pruning_start_step, pruning_end_step=args.pruning_end_step,
                pruning_frequency=args.pruning_frequency, min_keep_fraction=args.min_keep_fraction,
                pruning_target=args.pruning_target,
                pruning_calibration_examples=(args.pruning_calibration_examples if args.pruning_calibration_examples
                                              is not None else 128 if args.prune == "rd" else 0))


def run_train(args: argparse.Namespace) -> int:
    from .models import list_models
    from .training import RECIPES, default_recipe, train_classifier

    from .diffusion.autoencoder import VAE_PRESETS
    from .diffusion.unets import list_unets

    if args.list_models:
        for name in list_models():
            print(f"{name:24s} recipe={default_recipe(name)}")
        for name in list_unets():
            print(f"{name:24s} recipe={default_recipe(name)}  (diffusion UNet)")
        for name in sorted(VAE_PRESETS):
            print(f"{name:24s} recipe=ddpm-quick  (AutoencoderKL for latent diffusion)")
        print("recipes:", ", ".join(sorted(RECIPES)))
        return 0
    output = args.output or f"runs/{Path(args.model).name}"
    if _is_diffusion_model(args.model):
        return _run_train_diffusion(args, output)
    if _is_autoencoder(args.model):
        return _run_train_vae(args, output)
    if _diffusion_options(args):
        raise ValueError(f"--noise-schedule/--prediction-type/--label-dropout/--ema-decay/--sample-every-steps/--vae are for "
                         f"diffusion UNets (e.g. ddpm-small); {args.model!r} is a classifier.")
    summary = train_classifier(
        model=args.model,
        dataset=args.dataset,
        output_dir=output,
        recipe=args.recipe,
        epochs=args.epochs,
        max_steps=args.max_steps,
        time_budget_minutes=args.time_budget_minutes,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        resume=args.resume,
        overwrite=args.overwrite,
        validation_size=args.validation_size,
        eval_dataset=args.eval_dataset,
        disable_tqdm=args.no_progress,
        **_method_trainer(args),
    )
    from accelerate import PartialState

    if PartialState().is_main_process:
        pruned = f", sparsity {summary['pruning']['sparsity']:.1%}" if "pruning" in summary else ""
        print(
            f"{summary['model']}: {summary['eval_split']} accuracy {summary['eval_accuracy']:.4f} on "
            f"{summary['num_eval_examples']} images after {summary['global_step']} steps{pruned} "
            f"({summary['train_runtime_seconds']:.0f} s, {summary['num_processes']} process(es)) → {output}"
        )
    return 0


def _run_train_diffusion(args: argparse.Namespace, output: str) -> int:
    from accelerate import PartialState

    from .diffusion import train_diffusion

    if args.prune is not None or args.sparsity is not None:
        raise ValueError("--prune/--sparsity apply to classifiers, not to diffusion UNets.")
    summary = train_diffusion(
        model=args.model, dataset=args.dataset, output_dir=output, recipe=args.recipe, epochs=args.epochs,
        max_steps=args.max_steps, time_budget_minutes=args.time_budget_minutes, batch_size=args.batch_size,
        learning_rate=args.lr, seed=args.seed, resume=args.resume, overwrite=args.overwrite,
        validation_size=args.validation_size, eval_dataset=args.eval_dataset, disable_tqdm=args.no_progress,
        **_diffusion_options(args),
    )
    if PartialState().is_main_process:
        print(f"{summary['model']}: {summary['eval_split']} denoising loss {summary['eval_loss']:.4f} after "
              f"{summary['global_step']} steps ({summary['train_runtime_seconds']:.0f} s, {summary['num_processes']} "
              f"process(es)) → {output} ({summary['pipeline']}; samples in {output}/samples/)")
    return 0


def _run_train_vae(args: argparse.Namespace, output: str) -> int:
    from accelerate import PartialState

    from .diffusion import train_vae

    summary = train_vae(model=args.model, dataset=args.dataset, output_dir=output, recipe=args.recipe or "ddpm-quick",
                        epochs=args.epochs, max_steps=args.max_steps, time_budget_minutes=args.time_budget_minutes,
                        batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed, resume=args.resume,
                        overwrite=args.overwrite, disable_tqdm=args.no_progress)
    if PartialState().is_main_process:
        print(f"{summary['model']}: {summary['eval_split']} reconstruction MSE {summary['eval_reconstruction_mse']:.4f} "
              f"(images in [-1, 1]), latents {summary['latent_shape'][0]}×{summary['latent_shape'][1]}² scaled by "
              f"{summary['scaling_factor']:.3f} → {output} (use: hfcifar train ddpm-small --vae {output})")
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
    from .evaluation import evaluate_classifier, write_eval_results

    metrics, options = _eval_metrics_and_options(args)
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
    import traceback

    from .data import DatasetSchemaError, DatasetUnavailableError
    from .methods import method_info
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
        raise ValueError("name a claim check (`hfcifar reproduce SLUG`) or pass --list; `hfcifar reproduce --list` shows them.")
    module = load_claim_module(args.slug)  # unknown slug / no claim check: a clear error before any work
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
        # the errors `main` reports as usage errors, raised inside the run: bad data, an occupied folder, bad values
        user_error = isinstance(error.__cause__, (DatasetSchemaError, DatasetUnavailableError, RunDirectoryError, ValueError))
        if not user_error:
            traceback.print_exception(error.__cause__ or error, file=sys.stderr)
        print(f"hfcifar reproduce: error: {error}", file=sys.stderr)
        return EXIT_USAGE if user_error else 1
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

    train = commands.add_parser("train", help="train a classifier (same job as `accelerate launch -m hfcifar.train`)")
    add_train_arguments(train)
    train.set_defaults(func=run_train)

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

    methods = commands.add_parser("methods", help="list the 46 methods and what exists for each")
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .data import DatasetSchemaError, DatasetUnavailableError
    from .training import RunDirectoryError

    try:
        return args.func(args)
    except (DatasetSchemaError, DatasetUnavailableError, RunDirectoryError, ValueError) as error:
        print(f"hfcifar {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        from accelerate import PartialState

        # Without this, rank 0 of a gloo job sometimes aborts at exit ("terminate called without an active exception").
        PartialState().destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
