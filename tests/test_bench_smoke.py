"""The benchmark scripts must keep running (their figures are read by people, not asserted here)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


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


def test_quick_recipe_bench_runs(cifar_source):
    command = [sys.executable, str(REPO / "bench" / "quick_recipe.py"), "--dataset", cifar_source, "--minutes", "0.03",
               "--seeds", "1", "--holdout", "40", "--model", "fastnet-tiny", "--parallel"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ratio hfcifar/plain = " in result.stdout and "difference hfcifar − plain: " in result.stdout
