"""Randomized Smoothing (Cohen et al., 2019) and Dual Randomized Smoothing (Xia et al., ICLR 2024).

Randomized Smoothing (RS) turns any base classifier f into the smoothed classifier

    g(x) = argmax_c P(f(x + ε) = c),   ε ~ N(0, σ² I)                                      (Cohen et al., Eq. 1)

and certifies that g is constant in the ℓ2 ball of radius R = σ Φ⁻¹(p_A) around x, where p_A is a lower bound on
the probability of the top class (Cohen et al., Theorem 1). `SmoothedClassifier` implements the Monte-Carlo
PREDICT (Algorithm 1: binomial test on the two top counts) and CERTIFY (Algorithm 2: n0 selection samples, n
estimation samples, one-sided Clopper–Pearson lower bound, abstain when p_A ≤ 1/2).

Dual Randomized Smoothing (DRS) down-samples x into two sub-images x^l and x^r that partition its pixels
(m + n = d), smooths each in its own, lower-dimensional space with its own base classifier f^l, f^r, and predicts
the class with the largest *sum* of the two smoothed probabilities. Because ‖δ‖² = ‖δ^l‖² + ‖δ^r‖² for any
perturbation δ of x, the two certificates combine into one ℓ2 radius for the whole image (`dual_certified_radius`);
`DualSmoothedClassifier` runs PREDICT and CERTIFY for it.

Notation (the papers' → here):
    σ            → `sigma`            noise level, in pixel units of images in [0, 1]
    n0, n, α     → `n0`, `n`, `alpha` selection samples, estimation samples, failure probability
    p_A (lower)  → `p_a_lower`        Clopper–Pearson lower bound on P(f(x + ε) = c_A)
    x^l, x^r     → `x_l`, `x_r`       the two sub-images of DRS (`downsample_sub_images`)
    f^l, f^r     → `base_classifier_l`, `base_classifier_r`

hfcifar classifiers take images in [0, 1]; the noisy input x + ε leaves that range, so every base classifier here
sees `clamp(x + ε, 0, 1)`. A fixed function applied after the noise is part of the base classifier (f ∘ clamp is a
classifier like any other), so Cohen's and DRS's guarantees hold unchanged; the trainer applies the same clamp.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .bounds import ABSTAIN, certified_radius, clopper_pearson_lower_bound, dual_certified_radius, predict_from_counts
from .sub_images import SUB_IMAGES, downsample_sub_images, upsample_sub_image


class SmoothedClassifier:
    """The smoothed classifier g(x) = argmax_c P(f(x + ε) = c), ε ~ N(0, σ² I) of Randomized Smoothing.

    [Certified Adversarial Robustness via Randomized Smoothing](https://arxiv.org/abs/1902.02918)
    (Cohen, Rosenfeld & Kolter, ICML 2019). Distance measure: ℓ2.

    Args:
        base_classifier (`nn.Module`): f, a classifier taking images in [0, 1] and returning logits (a tensor or an
            output with `.logits`, as every hfcifar / transformers image classifier does). It sees clamp(x + ε, 0, 1).
        sigma (`float`): σ, the standard deviation of the Gaussian noise in pixel units (e.g. 0.25).
        num_classes (`int`, *optional*): defaults to `base_classifier.config.num_labels`.
        batch_size (`int`, *optional*, defaults to 1000): noisy copies classified per forward pass. The copies of
            several images share a forward pass (`certify_batch`): small batches are slow on a CPU.
        seed (`int`, *optional*, defaults to 0): seeds the noise of every call that is not given a `generator`, so
            `predict` and `certify` are deterministic; `None` draws a fresh seed each call.

    Input: one image, float `(C, H, W)` in [0, 1] (`certify_batch`: `(N, C, H, W)`). `predict`/`certify` return
    `ABSTAIN` (-1) when they abstain.

    Example:
        >>> smoothed = SmoothedClassifier(model, sigma=0.25)
        >>> label, radius = smoothed.certify(image, n0=100, n=100_000, alpha=0.001)
    """

    def __init__(self, base_classifier: nn.Module, sigma: float, num_classes: int | None = None,
                 batch_size: int = 1000, seed: int | None = 0):
        if not isinstance(base_classifier, nn.Module):
            raise ValueError(f"base_classifier must be a torch classifier (nn.Module); got {type(base_classifier).__name__}.")
        if not (isinstance(sigma, (int, float)) and sigma > 0 and math.isfinite(sigma)):
            raise ValueError(f"sigma (the noise level) must be a positive number, e.g. 0.25; got {sigma!r}.")
        if num_classes is None:
            num_classes = getattr(getattr(base_classifier, "config", None), "num_labels", None)
        if not num_classes or int(num_classes) < 2:
            raise ValueError("num_classes is needed (≥ 2): pass it, or use a model whose config has num_labels.")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be ≥ 1; got {batch_size!r}.")
        self.base_classifier = base_classifier
        self.sigma = float(sigma)
        self.num_classes = int(num_classes)
        self.batch_size = int(batch_size)
        self.seed = seed

    # -- pieces ------------------------------------------------------------------------------------------------
    def generator(self, device) -> torch.Generator:
        """A generator for the noise, seeded with `self.seed` (or freshly when the seed is `None`)."""
        generator = torch.Generator(device=device)
        if self.seed is None:
            generator.seed()
        else:
            generator.manual_seed(int(self.seed))
        return generator

    @staticmethod
    def check_images(images: torch.Tensor, single: bool = False) -> torch.Tensor:
        """Images as an `(N, C, H, W)` float tensor in [0, 1], or a `ValueError` naming the expected input."""
        shape = "(channels, height, width)" if single else "(batch, channels, height, width)"
        expected = f"a float tensor of shape {shape} with values in [0, 1]"
        if not isinstance(images, torch.Tensor) or not images.is_floating_point():
            raise ValueError(f"images must be {expected}; got {type(images).__name__} {getattr(images, 'dtype', '')}.")
        if images.dim() != (3 if single else 4):
            raise ValueError(f"images must be {expected}; got shape {tuple(images.shape)}.")
        if images.numel() and (images.min() < 0 or images.max() > 1):
            raise ValueError(f"images must be {expected}; got values in [{images.min().item():.3g}, "
                             f"{images.max().item():.3g}]. Pass un-normalized images.")
        return images.unsqueeze(0) if single else images

    @staticmethod
    def classify(classifier: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
        """The classes a base classifier assigns to a batch of images."""
        output = classifier(pixel_values)
        logits = output.logits if hasattr(output, "logits") else output
        return logits.argmax(-1)

    def noisy_copies(self, images: torch.Tensor, num: int, batch_size: int | None, generator: torch.Generator):
        """Yield `(owners, clamp(x + ε, 0, 1))` chunks of at most `batch_size`: `num` independent noisy copies
        ε ~ N(0, σ² I) of every image, `owners[i]` being the index of the image copy i comes from."""
        batch_size = int(batch_size or self.batch_size)
        total = images.shape[0] * int(num)
        for start in range(0, total, batch_size):
            owners = torch.arange(start, min(start + batch_size, total), device=images.device) // int(num)
            noise = torch.randn((len(owners), *images.shape[1:]), generator=generator, device=images.device,
                                dtype=images.dtype)
            yield owners, (images[owners] + self.sigma * noise).clamp_(0, 1)

    def tally(self, owners: torch.Tensor, classes: torch.Tensor, num_images: int) -> np.ndarray:
        """Per-image class counts `(num_images, num_classes)` of a chunk of classified noisy copies."""
        flat = owners.cpu().numpy() * self.num_classes + classes.cpu().numpy()
        return np.bincount(flat, minlength=num_images * self.num_classes).reshape(num_images, self.num_classes)

    def base_classifiers(self) -> list:
        return [self.base_classifier]

    def sample_noise_batch(self, images: torch.Tensor, num: int, batch_size: int | None = None,
                           generator: torch.Generator | None = None) -> np.ndarray:
        """`SampleUnderNoise(f, x, num, σ)` of Algorithms 1–2 for every image: class counts `(N, num_classes)`."""
        images = self.check_images(images)
        generator = generator if generator is not None else self.generator(images.device)
        counts = np.zeros((images.shape[0], self.num_classes), dtype=np.int64)
        modes = [m.training for m in self.base_classifiers()]
        for m in self.base_classifiers():
            m.eval()
        try:
            with torch.no_grad():
                for owners, batch in self.noisy_copies(images, num, batch_size, generator):
                    counts += self.tally(owners, self.classify(self.base_classifier, batch), images.shape[0])
        finally:
            for m, mode in zip(self.base_classifiers(), modes):
                m.train(mode)
        return counts

    def sample_noise(self, x: torch.Tensor, num: int, batch_size: int | None = None,
                     generator: torch.Generator | None = None) -> np.ndarray:
        """`SampleUnderNoise(f, x, num, σ)` for one image `(C, H, W)`: the counts of f's classes on its copies."""
        return self.sample_noise_batch(self.check_images(x, single=True), num, batch_size, generator)[0]

    # -- Algorithms 1 and 2 ------------------------------------------------------------------------------------
    def predict(self, x: torch.Tensor, n: int, alpha: float, batch_size: int | None = None,
                generator: torch.Generator | None = None) -> int:
        """PREDICT (Cohen et al., Algorithm 1): g(x), or `ABSTAIN`, wrong with probability at most α.

        Counts f's classes on n noisy copies and returns the top class unless a two-sided binomial test of its
        count against the runner-up's (Hung & Fithian, 2019) has p-value above α.
        """
        counts = self.sample_noise(x, n, batch_size, generator)
        return predict_from_counts(counts, alpha)

    def certify_batch(self, images: torch.Tensor, n0: int, n: int, alpha: float, batch_size: int | None = None,
                      generator: torch.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """CERTIFY (Cohen et al., Algorithm 2) for every image of `(N, C, H, W)`: classes (`ABSTAIN` where it
        abstains) and certified radii (0 there). With probability ≥ 1 − α each, g(x + δ) = c_A for ‖δ‖₂ < R.

        1. guess c_A as the top class of n0 selection samples;
        2. count c_A on n fresh estimation samples and take the one-sided Clopper–Pearson bound p_A at 1 − α;
        3. R = σ Φ⁻¹(p_A); abstain when p_A ≤ 1/2.
        """
        images = self.check_images(images)
        generator = generator if generator is not None else self.generator(images.device)
        c_a = self.sample_noise_batch(images, n0, batch_size, generator).argmax(1)
        counts = self.sample_noise_batch(images, n, batch_size, generator)
        classes, radii = np.full(len(c_a), ABSTAIN, dtype=np.int64), np.zeros(len(c_a))
        for i, c in enumerate(c_a):
            radius = certified_radius(clopper_pearson_lower_bound(int(counts[i, c]), int(n), alpha), self.sigma)
            if radius > 0:
                classes[i], radii[i] = c, radius
        return classes, radii

    def certify(self, x: torch.Tensor, n0: int, n: int, alpha: float, batch_size: int | None = None,
                generator: torch.Generator | None = None) -> tuple[int, float]:
        """CERTIFY (Cohen et al., Algorithm 2) for one image `(C, H, W)`: `(c_A, R)`, or `(ABSTAIN, 0.0)`."""
        classes, radii = self.certify_batch(self.check_images(x, single=True), n0, n, alpha, batch_size, generator)
        return int(classes[0]), float(radii[0])

    def max_certified_radius(self, n: int, alpha: float) -> float:
        """The largest radius CERTIFY can return with n samples: σ Φ⁻¹(α^(1/n)), reached when all n agree."""
        return certified_radius(alpha ** (1 / n), self.sigma)


# ------------------------------------------------------------------------------------ Dual Randomized Smoothing


class DualSmoothedClassifier(SmoothedClassifier):
    """Dual Randomized Smoothing: g(x) = argmax_c [P(f^l(x^l + ε^l) = c) + P(f^r(x^r + ε^r) = c)].

    [Mitigating the Curse of Dimensionality for Certified Robustness via Dual Randomized Smoothing](
    https://arxiv.org/abs/2404.09586) (Xia, Yu, Jiang & Ding, ICLR 2024). Distance measure: ℓ2.

    x is split into the sub-images x^l, x^r (`downsample_sub_images`, 3 × 32 × 16 each on CIFAR-10); each is
    smoothed with its own noise in its own m = d/2 dimensions and classified by its own base classifier, which sees
    the sub-image interpolated back to 32 × 32 (`upsample_sub_image`). One draw of ε on the whole image is one
    independent draw on each sub-image (they share no pixel), so n noisy copies of x give n samples of each.

    Args:
        base_classifier_l (`nn.Module`): f^l, the classifier of the sub-image x^l.
        base_classifier_r (`nn.Module`, *optional*): f^r; defaults to f^l (one classifier for both sub-images).
        sigma, num_classes, batch_size, seed: as in [`SmoothedClassifier`].

    Example:
        >>> drs = DualSmoothedClassifier(model_l, model_r, sigma=0.25)
        >>> label, radius = drs.certify(image, n0=100, n=100_000, alpha=0.001)
    """

    def __init__(self, base_classifier_l: nn.Module, base_classifier_r: nn.Module | None = None, sigma: float = 0.25,
                 num_classes: int | None = None, batch_size: int = 1000, seed: int | None = 0):
        super().__init__(base_classifier_l, sigma, num_classes=num_classes, batch_size=batch_size, seed=seed)
        if base_classifier_r is not None and not isinstance(base_classifier_r, nn.Module):
            raise ValueError(f"base_classifier_r must be a torch classifier (nn.Module); got {type(base_classifier_r).__name__}.")
        self.base_classifier_r = base_classifier_r if base_classifier_r is not None else base_classifier_l

    @property
    def base_classifier_l(self) -> nn.Module:
        return self.base_classifier

    def base_classifiers(self) -> list:
        if self.base_classifier_r is self.base_classifier_l:
            return [self.base_classifier_l]
        return [self.base_classifier_l, self.base_classifier_r]

    def _sub_image_counts(self, images, num, batch_size, generator, mixture: bool) -> tuple[np.ndarray, np.ndarray]:
        # Counts of f^l on x^l + ε^l and of f^r on x^r + ε^r; with `mixture`, each noisy copy is classified on one
        # sub-image only, chosen by a fair coin (the randomized base classifier of `predict`).
        images = self.check_images(images)
        generator = generator if generator is not None else self.generator(images.device)
        counts = [np.zeros((images.shape[0], self.num_classes), dtype=np.int64) for _ in SUB_IMAGES]
        modes = [m.training for m in self.base_classifiers()]
        for m in self.base_classifiers():
            m.eval()
        try:
            with torch.no_grad():
                for owners, batch in self.noisy_copies(images, num, batch_size, generator):
                    sub_images = downsample_sub_images(batch)
                    use_r = torch.rand(len(owners), generator=generator, device=batch.device) < 0.5 if mixture else None
                    for k, classifier in enumerate((self.base_classifier_l, self.base_classifier_r)):
                        keep = slice(None) if use_r is None else (use_r if k == 1 else ~use_r)
                        if use_r is not None and not keep.any():
                            continue
                        classes = self.classify(classifier, upsample_sub_image(sub_images[k][keep]))
                        counts[k] += self.tally(owners[keep], classes, images.shape[0])
        finally:
            for m, mode in zip(self.base_classifiers(), modes):
                m.train(mode)
        return counts[0], counts[1]

    def sample_noise_batch(self, images: torch.Tensor, num: int, batch_size: int | None = None,
                           generator: torch.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The counts `(N, num_classes)` of f^l's classes on x^l + ε^l and of f^r's on x^r + ε^r, `num` draws each."""
        return self._sub_image_counts(images, num, batch_size, generator, mixture=False)

    def sample_noise(self, x: torch.Tensor, num: int, batch_size: int | None = None,
                     generator: torch.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The counts of f^l's and f^r's classes for one image `(C, H, W)`."""
        counts_l, counts_r = self.sample_noise_batch(self.check_images(x, single=True), num, batch_size, generator)
        return counts_l[0], counts_r[0]

    def predict(self, x: torch.Tensor, n: int, alpha: float, batch_size: int | None = None,
                generator: torch.Generator | None = None) -> int:
        """PREDICT for DRS: Cohen's Algorithm 1 applied to the randomized base classifier h that classifies
        x^l + ε^l with f^l or x^r + ε^r with f^r by a fair coin.

        P(h(x, ε) = c) is the average of the two smoothed probabilities, so g_DRS(x) is h's smoothed prediction and
        the binomial test of Algorithm 1 applies unchanged (n draws of h, each one sub-image classification).
        """
        counts_l, counts_r = self._sub_image_counts(self.check_images(x, single=True), n, batch_size, generator,
                                                    mixture=True)
        counts = counts_l[0] + counts_r[0]
        return predict_from_counts(counts, alpha)

    def certify_batch(self, images: torch.Tensor, n0: int, n: int, alpha: float, batch_size: int | None = None,
                      generator: torch.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """CERTIFY for DRS (Xia et al., §3) for every image: classes and radii R = σ (Φ⁻¹(p_A^l) + Φ⁻¹(p_A^r)) / √2.

        1. guess c_A as the top class of the summed counts of both sub-images on n0 selection draws;
        2. count c_A among f^l's and f^r's classes on n fresh draws and bound each probability from below with a
           one-sided Clopper–Pearson bound at 1 − α/2, so that both bounds hold together with probability ≥ 1 − α
           (union bound; the authors' code spends α on each, i.e. 1 − 2α overall);
        3. combine them with `dual_certified_radius`; abstain when the radius is not positive.
        """
        images = self.check_images(images)
        generator = generator if generator is not None else self.generator(images.device)
        selection_l, selection_r = self.sample_noise_batch(images, n0, batch_size, generator)
        c_a = (selection_l + selection_r).argmax(1)
        counts_l, counts_r = self.sample_noise_batch(images, n, batch_size, generator)
        classes, radii = np.full(len(c_a), ABSTAIN, dtype=np.int64), np.zeros(len(c_a))
        for i, c in enumerate(c_a):
            p_a_lower_l = clopper_pearson_lower_bound(int(counts_l[i, c]), int(n), alpha / 2)
            p_a_lower_r = clopper_pearson_lower_bound(int(counts_r[i, c]), int(n), alpha / 2)
            radius = dual_certified_radius(p_a_lower_l, p_a_lower_r, self.sigma)
            if radius > 0:
                classes[i], radii[i] = c, radius
        return classes, radii

    def max_certified_radius(self, n: int, alpha: float) -> float:
        """The largest radius CERTIFY can return with n samples: √2 σ Φ⁻¹((α/2)^(1/n)), when all 2n agree."""
        bound = (alpha / 2) ** (1 / n)
        return dual_certified_radius(bound, bound, self.sigma)


# ----------------------------------------------------------------------------------- certifying many images


@dataclass
class CertificationResult:
    """CERTIFY's output on a set of labelled images, and the statistics the papers report.

    `certified_accuracy(r)` is the fraction of images whose prediction is correct *and* certified at radius ≥ r
    (Cohen et al., §4: "approximate certified test set accuracy"); at r = 0 it is the accuracy of the smoothed
    classifier, abstentions counting as errors.
    """

    labels: np.ndarray
    predictions: np.ndarray
    radii: np.ndarray
    seconds: float = 0.0
    settings: dict = field(default_factory=dict)

    @property
    def num_examples(self) -> int:
        return int(len(self.labels))

    @property
    def correct(self) -> np.ndarray:
        return self.predictions == self.labels

    def certified_accuracy(self, radius: float) -> float:
        return float(np.mean(self.correct & (self.radii >= radius))) if self.num_examples else 0.0

    def curve(self, radii) -> np.ndarray:
        """Certified accuracy at each radius of `radii`."""
        return np.array([self.certified_accuracy(r) for r in radii])

    @property
    def smoothed_accuracy(self) -> float:
        """Clean accuracy of the smoothed classifier (an abstention is an error)."""
        return float(np.mean(self.correct)) if self.num_examples else 0.0

    @property
    def abstain_rate(self) -> float:
        return float(np.mean(self.predictions == ABSTAIN)) if self.num_examples else 0.0

    @property
    def average_certified_radius(self) -> float:
        """Mean certified radius over all images, counting 0 for wrong or abstained ones (ACR, Zhai et al., 2020)."""
        return float(np.mean(np.where(self.correct, self.radii, 0.0))) if self.num_examples else 0.0

    def to_dict(self) -> dict:
        return {"labels": self.labels.tolist(), "predictions": self.predictions.tolist(),
                "radii": [round(float(r), 6) for r in self.radii], "seconds": self.seconds, "settings": self.settings}


def certify_dataset(smoothed: SmoothedClassifier, images: torch.Tensor, labels, n0: int, n: int, alpha: float,
                    batch_size: int | None = None, images_per_call: int = 50, progress: bool = False) -> CertificationResult:
    """Run CERTIFY on every image (float in [0, 1], or uint8) with one seeded noise stream for the whole set.

    Args:
        smoothed: a [`SmoothedClassifier`] or [`DualSmoothedClassifier`].
        images (`torch.Tensor` of shape `(N, 3, H, W)`), labels (N integers): the images to certify.
        n0, n, alpha: CERTIFY's selection samples, estimation samples and failure probability.
        images_per_call: images whose noisy copies share forward passes (`certify_batch`).
    """
    from tqdm.auto import tqdm

    if int(n0) < 1 or int(n) < 1:
        raise ValueError(f"n0 and n (numbers of noise samples) must be ≥ 1; got n0={n0!r}, n={n!r}.")
    if images.dtype == torch.uint8:
        images = images.float() / 255
    labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels, dtype=np.int64)
    if images.dim() != 4 or images.shape[0] != len(labels):
        raise ValueError(f"images must be (N, channels, height, width) with one label each; got {tuple(images.shape)} "
                         f"and {len(labels)} labels.")
    device = next(smoothed.base_classifier.parameters()).device
    generator = smoothed.generator(device)
    predictions, radii = [], []
    start = time.perf_counter()
    with tqdm(total=len(labels), desc="Certifying", unit="img", disable=not progress) as bar:
        for first in range(0, len(labels), images_per_call):
            chunk = images[first : first + images_per_call].to(device)
            classes, chunk_radii = smoothed.certify_batch(chunk, n0, n, alpha, batch_size, generator)
            predictions.append(classes)
            radii.append(chunk_radii)
            bar.update(len(chunk))
    settings = {"method": "drs" if isinstance(smoothed, DualSmoothedClassifier) else "rs", "sigma": smoothed.sigma,
                "n0": int(n0), "n": int(n), "alpha": float(alpha), "seed": smoothed.seed}
    return CertificationResult(labels, np.concatenate(predictions) if predictions else np.zeros(0, dtype=np.int64),
                               np.concatenate(radii) if radii else np.zeros(0), time.perf_counter() - start, settings)


def draw_certified_accuracy(ax, curves: dict, title: str = "Certified accuracy", radius_caps: dict | None = None) -> None:
    """Draw certified accuracy against the ℓ2 radius on `ax`, one line per entry of `curves` (`{label: (radii,
    accuracies)}`); `radius_caps` (`{label: radius}`) marks each method's largest certifiable radius for its n."""
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    for colour, (label, (radii, accuracies)) in zip(colours, curves.items()):
        ax.step(radii, accuracies, where="post", label=label, color=colour, linewidth=2)
        if radius_caps and label in radius_caps:
            ax.axvline(radius_caps[label], color=colour, linestyle=":", linewidth=1,
                       label=f"largest radius {label} can certify ({radius_caps[label]:.3g})")
    ax.set(xlabel="ℓ2 radius (pixels in [0, 1])", ylabel="certified accuracy", title=title)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def plot_certified_accuracy(curves: dict, path, title: str = "Certified accuracy", radius_caps: dict | None = None):
    """`draw_certified_accuracy` on a new figure saved atomically to `path` (no global Matplotlib state)."""
    import os

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.2))
    FigureCanvasAgg(fig)
    draw_certified_accuracy(fig.subplots(), curves, title, radius_caps)
    fig.tight_layout()
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)
    return path
