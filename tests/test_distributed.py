"""The example script under `accelerate launch` with two gloo CPU processes (the scale-out path)."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_example_runs_on_two_processes_in_sync(cifar_source, tmp_path):
    out = tmp_path / "two"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    # Without CUDA, --multi_gpu makes Accelerate start N CPU processes on gloo (--cpu would start one).
    command = [
        # `python -m accelerate.commands.launch` is the `accelerate launch` console script, found whether or not
        # the virtual environment's bin/ is on PATH.
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
        str(REPO / "examples" / "train_classifier.py"),
        "--model", "fastnet-tiny", "--dataset", cifar_source, "--output", str(out), "--max-steps", "4", "--no-progress",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["num_processes"] == 2
    assert summary["parameters_in_sync"] is True
    assert summary["global_step"] == 4
    assert "2 process(es)" in result.stdout


def test_method_options_run_on_two_processes(cifar_source, tmp_path):
    """Issue 16: a registered optimizer (EXAdam) and activation (CRReLU, through --config_overrides) train under
    `accelerate launch` with two gloo processes, in sync."""
    out = tmp_path / "exadam-crrelu"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0", "-m", "hfcifar.train",
        "fastnet-tiny", "--optim", "exadam", "--learning_rate", "1e-3", "--config_overrides", "hidden_act=crrelu",
        "--dataset", cifar_source, "--output", str(out), "--max-steps", "3", "--no-progress",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "train_summary.json").read_text())
    assert (summary["num_processes"], summary["parameters_in_sync"], summary["global_step"]) == (2, True, 3)
    assert summary["training_arguments"]["optim"] == "exadam"
    assert json.loads((out / "config.json").read_text())["hidden_act"] == "crrelu"
