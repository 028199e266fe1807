import json
import subprocess
import sys

import pytest

from hfcifar.cli import UsageError, main, parse_train


def test_train_then_eval_from_the_command_line(cifar_source, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "fastnet-tiny", "--dataset", cifar_source, "--output", str(out), "--max-steps", "3", "--no-progress"]) == 0
    assert "accuracy" in capsys.readouterr().out
    report = tmp_path / "eval.json"
    assert main(["eval", str(out), "--output-json", str(report)]) == 0
    results = json.loads(report.read_text())
    summary = json.loads((out / "train_summary.json").read_text())
    # same held-out split, same model, same TTA: the same accuracy as at the end of training
    assert results["num_examples"] == summary["num_eval_examples"]
    assert abs(results["accuracy"] - summary["eval_accuracy"]) < 1e-9
    assert json.loads((out / "eval_results.json").read_text()) == results


def test_refuses_to_overwrite_a_run(cifar_source, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "fastnet-tiny", "--dataset", cifar_source, "--output", str(out), "--max-steps", "1", "--no-progress"]
    assert main(args) == 0
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_unreachable_dataset_is_one_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HFCIFAR_DATASET", raising=False)
    assert main(["train", "--dataset", "uoft-cs/cifar10", "--output", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "--dataset PATH" in err and "HFCIFAR_DATASET" in err and "Traceback" not in err


def test_methods_lists_every_method_honestly(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    from hfcifar.methods import list_methods

    statuses = list_methods()
    for status in statuses:
        assert status.info.slug in out
    implemented = sum(s.implemented for s in statuses)
    assert f"{implemented} of {len(statuses)} methods implemented" in out


def test_console_script_and_module_entry_points_exist():
    result = subprocess.run([sys.executable, "-m", "hfcifar.train", "--list-models"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "fastnet" in result.stdout and "recipes:" in result.stdout


def test_train_prunes_from_the_command_line(cifar_source, tmp_path, capsys):
    from transformers import AutoModelForImageClassification

    from hfcifar.pruning import sparsity_report

    out = tmp_path / "run"
    base = ["train", "fastnet-tiny", "--dataset", cifar_source, "--output", str(out), "--max-steps", "2", "--no-progress"]
    assert main(base + ["--prune", "global", "--sparsity", "0.8", "--min-keep-fraction", "0.01"]) == 0
    assert "sparsity 80.0%" in capsys.readouterr().out
    model = AutoModelForImageClassification.from_pretrained(str(out))  # plain weights, zeros where pruned
    assert abs(sparsity_report(model)["sparsity"] - 0.8) < 1e-3
    assert json.loads((out / "train_summary.json").read_text())["pruning"]["min_keep_fraction"] == 0.01
    assert main(base + ["--overwrite", "--sparsity", "0.8"]) == 2
    assert "--prune METHOD and --sparsity S go together" in capsys.readouterr().err
    assert main(base + ["--overwrite", "--prune", "global", "--sparsity", "1.2"]) == 2
    assert "target_sparsity must be a fraction in [0, 1)" in capsys.readouterr().err


# -- `hfcifar train` parses with HfArgumentParser: every TrainingArguments flag, recipe values as defaults ----------
def test_training_arguments_flags_reach_the_trainer_arguments(tmp_path):
    command = parse_train(["fastnet-tiny", "--report_to", "tensorboard", "--gradient-accumulation-steps", "2",
                           "--save_total_limit", "3", "--bf16", "--push_to_hub", "--hub_model_id", "me/fastnet-tiny",
                           "--max-steps", "1", "--lr", "1/20", "--batch-size", "16", "--output", str(tmp_path / "r"),
                           "--no-progress", "--seed", "3", "--tta", "false", "--weight-decay", "0"])
    args = command.training_arguments()
    assert command.family.name == "classifier" and command.run.output_dir == tmp_path / "r"
    assert args.report_to == ["tensorboard"] and args.gradient_accumulation_steps == 2 and args.save_total_limit == 3
    assert args.bf16 and args.push_to_hub and args.hub_model_id == "me/fastnet-tiny"
    assert (args.max_steps, args.learning_rate, args.per_device_train_batch_size) == (1, 0.05, 16)
    assert args.disable_tqdm and args.seed == 3 and args.tta is False and args.weight_decay == 0
    # the recipe ("quick" for fastnet-tiny) fills what the command line does not set; the run defaults the rest
    assert args.optim == "sgd" and args.label_smoothing_factor == 0.2 and args.crop_padding == 2
    assert args.eval_strategy == "epoch" and args.logging_steps == 10
    # same flags in either spelling; the long TrainingArguments names of the short flags work too
    again = parse_train(["fastnet-tiny", "--gradient_accumulation_steps", "2", "--learning_rate", "0.05",
                         "--per_device_train_batch_size", "16", "--output_dir", str(tmp_path / "r")]).training_arguments()
    assert (again.gradient_accumulation_steps, again.learning_rate, again.per_device_train_batch_size) == (2, 0.05, 16)
    plain = parse_train(["fastnet-tiny", "--recipe", "one-cycle"]).training_arguments()
    assert plain.seed == 0 and plain.cutout_size == 16 and plain.tta is False and plain.num_train_epochs == 30


def test_diffusion_models_parse_their_family_arguments(tmp_path):
    command = parse_train(["ddpm-tiny-cfg", "--noise-schedule", "cosine", "--ema_decay", "0.5", "--vae", str(tmp_path),
                           "--max-steps", "2", "--gradient_accumulation_steps", "2"])
    args = command.training_arguments()
    assert command.family.name == "diffusion" and command.train_options["vae"] == str(tmp_path)
    assert (args.noise_schedule, args.ema_decay, args.max_steps, args.gradient_accumulation_steps) == ("cosine", 0.5, 2, 2)
    assert args.learning_rate == 1e-3  # ddpm-quick, the family's default recipe
    assert parse_train(["vae-tiny", "--kl_weight", "0"]).family.name == "autoencoder"


@pytest.mark.parametrize("argv, message", [
    (["fastnet-tiny", "--recipe", "ddpm"], "belongs to the diffusion family"),
    (["vae-tiny", "--recipe", "ddpm-quick"], "its recipes are: vae-quick"),
    (["fastnet-tiny", "--recipe", "no-such-recipe"], "Unknown recipe 'no-such-recipe'"),
    (["no-such-model"], "Unknown model 'no-such-model'"),
    (["fastnet-tiny", "--load_best_model_at_end", "--save_strategy", "no"], "load_best_model_at_end"),
    (["ddpm-tiny", "--noise-schedule", "exponential"], "noise_schedule"),
    (["fastnet-tiny", "--resume", "--overwrite"], "pass one"),
])
def test_argument_errors_exit_2_before_any_work(argv, message, tmp_path, capsys):
    with pytest.raises(UsageError, match=message):
        parse_train(argv)
    assert main(["train", *argv, "--output", str(tmp_path / "never")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hfcifar train: error:") and message in err and "Traceback" not in err
    assert not (tmp_path / "never").exists()


def test_argparse_errors_exit_2_and_name_the_family_of_a_flag(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "fastnet-tiny", "--noise-schedule", "cosine"])
    assert exit_.value.code == 2
    assert "--noise-schedule is an option of the diffusion family" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["train", "fastnet-tiny", "--max-steps", "many"])
    assert exit_.value.code == 2


def test_a_failure_inside_the_run_exits_1_with_its_cause(cifar_source, tmp_path, capsys, monkeypatch):
    from hfcifar.training import CifarTrainer

    def fail(self, *args, **kwargs):
        raise ValueError("the loss became NaN at step 1")  # a ValueError raised by the run is not a usage error

    monkeypatch.setattr(CifarTrainer, "train", fail)
    argv = ["train", "fastnet-tiny", "--dataset", cifar_source, "--output", str(tmp_path / "run"), "--max-steps", "1"]
    monkeypatch.delenv("HFCIFAR_DEBUG", raising=False)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "hfcifar train: error: the loss became NaN at step 1" in err and "Traceback" not in err
    monkeypatch.setenv("HFCIFAR_DEBUG", "1")
    assert main(argv + ["--overwrite"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "the loss became NaN at step 1" in err


def test_eval_checks_its_arguments_first_and_a_failing_metric_exits_1(cifar_source, tmp_path, capsys, request):
    from hfcifar import evaluation

    out = tmp_path / "run"
    assert main(["train", "fastnet-tiny", "--dataset", cifar_source, "--output", str(out), "--max-steps", "1", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--metric", "acuracy"]) == 2  # an argument error: nothing is evaluated
    assert "unknown metric(s) acuracy; available: " in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "missing")]) == 2
    assert "neither a folder nor a Hub id" in capsys.readouterr().err

    def broken(model, split, settings):
        raise ValueError("the metric's own computation failed")  # inside the run: exit 1, not a usage error

    evaluation.register_metric("test_broken", "Broken")(broken)
    request.addfinalizer(lambda: evaluation.METRICS.unregister("test_broken"))
    assert main(["eval", str(out), "--metric", "test_broken"]) == 1
    assert "hfcifar eval: error: the metric's own computation failed" in capsys.readouterr().err


def test_config_overrides_reach_the_model_and_bad_ones_exit_2(cifar_source, tmp_path, capsys):
    """`--config_overrides` (transformers' example-script convention) sets config arguments of the preset:
    CRReLU on FastNet from the command line."""
    out = tmp_path / "crrelu"
    command = parse_train(["fastnet-tiny", "--config_overrides", "hidden_act=crrelu,widths=[8,16,16]"])
    assert command.run.model_overrides == {"hidden_act": "crrelu", "widths": [8, 16, 16]}
    assert main(["train", "fastnet-tiny", "--config_overrides", "hidden_act=crrelu", "--dataset", cifar_source,
                 "--output", str(out), "--max-steps", "1", "--no-progress"]) == 0
    assert json.loads((out / "config.json").read_text())["hidden_act"] == "crrelu"
    assert json.loads((out / "train_summary.json").read_text())["model_overrides"] == {"hidden_act": "crrelu"}
    assert main(["train", "fastnet-tiny", "--config_overrides", "hidden_act", "--output", str(tmp_path / "x")]) == 2
    assert "config_overrides entries are key=value" in capsys.readouterr().err
