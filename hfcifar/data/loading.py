"""Load CIFAR-10 from the Hub or a local folder with the Hub schema, validated, with a held-out split."""

from __future__ import annotations

import os
from pathlib import Path

import datasets
import numpy as np
from datasets import ClassLabel, DatasetDict

HUB_DATASET = "uoft-cs/cifar10"
ENV_VAR = "HFCIFAR_DATASET"
NUM_CLASSES = 10
IMAGE_COLUMN = "img"
LABEL_COLUMN = "label"


class DatasetSchemaError(ValueError):
    """The dataset does not have CIFAR-10's schema (`img` images, `label` in 0–9)."""


class DatasetUnavailableError(RuntimeError):
    """The dataset could not be loaded (Hub unreachable or offline, or a missing folder)."""


def resolve_source(source: str | os.PathLike | None = None) -> str:
    """The dataset to load: `source`, else `$HFCIFAR_DATASET`, else the Hub's `uoft-cs/cifar10`."""
    if source is None or str(source) == "":
        source = os.environ.get(ENV_VAR) or HUB_DATASET
    return str(source)


def _unavailable(source: str, error: Exception) -> DatasetUnavailableError:
    fixes = (
        f"pass `--dataset PATH` on the command line (`load_cifar10('PATH')` in Python), or set the environment "
        f"variable {ENV_VAR}=PATH, with PATH a folder of CIFAR-10 in the Hub schema (columns `img`, `label`)"
    )
    if isinstance(error, FileNotFoundError):
        return DatasetUnavailableError(f"No dataset folder at {source!r}. To train on a local copy, {fixes}.")
    return DatasetUnavailableError(
        f"Could not load the CIFAR-10 dataset {source!r} ({type(error).__name__}: {error}). "
        f"If the Hugging Face Hub is offline or unreachable, {fixes}."
    )


def _load_raw(source: str) -> DatasetDict:
    path = Path(source).expanduser()
    # A Hub id is `owner/name`; anything that looks like a path must exist locally.
    looks_like_path = source.startswith((".", "/", "~")) or source.count("/") > 1
    if looks_like_path and not path.exists():
        raise _unavailable(source, FileNotFoundError(f"no such folder: {path}"))
    try:
        loaded = datasets.load_dataset(str(path) if path.exists() else source)
    except DatasetSchemaError:
        raise
    except Exception as error:  # datasets raises many types for "cannot reach / not found"
        raise _unavailable(source, error) from error
    if not isinstance(loaded, DatasetDict):
        loaded = DatasetDict({"train": loaded})
    return loaded


def label_array(dataset: datasets.Dataset) -> np.ndarray:
    """The `label` column as an int64 numpy array, without decoding any image."""
    return np.asarray(dataset.select_columns([LABEL_COLUMN]).with_format("numpy")[:][LABEL_COLUMN], dtype=np.int64)


def validate_cifar10(dataset: datasets.Dataset, split: str = "train") -> None:
    """Raise `DatasetSchemaError` unless `dataset` has an `img` image column and a `label` column in 0–9."""
    missing = [c for c in (IMAGE_COLUMN, LABEL_COLUMN) if c not in dataset.column_names]
    if missing:
        raise DatasetSchemaError(
            f"The {split!r} split lacks the column(s) {missing}; hfcifar expects CIFAR-10's Hub schema "
            f"(`{IMAGE_COLUMN}`: image, `{LABEL_COLUMN}`: class id 0–9). Found columns {dataset.column_names}. "
            "Rename yours with `dataset.rename_column(old, new)`."
        )
    feature = dataset.features[LABEL_COLUMN]
    if isinstance(feature, ClassLabel) and feature.num_classes != NUM_CLASSES:
        raise DatasetSchemaError(
            f"The {split!r} split's `label` column has {feature.num_classes} classes; CIFAR-10 has {NUM_CLASSES}."
        )
    if len(dataset) == 0:
        raise DatasetSchemaError(f"The {split!r} split is empty.")
    labels = label_array(dataset)
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= NUM_CLASSES:
        raise DatasetSchemaError(
            f"The {split!r} split has labels in [{low}, {high}]; CIFAR-10 labels must lie in [0, {NUM_CLASSES - 1}]."
        )


def load_cifar10(
    source: str | os.PathLike | None = None,
    validation_size: float | int | None = None,
    seed: int = 0,
    require_train: bool = True,
) -> DatasetDict:
    """Load CIFAR-10 as a `DatasetDict` with the Hub schema (`img`, `label`).

    Args:
        source: a Hub dataset id (default `uoft-cs/cifar10`), a local folder with the same schema (for example
            `../shared/data/cifar10-mini`), or `None` to read `$HFCIFAR_DATASET` and fall back to the Hub.
        validation_size: fraction (or count) of `train` held out as a stratified `validation` split. `None` holds
            out 10% when the source has no `test` split and nothing when it has one.
        seed: seed of the stratified split, so the same images are held out every time.
        require_train: `False` for evaluation data: a source with only a `test` split (as users often publish
            evaluation sets) is returned as it is, nothing carved.

    Returns:
        A `DatasetDict` with `train`, plus `validation` when carved, plus `test` when the source has one.
        [`eval_split_name`] tells which split evaluation should use.
    """
    source = resolve_source(source)
    raw = _load_raw(source)
    if "train" not in raw and require_train:
        raise DatasetSchemaError(f"The dataset {source!r} has no `train` split (splits: {list(raw)}); training needs "
                                 "one (an evaluation-only dataset goes to --eval-dataset or `hfcifar eval --dataset`).")
    for name, split in raw.items():
        validate_cifar10(split, name)
    if "train" not in raw:  # evaluation data only: use its splits whole
        return DatasetDict(dict(raw))
    if validation_size is None:
        validation_size = 0.0 if "test" in raw else 0.1
    out = DatasetDict()
    train = raw["train"]
    if validation_size:
        if not isinstance(train.features[LABEL_COLUMN], ClassLabel):
            train = train.cast_column(LABEL_COLUMN, ClassLabel(num_classes=NUM_CLASSES))
        parts = train.train_test_split(test_size=validation_size, seed=seed, stratify_by_column=LABEL_COLUMN)
        out["train"], out["validation"] = parts["train"], parts["test"]
    else:
        out["train"] = train
    for name in raw:
        if name != "train":
            out[name] = raw[name]
    return out


def eval_split_name(dataset: DatasetDict, split: str | None = None) -> str:
    """The split to evaluate on: `split` if given, else `test` when present, else `validation`."""
    if split in (None, "auto"):
        for candidate in ("test", "validation"):
            if candidate in dataset:
                return candidate
        raise DatasetSchemaError(
            f"No held-out split to evaluate on (splits: {list(dataset)}); load with validation_size > 0."
        )
    if split not in dataset:
        raise DatasetSchemaError(f"No split {split!r} in the dataset; available: {list(dataset)}.")
    return split


def _same_source(a: str, b: str) -> bool:
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    if pa.exists() and pb.exists():
        return pa.resolve() == pb.resolve()
    return a == b


def load_train_and_eval(
    dataset: str | os.PathLike | None = None,
    eval_dataset: str | os.PathLike | None = None,
    validation_size: float | int | None = None,
    seed: int = 0,
) -> tuple[datasets.Dataset, datasets.Dataset, dict]:
    """The training split and the split to evaluate on, in the Hub schema, plus a description of both.

    Args:
        dataset: the training data (Hub id, local folder, or `None` for `$HFCIFAR_DATASET` / `uoft-cs/cifar10`).
        eval_dataset: separate evaluation data. When given, training uses the *whole* `train` split of `dataset`
            (nothing is carved) and evaluation uses `eval_dataset`'s `test` split if it has one, else its whole
            `train` split. When `None`, [`load_cifar10`] decides: the `test` split of `dataset`, else a stratified
            `validation` split carved from its `train` split.
        validation_size, seed: the carved split (see [`load_cifar10`]); only without `eval_dataset`.

    Returns:
        `(train_split, eval_split, info)` with `info` = `{"dataset", "eval_dataset", "eval_split",
        "num_train_examples", "num_eval_examples"}` (`eval_dataset` is `None` when the held-out split comes from
        `dataset` itself).
    """
    source = resolve_source(dataset)
    if eval_dataset is None or str(eval_dataset) == "":
        data = load_cifar10(source, validation_size=validation_size, seed=seed)
        split = eval_split_name(data)
        train, held_out, eval_source = data["train"], data[split], None
    else:
        if validation_size:
            raise ValueError(
                "validation_size carves a held-out split from the training data; with a separate eval_dataset "
                "nothing is carved (training uses the whole train split). Pass one or the other."
            )
        eval_source = str(eval_dataset)
        train = load_cifar10(source, validation_size=0)["train"]
        evaluation = load_cifar10(eval_source, validation_size=0, require_train=False)
        split = "test" if "test" in evaluation else "train"
        if split not in evaluation:
            raise DatasetSchemaError(f"eval_dataset {eval_source!r} has neither a `test` nor a `train` split "
                                     f"(splits: {list(evaluation)}).")
        if split == "train" and _same_source(source, eval_source):
            raise ValueError(
                f"eval_dataset {eval_source!r} is the training dataset and has no `test` split: evaluation would "
                "run on the training images. Omit eval_dataset to hold out a validation split instead."
            )
        held_out = evaluation[split]
    info = {
        "dataset": source,
        "eval_dataset": eval_source,
        "eval_split": split,
        "num_train_examples": len(train),
        "num_eval_examples": len(held_out),
    }
    return train, held_out, info
