"""The `hfcifar` command line: `train`, `eval`, `push`, `methods`, `reproduce`.

`hfcifar train` and `accelerate launch -m hfcifar.train` share one code path (`run_train`): it finds the model's
training family (`hfcifar.training.TRAINING_FAMILIES`: classifier, diffusion, autoencoder, …), parses the flags with
`transformers.HfArgumentParser` over that family's arguments class, and calls the family's train function.

Exit status: 0 done, 2 an argument error found before the run starts, 1 a failure during the run (see `main`).
"""


from __future__ import annotations

import argparse
import sys

from .commands import run_eval, run_methods, run_push, run_reproduce
from .common import EXIT_FAILURE, EXIT_USAGE, UsageError, _metric_option, _number, _positive_minutes, _report
from .train import TrainCommand, list_models, parse_train, run_train, train_parser

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

    from ..hub.push import build_parser as build_push_parser

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


def main(argv: list[str] | None = None) -> int:
    """Run one `hfcifar` command; returns its exit status.

    0: done. 2: an argument error — argparse's, a bad value or name found before any work starts (an unknown model or
    recipe, a recipe of another training family, training arguments that do not validate, an occupied --output
    without --overwrite/--resume, a --dataset that cannot be read). 1: a failure once the run has started; its cause is
    printed on one line (`HFCIFAR_DEBUG=1` adds the traceback).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    from ..data import DatasetSchemaError, DatasetUnavailableError
    from ..training import RunDirectoryError

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


__all__ = ["EXIT_FAILURE", "EXIT_USAGE", "TrainCommand", "UsageError", "build_parser", "list_models", "main",
           "parse_train", "run_eval", "run_methods", "run_push", "run_reproduce", "run_train", "train_parser"]
