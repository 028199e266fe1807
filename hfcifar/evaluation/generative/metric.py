"""Measuring generators: `compute_generative_metrics` (FID and IS of generated vs reference images), sampling a
pipeline for it (`sample_images`), the registered metrics `fid` and `inception_score` (`generative_quality`) and
`evaluate_generator` (what `hfcifar eval PIPELINE_DIR` runs). Loading a pipeline folder and swapping its scheduler
live in the diffusion family (`hfcifar.diffusion.loading`).
"""

from __future__ import annotations

import inspect
import os
import weakref
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from .. import EvalSettings, register_metric
from .extractors import _as_images, extract_features, get_feature_extractor, reference_statistics
from .fid import FeatureStatistics, feature_statistics, frechet_distance, inception_score

#: Options of the registered metrics themselves; any other option that the pipeline's `__call__` takes
#: (`num_inference_steps`, `eta`, `guidance_scale`, …) is passed on to the pipeline.
GENERATIVE_OPTIONS = ("feature_extractor", "num_samples", "sample_batch_size", "seed", "splits", "cache_dir")


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
            `scheduler` (a name of `hfcifar.diffusion.SAMPLERS`: `ddim` (default), `ddpm`, `dpm-solver`, or
            `saved`: the pipeline's own),
            `num_inference_steps` (default 50), `guidance_scale`, `eta`, `seed`, … (see `generative_quality`).

    Returns:
        The flat results dict that `write_eval_results` stores and the model card reads.
    """
    from ...data import HUB_DATASET, load_cifar10
    from ...diffusion.loading import DEFAULT_SAMPLER, load_pipeline, set_sampler  # diffusers: imported on use
    from .. import METRICS, training_summary

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
    set_sampler(pipeline, sampler["scheduler"])
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
    "GENERATIVE_OPTIONS",
    "compute_generative_metrics",
    "evaluate_generator",
    "generative_quality",
    "sample_images",
]
