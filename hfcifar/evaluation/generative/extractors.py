"""Feature extractors for FID/IS (`ClassifierFeatures`, `InceptionFeatures` and its weights file,
`get_feature_extractor`), running one over images (`extract_features`), and the cached statistics of the reference
images (`reference_statistics`).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import datasets
import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoModelForImageClassification, PreTrainedModel

from ...data import CifarTensorDataset
from .fid import FeatureStatistics

IMAGE_SHAPE = (3, 32, 32)
INCEPTION_WEIGHTS_ENV = "HFCIFAR_INCEPTION_WEIGHTS"
#: The file name pytorch-fid downloads (and torch.hub caches) its port of the TF FID Inception weights under.
FID_INCEPTION_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"


# ------------------------------------------------------------------------------------------------------ the images


def _as_images(images: Any, what: str) -> torch.Tensor:
    """Images as a CPU tensor N×3×32×32, uint8 or float in [0, 1] (validated; converted batch by batch later).

    Accepts tensors or arrays N×3×32×32 or N×32×32×3 (a pipeline's `output_type="np"`), a list of PIL images, a
    Hub-schema `datasets.Dataset` (`img`, `label`) or a `CifarTensorDataset`.
    """
    if isinstance(images, datasets.Dataset):
        images = CifarTensorDataset.from_hf(images, progress=False).images
    elif isinstance(images, CifarTensorDataset):
        images = images.images
    elif isinstance(images, (list, tuple)) and images and hasattr(images[0], "convert"):
        images = np.stack([np.asarray(image.convert("RGB"), dtype=np.uint8) for image in images])
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"{what} images must be a tensor/array (N, 3, 32, 32), a list of PIL images or a Hub-schema "
                         f"datasets.Dataset; got {type(images).__name__}.")
    images = images.detach().cpu()
    if images.dim() == 4 and images.shape[1] != 3 and images.shape[-1] == 3:
        images = images.permute(0, 3, 1, 2)
    if images.dim() != 4 or tuple(images.shape[1:]) != IMAGE_SHAPE:
        raise ValueError(f"{what} images must have shape (N, 3, 32, 32) (or (N, 32, 32, 3)); got {tuple(images.shape)}.")
    if images.dtype == torch.uint8:
        return images.contiguous()
    if not images.is_floating_point():
        raise ValueError(f"{what} images must be uint8 in [0, 255] or float in [0, 1]; got {images.dtype}.")
    if images.numel():
        low, high = float(images.min()), float(images.max())
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError(f"{what} images contain NaN or inf.")
        if low < -1e-4 or high > 1 + 1e-4:
            hint = " (images in the model's [-1, 1] space: map them with (x + 1) / 2)" if low >= -1 - 1e-4 else ""
            raise ValueError(f"float {what} images must lie in [0, 1]; got values in [{low:.3g}, {high:.3g}]{hint}.")
    return images.float().clamp(0, 1).contiguous()


def _to_float01(batch: torch.Tensor) -> torch.Tensor:
    return batch.float().div(255) if batch.dtype == torch.uint8 else batch.float()


# ------------------------------------------------------------------------------------------- the feature extractors


@runtime_checkable
class FeatureExtractor(Protocol):
    """What `compute_generative_metrics` needs from a feature extractor.

    `name` goes into every result (and into the reference-statistics cache key, with an optional `fingerprint` of
    the weights); `feature_dim` is D; calling it on a float [0, 1] batch N×3×32×32 returns `{"features": N×D,
    "probs": N×C class probabilities, or None when the extractor has no classifier (then IS is not reported)}`.
    """

    name: str
    feature_dim: int

    def __call__(self, images: torch.Tensor) -> dict: ...


class ClassifierFeatures:
    """Penultimate pooled features and softmax probabilities of an hfcifar CIFAR-10 classifier.

    The offline feature space: `model.base_model(...)`'s `pooler_output` (the features the classification head
    reads) and the softmax of the model's logits. FID/IS measured with it rank generators of CIFAR-10 images by
    how a CIFAR-10 classifier sees them; they are not comparable to numbers measured with Inception-v3.

    Args:
        model_or_path (`str`, `os.PathLike` or `PreTrainedModel`): a folder saved by `hfcifar train`, a Hub id, or a
            loaded `…ForImageClassification` (put in eval mode). A folder whose config has FT-ClipAct thresholds is
            clipped, as `hfcifar eval` measures it.
        layer (`str`, *optional*, defaults to `"pooler"`): `"pooler"` (the backbone's pooled features) or
            `"logits"` (the logits as features).
        device (`str` or `torch.device`, *optional*): defaults to the loaded model's device, and to CUDA when a
            path is given and CUDA is available.
    """

    def __init__(self, model_or_path: str | os.PathLike | PreTrainedModel, layer: str = "pooler", device=None):
        if layer not in ("pooler", "logits"):
            raise ValueError(f"layer must be 'pooler' or 'logits'; got {layer!r}.")
        if isinstance(model_or_path, PreTrainedModel):
            model, source = model_or_path, model_or_path.config.name_or_path or "in memory"
        else:  # importing any hfcifar module ran `hfcifar/__init__`, which registers the classifiers' Auto classes
            source = str(model_or_path)
            model = AutoModelForImageClassification.from_pretrained(source)
            if getattr(model.config, "clipped_activations", None):
                from ...faults.clipping import clip_activations

                model = clip_activations(model, model.config.clipped_activations, inplace=True)
            device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = (model.to(device) if device is not None else model).eval()
        self.device = next(self.model.parameters()).device
        self.layer = layer
        kind = self.model.config.model_type.removeprefix("hfcifar-")
        self.name = f"hfcifar classifier {kind} ({source})" + ("" if layer == "pooler" else f" [{layer}]")
        self.feature_dim = int(self(torch.zeros(1, *IMAGE_SHAPE))["features"].shape[1])

    @property
    def fingerprint(self) -> str:
        """A hash of the weights: the cache key of reference statistics changes when the classifier does."""
        digest = hashlib.sha256(self.layer.encode())
        for key, tensor in sorted(self.model.state_dict().items()):
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()[:16]

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> dict:
        pooled = []

        def keep_pooled(module, inputs, output) -> None:  # returns None: the output goes on to the head unchanged
            pooled.append(output.pooler_output if hasattr(output, "pooler_output") else output[1])

        # One forward pass serves both outputs: the hook keeps the backbone's pooled features on the way to the
        # head, whatever the head does with them (dropout, scaling).
        hook = self.model.base_model.register_forward_hook(keep_pooled)
        try:
            logits = self.model(pixel_values=images.to(self.device, torch.float32)).logits.float()
        finally:
            hook.remove()
        features = pooled[0].flatten(1).float() if self.layer == "pooler" else logits
        return {"features": features, "probs": logits.softmax(dim=-1)}


def _inception_weights(weights_path: str | os.PathLike | None) -> Path:
    if weights_path is not None:
        return Path(weights_path)
    if os.environ.get(INCEPTION_WEIGHTS_ENV):
        return Path(os.environ[INCEPTION_WEIGHTS_ENV])
    return Path(torch.hub.get_dir()) / "checkpoints" / FID_INCEPTION_WEIGHTS_FILE


class InceptionFeatures:
    """Inception-v3 pool3 features (2048-d) and 1008-way class probabilities, as papers measure FID and IS.

    The network is `pytorch-fid`'s port of the TensorFlow Inception graph of the FID paper (TTUR) and of the
    Inception Score code, so numbers are comparable to published ones (up to the resize and the number of
    samples). Images are resized to 299×299 bilinearly and scaled to [-1, 1] inside the network. The Inception
    Score uses the softmax over all 1008 logits, as the original TensorFlow code does.

    Nothing is downloaded: it needs the optional package `pytorch-fid` (which brings `torchvision`) and the
    weights file `pt_inception-2015-12-05-6726825d.pth` at `weights_path`, at `$HFCIFAR_INCEPTION_WEIGHTS`, or in
    the torch hub cache (`$TORCH_HOME/hub/checkpoints/`, where pytorch-fid itself saves it). Without them it
    raises an `ImportError` naming what is missing; `ClassifierFeatures` is the offline alternative.

    Args:
        weights_path (`str` or `os.PathLike`, *optional*): the weights file.
        device (`str` or `torch.device`, *optional*): defaults to CUDA when available.
    """

    name = "inception-v3 (pytorch-fid)"
    feature_dim = 2048

    def __init__(self, weights_path: str | os.PathLike | None = None, device=None):
        weights = _inception_weights(weights_path)
        missing = []
        try:
            from pytorch_fid import inception as fid_inception
        except ImportError as error:
            fid_inception = None
            missing.append(f"the package pytorch-fid ({error}; `pip install pytorch-fid`, which needs torchvision)")
        if not weights.is_file():
            missing.append(f"the weights file {weights} (download {FID_INCEPTION_WEIGHTS_FILE} from pytorch-fid's "
                           f"releases and point ${INCEPTION_WEIGHTS_ENV} at it, or put it in the torch hub cache)")
        if missing:
            raise ImportError("InceptionFeatures needs " + " and ".join(missing) + ". Offline, measure with an hfcifar "
                              "classifier instead: ClassifierFeatures(model_dir) (or extractor=MODEL_DIR), whose "
                              "numbers compare models with each other but not with published FIDs.")
        state_dict = torch.load(weights, map_location="cpu", weights_only=True)
        # pytorch-fid reads its weights through its module's `load_state_dict_from_url` (a download unless the file
        # sits in the torch hub cache); serve it the local file instead, for the duration of the build only.
        original = fid_inception.load_state_dict_from_url
        fid_inception.load_state_dict_from_url = lambda *args, **kwargs: state_dict
        try:
            network = fid_inception.InceptionV3([fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]],
                                                resize_input=True, normalize_input=True)
        finally:
            fid_inception.load_state_dict_from_url = original
        # pytorch-fid's wrapper stops at pool3; the classifier of the same network gives the IS logits
        fc = torch.nn.Linear(self.feature_dim, state_dict["fc.weight"].shape[0])
        fc.load_state_dict({"weight": state_dict["fc.weight"], "bias": state_dict["fc.bias"]})
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.network, self.fc, self.device = network.to(device).eval(), fc.to(device).eval(), torch.device(device)
        self.fingerprint = f"{weights.name}:{weights.stat().st_size}"

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> dict:
        features = self.network(images.to(self.device, torch.float32))[0].flatten(1)
        return {"features": features, "probs": self.fc(features).softmax(dim=-1)}


def get_feature_extractor(spec: Any) -> FeatureExtractor:
    """A feature extractor from `"inception"`, a classifier folder or Hub id, a classifier, or an extractor.

    Example:

    ```python
    >>> extractor = get_feature_extractor("runs/fastnet")   # ClassifierFeatures("runs/fastnet")
    >>> extractor = get_feature_extractor("inception")      # InceptionFeatures(), needs pytorch-fid + weights
    ```
    """
    if spec is None:
        raise ValueError("Name a feature extractor: 'inception' (Inception-v3, needs pytorch-fid and its weights) or "
                         "a classifier folder/Hub id (offline; e.g. a run of `hfcifar train fastnet`).")
    if isinstance(spec, str) and spec.lower() in ("inception", "inception-v3", "inception_v3"):
        return InceptionFeatures()
    if isinstance(spec, (str, os.PathLike, PreTrainedModel)):
        return ClassifierFeatures(spec)
    if isinstance(spec, FeatureExtractor):
        return spec
    raise ValueError(f"Cannot make a feature extractor from {type(spec).__name__}: give 'inception', a classifier "
                     "folder or Hub id, a PreTrainedModel, or an object with `name`, `feature_dim` and `__call__`.")


def extract_features(
    images: Any, extractor: FeatureExtractor, batch_size: int = 250, progress: bool = True, what: str = "generated"
) -> tuple[np.ndarray, np.ndarray | None]:
    """Run the extractor over the images in batches: (N×D float64 features, N×C float64 probabilities or None)."""
    images = _as_images(images, what)
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1; got {batch_size}.")
    features, probs = [], []
    starts = range(0, images.shape[0], batch_size)
    for start in tqdm(starts, desc=f"Features of {what} images", unit="batch", disable=not progress or len(starts) < 2):
        out = extractor(_to_float01(images[start:start + batch_size]))
        batch = out["features"]
        if tuple(batch.shape) != (min(batch_size, images.shape[0] - start), extractor.feature_dim):
            raise ValueError(f"{extractor.name} returned features of shape {tuple(batch.shape)}; expected "
                             f"({min(batch_size, images.shape[0] - start)}, {extractor.feature_dim}).")
        features.append(batch.detach().cpu().double().numpy())
        if out.get("probs") is not None:
            probs.append(out["probs"].detach().cpu().double().numpy())
    dim = extractor.feature_dim
    features = np.concatenate(features) if features else np.zeros((0, dim))
    return features, (np.concatenate(probs) if probs else None)


# ------------------------------------------------------------------------------------------- reference statistics


def _data_fingerprint(reference: Any) -> str:
    """A dataset's `datasets` fingerprint, else a hash of the image bytes."""
    if isinstance(reference, datasets.Dataset):
        return reference._fingerprint
    images = _as_images(reference, "reference")
    return hashlib.sha256(images.numpy().tobytes()).hexdigest()[:16]


def reference_statistics(
    reference: Any,
    extractor: Any,
    batch_size: int = 250,
    cache_dir: str | os.PathLike | None = None,
    splits: int = 10,
    progress: bool = True,
) -> FeatureStatistics:
    """The feature statistics of the reference (real) images, cached as `.npz` when `cache_dir` is given.

    The cache file is keyed by the extractor (name and weights fingerprint) and the data (the `datasets`
    fingerprint of a Hub-schema split, else a hash of the images), so changing either recomputes it.
    """
    extractor = get_feature_extractor(extractor)
    path = None
    if cache_dir is not None:
        key = hashlib.sha256(f"{extractor.name}|{getattr(extractor, 'fingerprint', '')}|"
                             f"{_data_fingerprint(reference)}|{splits}".encode()).hexdigest()[:16]
        slug = re.sub(r"[^A-Za-z0-9]+", "-", extractor.name).strip("-")[:60]
        path = Path(cache_dir) / f"reference-{slug}-{key}.npz"
        if path.is_file():
            return FeatureStatistics.load(path)
    features, probs = extract_features(reference, extractor, batch_size, progress, what="reference")
    if features.shape[0] < 2:
        raise ValueError(f"FID needs at least 2 reference images; got {features.shape[0]}.")
    stats = FeatureStatistics.from_features(features, probs, extractor.name, splits)
    if path is not None:
        stats.save(path)
    return stats



__all__ = [
    "FID_INCEPTION_WEIGHTS_FILE",
    "IMAGE_SHAPE",
    "INCEPTION_WEIGHTS_ENV",
    "ClassifierFeatures",
    "FeatureExtractor",
    "InceptionFeatures",
    "extract_features",
    "get_feature_extractor",
    "reference_statistics",
]
