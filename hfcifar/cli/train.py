"""`hfcifar train` (and `accelerate launch -m hfcifar.train`): find the model's training family
(`hfcifar.training.TRAINING_FAMILIES`: classifier, diffusion, autoencoder, …), parse the flags with
`transformers.HfArgumentParser` over that family's arguments class, check them before any work, and train."""

from __future__ import annotations

import argparse
import dataclasses
import re

from .common import UsageError, _number

# The short flags of `hfcifar train` that name a training argument: flag → (field, type, help).
TRAINING_ARGUMENT_ALIASES = {
    "--output": ("output_dir", str, "run folder (default runs/MODEL)"),
    "--epochs": ("num_train_epochs", _number, "training epochs (overrides the recipe)"),
    "--batch-size": ("per_device_train_batch_size", int, "per-process batch size"),
    "--lr": ("learning_rate", _number, "peak learning rate, e.g. 0.05 or 1/20"),
}


def _pruning_applies(family) -> bool:
    """Pruning (`--prune`) trains through `PruningTrainer`, whose arguments extend the family's."""
    from ..pruning import PruningTrainingArguments

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


def _trainer_choice(family, name: str | None):
    """`(trainer_class, arguments_class)` of `--trainer NAME` for `family` (`(None, None)` without the flag)."""
    if name is None:
        return None, None
    from ..training import trainer_classes

    try:
        trainer_class, arguments_class = trainer_classes(name)
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from error
    if family.trainer_class is None or not issubclass(trainer_class, family.trainer_class) \
            or not issubclass(arguments_class, family.arguments_class):
        raise UsageError(f"--trainer {name} ({trainer_class.__name__}) trains classifiers, but the model is in the "
                         f"{family.name} family ({family.description}); drop --trainer or pick a classifier.")
    return trainer_class, arguments_class


def _default_trainer(family, model: str) -> str | None:
    """The trainer a classifier names (`hfcifar.training.default_trainer`: ReSTE's for binary ResNets), or `None`
    for `CifarTrainer` and for the other families."""
    from ..training import CLASSIFIER, default_trainer

    name = default_trainer(model) if family is CLASSIFIER else "cifar"
    return None if name == "cifar" else name


def list_trainers() -> int:
    from ..training import TRAINERS, trainer_classes

    for name in TRAINERS.names():
        trainer_class, arguments_class = trainer_classes(name)
        summary = (trainer_class.__doc__ or "").strip().split("\n")[0]
        print(f"{name:26s} {trainer_class.__name__} ({arguments_class.__name__}) — {summary}")
    return 0


def train_parser(family, add_help: bool = True, arguments_class=None) -> argparse.ArgumentParser:
    """The parser of `hfcifar train` for a model of `family`: a `transformers.HfArgumentParser` over the shared run
    options (`RunArguments`), the family's arguments class (every `TrainingArguments` flag, in both spellings:
    `--gradient_accumulation_steps` / `--gradient-accumulation-steps`) and the family's own options, plus the short
    flags (`--output`, `--epochs`, `--batch-size`, `--lr`, `--no-progress`) and, for classifiers, pruning.
    `arguments_class` replaces the family's (a `--trainer`'s arguments, a subclass of the family's).

    Training-argument flags have no parsed default: what the command line does not set comes from the recipe.
    """
    from transformers import HfArgumentParser

    from ..models import DEFAULT_MODEL
    from ..training import RunArguments

    chosen_trainer = arguments_class is not None  # --trainer NAME: its arguments replace the --prune shortcuts
    arguments_class = arguments_class or family.arguments_class
    classes = [RunArguments, arguments_class, *([family.options_class] if family.options_class else [])]
    parser = HfArgumentParser(
        classes, prog="hfcifar train", add_help=add_help, formatter_class=argparse.HelpFormatter,
        usage="hfcifar train [MODEL] [--dataset DIR] [--output DIR] [--recipe NAME] [--max-steps N] "
              "[--time-budget-minutes M] [any TrainingArguments flag …]",
        description=f"Train a model of the {family.name} family: {family.description} (same job as "
                    f"`accelerate launch -m hfcifar.train`). Every "
                    f"{arguments_class.__name__} field is a flag; the recipe gives the values not set here.")
    parser.add_argument("model", nargs="?", default=DEFAULT_MODEL,
                        help=f"model preset (see `hfcifar train --list-models`) or a folder to fine-tune; default {DEFAULT_MODEL}")
    parser.add_argument("--list-models", action="store_true", help="list model presets and recipes, then exit")
    parser.add_argument("--trainer", default=None, metavar="NAME",
                        help="train with this registered trainer (see --list-trainers), e.g. reste; its own "
                             "arguments become flags")
    parser.add_argument("--list-trainers", action="store_true", help="list the registered trainers, then exit")
    short = parser.add_argument_group("short flags", "aliases of training arguments")
    for flag, (dest, kind, text) in TRAINING_ARGUMENT_ALIASES.items():
        short.add_argument(flag, dest=dest, type=kind, help=f"{text} (= --{dest})")
    short.add_argument("--no-progress", dest="disable_tqdm", action="store_const", const=True,
                       help="no progress bars, logs only (= --disable_tqdm true)")
    if not chosen_trainer and _pruning_applies(family):
        _add_pruning_arguments(parser)
    training_fields = {f.name for f in dataclasses.fields(arguments_class)}
    for action in parser._actions:
        if action.dest in training_fields:
            action.default = argparse.SUPPRESS  # explicit flags only: the recipe fills the rest
        if action.help and "%" in action.help:  # field help is plain text ("90% of"); argparse would %-format it
            action.help = re.sub(r"%(?!\()", "%%", action.help)
    return parser


def _unrecognized(arguments: list[str], family, model: str) -> str:
    """The error for flags the model's parser does not know, naming the family a flag belongs to."""
    from ..training import families

    flags = [a.split("=", 1)[0] for a in arguments if a.startswith("--")]
    from ..training import TRAINERS, trainer_classes

    for name in TRAINERS.names():  # a flag of a registered trainer's arguments, given without --trainer
        fields = {f.name for f in dataclasses.fields(trainer_classes(name)[1])}
        theirs = [flag for flag in flags if flag[2:].replace("-", "_") in fields]
        if theirs:
            return (f"{'/'.join(theirs)} {'is an argument' if len(theirs) == 1 else 'are arguments'} of the "
                    f"{name!r} trainer: add --trainer {name} (or drop the flag).")
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
    from ..pruning import PruningTrainer, PruningTrainingArguments

    return dict(trainer_class=PruningTrainer, args_class=PruningTrainingArguments, pruning_method=args.prune,
                target_sparsity=args.sparsity, pruning_schedule=args.pruning_schedule,
                pruning_start_step=args.pruning_start_step, pruning_end_step=args.pruning_end_step,
                pruning_frequency=args.pruning_frequency, min_keep_fraction=args.min_keep_fraction,
                pruning_target=args.pruning_target,
                pruning_calibration_examples=(args.pruning_calibration_examples if args.pruning_calibration_examples
                                              is not None else 128 if args.prune == "rd" else 0))


def list_models() -> int:
    from ..training import default_recipe, families, recipes_of

    for family in families():
        for name in family.presets():
            trainer = _default_trainer(family, name)
            print(f"{name:24s} recipe={default_recipe(name, family):12s} {family.name}"
                  + (f" (trainer {trainer})" if trainer else ""))
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
    from ..models import DEFAULT_MODEL
    from ..training import RunArguments, TrainingRun, family_of

    first, _ = train_parser(family_of(DEFAULT_MODEL), add_help=False).parse_known_args(argv)
    if first.list_models:
        list_models()
        return None
    if first.list_trainers:
        list_trainers()
        return None
    try:
        family = family_of(first.model)
    except ValueError as error:
        raise UsageError(str(error)) from error
    trainer_class, arguments_class = _trainer_choice(family, first.trainer or _default_trainer(family, first.model))
    parser = train_parser(family, arguments_class=arguments_class)
    namespace, unknown = parser.parse_known_args(argv)
    if unknown:
        parser.error(_unrecognized(unknown, family, namespace.model))  # exits with status 2

    values = vars(namespace)
    training_fields = {f.name for f in dataclasses.fields(arguments_class or family.arguments_class)}
    explicit = {key: value for key, value in values.items() if key in training_fields}
    output_dir = explicit.pop("output_dir", None)
    run_options = {f.name: values[f.name] for f in dataclasses.fields(RunArguments)}
    family_options = {f.name: values[f.name] for f in dataclasses.fields(family.options_class)
                      if values[f.name] is not None} if family.options_class else {}
    method = _method_trainer(namespace)
    if trainer_class is not None:  # (its parser has no --prune shortcuts: `--trainer pruning` takes the fields)
        method = {"trainer_class": trainer_class, "args_class": arguments_class}
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
