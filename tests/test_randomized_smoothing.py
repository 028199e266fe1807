"""Randomized Smoothing and Dual Randomized Smoothing (method 29): the Clopper–Pearson bound, the certified radii,
the DRS sub-images, PREDICT/CERTIFY on models whose answer is known, the noise trainer, the certified_accuracy
metric, the certified-classification pipeline and the claim check's decision rule."""

import ast
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import beta, binom, binomtest, norm
from transformers import AutoModelForImageClassification, pipeline

import hfcifar
from hfcifar.data import CifarTensorDataset, load_cifar10, load_train_and_eval
from hfcifar.evaluation import evaluate_classifier, write_eval_results
from hfcifar.certification import (
    ABSTAIN,
    DualSmoothedClassifier,
    SmoothedClassifier,
    certified_radius,
    certify_dataset,
    clopper_pearson_lower_bound,
    downsample_sub_images,
    dual_certified_radius,
    merge_sub_images,
    noisy_base_input,
    upsample_sub_image,
)
from hfcifar.methods.dual_randomized_smoothing import (
    GaussianNoiseTrainer,
    GaussianNoiseTrainingArguments,
    train_base_classifier,
)
from hfcifar.methods.dual_randomized_smoothing import claim as drs_claim
from hfcifar.pipelines import pipeline_certified_classification
from hfcifar.utils.check_copies import PACKAGE_ROOT


class ConstantClassifier(torch.nn.Module):
    """Always answers `label`, whatever the noise: p_A = 1 exactly."""

    def __init__(self, label: int = 3, num_classes: int = 10):
        super().__init__()
        self.label, self.num_classes = label, num_classes
        self.config = SimpleNamespace(num_labels=num_classes)
        self.weight = torch.nn.Parameter(torch.zeros(1))  # certify_dataset finds the device from a parameter

    def forward(self, pixel_values):
        logits = torch.zeros(pixel_values.shape[0], self.num_classes)
        logits[:, self.label] = 1
        return logits


class CoinClassifier(torch.nn.Module):
    """Class 0 when the top-left pixel is above 1/2, else class 1: on a grey image under noise, p_A = 1/2."""

    def __init__(self):
        super().__init__()
        self.config = SimpleNamespace(num_labels=10)
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, pixel_values):
        z = pixel_values[:, 0, 0, 0] - 0.5
        return torch.stack([z, -z] + [torch.full_like(z, -1.0)] * 8, dim=1)


GREY = torch.full((3, 32, 32), 0.5)


# -- the Clopper–Pearson bound and the radii ------------------------------------------------------------------
@pytest.mark.parametrize("n, alpha", [(1, 0.05), (100, 0.001), (1000, 0.001), (256, 0.01)])
def test_clopper_pearson_closed_forms(n, alpha):
    # k = n: P[Bin(n, p) ≥ n] = p^n = α; k = 1: P[Bin(n, p) ≥ 1] = 1 − (1 − p)^n = α; k = 0: nothing to bound
    assert clopper_pearson_lower_bound(n, n, alpha) == pytest.approx(alpha ** (1 / n), rel=1e-9)
    assert clopper_pearson_lower_bound(1, n, alpha) == pytest.approx(1 - (1 - alpha) ** (1 / n), rel=1e-7)
    assert clopper_pearson_lower_bound(0, n, alpha) == 0.0


@pytest.mark.parametrize("k, n, alpha", [(7, 10, 0.05), (480, 500, 0.001), (55, 100, 0.001), (3, 1000, 0.1)])
def test_clopper_pearson_matches_scipy_and_its_definition(k, n, alpha):
    bound = clopper_pearson_lower_bound(k, n, alpha)
    # scipy's exact two-sided interval at 1 − 2α has the one-sided 1 − α bound as its lower end
    assert bound == pytest.approx(binomtest(k, n).proportion_ci(confidence_level=1 - 2 * alpha, method="exact").low, rel=1e-7)
    # the definition: the p at which k or more successes out of n have probability exactly α
    assert binom.sf(k - 1, n, bound) == pytest.approx(alpha, rel=1e-6)
    assert bound < k / n


@pytest.mark.parametrize("args", [(5, 4, 0.01), (-1, 4, 0.01), (2, 0, 0.01), (2, 4, 0.0), (2, 4, 1.0), (1.5, 4, 0.1)])
def test_clopper_pearson_rejects_bad_counts(args):
    with pytest.raises(ValueError):
        clopper_pearson_lower_bound(*args)


def test_certified_radius_is_sigma_times_the_normal_quantile():
    assert certified_radius(norm.cdf(1.0), 0.25) == pytest.approx(0.25)
    assert certified_radius(0.5, 0.25) == 0.0 and certified_radius(0.3, 0.25) == 0.0  # abstain: no radius


def test_dual_radius_is_tight_and_valid():
    sigma, p_l, p_r = 0.5, 0.9, 0.7
    a_l, a_r = norm.ppf(p_l), norm.ppf(p_r)
    radius = dual_certified_radius(p_l, p_r, sigma)
    assert radius == pytest.approx(sigma * (a_l + a_r) / math.sqrt(2))
    # Worst case over how a perturbation of norm r splits between the sub-images: the summed probability of c_A
    # stays above 1 inside the radius and reaches 1 on it (tight).
    def worst_sum(r):
        angles = np.linspace(0, np.pi / 2, 20001)
        return np.min(norm.cdf(a_l - r * np.cos(angles) / sigma) + norm.cdf(a_r - r * np.sin(angles) / sigma))
    assert worst_sum(0.999 * radius) > 1 and worst_sum(radius) == pytest.approx(1, abs=1e-6)
    # √(R_l² + R_r²) (the authors' CIFAR-10 script) is not a certificate: a perturbation inside it flips the sum
    a_l, a_r = 3.0, 0.1
    assert math.hypot(1.0, 2.83) < math.hypot(a_l, a_r) and norm.cdf(a_l - 1.0) + norm.cdf(a_r - 2.83) < 1
    # one sub-image below 1/2 can still be certified by the other; a non-positive sum abstains
    assert dual_certified_radius(0.4, 0.99, sigma) > 0
    assert dual_certified_radius(0.3, 0.6, sigma) == 0.0 and dual_certified_radius(0.0, 0.99, sigma) == 0.0


# -- the DRS sub-images ----------------------------------------------------------------------------------------
def test_sub_images_partition_the_pixels_in_a_checkerboard():
    images = torch.rand(2, 3, 32, 32)
    x_l, x_r = downsample_sub_images(images)
    assert x_l.shape == x_r.shape == (2, 3, 32, 16)
    assert torch.equal(merge_sub_images(x_l, x_r), images)
    i, j = 5, 7  # i + j even → x^l; its packed column is j // 2
    assert x_l[0, 1, i, j // 2] == images[0, 1, i, j] and x_r[0, 1, i, (j + 1) // 2] == images[0, 1, i, j + 1]
    delta = torch.randn(2, 3, 32, 32)
    d_l, d_r = downsample_sub_images(delta)
    assert torch.allclose(delta.square().sum(), d_l.square().sum() + d_r.square().sum())  # ‖δ‖² = ‖δ^l‖² + ‖δ^r‖²
    up = upsample_sub_image(x_l)
    assert up.shape == (2, 3, 32, 32) and up[0, 1, i, j] == images[0, 1, i, j]  # each pixel back at its place
    with pytest.raises(ValueError, match="even width"):
        downsample_sub_images(torch.rand(1, 3, 32, 31))


def test_noisy_sub_image_view_ignores_the_other_sub_image():
    images = torch.rand(4, 3, 32, 32)
    x_l, x_r = downsample_sub_images(images)
    changed = merge_sub_images(x_l, torch.rand_like(x_r))
    view = lambda x, sub: noisy_base_input(x, 0.25, sub, generator=torch.Generator().manual_seed(1))
    assert torch.equal(view(images, "l"), view(changed, "l")) and not torch.equal(view(images, "r"), view(changed, "r"))
    whole = view(images, None)
    assert whole.shape == images.shape and whole.min() >= 0 and whole.max() <= 1 and not torch.equal(whole, images)
    with pytest.raises(ValueError, match="sub_image"):
        noisy_base_input(images, 0.25, "left")


# -- PREDICT and CERTIFY on models whose answer is known -------------------------------------------------------
@pytest.mark.parametrize("n, alpha", [(100, 0.001), (500, 0.01)])
def test_constant_classifier_is_certified_with_the_largest_radius(n, alpha):
    sigma = 0.5
    rs = SmoothedClassifier(ConstantClassifier(3), sigma)
    assert rs.certify(torch.rand(3, 32, 32), n0=10, n=n, alpha=alpha) == (3, pytest.approx(sigma * norm.ppf(alpha ** (1 / n))))
    assert rs.predict(torch.rand(3, 32, 32), n=n, alpha=alpha) == 3
    drs = DualSmoothedClassifier(ConstantClassifier(3), sigma=sigma)
    expected = math.sqrt(2) * sigma * norm.ppf((alpha / 2) ** (1 / n))  # both sub-images agree n times out of n
    assert drs.certify(torch.rand(3, 32, 32), n0=10, n=n, alpha=alpha) == (3, pytest.approx(expected))
    assert drs.max_certified_radius(n, alpha) == pytest.approx(expected)
    assert drs.predict(torch.rand(3, 32, 32), n=n, alpha=alpha) == 3


def test_a_coin_flip_classifier_abstains_with_radius_zero():
    for smoothed in (SmoothedClassifier(CoinClassifier(), 0.25), DualSmoothedClassifier(CoinClassifier(), sigma=0.25)):
        assert smoothed.certify(GREY, n0=20, n=200, alpha=0.001) == (ABSTAIN, 0.0)
        assert smoothed.predict(GREY, n=200, alpha=0.001) == ABSTAIN
    counts = SmoothedClassifier(CoinClassifier(), 0.25).sample_noise(GREY, 400)
    assert counts.sum() == 400 and 150 < counts[0] < 250 and counts[2:].sum() == 0


def test_noise_is_deterministic_under_a_seed_and_changes_with_it():
    model = CoinClassifier()
    counts = lambda seed: SmoothedClassifier(model, 0.25, seed=seed).sample_noise(GREY, 300, batch_size=64)
    assert np.array_equal(counts(0), counts(0)) and not np.array_equal(counts(0), counts(1))
    drs = DualSmoothedClassifier(model, sigma=0.25, seed=7)
    first, second = drs.sample_noise(GREY, 300), drs.sample_noise(GREY, 300)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    generator = torch.Generator().manual_seed(3)
    a = SmoothedClassifier(model, 0.25).sample_noise(GREY, 100, generator=generator)
    b = SmoothedClassifier(model, 0.25).sample_noise(GREY, 100, generator=torch.Generator().manual_seed(3))
    assert np.array_equal(a, b)
    # several images sharing forward passes get exactly the certificate they get alone (same stream, same order)
    batch = torch.stack([GREY, torch.rand(3, 32, 32)])
    together = SmoothedClassifier(model, 0.25, batch_size=50).sample_noise_batch(batch, 120)
    assert together.shape == (2, 10) and together.sum() == 240


def test_certify_dataset_statistics_and_mode_restore():
    model = ConstantClassifier(3).train()
    images, labels = torch.rand(6, 3, 32, 32), [3, 3, 3, 1, 1, 3]
    result = certify_dataset(SmoothedClassifier(model, 0.25), images, labels, n0=5, n=50, alpha=0.01)
    assert model.training  # the base classifier's mode is restored
    radius = 0.25 * norm.ppf(0.01 ** (1 / 50))
    assert result.smoothed_accuracy == pytest.approx(4 / 6) and result.abstain_rate == 0
    assert result.certified_accuracy(0.0) == result.certified_accuracy(radius) == pytest.approx(4 / 6)
    assert result.certified_accuracy(radius + 1e-6) == 0
    assert result.average_certified_radius == pytest.approx(4 / 6 * radius)
    assert list(result.curve([0, radius, 1.0])) == pytest.approx([4 / 6, 4 / 6, 0])


@pytest.mark.parametrize("bad, match", [
    (dict(sigma=0.0), "sigma"), (dict(sigma=-1.0), "sigma"), (dict(num_classes=1), "num_classes"),
    (dict(batch_size=0), "batch_size"),
])
def test_smoothed_classifier_rejects_bad_settings(bad, match):
    settings = {"sigma": 0.25, **bad}
    with pytest.raises(ValueError, match=match):
        SmoothedClassifier(ConstantClassifier(), **settings)


@pytest.mark.parametrize("image", [torch.rand(3, 32, 32) * 2, torch.zeros(3, 32, 32, dtype=torch.uint8), torch.rand(2, 3, 32, 32)])
def test_certify_rejects_images_that_are_not_one_image_in_pixel_space(image):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        SmoothedClassifier(ConstantClassifier(), 0.25).certify(image, 5, 10, 0.01)


# -- the noise trainer ------------------------------------------------------------------------------------------
def test_gaussian_noise_trainer_trains_on_noisy_sub_images(synthetic_path, tmp_path):
    train, held_out, _ = load_train_and_eval(synthetic_path)
    model = hfcifar.create_model("fastnet-tiny")
    seen = []
    model.register_forward_pre_hook(lambda module, args, kwargs: seen.append(kwargs["pixel_values"].detach().clone()),
                                    with_kwargs=True)
    args = GaussianNoiseTrainingArguments(str(tmp_path / "run"), noise_sigma=0.5, sub_image="r", max_steps=2,
                                          per_device_train_batch_size=16, report_to="none", disable_tqdm=True,
                                          save_strategy="no", plot_curves=False)
    GaussianNoiseTrainer(model=model, args=args, train_dataset=train).train()
    assert len(seen) == 2 and all(x.shape == (16, 3, 32, 32) and x.min() >= 0 and x.max() <= 1 for x in seen)
    # a DRS view: every pixel duplicated over its 1×2 cell, and noisy (a clean batch has ~256 levels per channel)
    assert all(torch.equal(x[..., 0::2], x[..., 1::2]) for x in seen)
    assert seen[0].unique().numel() > 5_000
    with pytest.raises(ValueError, match="swaps the two DRS sub-images"):
        GaussianNoiseTrainingArguments(str(tmp_path / "x"), sub_image="l", tta=True)
    with pytest.raises(ValueError, match="noise_sigma"):
        GaussianNoiseTrainingArguments(str(tmp_path / "x"), noise_sigma=0)
    with pytest.raises(TypeError, match="GaussianNoiseTrainingArguments"):
        GaussianNoiseTrainer(model=model, args=hfcifar.CifarTrainingArguments(str(tmp_path / "y")), train_dataset=train)


@pytest.fixture(scope="module")
def noise_runs(synthetic_path, tmp_path_factory):
    """Tiny RS and DRS base classifiers saved as `train_base_classifier` leaves them (2 training steps each)."""
    train, held_out, info = load_train_and_eval(synthetic_path)
    root = tmp_path_factory.mktemp("smoothing")
    for name, sub_image in (("rs", None), ("drs_l", "l"), ("drs_r", "r")):
        train_base_classifier(train, held_out, root / name, sigma=0.25, sub_image=sub_image, model="fastnet-tiny",
                              epochs=1, max_steps=2, per_device_train_batch_size=32, data_info=info)
    return root


def test_saved_base_classifiers_record_their_noise(noise_runs):
    rs = AutoModelForImageClassification.from_pretrained(str(noise_runs / "rs"))
    left = AutoModelForImageClassification.from_pretrained(str(noise_runs / "drs_l"))
    assert rs.config.smoothing_sigma == 0.25 and getattr(rs.config, "drs_sub_image", None) is None
    assert left.config.drs_sub_image == "l"
    summary = json.loads((noise_runs / "drs_l" / "train_summary.json").read_text())
    assert summary["sub_image"] == "l" and summary["global_step"] == 2 and summary["tta"] is False


# -- the certified_accuracy metric -----------------------------------------------------------------------------
def test_certified_accuracy_metric_through_the_evaluation_api(noise_runs):
    run = noise_runs / "rs"
    results = evaluate_classifier(run, metrics=["certified_accuracy"], sigma=0.25, n0=5, n=40, alpha=0.01,
                                  num_examples=12, radius="0.1,0,0.2")
    assert results["num_examples"] == 12 and results["split"] == "validation"
    assert set(results["certified_accuracy_at"]) == {"0.1", "0", "0.2"}
    assert results["certified_accuracy"] == results["certified_accuracy_at"]["0.1"]
    assert 0 <= results["certified_accuracy_at"]["0.2"] <= results["certified_accuracy"] <= results["smoothed_accuracy"] <= 1
    assert results["smoothed_accuracy"] == results["certified_accuracy_at"]["0"] and 0 <= results["abstain_rate"] <= 1
    assert results["metric_configs"]["certified_accuracy"] == "RS σ=0.25, n0=5, n=40, α=0.01, radius 0.1 (curve at 0.1, 0, 0.2)"
    # the oracle: CERTIFY run directly on the same images with the same seed gives the same numbers
    model = AutoModelForImageClassification.from_pretrained(str(run))
    split = CifarTensorDataset.from_hf(load_cifar10(results["dataset"])["validation"], progress=False)
    index = torch.as_tensor(np.unique(np.linspace(0, len(split) - 1, 12).round().astype(int)))
    direct = certify_dataset(SmoothedClassifier(model, 0.25), split.images[index], split.labels[index], 5, 40, 0.01)
    assert direct.certified_accuracy(0.1) == results["certified_accuracy"]
    write_eval_results(run, results)  # eval_results.json holds only JSON values (the card reads it)
    assert json.loads((run / "eval_results.json").read_text())["certification"]["method"] == "rs"


def test_certified_accuracy_metric_for_drs_and_its_errors(noise_runs):
    results = evaluate_classifier(noise_runs / "drs_l", metrics=["certified_accuracy"], method="drs", n0=5, n=30,
                                  num_examples=6, right_model=str(noise_runs / "drs_r"))
    assert results["metric_configs"]["certified_accuracy"].startswith("DRS σ=0.25, n0=5, n=30, α=0.001, radius 0.25")
    assert results["certification"]["max_certifiable_radius"] == pytest.approx(math.sqrt(2) * 0.25 * norm.ppf(0.0005 ** (1 / 30)))
    errors = [
        (noise_runs / "drs_l", {}, "method=drs"),  # a sub-image model smoothed over whole images
        (noise_runs / "drs_r", {"method": "drs"}, "'l' model"),
        (noise_runs / "drs_l", {"method": "drs", "right_model": str(noise_runs / "drs_l")}, "must be the 'r' model"),
        (noise_runs / "rs", {"method": "bayes"}, "method must be one of"),
        (noise_runs / "rs", {"radius": "a,b"}, "radius"),
        (noise_runs / "rs", {"n": 0}, "n must be an integer"),
        (noise_runs / "rs", {"alpha": 1.5}, "alpha"),
    ]
    for run, options, match in errors:
        with pytest.raises(ValueError, match=match):
            evaluate_classifier(run, metrics=["certified_accuracy"], **{"n0": 2, "n": 4, "num_examples": 2, **options})


def test_certified_accuracy_needs_sigma_for_a_plain_model(synthetic_path):
    with pytest.raises(ValueError, match="sigma"):
        evaluate_classifier(hfcifar.create_model("fastnet-tiny"), dataset=synthetic_path, metrics=["certified_accuracy"])


# -- the certified-classification pipeline ---------------------------------------------------------------------
def test_certified_classification_pipeline_on_a_pil_image(noise_runs):
    certify = pipeline("certified-classification", model=str(noise_runs / "rs"))
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8))
    answer = certify(image, n0=5, n=60, alpha=0.01)
    labels = set(certify.model.config.id2label.values()) | {"abstain"}
    assert set(answer) == {"label", "class_id", "radius", "sigma", "n0", "n", "alpha"}
    assert answer["label"] in labels and answer["sigma"] == 0.25 and answer["n"] == 60
    assert (answer["label"] == "abstain") == (answer["class_id"] == ABSTAIN) and answer["radius"] >= 0
    assert answer["radius"] <= 0.25 * norm.ppf(0.01 ** (1 / 60)) + 1e-9
    assert certify(image, n0=5, n=60, alpha=0.01) == answer  # seeded
    # the same certificate as the library's smoothed classifier on the processed image
    pixels = certify.image_processor(image, return_tensors="pt")["pixel_values"][0]
    class_id, radius = SmoothedClassifier(certify.model, 0.25).certify(pixels, 5, 60, 0.01)
    assert (answer["class_id"], answer["radius"]) == (class_id, pytest.approx(radius))
    with pytest.raises(ValueError, match="DRS base classifier"):
        pipeline("certified-classification", model=str(noise_runs / "drs_l"))(image, n=10)


def test_pipeline_module_imports_only_what_travels_to_the_hub():
    tree = ast.parse((PACKAGE_ROOT / "pipelines" / "pipeline_certified_classification.py").read_text())
    modules = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 0}
    assert modules <= {"torch", "transformers", "numpy", "scipy", "PIL", "math", "__future__"}
    assert pipeline_certified_classification.TASK in hfcifar.pipelines.list_pipelines()


@pytest.mark.slow
def test_certified_classification_pipeline_travels_without_hfcifar(noise_runs, tmp_path):
    from conftest import python_without_hfcifar

    from hfcifar.hub import stage_model

    run = noise_runs / "rs"
    write_eval_results(run, evaluate_classifier(run))
    staged = stage_model(run, tmp_path / "staged", pipelines=["certified-classification"])
    result = python_without_hfcifar(f"""
        from PIL import Image
        from transformers import pipeline
        certify = pipeline("certified-classification", model={str(staged)!r}, trust_remote_code=True)
        print("ANSWER", certify(Image.new("RGB", (32, 32), "red"), n0=5, n=50))
    """, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ANSWER {'label':" in result.stdout


# -- the claim check ----------------------------------------------------------------------------------------------
def test_claim_radii_lie_well_inside_what_rs_can_certify_at_every_verdict_scale():
    # A radius at or beyond σ Φ⁻¹(α^(1/n)) is zero for RS by construction of the finite sample: a DRS "win" there
    # would measure n, not the method. Every pre-registered radius must stay 0.1 inside that cap (n = 500 would not).
    claim = drs_claim.CLAIM
    for scale in ("cpu", "paper"):
        n = claim.scales[scale].work["n"]
        assert n >= claim.minimums["n"]
        cap = SmoothedClassifier(ConstantClassifier(), drs_claim.SIGMA).max_certified_radius(n, drs_claim.ALPHA)
        assert max(drs_claim.RADII) <= cap - 0.1, (scale, cap)
    assert SmoothedClassifier(ConstantClassifier(), drs_claim.SIGMA).max_certified_radius(500, drs_claim.ALPHA) < 0.6
    assert [h.name for h in claim.hypotheses] == ["certified_accuracy_margin_r025", "certified_accuracy_margin_r050"]
    assert claim.combine == "all"  # the paper claims the improvement at every radius, not at the best one


def test_claim_scores_each_image_correct_and_certified_at_the_radius():
    from hfcifar.certification import CertificationResult

    result = CertificationResult(labels=np.array([1, 2, 3, 4]), predictions=np.array([1, 2, ABSTAIN, 0]),
                                 radii=np.array([0.3, 0.2, 0.0, 0.9]))
    assert drs_claim.certified_correct(result, 0.25).tolist() == [True, False, False, False]  # wrong at 0.9 counts 0
    assert drs_claim.certified_correct(result, 0.0).tolist() == [True, True, False, False]
    assert drs_claim.certified_correct(result, 0.25).mean() == result.certified_accuracy(0.25)
