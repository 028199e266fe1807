"""CIFAR-10 data: loading from the Hub or a local folder, the uint8 tensor fast path, batched augmentation."""

from .augment import BatchAugmentation, cutmix, cutout, mixup, random_crop, random_flip, to_float_images, translate, tta_views
from .loading import (
    ENV_VAR,
    HUB_DATASET,
    DatasetSchemaError,
    DatasetUnavailableError,
    eval_split_name,
    load_cifar10,
    load_train_and_eval,
    resolve_source,
    validate_cifar10,
)
from .tensors import CifarTensorDataset, collate_batch, decode_images

__all__ = [
    "BatchAugmentation",
    "CifarTensorDataset",
    "DatasetSchemaError",
    "DatasetUnavailableError",
    "ENV_VAR",
    "HUB_DATASET",
    "collate_batch",
    "cutmix",
    "mixup",
    "cutout",
    "decode_images",
    "eval_split_name",
    "load_cifar10",
    "load_train_and_eval",
    "random_crop",
    "random_flip",
    "resolve_source",
    "to_float_images",
    "translate",
    "tta_views",
    "validate_cifar10",
]
