"""Certified accuracy under ℓ2 perturbations: Randomized Smoothing (Cohen et al., 2019) and Dual Randomized
Smoothing (Xia et al., 2024), measured with CERTIFY on a split.

    hfcifar eval RUN --metric certified_accuracy --option sigma=0.25 --option radius=0,0.25,0.5 --option n=1000
    evaluate_classifier(RUN, metrics=["certified_accuracy"], sigma=0.25, n=1000)

Options (all optional but `sigma` when the model's config has no `smoothing_sigma`):
    sigma          noise level σ (pixels in [0, 1]); defaults to the σ the model was trained with
    radius         one radius or several (a list, or comma-separated text "0,0.25,0.5"); the first is the headline
                   `certified_accuracy`, all appear in `certified_accuracy_at` (default 0.25, plus 0, 0.5, 0.75, 1)
    n0, n, alpha   CERTIFY's selection samples, estimation samples and failure probability (100, 1000, 0.001)
    num_examples   images certified, spread evenly over the split (default 500, as Cohen et al.'s every 20th)
    batch_size     noisy copies per forward pass (default 1000)
    method         "rs" (the evaluated model smooths the whole image) or "drs" (it is f^l of DRS)
    right_model    DRS only: folder or Hub id of f^r; without it, the evaluated model classifies both sub-images
    seed           seed of the noise (default 0)
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import AutoModelForImageClassification, PreTrainedModel

from ..data import CifarTensorDataset
from ..certification import DualSmoothedClassifier, SmoothedClassifier, certify_dataset
from . import EvalSettings, register_metric

DEFAULT_RADII = (0.25, 0.0, 0.5, 0.75, 1.0)
METHODS = ("rs", "drs")


def parse_radii(value) -> list[float]:
    """A radius option as a list of radii ≥ 0: a number, a list/tuple, or comma-separated text."""
    if value is None:
        return list(DEFAULT_RADII)
    items = value.split(",") if isinstance(value, str) else (value if isinstance(value, (list, tuple)) else [value])
    try:
        radii = [float(item) for item in items]
    except (TypeError, ValueError):
        raise ValueError(f"radius must be a number ≥ 0 or several (e.g. radius=0,0.25,0.5); got {value!r}.") from None
    if not radii or any(not r >= 0 for r in radii):
        raise ValueError(f"radius must be a number ≥ 0 or several (e.g. radius=0,0.25,0.5); got {value!r}.")
    return radii


def _integer(options: dict, name: str, default: int, minimum: int = 1) -> int:
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < minimum:
        raise ValueError(f"The certified_accuracy option {name} must be an integer ≥ {minimum}; got {value!r}.")
    return int(value)


def smoothed_classifier(model: PreTrainedModel, options: dict) -> SmoothedClassifier:
    """The RS or DRS smoothed classifier the options describe (checked against what the model was trained for)."""
    method = str(options.get("method", "rs")).lower()
    if method not in METHODS:
        raise ValueError(f"The certified_accuracy option method must be one of {METHODS}; got {options.get('method')!r}.")
    sigma = options.get("sigma", getattr(model.config, "smoothing_sigma", None))
    if sigma is None:
        raise ValueError("certified_accuracy needs the noise level: pass sigma (e.g. --option sigma=0.25); this model's "
                         "config records no smoothing_sigma.")
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not sigma > 0:
        raise ValueError(f"The certified_accuracy option sigma must be a number > 0; got {sigma!r}.")
    batch_size, seed = _integer(options, "batch_size", 1000), _integer(options, "seed", 0, minimum=0)
    trained_on = getattr(model.config, "drs_sub_image", None)
    if method == "rs":
        if trained_on is not None:
            raise ValueError(f"This model was trained on the DRS sub-image {trained_on!r}, not on whole images; "
                             "evaluate it with --option method=drs (and its partner as right_model).")
        return SmoothedClassifier(model, float(sigma), batch_size=batch_size, seed=seed)
    if trained_on == "r":
        raise ValueError("This model was trained on the DRS sub-image 'r': evaluate the 'l' model and pass this one "
                         "as --option right_model=PATH.")
    right = options.get("right_model")
    if right is not None:
        right = AutoModelForImageClassification.from_pretrained(str(right)).to(model.device).eval()
        if getattr(right.config, "drs_sub_image", "r") != "r":
            raise ValueError(f"right_model {options['right_model']!r} was trained on the DRS sub-image "
                             f"{right.config.drs_sub_image!r}; it must be the 'r' model.")
    return DualSmoothedClassifier(model, right, sigma=float(sigma), batch_size=batch_size, seed=seed)


@register_metric("certified_accuracy", "Certified accuracy (ℓ2)", hub_type="certified_accuracy")
def certified_accuracy(model: PreTrainedModel, split, settings: EvalSettings) -> dict:
    """Certified ℓ2 accuracy of the smoothed classifier at the given radius (or radii), with CERTIFY.

    Returns `certified_accuracy` (at the first radius), `certified_accuracy_at` (every radius), `smoothed_accuracy`
    (clean accuracy of the smoothed classifier, abstentions counting as errors), `abstain_rate`,
    `average_certified_radius`, `num_examples`, `certification` (the settings) and `metric_configs`.
    """
    options = settings.options
    radii = parse_radii(options.get("radius"))
    n0, n = _integer(options, "n0", 100), _integer(options, "n", 1000)
    num_examples = _integer(options, "num_examples", 500)
    alpha = options.get("alpha", 0.001)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ValueError(f"The certified_accuracy option alpha must lie in (0, 1); got {alpha!r}.")
    smoothed = smoothed_classifier(model, options)

    data = CifarTensorDataset.from_hf(split, "eval", progress=False)
    index = torch.as_tensor(np.unique(np.linspace(0, len(data) - 1, min(num_examples, len(data))).round().astype(int)))
    result = certify_dataset(smoothed, data.images[index], data.labels[index], n0, n, float(alpha))
    method = result.settings["method"].upper()
    curve = {f"{r:g}": result.certified_accuracy(r) for r in radii}
    extra = f" (curve at {', '.join(curve)})" if len(radii) > 1 else ""
    return {
        "certified_accuracy": result.certified_accuracy(radii[0]),
        "certified_accuracy_at": curve,
        "smoothed_accuracy": result.smoothed_accuracy,
        "abstain_rate": result.abstain_rate,
        "average_certified_radius": result.average_certified_radius,
        "num_examples": result.num_examples,
        "certification": {**result.settings, "radius": radii[0], "radii": radii,
                          "max_certifiable_radius": smoothed.max_certified_radius(n, float(alpha))},
        "metric_configs": {"certified_accuracy": f"{method} σ={smoothed.sigma:g}, n0={n0}, n={n}, α={alpha:g}, "
                                                 f"radius {radii[0]:g}{extra}"},
    }
