"""Generative metrics: Fréchet Inception Distance (FID) and Inception Score (IS), on any feature extractor.

    from hfcifar.evaluation.generative import compute_generative_metrics
    metrics = compute_generative_metrics(samples, reference_split, extractor="runs/fastnet")   # offline default
    metrics = compute_generative_metrics(samples, reference_split, extractor="inception")      # the papers' numbers

`compute_generative_metrics` is the one entry point: it embeds the generated and the reference images with a
*feature extractor*, fits a Gaussian to each set of features and returns their Fréchet distance (Heusel et al.
2017, eq. 6), and the Inception Score of the generated images' class probabilities (Salimans et al. 2016, §4).

A feature extractor is any object with `name`, `feature_dim` and `__call__(images) -> {"features", "probs"}`
(`FeatureExtractor`). Two ship here:

- `InceptionFeatures`: the pool3 features (2048-d) and 1008-way logits of the TensorFlow Inception-v3 ported by
  `pytorch-fid`: the network papers report FID/IS with. It needs the optional `pytorch-fid` package (and its
  `torchvision`) and the weights file `pt_inception-2015-12-05-6726825d.pth` on disk: the Hub and the web may be
  unreachable, so nothing is downloaded here.
- `ClassifierFeatures`: the penultimate pooled features and softmax of any hfcifar CIFAR-10 classifier. It works
  offline; its numbers compare models *under the same classifier* but are not comparable to published FIDs.

Every result names its extractor (`feature_extractor`), and reference statistics are cached per extractor and
dataset (`reference_statistics`), so numbers measured in different feature spaces are never mixed.

The registered metrics `fid` and `inception_score` (`METRICS`, the model card's model-index types `fid` and
`inception_score`) take an image generator — a `DiffusionPipeline` — in place of the classifier: they sample
images (`sample_images`) and call `compute_generative_metrics`.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import os
import re
import warnings
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import datasets
import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoModelForImageClassification, PreTrainedModel

from ..data import CifarTensorDataset
from . import EvalSettings, register_metric

IMAGE_SHAPE = (3, 32, 32)
INCEPTION_WEIGHTS_ENV = "HFCIFAR_INCEPTION_WEIGHTS"
#: The file name pytorch-fid downloads (and torch.hub caches) its port of the TF FID Inception weights under.
FID_INCEPTION_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
#: Options of the registered metrics themselves; any other option that the pipeline's `__call__` takes
#: (`num_inference_steps`, `eta`, `guidance_scale`, …) is passed on to the pipeline.
GENERATIVE_OPTIONS = ("feature_extractor", "num_samples", "sample_batch_size", "seed", "splits", "cache_dir")


# ------------------------------------------------------------------------------------------------ the two formulas


def feature_statistics(features: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of N×D features, in float64 (the Gaussian fit of FID, Heusel et al. 2017, §3).

    The covariance is the unbiased estimate (divides by N − 1), as in the reference implementations. With fewer
    samples than dimensions (N ≤ D) it is rank-deficient; FID is still defined but strongly biased, so a warning
    says so.
    """
    features = features.detach().cpu().numpy() if isinstance(features, torch.Tensor) else np.asarray(features)
    if features.ndim != 2:
        raise ValueError(f"features must be a 2-D array (N, D); got shape {features.shape}.")
    n, d = features.shape
    if n < 2:
        raise ValueError(f"A covariance needs at least 2 samples; got {n}.")
    features = features.astype(np.float64)
    if not np.isfinite(features).all():
        raise ValueError("features contain NaN or inf; check the images and the feature extractor.")
    if n <= d:
        warnings.warn(f"Only {n} samples for {d}-dimensional features: the covariance is rank-deficient and FID is "
                      f"strongly biased upwards; use more than {d} samples (papers use 50,000 with Inception's 2048).",
                      stacklevel=2)
    return features.mean(axis=0), np.cov(features, rowvar=False).reshape(d, d)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (eigenvalues below 0 are rounding)."""
    eigenvalues, eigenvectors = np.linalg.eigh(matrix)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T


def _trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray, method: str, eps: float) -> float:
    """tr (Σ1 Σ2)^{1/2}, the cross term of the Fréchet distance."""
    if method == "eigh":
        # Σ1Σ2 = Σ1^{1/2} (Σ1^{1/2} Σ2) has the eigenvalues of Σ1^{1/2} Σ2 Σ1^{1/2}, which is symmetric PSD: its
        # eigenvalues are real and ≥ 0 up to rounding, so tr (Σ1Σ2)^{1/2} = Σ_i √λ_i needs no complex square root
        # of a non-symmetric matrix, and stays stable when the covariances are singular (N < D).
        root1 = _sqrt_psd(sigma1)
        middle = root1 @ sigma2 @ root1
        eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
        scale = max(float(np.abs(eigenvalues).max(initial=0.0)), np.finfo(np.float64).tiny)
        if eigenvalues.min(initial=0.0) < -1e-6 * scale:
            warnings.warn(f"Σ1^½ Σ2 Σ1^½ has a negative eigenvalue ({eigenvalues.min():.3g}, largest {scale:.3g}): "
                          "the covariances are not positive semi-definite; check the statistics.", stacklevel=3)
        return float(np.sqrt(np.clip(eigenvalues, 0, None)).sum())
    if method == "sqrtm":
        # The form of the reference implementations (TTUR, pytorch-fid): scipy's sqrtm of the non-symmetric
        # product, with a small ridge when the product is singular.
        from scipy import linalg

        covmean = linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            warnings.warn(f"Σ1Σ2 is singular; adding {eps} to the diagonal of both covariances.", stacklevel=3)
            offset = np.eye(sigma1.shape[0]) * eps
            covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
        if np.iscomplexobj(covmean):
            # The exact root of a product of PSD matrices has a real spectrum: a large imaginary part is an error,
            # a small one is rounding.
            residue = np.abs(np.diagonal(covmean).imag).max()
            if residue > 1e-3:
                raise ValueError(f"sqrtm(Σ1Σ2) has an imaginary component of {residue:.3g}: the covariances are "
                                 "ill-conditioned; use method='eigh' or more samples.")
            covmean = covmean.real
        return float(np.trace(covmean))
    raise ValueError(f"Unknown method {method!r}; use 'eigh' or 'sqrtm'.")


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, method: str = "eigh", eps: float = 1e-6
) -> float:
    """The Fréchet (2-Wasserstein) distance between N(μ1, Σ1) and N(μ2, Σ2) (Heusel et al. 2017, eq. 6):

        d² = ‖μ1 − μ2‖² + tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^{1/2})

    computed in float64. FID is this distance between the Gaussian fits of two sets of Inception features.

    Args:
        mu1, mu2 (`np.ndarray` of shape (D,)): the means.
        sigma1, sigma2 (`np.ndarray` of shape (D, D)): the covariances (symmetric positive semi-definite).
        method (`str`, *optional*, defaults to `"eigh"`): how tr (Σ1Σ2)^{1/2} is computed. `"eigh"` uses the
            eigenvalues of the symmetric Σ1^{1/2} Σ2 Σ1^{1/2} (stable for singular covariances); `"sqrtm"` is the
            reference implementations' `scipy.linalg.sqrtm(Σ1Σ2)` with an `eps` ridge when the product is singular
            and a check that the imaginary residue is rounding. Both agree to rounding on well-conditioned inputs.
        eps (`float`, *optional*, defaults to 1e-6): the ridge of the `"sqrtm"` fallback.

    Returns:
        d² as a float ≥ 0 (rounding below 0 is clipped: d² is a squared distance).

    Example:

    ```python
    >>> import numpy as np
    >>> round(frechet_distance(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2)), 6)  # 2 + 2·(1 + 4 − 2·2)
    4.0
    ```
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, dtype=np.float64)), np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"Expected means of shape (D,) and covariances of shape (D, D) with one D; got "
                         f"{mu1.shape}, {sigma1.shape}, {mu2.shape}, {sigma2.shape}.")
    if not all(np.isfinite(a).all() for a in (mu1, mu2, sigma1, sigma2)):
        raise ValueError("The statistics contain NaN or inf.")
    diff = mu1 - mu2
    distance = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * _trace_sqrt_product(sigma1, sigma2, method, eps)
    return max(float(distance), 0.0)


def inception_score(probs: np.ndarray | torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """The Inception Score (Salimans et al. 2016, §4): IS = exp E_x KL(p(y|x) ‖ p(y)).

    p(y) is the marginal of the class probabilities over the images. As in the paper's code, the images are cut
    into `splits` consecutive parts, the score is computed on each part (with that part's marginal), and the mean
    and standard deviation over the parts are reported. IS ranges from 1 (every image gets the same distribution)
    to the number of classes (confident, and balanced over classes).

    Args:
        probs (`np.ndarray` or `torch.Tensor` of shape (N, C)): p(y|x) per image; rows sum to 1.
        splits (`int`, *optional*, defaults to 10): number of parts; each needs at least one image.

    Returns:
        `(mean, std)` over the parts.
    """
    probs = probs.detach().cpu().numpy() if isinstance(probs, torch.Tensor) else np.asarray(probs)
    probs = probs.astype(np.float64)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(f"probs must have shape (N, C) with C ≥ 2 classes; got {probs.shape}.")
    if not np.isfinite(probs).all() or probs.min() < 0 or not np.allclose(probs.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("probs must be finite, non-negative, and each row must sum to 1 (a softmax output).")
    splits = int(splits)
    if splits < 1 or probs.shape[0] < splits:
        raise ValueError(f"The Inception Score over {splits} splits needs at least {max(splits, 1)} images; got "
                         f"{probs.shape[0]} (lower `splits`).")
    from scipy.special import rel_entr

    scores = []
    for part in np.array_split(probs, splits):
        marginal = part.mean(axis=0, keepdims=True)
        # rel_entr takes 0·log 0 = 0: confident (one-hot) rows are the best case, not a NaN
        scores.append(math.exp(rel_entr(part, marginal).sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


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
        else:
            import hfcifar  # noqa: F401  (registers the classifiers with AutoModelForImageClassification)

            source = str(model_or_path)
            model = AutoModelForImageClassification.from_pretrained(source)
            if getattr(model.config, "clipped_activations", None):
                from ..faults.clipping import clip_activations

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


@dataclass
class FeatureStatistics:
    """The Gaussian fit of a set of images' features (and their IS, when the extractor classifies), for FID."""

    mu: np.ndarray
    sigma: np.ndarray
    num_examples: int
    feature_extractor: str
    inception_score: float | None = None
    inception_score_std: float | None = None

    def save(self, path: str | os.PathLike) -> None:
        """Write an `.npz` atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp.npz")
        np.savez(tmp, mu=self.mu, sigma=self.sigma, num_examples=self.num_examples,
                 feature_extractor=self.feature_extractor,
                 inception_score=np.nan if self.inception_score is None else self.inception_score,
                 inception_score_std=np.nan if self.inception_score_std is None else self.inception_score_std)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FeatureStatistics":
        with np.load(path) as data:
            score, std = float(data["inception_score"]), float(data["inception_score_std"])
            return cls(data["mu"], data["sigma"], int(data["num_examples"]), str(data["feature_extractor"]),
                       None if math.isnan(score) else score, None if math.isnan(std) else std)

    @classmethod
    def from_features(
        cls, features: np.ndarray, probs: np.ndarray | None, name: str, splits: int = 10
    ) -> "FeatureStatistics":
        mu, sigma = feature_statistics(features)
        score = std = None
        if probs is not None and probs.shape[0] >= splits:
            score, std = inception_score(probs, splits)
        return cls(mu, sigma, int(features.shape[0]), name, score, std)


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


# ---------------------------------------------------------------------------------------------- the one entry point


def compute_generative_metrics(
    generated: Any,
    reference: Any,
    extractor: Any,
    batch_size: int = 250,
    splits: int = 10,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict:
    """FID between generated and reference images, and the Inception Score of the generated ones.

    Args:
        generated: the generated images: uint8 [0, 255] or float [0, 1], N×3×32×32 (or N×32×32×3) tensor or
            array, or a list of PIL images.
        reference: the real images, in any of those forms or as a Hub-schema `datasets.Dataset`
            (`img`, `label`), or precomputed `FeatureStatistics` (`reference_statistics`).
        extractor: a `FeatureExtractor`, or what `get_feature_extractor` takes: `"inception"` or a classifier folder.
        batch_size (`int`, *optional*, defaults to 250): images per forward pass of the extractor.
        splits (`int`, *optional*, defaults to 10): parts of the Inception Score (Salimans et al. 2016).
        cache_dir (`str`, *optional*): cache the reference statistics there (`reference_statistics`).

    Returns:
        `fid`, `inception_score` and `inception_score_std` (None when the extractor gives no probabilities),
        `reference_inception_score` (the real images' IS: the scale of IS in this feature space), `num_generated`,
        `num_reference`, `feature_extractor` (its name), `feature_dim`, `inception_score_splits`, and, for
        `eval_results.json` and the model card, `metric_configs` and `metric_num_examples` for `fid` and
        `inception_score`.
    """
    extractor = get_feature_extractor(extractor)
    generated = _as_images(generated, "generated")
    if generated.shape[0] < 2:
        raise ValueError(f"FID needs at least 2 generated images; got {generated.shape[0]}.")
    if generated.shape[0] < splits:
        raise ValueError(f"The Inception Score over {splits} splits needs at least {splits} generated images; got "
                         f"{generated.shape[0]} (lower `splits`).")
    if isinstance(reference, FeatureStatistics):
        stats = reference
        if stats.feature_extractor != extractor.name:
            raise ValueError(f"The reference statistics were measured with {stats.feature_extractor!r}, not with "
                             f"{extractor.name!r}: FID compares features of one extractor only.")
    else:
        stats = reference_statistics(reference, extractor, batch_size, cache_dir, splits, progress)
    features, probs = extract_features(generated, extractor, batch_size, progress, what="generated")
    mu, sigma = feature_statistics(features)
    fid = frechet_distance(mu, sigma, stats.mu, stats.sigma)
    score, std = inception_score(probs, splits) if probs is not None else (None, None)
    n = int(generated.shape[0])
    return {
        "fid": fid,
        "inception_score": score,
        "inception_score_std": std,
        "reference_inception_score": stats.inception_score,
        "num_generated": n,
        "num_reference": stats.num_examples,
        "feature_extractor": extractor.name,
        "feature_dim": extractor.feature_dim,
        "inception_score_splits": splits,
        "metric_configs": {
            "fid": f"{n} generated vs {stats.num_examples} reference images; features: {extractor.name}",
            "inception_score": f"{n} generated images, {splits} splits; classifier: {extractor.name}",
        },
        "metric_num_examples": {"fid": n, "inception_score": n},
    }


# ------------------------------------------------------------------------------------------ the registered metrics


def sample_images(pipeline, num_samples: int, batch_size: int = 250, seed: int = 0, progress: bool = True,
                  **call_kwargs) -> torch.Tensor:
    """Draw `num_samples` images from an image `DiffusionPipeline` as a uint8 tensor N×3×32×32.

    Batch `i` is drawn with a generator seeded `seed + i`, so a sample set is reproducible for a given batch size.
    Images are quantized to 8 bits, as the saved PNGs that papers compute FID on are.
    """
    if int(num_samples) < 1:
        raise ValueError(f"num_samples must be ≥ 1; got {num_samples}.")
    chunks = []
    starts = range(0, int(num_samples), batch_size)
    for index, start in enumerate(tqdm(starts, desc="Sampling", unit="batch", disable=not progress)):
        size = min(batch_size, int(num_samples) - start)
        generator = torch.Generator(device="cpu").manual_seed(seed + index)
        images = pipeline(batch_size=size, generator=generator, output_type="pt", **call_kwargs).images
        images = _as_images(images, "generated")
        chunks.append(images if images.dtype == torch.uint8 else images.mul(255).round().to(torch.uint8))
    return torch.cat(chunks)


_last_result: tuple | None = None  # (pipeline ref, split ref, options, results): `fid` + `inception_score` sample once


@register_metric("fid", "FID", hub_type="fid", higher_is_better=False)
@register_metric("inception_score", "Inception Score", hub_type="inception_score", higher_is_better=True)
def generative_quality(pipeline, split, settings: EvalSettings) -> dict:
    """FID and IS of an image generator against a reference split (`model` is the pipeline, not a classifier).

    Both registered metrics (`fid`, `inception_score`) run this function; asked for both, it samples once.

    Options (`settings.options`, e.g. `--option key=value`):
        feature_extractor (`str`, required): `"inception"` or a classifier folder / Hub id (`ClassifierFeatures`).
        num_samples (`int`, defaults to the size of the split): images to generate. FID is biased by the number of
            samples; compare models at one count.
        sample_batch_size (`int`, defaults to `settings.batch_size`): images per pipeline call.
        seed (`int`, defaults to 0): batch `i` is sampled with seed `seed + i`.
        splits (`int`, defaults to 10): parts of the Inception Score.
        cache_dir (`str`, *optional*): where reference statistics are cached.
        Any other option the pipeline's `__call__` takes (`num_inference_steps`, `eta`, `guidance_scale`, …) is
        passed on.
    """
    global _last_result
    if isinstance(pipeline, PreTrainedModel) or not callable(pipeline):
        raise ValueError("fid/inception_score measure an image generator (a DiffusionPipeline), not a classifier; "
                         "evaluate a pipeline folder instead (a classifier can serve as the feature extractor: "
                         "--option feature_extractor=MODEL_DIR).")
    options = dict(settings.options)
    key = repr(sorted(options.items())) + f"|{settings.batch_size}"
    if _last_result is not None:
        pipeline_ref, split_ref, last_key, last_results = _last_result
        if pipeline_ref() is pipeline and split_ref() is split and last_key == key:
            return dict(last_results)
    extractor = get_feature_extractor(options.get("feature_extractor"))
    parameters = inspect.signature(pipeline.__call__).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    accepted = set(parameters) - {"self", "batch_size", "generator", "output_type", "return_dict"}
    reserved = set(GENERATIVE_OPTIONS) | {"generator", "output_type"}
    call_kwargs = {k: v for k, v in options.items() if (takes_any or k in accepted) and k not in reserved}
    num_samples = int(options.get("num_samples") or len(split))
    samples = sample_images(pipeline, num_samples, int(options.get("sample_batch_size") or settings.batch_size),
                            int(options.get("seed") or 0), **call_kwargs)
    results = compute_generative_metrics(samples, split, extractor, batch_size=settings.batch_size,
                                         splits=int(options.get("splits") or 10), cache_dir=options.get("cache_dir"))
    counts = results.pop("metric_num_examples")
    results.update(num_examples=counts["fid"], sampling=call_kwargs)
    try:
        _last_result = (weakref.ref(pipeline), weakref.ref(split), key, dict(results))
    except TypeError:  # an object without weak references: no memo
        _last_result = None
    return results


PIPELINE_INDEX = "model_index.json"
DEFAULT_SAMPLER = {"scheduler": "ddim", "num_inference_steps": 50}
SAMPLERS = ("ddim", "ddpm", "dpm-solver", "saved")


def load_pipeline(pipeline_dir: str | os.PathLike):
    """A saved hfcifar diffusion pipeline folder → its `DiffusionPipeline` (the class named in `model_index.json`)."""
    import importlib
    import json

    index = Path(pipeline_dir) / PIPELINE_INDEX
    if not index.is_file():
        raise ValueError(f"{pipeline_dir} has no {PIPELINE_INDEX}: point the generator evaluation at a pipeline folder "
                         "written by `hfcifar train ddpm-…` or `DiffusionPipeline.save_pretrained`.")
    class_name = json.loads(index.read_text())["_class_name"]
    hfcifar = importlib.import_module("hfcifar")
    try:
        cls = getattr(hfcifar, class_name)
    except AttributeError:
        import diffusers

        cls = getattr(diffusers, class_name)
    return cls.from_pretrained(pipeline_dir)


def _set_sampler(pipeline, name: str):
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

    if name not in SAMPLERS:
        raise ValueError(f"Unknown scheduler {name!r} for sampling; choose one of {', '.join(SAMPLERS)}.")
    classes = {"ddim": DDIMScheduler, "ddpm": DDPMScheduler, "dpm-solver": DPMSolverMultistepScheduler}
    if name in classes:
        pipeline.scheduler = classes[name].from_config(pipeline.scheduler.config)
    return pipeline


def evaluate_generator(
    pipeline: str | os.PathLike | Any,
    dataset: str | None = None,
    split: str | None = None,
    metrics: tuple[str, ...] | list[str] = ("fid", "inception_score"),
    batch_size: int = 250,
    **options,
) -> dict:
    """Measure an image generator (a diffusion pipeline folder or instance) against real CIFAR-10 images: the
    counterpart of `evaluate_classifier` for generators, and what `hfcifar eval PIPELINE_DIR` runs.

    Args:
        pipeline: a pipeline folder (`model_index.json`) or a `DiffusionPipeline`.
        dataset: the reference data; defaults to the dataset the pipeline was trained on (`train_summary.json`), then
            `$HFCIFAR_DATASET` / `uoft-cs/cifar10`.
        split: the reference split; default `test` when the dataset has one, else all of `train` (as DDPM's FID
            against the training set).
        metrics: `fid` and/or `inception_score`.
        options: `feature_extractor` (required: `"inception"` or a classifier folder), `num_samples`,
            `scheduler` (`ddim` (default), `ddpm`, `dpm-solver` or `saved`: the pipeline's own),
            `num_inference_steps` (default 50), `guidance_scale`, `eta`, `seed`, … (see `generative_quality`).

    Returns:
        The flat results dict that `write_eval_results` stores and the model card reads.
    """
    from . import METRICS, training_summary
    from ..data import HUB_DATASET, load_cifar10

    unknown = [m for m in metrics if m not in ("fid", "inception_score")]
    if unknown:
        raise ValueError(f"A generator is measured with fid and/or inception_score; got {unknown}.")
    if not options.get("feature_extractor"):
        raise ValueError("FID/IS need a feature extractor: pass feature_extractor='inception' (pytorch-fid weights on "
                         "disk) or a classifier folder (`--option feature_extractor=runs/fastnet`), whose features "
                         "work offline.")
    model_dir = Path(pipeline) if isinstance(pipeline, (str, os.PathLike)) else None
    if model_dir is not None:
        pipeline = load_pipeline(model_dir)
    sampler = {**DEFAULT_SAMPLER, **{k: options.pop(k) for k in list(options) if k in DEFAULT_SAMPLER}}
    _set_sampler(pipeline, sampler["scheduler"])
    pipeline.set_progress_bar_config(disable=True)
    summary = training_summary(model_dir)
    dataset = dataset or summary.get("dataset")
    data = load_cifar10(dataset, validation_size=0, require_train=False)
    split = split if split not in (None, "auto") else ("test" if "test" in data else "train")
    if split not in data:
        raise ValueError(f"The dataset has no {split!r} split; available: {', '.join(data)}.")
    settings = EvalSettings(batch_size=batch_size,
                            options={**options, "num_inference_steps": sampler["num_inference_steps"]})
    values = METRICS["fid"].compute(pipeline, data[split], settings)
    count = values.pop("num_examples")
    configs = values.pop("metric_configs", {}) or {}
    how = f"{sampler['scheduler'].upper()} {sampler['num_inference_steps']} steps"
    configs = {name: f"{configs.get(name, values.get('feature_extractor'))}; {how}" for name in metrics}
    results = {name: values[name] for name in metrics}
    results.update({k: v for k, v in values.items() if k not in ("fid", "inception_score")})
    results.update({
        "metrics": list(metrics),
        "metric_configs": configs,
        "metric_num_examples": {name: count for name in metrics},
        "num_examples": count,
        "split": split,
        "dataset": dataset or HUB_DATASET,
        "sampler": sampler,
    })
    return results


__all__ = [
    "ClassifierFeatures",
    "evaluate_generator",
    "load_pipeline",
    "FeatureExtractor",
    "FeatureStatistics",
    "INCEPTION_WEIGHTS_ENV",
    "InceptionFeatures",
    "compute_generative_metrics",
    "extract_features",
    "feature_statistics",
    "frechet_distance",
    "generative_quality",
    "get_feature_extractor",
    "inception_score",
    "reference_statistics",
    "sample_images",
]
