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

The package, by concern:

- `fid.py`         the maths on features: `feature_statistics`, `frechet_distance`, `inception_score`,
                   `FeatureStatistics`.
- `extractors.py`  images → features: `ClassifierFeatures`, `InceptionFeatures` (and its weights file),
                   `get_feature_extractor`, `extract_features`, and the cached `reference_statistics`.
- `metric.py`      `compute_generative_metrics`, `sample_images`, the registered metrics (`generative_quality`) and
                   `evaluate_generator`.

Loading a pipeline folder and choosing its sampler belong to the diffusion family (`hfcifar.diffusion.loading`:
`load_pipeline`, `SAMPLERS`); `load_pipeline` stays importable from here, imported on first use (diffusers is heavy).
"""

from .extractors import (
    FID_INCEPTION_WEIGHTS_FILE,
    IMAGE_SHAPE,
    INCEPTION_WEIGHTS_ENV,
    ClassifierFeatures,
    FeatureExtractor,
    InceptionFeatures,
    extract_features,
    get_feature_extractor,
    reference_statistics,
)
from .fid import FeatureStatistics, feature_statistics, frechet_distance, inception_score
from .metric import GENERATIVE_OPTIONS, compute_generative_metrics, evaluate_generator, generative_quality, sample_images

# Re-exported from `hfcifar.diffusion.loading` on first access: `import hfcifar.evaluation` does not import diffusers.
_FROM_DIFFUSION = ("DEFAULT_SAMPLER", "PIPELINE_INDEX", "SAMPLERS", "load_pipeline")


def __getattr__(name: str):
    if name in _FROM_DIFFUSION:
        from ...diffusion import loading

        return getattr(loading, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
