"""The benchmark scripts must keep running (their figures are read by people, not asserted here)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def load_bench(name: str):
    """A bench script imported as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_throughput_bench_runs(cifar_source):
    command = [sys.executable, str(REPO / "bench" / "train_throughput.py"), "--model", "fastnet-tiny", "--dataset",
               cifar_source, "--batch-size", "16", "--steps", "2", "--warmup", "1", "--rounds", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ratio hfcifar/plain = " in result.stdout and "ratio naive/plain = " in result.stdout


def test_compression_bench_runs():
    result = subprocess.run([sys.executable, str(REPO / "bench" / "compression.py"), "--quick"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ("pruned-90", "pruned-98", "qfx-8", "qfx-4"):
        assert f"size ratio {name}/dense = " in result.stdout and f"latency ratio {name}/dense = " in result.stdout
    assert "packed sparse (values + bit mask)" in result.stdout


def test_diffusion_sampling_bench_runs():
    result = subprocess.run([sys.executable, str(REPO / "bench" / "diffusion_sampling.py"), "--quick"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "overhead ratio pipeline/bare = " in result.stdout and "wall time per NFE = " in result.stdout
    assert "max |pipeline − bare| = 0.00e+00" in result.stdout


def test_quick_recipe_bench_runs_and_pools_saved_runs(cifar_source, tmp_path, capsys):
    bench = str(REPO / "bench" / "quick_recipe.py")
    command = [sys.executable, bench, "--dataset", cifar_source, "--minutes", "0.03", "--seeds", "1", "--holdout", "40",
               "--model", "fastnet-tiny", "--parallel", "--output-json", str(tmp_path / "run.json")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ratio hfcifar/plain = " in result.stdout and "difference hfcifar − plain: " in result.stdout
    # two saved runs pool into one 2-seed summary, with the same per-seed difference listed twice
    saved = json.loads((tmp_path / "run.json").read_text())
    difference = 100 * (np.mean(saved["runs"]["hfcifar"][0]["correct"]) - np.mean(saved["runs"]["plain"][0]["correct"]))
    combine = load_bench("quick_recipe").combine  # in this process: no second interpreter start-up
    combine([str(tmp_path / "run.json")] * 2)
    pooled = capsys.readouterr().out
    assert "2 seeds × 40 images" in pooled
    assert f"per seed, points: {difference:+.1f}, {difference:+.1f})" in pooled
    saved["minutes"] = 5.0
    (tmp_path / "other.json").write_text(json.dumps(saved))
    with pytest.raises(SystemExit, match="only runs on the same held-out images and minutes pool"):
        combine([str(tmp_path / "run.json"), str(tmp_path / "other.json")])


def test_tune_quick_recipe_screens_configurations_against_the_first(cifar_source):
    command = [sys.executable, str(REPO / "bench" / "tune_quick_recipe.py"), "--dataset", cifar_source, "--minutes",
               "0.03", "--seeds", "1", "--holdout", "40", "--validation", "40", "--model", "fastnet-tiny",
               "--config", "baseline", "{}", "--config", "wd", '{"weight_decay": 0.001}']
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "validation accuracy (1 seeds × 40 images" in result.stdout and "vs baseline: " in result.stdout
