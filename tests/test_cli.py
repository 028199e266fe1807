import json
import subprocess
import sys

from hfcifar.cli import main


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


def test_methods_lists_all_46_honestly(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    from hfcifar.methods import list_methods

    statuses = list_methods()
    assert len(statuses) == 46
    for status in statuses:
        assert status.info.slug in out
    implemented = sum(s.implemented for s in statuses)
    assert f"{implemented} of 46 methods implemented" in out


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
