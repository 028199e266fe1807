"""Shared fixtures: no network (HF_HUB_OFFLINE), real CIFAR-10 images when ../shared is present."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from transformers import TrainerCallback

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
MINI = Path(os.environ.get("HFCIFAR_DATASET") or REPO.parent / "shared" / "data" / "cifar10-mini")


@pytest.fixture(scope="session")
def mini_path() -> str:
    """The real cifar10-mini folder (4,660 CIFAR-10 training images); tests using it skip when it is absent."""
    if not (MINI / "plain_text").is_dir() and not any(MINI.glob("**/*.parquet")):
        pytest.skip(f"real CIFAR-10 images not found at {MINI} (set HFCIFAR_DATASET to a folder with the Hub schema)")
    return str(MINI)


def write_cifar_folder(path: Path, n: int = 120, labels=None, columns=("img", "label"), seed: int = 0, test: bool = False) -> str:
    """Write a small folder with CIFAR-10's Hub schema (`train-*.parquet`, optionally `test-*.parquet`)."""
    import datasets
    from PIL import Image

    rng = np.random.default_rng(seed)
    images = [Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(n)]
    labels = list(labels) if labels is not None else [i % 10 for i in range(n)]
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    img_col, label_col = columns
    features = datasets.Features({img_col: datasets.Image(), label_col: datasets.Value("int64") if max(labels) > 9 or min(labels) < 0 else datasets.ClassLabel(names=names)})
    ds = datasets.Dataset.from_dict({img_col: images, label_col: labels}, features=features)
    path.mkdir(parents=True, exist_ok=True)
    ds.to_parquet(str(path / "train-00000-of-00001.parquet"))
    if test:
        ds.select(range(min(40, n))).to_parquet(str(path / "test-00000-of-00001.parquet"))
    return str(path)


@pytest.fixture(scope="session")
def synthetic_path(tmp_path_factory) -> str:
    """A 120-image random dataset with the Hub schema, for tests that need no real images."""
    return write_cifar_folder(tmp_path_factory.mktemp("synthetic") / "cifar")


@pytest.fixture(scope="session")
def cifar_source(synthetic_path) -> str:
    """Real images when available, else the synthetic folder: training tests run everywhere."""
    return str(MINI) if (MINI / "plain_text").is_dir() else synthetic_path


class StopAt(TrainerCallback):
    """Stops training after optimizer step `step` (an interrupted run, for resume tests)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def python_without_hfcifar(code: str, cwd: Path, timeout: int = 180, *, also_hide: tuple[str, ...] = (),
                           threads: int | None = None) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter where `import hfcifar` fails, as on a machine with torch + transformers
    (+ diffusers) only: remote code is read from `cwd / "modules"`, nothing from `PYTHONPATH`.

    `also_hide` names further top-level modules that must not import (`"scipy"`: diffusers does not install it);
    `threads` sets `OMP_NUM_THREADS` (float32 sums differ with the thread count). The code may `del
    sys.modules["hfcifar"]` to import hfcifar after all (what a user gets once they install it).
    """
    hidden = "".join(f"sys.modules[{name!r}] = None\n" for name in ("hfcifar", *also_hide))
    prelude = f"import sys\n{hidden}# any import of a module set to None above raises ImportError\n"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(Path(cwd) / "modules")}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    env.pop("PYTHONPATH", None)
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
