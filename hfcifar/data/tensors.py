"""The training fast path: images decoded once into one uint8 tensor, served a whole batch at a time."""

from __future__ import annotations

import numpy as np
import torch
from datasets import Dataset
from tqdm.auto import tqdm

from .loading import IMAGE_COLUMN, label_array, validate_cifar10


def decode_images(dataset: Dataset, batch_size: int = 1000, progress: bool = True) -> torch.Tensor:
    """Decode the `img` column once into a uint8 tensor of shape (N, 3, 32, 32) (RGB, any source mode)."""
    chunks = []
    images = dataset.select_columns([IMAGE_COLUMN])
    bar = tqdm(total=len(dataset), desc="Decoding images", unit="img", disable=not progress or len(dataset) < 5000)
    for start in range(0, len(dataset), batch_size):
        batch = images[start : start + batch_size][IMAGE_COLUMN]
        arrays = []
        for image in batch:
            if image.mode != "RGB":
                image = image.convert("RGB")
            if image.size != (32, 32):
                raise ValueError(f"CIFAR-10 images are 32×32; found one of size {image.size}.")
            arrays.append(np.asarray(image, dtype=np.uint8))
        chunks.append(torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous())
        bar.update(len(batch))
    bar.close()
    return torch.cat(chunks)


class CifarTensorDataset(torch.utils.data.Dataset):
    """CIFAR images as one uint8 tensor (N, 3, 32, 32) plus int64 labels.

    `__getitems__` gathers a whole batch with one indexing op, so a `DataLoader` (and so `Trainer`, with
    Accelerate's sharding across processes) never touches single examples. Move it to the training device
    with `.to(device)` to keep the whole dataset there, as airbench does.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be a uint8 tensor (N, 3, H, W); got {images.dtype} {tuple(images.shape)}.")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"labels must have shape ({images.shape[0]},); got {tuple(labels.shape)}.")
        self.images = images
        self.labels = labels.long()

    @classmethod
    def from_hf(cls, dataset: Dataset, split: str = "train", progress: bool = True) -> "CifarTensorDataset":
        """Validate a Hub-schema split and decode it once."""
        validate_cifar10(dataset, split)
        labels = torch.from_numpy(label_array(dataset))
        return cls(decode_images(dataset, progress=progress), labels)

    def to(self, device) -> "CifarTensorDataset":
        self.images, self.labels = self.images.to(device), self.labels.to(device)
        return self

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index) -> dict:
        return {"pixel_values": self.images[index], "labels": self.labels[index]}

    def __getitems__(self, indices: list[int]) -> dict:
        index = torch.as_tensor(indices, dtype=torch.long, device=self.images.device)  # also an empty list of indices
        return {"pixel_values": self.images[index], "labels": self.labels[index]}


def collate_batch(batch) -> dict:
    """Collate for `CifarTensorDataset`: a batch from `__getitems__` is already stacked."""
    if isinstance(batch, dict):
        return batch
    return {key: torch.stack([example[key] for example in batch]) for key in batch[0]}
