"""`hfcifar.training.TRAINERS` and `hfcifar train --trainer NAME`: a registered trainer's arguments become flags and the
run records which trainer trained it."""

import json

import pytest

from hfcifar.cli import UsageError, main, parse_train
from hfcifar.registry import RegistryError
from hfcifar.training import TRAINERS, CifarTrainer, CifarTrainingArguments, train_classifier, trainer_classes, trainer_name


@pytest.mark.parametrize("name", TRAINERS.names())
def test_every_registered_trainer_names_its_arguments_class(name):
    trainer_class, arguments_class = trainer_classes(name)
    assert issubclass(trainer_class, CifarTrainer) and issubclass(arguments_class, CifarTrainingArguments)
    assert trainer_name(trainer_class) == name


def test_methods_register_their_trainers_and_unknown_names_list_the_choices():
    from hfcifar.methods.reste import ReSTETrainer, ReSTETrainingArguments

    assert trainer_classes("reste") == (ReSTETrainer, ReSTETrainingArguments)
    assert {"cifar", "adversarial", "pruning", "qfx", "reste", "at-lr", "gaussian-noise"} <= set(TRAINERS.names())
    with pytest.raises(RegistryError, match="Unknown trainer 'rest'.*reste"):
        trainer_classes("rest")


def test_a_trainer_chosen_on_the_command_line_trains_and_is_recorded(cifar_source, tmp_path, capsys):
    out = tmp_path / "binary"
    command = parse_train(["binary-resnet20", "--trainer", "reste", "--log_indicators", "false", "--max-steps", "2"])
    assert command.train_options["trainer_class"].__name__ == "ReSTETrainer"
    assert command.training_arguments().log_indicators is False
    assert main(["train", "binary-resnet20", "--trainer", "reste", "--dataset", cifar_source, "--output", str(out),
                 "--max-steps", "2", "--no-progress"]) == 0
    summary = json.loads((out / "train_summary.json").read_text())
    assert (summary["trainer"], summary["trainer_name"], summary["global_step"]) == ("ReSTETrainer", "reste", 2)


def test_a_trainers_flags_are_listed_in_help_and_escape_percent_signs(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "fastnet-tiny", "--trainer", "pruning", "--help"])  # PruningTrainingArguments' help has "90%"
    assert exit_.value.code == 0
    assert "--target_sparsity" in capsys.readouterr().out
    assert main(["train", "--list-trainers"]) == 0
    listing = capsys.readouterr().out
    assert "reste" in listing and "ReSTETrainingArguments" in listing


@pytest.mark.parametrize("argv, message", [
    (["fastnet-tiny", "--trainer", "nope"], "Unknown trainer 'nope'"),
    (["ddpm-tiny", "--trainer", "reste"], "trains classifiers, but the model is in the diffusion family"),
])
def test_bad_trainer_choices_exit_2_before_any_work(argv, message, tmp_path, capsys):
    with pytest.raises(UsageError, match=message):
        parse_train(argv)
    assert main(["train", *argv, "--output", str(tmp_path / "never")]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "never").exists()


def test_a_trainers_flag_without_the_trainer_says_which_trainer_it_belongs_to(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "fastnet-tiny", "--log_indicators", "false"])
    assert exit_.value.code == 2
    assert "--log_indicators is an argument of the 'reste' trainer: add --trainer reste" in capsys.readouterr().err


def test_train_classifier_takes_a_trainer_name_or_a_class_not_both(tmp_path):
    from hfcifar.methods.reste import ReSTETrainer

    with pytest.raises(TypeError, match="not both"):
        train_classifier("binary-resnet20", trainer="reste", trainer_class=ReSTETrainer, output_dir=str(tmp_path / "x"))


def test_a_binary_resnet_names_its_trainer_and_the_run_and_card_say_so(cifar_source, tmp_path, capsys):
    """Issue 17 item 3: `hfcifar train binary-resnet20` trains with ReSTETrainer without --trainer."""
    from hfcifar.hub.cards import render_card
    from hfcifar.training import default_trainer

    assert default_trainer("binary-resnet20") == "reste" and default_trainer("fastnet-tiny") == "cifar"
    assert main(["train", "--list-models"]) == 0
    assert any(line.startswith("binary-resnet20 ") and "(trainer reste)" in line
               for line in capsys.readouterr().out.splitlines())
    out = tmp_path / "binary"
    assert main(["train", "binary-resnet20", "--dataset", cifar_source, "--output", str(out), "--max-steps", "2",
                 "--no-progress"]) == 0
    summary = json.loads((out / "train_summary.json").read_text())
    assert (summary["trainer"], summary["trainer_name"]) == ("ReSTETrainer", "reste")
    assert default_trainer(str(out)) == "reste"  # a saved binary model fine-tunes with it too
    assert "| Trainer | `ReSTETrainer` (`--trainer reste`) |" in str(render_card(out, write=False))


def test_the_default_trainer_can_be_overridden(cifar_source, tmp_path):
    summary = train_classifier("binary-resnet20", trainer="cifar", dataset=cifar_source, output_dir=str(tmp_path / "b"),
                               max_steps=1, disable_tqdm=True)
    assert (summary["trainer"], summary["trainer_name"]) == ("CifarTrainer", "cifar")
