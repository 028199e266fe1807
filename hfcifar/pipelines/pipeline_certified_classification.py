"""The `certified-classification` pipeline: Randomized Smoothing's CERTIFY on one image, as a transformers Pipeline.

Cohen, Rosenfeld & Kolter, "Certified Adversarial Robustness via Randomized Smoothing" (ICML 2019), Algorithm 2:
the model is the base classifier f of the smoothed classifier g(x) = argmax_c P(f(x + ε) = c), ε ~ N(0, σ² I); the
pipeline returns g's class for the image — or "abstain" — and the ℓ2 radius within which g provably keeps it (with
probability at least 1 − α over the noise). Use a model trained with Gaussian noise at the same σ
(`hfcifar.methods.dual_randomized_smoothing.train_base_classifier`, which records σ as `config.smoothing_sigma`).

    from transformers import pipeline
    certify = pipeline("certified-classification", model="runs/rs")   # `import hfcifar` first, or trust_remote_code
    certify("cat.png", sigma=0.25, n=1000)
    # {'label': 'cat', 'class_id': 3, 'radius': 0.41, 'sigma': 0.25, 'n0': 100, 'n': 1000, 'alpha': 0.001}

This module imports only torch, transformers, numpy and scipy, so it travels to the Hub beside the weights
(`python push_to_hub.py DIR --repo-id … --pipeline certified-classification`). The smoothing code below is repeated
from `hfcifar.certification` under `# Copied from` markers (checked by
`python -m hfcifar.utils.check_copies`). DRS needs two base classifiers and is not served here; certify it with
`hfcifar eval --metric certified_accuracy --option method=drs`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from transformers import AutoModelForImageClassification, Pipeline
from transformers.image_utils import load_image

TASK = "certified-classification"
PT_MODEL = AutoModelForImageClassification
TYPE = "image"

# Copied from hfcifar.certification.bounds.ABSTAIN
ABSTAIN = -1


# Copied from hfcifar.certification.bounds.clopper_pearson_lower_bound
def clopper_pearson_lower_bound(successes: int, trials: int, alpha: float) -> float:
    """One-sided (1 − α) Clopper–Pearson lower confidence bound on a binomial proportion.

    This is `LowerConfBound(n_A, n, 1 − α)` of Cohen et al. (2019), Algorithm 2: the smallest p that a count of
    `successes` out of `trials` does not reject at level α, i.e. the α-quantile of Beta(k, n − k + 1), and 0 when
    k = 0. For k = n it has the closed form α^(1/n).

    Args:
        successes (`int`): k, the number of draws that returned the class (0 ≤ k ≤ n).
        trials (`int`): n, the number of draws (≥ 1).
        alpha (`float`): the failure probability α, in (0, 1).
    """
    # scipy.stats is imported on first use: `import hfcifar` registers the pipeline that carries a copy of this
    # function, and importing scipy.stats would add a second to every `import hfcifar`.
    from scipy.stats import beta

    if int(trials) != trials or trials < 1:
        raise ValueError(f"trials must be a positive integer; got {trials!r}.")
    if int(successes) != successes or not 0 <= successes <= trials:
        raise ValueError(f"successes must be an integer in [0, trials={trials}]; got {successes!r}.")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha (the failure probability) must lie in (0, 1); got {alpha!r}.")
    if successes == 0:
        return 0.0
    return float(beta.ppf(alpha, int(successes), int(trials - successes + 1)))


# Copied from hfcifar.certification.bounds.certified_radius
def certified_radius(p_a_lower: float, sigma: float) -> float:
    """Cohen et al. (2019), Theorem 1: the ℓ2 radius R = σ Φ⁻¹(p_A) certified by a lower bound p_A > 1/2.

    Returns 0.0 when p_A ≤ 1/2: CERTIFY abstains there (no radius is certified).
    """
    from scipy.stats import norm  # imported on first use, see `clopper_pearson_lower_bound`

    if p_a_lower <= 0.5:
        return 0.0
    return float(sigma * norm.ppf(p_a_lower))


# Copied from hfcifar.certification.bounds.predict_from_counts
def predict_from_counts(counts: np.ndarray, alpha: float) -> int:
    """The end of PREDICT (Cohen et al., Algorithm 1): the top class, or `ABSTAIN` when a two-sided binomial test of
    its count against the runner-up's (Hung & Fithian, 2019) has p-value above α."""
    from scipy.stats import binomtest  # imported on first use, see `clopper_pearson_lower_bound`

    top_two = np.argsort(counts, kind="stable")[::-1][:2]
    count_a, count_b = int(counts[top_two[0]]), int(counts[top_two[1]])
    if binomtest(count_a, count_a + count_b, 0.5).pvalue > alpha:
        return ABSTAIN
    return int(top_two[0])


# Copied from hfcifar.certification.smoothing.SmoothedClassifier
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


class CertifiedClassificationPipeline(Pipeline):
    """Certified classification with Randomized Smoothing: `{"label", "class_id", "radius", …}` per image.

    Call arguments (all optional):
        sigma (`float`): the noise level σ; defaults to the model's `config.smoothing_sigma` (required otherwise).
        n0 (`int`, defaults to 100), n (`int`, defaults to 1000), alpha (`float`, defaults to 0.001): CERTIFY's
            selection samples, estimation samples and failure probability.
        noise_batch_size (`int`, defaults to 1000): noisy copies per forward pass.
        seed (`int`, defaults to 0): seed of the noise, so the answer is deterministic.

    The answer's `label` is `"abstain"` (and `class_id` -1, `radius` 0.0) when CERTIFY abstains.
    """

    _load_image_processor = True

    def _sanitize_parameters(self, sigma=None, n0=None, n=None, alpha=None, noise_batch_size=None, seed=None, **kwargs):
        forward = {k: v for k, v in {"sigma": sigma, "n0": n0, "n": n, "alpha": alpha,
                                     "noise_batch_size": noise_batch_size, "seed": seed}.items() if v is not None}
        return {}, forward, {}

    def preprocess(self, image):
        image = load_image(image) if isinstance(image, str) else image
        return self.image_processor(image, return_tensors="pt")

    def _forward(self, model_inputs, sigma=None, n0=100, n=1000, alpha=0.001, noise_batch_size=1000, seed=0):
        config = self.model.config
        if getattr(config, "drs_sub_image", None) is not None:
            raise ValueError(f"This model is a DRS base classifier of the sub-image {config.drs_sub_image!r}; the "
                             "certified-classification pipeline smooths whole images (Randomized Smoothing).")
        sigma = sigma if sigma is not None else getattr(config, "smoothing_sigma", None)
        if sigma is None:
            raise ValueError("Pass sigma, the noise level the model was trained with (e.g. sigma=0.25): its config "
                             "records no smoothing_sigma.")
        smoothed = SmoothedClassifier(self.model, float(sigma), batch_size=noise_batch_size, seed=seed)
        pixel_values = model_inputs["pixel_values"][0].to(self.device, torch.float32)
        class_id, radius = smoothed.certify(pixel_values, n0, n, alpha)
        return {"class_id": class_id, "radius": radius, "sigma": float(sigma), "n0": int(n0), "n": int(n),
                "alpha": float(alpha)}

    def postprocess(self, model_outputs):
        class_id = model_outputs["class_id"]
        label = "abstain" if class_id == ABSTAIN else self.model.config.id2label[class_id]
        return {"label": label, **model_outputs}
