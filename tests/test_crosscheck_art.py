"""hfcifar's hand-written attacks and randomized smoothing, cross-checked against the Adversarial Robustness Toolbox.

ART (https://github.com/Trusted-AI/adversarial-robustness-toolbox) is an independent implementation; it is a test-only
dependency (`pip install -e .[test]`), and this file is skipped without it.

What is compared, and how closely:

- FGSM L∞ and PGD L∞ (no random start, fixed steps; untargeted and targeted): the same adversarial examples to 1e-5
  (bit for bit on CPU today).
  Both step along sign(∇ₓ CE) and keep the iterate in B∞(x, ε) ∩ [0, 1]; ART clips to [0, 1] before projecting on
  the ball and hfcifar after, which is the same set intersection for L∞ boxes.
- PGD L2 (no random start): the step (α · g/‖g‖₂) and the projection (rescaling onto the ε-ball) are the same, but
  the order of the box clip and the projection differs (ART: clip then rescale; hfcifar: rescale then clip), which
  gives different points once a pixel hits 0 or 1. Compared exactly on images away from the box edges, where the
  clip never acts; on full-range images both are checked to be valid (inside the box and the ball).
- CW-L2: ART's optimizer (gradient descent with step halving/doubling) differs from the paper's Adam that hfcifar
  follows, so the tensors differ; compared by behaviour on a linear model with a closed-form minimum distance: both
  succeed on every image with a perturbation near that minimum.
- Randomized smoothing (Cohen et al.): the Clopper–Pearson bound, the certified radius σ·Φ⁻¹(p_A) and PREDICT's
  binomial test on the same counts, to 1e-12; end to end on a classifier that noise cannot flip (both certify the
  same class with the same radius). ART adds unclipped noise and hfcifar clamps to [0, 1], so counts of a noisy
  classifier are not comparable sample by sample.

Models take images in [0, 1] and normalize inside (hfcifar's convention), so ART sees them with `clip_values=(0, 1)`
and no preprocessing of its own.
"""

import numpy as np
import pytest
import torch
from scipy.stats import norm
from torch import nn

art = pytest.importorskip("art", reason="cross-checks need the Adversarial Robustness Toolbox (pip install -e .[test])")

from art.attacks.evasion import CarliniL2Method, FastGradientMethod, ProjectedGradientDescent  # noqa: E402
from art.estimators.classification import PyTorchClassifier  # noqa: E402

from hfcifar.attacks import CW, FGSM, PGD, PGDL2  # noqa: E402
from hfcifar.certification import bounds, smoothing  # noqa: E402

SIZE, CLASSES = 8, 10


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class NormalizingNet(nn.Module):
    """A tiny conv classifier that takes [0, 1] images and normalizes them itself, as hfcifar models do."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.register_buffer("mean", torch.tensor([0.49, 0.48, 0.45]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.25, 0.24, 0.26]).view(1, 3, 1, 1))
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                                  nn.Linear(128, CLASSES))

    def forward(self, pixel_values):
        return self.body((pixel_values - self.mean) / self.std)


def linear_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * SIZE * SIZE, CLASSES))
    with torch.no_grad():
        model[1].weight.mul_(4)
    return model.eval()


def images_and_labels(n: int = 8, low: float = 0.0, high: float = 1.0, seed: int = 0):
    generator = torch.Generator().manual_seed(10_000 + seed)
    images = low + (high - low) * torch.rand(n, 3, SIZE, SIZE, generator=generator)
    labels = torch.randint(0, CLASSES, (n,), generator=generator)
    return images, labels


def art_classifier(model: nn.Module) -> PyTorchClassifier:
    return PyTorchClassifier(model=model.eval(), loss=nn.CrossEntropyLoss(), input_shape=(3, SIZE, SIZE),
                             nb_classes=CLASSES, clip_values=(0.0, 1.0), device_type="cpu")


def run_art(attack, images, labels) -> torch.Tensor:
    return torch.from_numpy(attack.generate(x=images.numpy(), y=labels.numpy()))


# -- bounded attacks: the same tensors ---------------------------------------------------------------------------
@pytest.mark.parametrize("targeted", [False, True])
def test_fgsm_matches_art_fast_gradient_method(targeted):
    model = NormalizingNet()
    images, labels = images_and_labels()
    ours = FGSM(model, eps=8 / 255).set_targeted(targeted)(images, labels)
    theirs = run_art(FastGradientMethod(art_classifier(model), norm=np.inf, eps=8 / 255, eps_step=8 / 255,
                                        targeted=targeted, num_random_init=0, batch_size=len(images)), images, labels)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)
    assert (ours - images).abs().amax() > 7 / 255  # the attack moved the pixels: not a vacuous comparison


@pytest.mark.parametrize("targeted", [False, True])
def test_pgd_linf_matches_art_projected_gradient_descent(targeted):
    model = NormalizingNet()
    images, labels = images_and_labels()  # full [0, 1] range: the box clip is active on many pixels
    ours = PGD(model, eps=8 / 255, alpha=2 / 255, steps=5, random_start=False).set_targeted(targeted)(images, labels)
    theirs = run_art(ProjectedGradientDescent(art_classifier(model), norm=np.inf, eps=8 / 255, eps_step=2 / 255,
                                              max_iter=5, targeted=targeted, num_random_init=0,
                                              batch_size=len(images), verbose=False), images, labels)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)
    assert ((ours == 0) | (ours == 1)).any() and (ours - images).abs().amax() > 7 / 255


def test_pgd_l2_matches_art_where_the_box_does_not_bind():
    model = NormalizingNet()
    images, labels = images_and_labels(low=0.4, high=0.6)  # a step can move a pixel by ≤ α: the box never clips
    ours = PGDL2(model, eps=0.5, alpha=0.1, steps=8, random_start=False)(images, labels)
    theirs = run_art(ProjectedGradientDescent(art_classifier(model), norm=2, eps=0.5, eps_step=0.1, max_iter=8,
                                              num_random_init=0, batch_size=len(images), verbose=False), images, labels)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)
    norms = (ours - images).flatten(1).norm(dim=1)
    assert torch.allclose(norms, torch.full_like(norms, 0.5), atol=1e-4)  # 8 steps of 0.1 reach the ball's surface


def test_pgd_l2_differs_from_art_only_in_clip_order_at_the_box_edge():
    model = NormalizingNet()
    images, labels = images_and_labels()
    ours = PGDL2(model, eps=0.5, alpha=0.2, steps=5, random_start=False)(images, labels)
    theirs = run_art(ProjectedGradientDescent(art_classifier(model), norm=2, eps=0.5, eps_step=0.2, max_iter=5,
                                              num_random_init=0, batch_size=len(images), verbose=False), images, labels)
    for adversarial in (ours, theirs):  # both valid: in the box and in the ε-ball
        assert adversarial.min() >= 0 and adversarial.max() <= 1
        assert (adversarial - images).flatten(1).norm(dim=1).max() <= 0.5 + 1e-5
    # the same attack in both, apart from the clip order: close (measured 0.035 in L2), but not the same points
    difference = (ours - theirs).flatten(1).norm(dim=1).max()
    assert 1e-4 < difference < 0.1


# -- CW-L2: the same behaviour ------------------------------------------------------------------------------------
def linear_boundary_distance(model, images, labels):
    """Minimum L2 distance to another class's region for a linear model (without the box, a lower bound with it)."""
    weight, logits = model[1].weight, model(images).detach()
    distances = []
    for z, y in zip(logits, labels):
        d = (z[y] - z) / (weight[y] - weight).norm(dim=1)
        d[y] = float("inf")
        distances.append(d.min())
    return torch.stack(distances).detach()


def test_cw_l2_reaches_the_same_success_as_art_on_a_linear_model():
    model = linear_model()
    images, _ = images_and_labels(n=6, low=0.3, high=0.7)
    labels = model(images).argmax(1)  # correctly classified: the attack has to cross a boundary
    minimum = linear_boundary_distance(model, images, labels)
    attack = CW(model, binary_search_steps=6, steps=100, lr=0.01)
    ours = attack(images, labels)
    theirs = run_art(CarliniL2Method(art_classifier(model), confidence=0.0, learning_rate=0.01, binary_search_steps=6,
                                     max_iter=100, initial_const=0.01, batch_size=len(images), verbose=False),
                     images, labels)
    for adversarial in (ours, theirs):
        assert (model(adversarial).argmax(1) != labels).all()  # success on every image, for both
        distance = (adversarial - images).flatten(1).norm(dim=1)
        assert (distance >= minimum - 1e-4).all()  # nobody beats the closed form ...
        assert (distance <= 1.5 * minimum + 0.05).all()  # ... and both land near it
    assert attack.last_success.all()


# -- randomized smoothing -----------------------------------------------------------------------------------------


def art_smoothed(model: nn.Module, sigma: float, n0: int, alpha: float, classes: int):
    pytest.importorskip("statsmodels", reason="ART's randomized smoothing takes its Clopper–Pearson bound from statsmodels")
    from art.estimators.certification.randomized_smoothing import PyTorchRandomizedSmoothing

    return PyTorchRandomizedSmoothing(model=model.eval(), loss=nn.CrossEntropyLoss(), input_shape=(3, SIZE, SIZE),
                                      nb_classes=classes, clip_values=(0.0, 1.0), device_type="cpu", sample_size=n0,
                                      scale=sigma, alpha=alpha)


def counts_from(*arrays):
    """A stand-in for the sampling step: returns the given class counts, one array per call."""
    queue = [np.asarray(a) for a in arrays]
    return lambda *args, **kwargs: queue.pop(0).astype(np.float64)


# (selection counts of n0 = 20, estimation counts of n = 100) over 3 classes; the last two abstain
COUNT_CASES = [([20, 0, 0], [100, 0, 0]), ([3, 15, 2], [10, 85, 5]), ([2, 3, 15], [20, 10, 70]),
               ([12, 8, 0], [55, 45, 0]), ([5, 5, 10], [60, 20, 20])]


@pytest.mark.parametrize("successes,trials", [(0, 10), (1, 10), (7, 10), (10, 10), (60, 100), (999, 1000)])
@pytest.mark.parametrize("alpha", [0.001, 0.05])
def test_clopper_pearson_bound_matches_art(successes, trials, alpha):
    smoothed = art_smoothed(nn.Identity(), sigma=0.25, n0=10, alpha=alpha, classes=2)
    assert bounds.clopper_pearson_lower_bound(successes, trials, alpha) == pytest.approx(
        smoothed._lower_confidence_bound(successes, trials), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("selection,estimation", COUNT_CASES)
@pytest.mark.parametrize("sigma", [0.12, 0.5])
def test_certify_matches_art_on_the_same_counts(selection, estimation, sigma):
    """CERTIFY's class and radius σ·Φ⁻¹(p_A) from the same selection/estimation counts."""
    alpha, n0, n = 0.001, sum(selection), sum(estimation)
    image = torch.full((1, 3, SIZE, SIZE), 0.5)
    theirs = art_smoothed(nn.Identity(), sigma, n0, alpha, classes=3)
    theirs._prediction_counts = counts_from(selection, estimation)
    (art_class,), (art_radius,) = theirs.certify(image.numpy(), n=n)
    ours = smoothing.SmoothedClassifier(nn.Identity(), sigma, num_classes=3)
    ours.sample_noise_batch = counts_from([selection], [estimation])
    our_class, our_radius = ours.certify(image[0], n0=n0, n=n, alpha=alpha)
    # ART abstains as -1 too; the rules differ only at p_A = 1/2 exactly (ART certifies radius 0 there)
    assert our_class == art_class and our_radius == pytest.approx(art_radius, rel=1e-12, abs=1e-12)
    p_a = bounds.clopper_pearson_lower_bound(estimation[int(np.argmax(selection))], n, alpha)
    if p_a > 0.5:
        assert our_radius == pytest.approx(sigma * norm.ppf(p_a), rel=1e-12)
    else:
        assert our_class == bounds.ABSTAIN and our_radius == 0.0


@pytest.mark.parametrize("counts", [[100, 0, 0], [40, 60, 0], [48, 52, 0], [10, 10, 80], [30, 30, 40]])
@pytest.mark.parametrize("alpha", [0.001, 0.1])
def test_predict_matches_art_on_the_same_counts(counts, alpha):
    """PREDICT: the top class unless the binomial test of top vs runner-up has p-value > α (then abstain)."""
    theirs = art_smoothed(nn.Identity(), 0.25, sum(counts), alpha, classes=3)
    theirs._prediction_counts = counts_from(counts)
    art_one_hot = theirs.predict(np.full((1, 3, SIZE, SIZE), 0.5, dtype=np.float32))[0]
    art_class = int(np.argmax(art_one_hot)) if art_one_hot.any() else bounds.ABSTAIN  # ART abstains as zeros
    assert bounds.predict_from_counts(np.asarray(counts), alpha) == art_class


class Brightness(nn.Module):
    """Class 1 when the mean pixel is above 0.3, class 0 below: σ = 0.25 noise moves the mean of 192 pixels by
    ~0.02, so on images of constant value 0.1 or 0.5 every noisy copy gets the same class (with or without clamping)."""

    def forward(self, pixel_values):
        margin = pixel_values.mean(dim=(1, 2, 3)) - 0.3
        return torch.stack([-margin, margin], dim=1) * 100


def test_smoothed_prediction_and_radius_match_art_end_to_end():
    sigma, n0, n, alpha = 0.25, 32, 200, 0.001
    images = torch.stack([torch.full((3, SIZE, SIZE), 0.5), torch.full((3, SIZE, SIZE), 0.1)])
    theirs = art_smoothed(Brightness(), sigma, n0, alpha, classes=2)
    art_classes, art_radii = theirs.certify(images.numpy(), n=n, batch_size=n)
    ours = smoothing.SmoothedClassifier(Brightness(), sigma, num_classes=2)
    our_classes, our_radii = ours.certify_batch(images, n0=n0, n=n, alpha=alpha)
    assert our_classes.tolist() == art_classes.tolist() == [1, 0]
    expected = ours.max_certified_radius(n, alpha)  # σ Φ⁻¹(α^(1/n)): all n copies agree
    np.testing.assert_allclose(our_radii, art_radii, rtol=1e-12)
    np.testing.assert_allclose(our_radii, expected, rtol=1e-12)
    art_predictions = theirs.predict(images.numpy(), batch_size=n0).argmax(1)
    assert [ours.predict(image, n=n0, alpha=alpha) for image in images] == art_predictions.tolist() == [1, 0]
