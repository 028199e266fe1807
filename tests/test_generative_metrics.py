"""FID and Inception Score (hfcifar/evaluation/generative/): the formulas against closed forms, the feature
extractors, the one entry point `compute_generative_metrics`, the reference cache and the registered metrics."""

import sys
import types
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import hfcifar
from hfcifar.data import CifarTensorDataset, load_cifar10
from hfcifar.evaluation import METRICS, EvalSettings
from hfcifar.evaluation.generative import (
    INCEPTION_WEIGHTS_ENV,
    ClassifierFeatures,
    FeatureStatistics,
    InceptionFeatures,
    compute_generative_metrics,
    feature_statistics,
    frechet_distance,
    get_feature_extractor,
    inception_score,
    reference_statistics,
)

# ------------------------------------------------------------------------------------------------ Fréchet distance


def random_spd(rng, d, scale=1.0):
    a = rng.normal(size=(d, d))
    return scale * (a @ a.T / d + 0.1 * np.eye(d))


@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_frechet_distance_diagonal_closed_form(method):
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    s1, s2 = rng.uniform(0.1, 3, size=6), rng.uniform(0.1, 3, size=6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2), method=method) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_frechet_distance_commuting_covariances(method):
    # Σ1 = Q diag(a) Qᵀ, Σ2 = Q diag(b) Qᵀ commute: tr (Σ1Σ2)^½ = Σ √(a_i b_i)
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    a, b = rng.uniform(0.2, 4, size=5), rng.uniform(0.2, 4, size=5)
    sigma1, sigma2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(a + b - 2 * np.sqrt(a * b))
    assert frechet_distance(mu1, sigma1, mu2, sigma2, method=method) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_frechet_distance_non_commuting_2x2(method):
    sigma1 = np.array([[2.0, 0.9], [0.9, 1.0]])
    sigma2 = np.array([[0.5, -0.3], [-0.3, 1.5]])
    assert not np.allclose(sigma1 @ sigma2, sigma2 @ sigma1)
    # a 2×2 matrix M with positive eigenvalues has tr √M = √(tr M + 2√det M); det(Σ1Σ2) = det Σ1 det Σ2
    product = sigma1 @ sigma2
    cross = np.sqrt(np.trace(product) + 2 * np.sqrt(np.linalg.det(sigma1) * np.linalg.det(sigma2)))
    # … and, independently, the sum of the square roots of the eigenvalues of Σ1Σ2
    assert cross == pytest.approx(np.sqrt(np.linalg.eigvals(product).real).sum(), rel=1e-12)
    mu1, mu2 = np.array([0.3, -1.0]), np.array([1.0, 0.5])
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2 * cross
    assert frechet_distance(mu1, sigma1, mu2, sigma2, method=method) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_methods_agree_in_higher_dimensions():
    rng = np.random.default_rng(2)
    sigma1, sigma2 = random_spd(rng, 32), random_spd(rng, 32, scale=2.0)
    mu1, mu2 = rng.normal(size=32), rng.normal(size=32)
    eigh = frechet_distance(mu1, sigma1, mu2, sigma2, method="eigh")
    assert eigh == pytest.approx(frechet_distance(mu1, sigma1, mu2, sigma2, method="sqrtm"), rel=1e-8)
    assert eigh > 0


def test_frechet_distance_of_sample_statistics_approaches_closed_form():
    rng = np.random.default_rng(3)
    d = 3
    mu1, mu2 = np.array([0.0, 1.0, -1.0]), np.array([0.5, 0.0, -0.5])
    sigma1, sigma2 = random_spd(rng, d), random_spd(rng, d, scale=0.5)
    exact = frechet_distance(mu1, sigma1, mu2, sigma2)
    x = rng.multivariate_normal(mu1, sigma1, size=200_000)
    y = rng.multivariate_normal(mu2, sigma2, size=200_000)
    estimate = frechet_distance(*feature_statistics(x), *feature_statistics(y))
    assert estimate == pytest.approx(exact, abs=0.02)
    # and a small sample is visibly further off than a large one (FID's finite-sample bias is positive)
    small = frechet_distance(*feature_statistics(x[:20]), *feature_statistics(y[:20]))
    assert abs(small - exact) > abs(estimate - exact)


@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_frechet_distance_identical_inputs_is_zero(method):
    rng = np.random.default_rng(4)
    features = rng.normal(size=(500, 16))
    mu, sigma = feature_statistics(features)
    assert frechet_distance(mu, sigma, mu, sigma, method=method) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_singular_covariances():
    # N < D: both covariances are singular; the eigen form still returns a finite, non-negative value
    rng = np.random.default_rng(5)
    with pytest.warns(UserWarning, match="rank-deficient"):
        stats1 = feature_statistics(rng.normal(size=(10, 32)))
    with pytest.warns(UserWarning, match="rank-deficient"):
        stats2 = feature_statistics(rng.normal(size=(10, 32)) + 1)
    value = frechet_distance(*stats1, *stats2)
    assert np.isfinite(value) and value > 32  # the means alone differ by 1 in each of 32 dimensions (≈)


def test_frechet_distance_bad_input():
    with pytest.raises(ValueError, match="shape"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.zeros(2), np.eye(2) * np.nan, np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="method"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2), method="svd")
    with pytest.raises(ValueError, match="at least 2"):
        feature_statistics(np.zeros((1, 4)))


# -------------------------------------------------------------------------------------------------- Inception Score


def test_inception_score_uniform_is_one():
    probs = np.full((100, 10), 0.1)
    mean, std = inception_score(probs, splits=10)
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)


def test_inception_score_confident_balanced_is_num_classes():
    probs = np.eye(10)[np.arange(100) % 10]  # every split holds each class once
    mean, std = inception_score(torch.from_numpy(probs), splits=10)
    assert mean == pytest.approx(10.0, rel=1e-12) and std == pytest.approx(0.0, abs=1e-12)
    # confident but all one class: the marginal equals every p(y|x), IS = 1
    assert inception_score(np.eye(10)[np.zeros(50, dtype=int)], splits=5)[0] == pytest.approx(1.0)


def test_inception_score_matches_the_definition():
    rng = np.random.default_rng(6)
    probs = rng.dirichlet(np.full(5, 0.3), size=40)
    marginal = probs.mean(axis=0)
    expected = np.exp(np.mean(np.sum(probs * (np.log(probs) - np.log(marginal)), axis=1)))
    assert inception_score(probs, splits=1)[0] == pytest.approx(expected, rel=1e-10)
    assert 1 < expected < 5


def test_inception_score_bad_input():
    with pytest.raises(ValueError, match="sum to 1"):
        inception_score(np.ones((10, 4)))
    with pytest.raises(ValueError, match="at least 10"):
        inception_score(np.full((5, 4), 0.25), splits=10)


# ----------------------------------------------------------------------------------------------- feature extractors


@pytest.fixture(scope="module")
def tiny_classifier():
    torch.manual_seed(0)
    return hfcifar.create_model("fastnet", stem_width=8, widths=[8, 16, 16]).eval()


@pytest.fixture(scope="module")
def real_images():
    """400 real CIFAR-10 images (uint8) when cifar10-mini is present, else smooth synthetic ones."""
    from conftest import MINI

    if (MINI / "plain_text").is_dir() or any(MINI.glob("**/*.parquet")):
        split = load_cifar10(str(MINI))["train"].select(range(400))
        return CifarTensorDataset.from_hf(split, progress=False).images
    generator = torch.Generator().manual_seed(0)
    coarse = torch.rand(400, 3, 4, 4, generator=generator)
    return torch.nn.functional.interpolate(coarse, size=32, mode="bilinear").mul(255).round().to(torch.uint8)


def test_classifier_features_shapes(tiny_classifier, real_images):
    extractor = ClassifierFeatures(tiny_classifier)
    assert extractor.feature_dim == 16 and "fastnet" in extractor.name
    out = extractor(real_images[:7].float() / 255)
    assert out["features"].shape == (7, 16) and out["probs"].shape == (7, 10)
    torch.testing.assert_close(out["probs"].sum(dim=1), torch.ones(7))
    # the features are the backbone's pooled output, the head's input
    torch.testing.assert_close(out["features"], tiny_classifier.base_model(real_images[:7].float() / 255).pooler_output)
    logits = ClassifierFeatures(tiny_classifier, layer="logits")(real_images[:7].float() / 255)["features"]
    assert logits.shape == (7, 10)


def test_classifier_features_from_a_folder(tiny_classifier, tmp_path):
    tiny_classifier.save_pretrained(tmp_path / "clf")
    extractor = get_feature_extractor(str(tmp_path / "clf"))
    assert isinstance(extractor, ClassifierFeatures) and str(tmp_path / "clf") in extractor.name
    assert extractor.fingerprint == ClassifierFeatures(tiny_classifier).fingerprint
    images = torch.rand(3, 3, 32, 32)
    torch.testing.assert_close(extractor(images)["features"], ClassifierFeatures(tiny_classifier)(images)["features"])


def test_fid_orders_real_noisy_and_noise(tiny_classifier, real_images):
    reference, real = real_images[:200], real_images[200:]
    extractor = ClassifierFeatures(tiny_classifier)
    generator = torch.Generator().manual_seed(1)
    same = compute_generative_metrics(reference, reference, extractor, progress=False)
    held_out = compute_generative_metrics(real, reference, extractor, progress=False)
    slightly_noisy = (real.float() / 255 + 0.03 * torch.randn(real.shape, generator=generator)).clamp(0, 1)
    noisy = compute_generative_metrics(slightly_noisy, reference, extractor, progress=False)
    noise = compute_generative_metrics(torch.rand(200, 3, 32, 32, generator=generator), reference, extractor,
                                       progress=False)
    assert same["fid"] == pytest.approx(0.0, abs=1e-8)
    assert held_out["fid"] < noise["fid"] and noisy["fid"] < noise["fid"]
    assert set(same) >= {"fid", "inception_score", "inception_score_std", "num_generated", "num_reference",
                         "feature_extractor"}
    assert same["num_generated"] == same["num_reference"] == 200 and same["feature_extractor"] == extractor.name
    assert 1.0 <= same["inception_score"] <= 10.0
    assert same["inception_score"] == pytest.approx(same["reference_inception_score"])


def test_uint8_float_and_channels_last_inputs_agree(tiny_classifier, real_images):
    extractor = ClassifierFeatures(tiny_classifier)
    reference, generated = real_images[:100], real_images[100:160]
    base = compute_generative_metrics(generated, reference, extractor, progress=False)
    as_float = compute_generative_metrics(generated.float() / 255, reference, extractor, batch_size=7, progress=False)
    channels_last = compute_generative_metrics(generated.permute(0, 2, 3, 1).numpy(), reference, extractor,
                                               progress=False)
    assert as_float["fid"] == pytest.approx(base["fid"], rel=1e-5)
    assert channels_last["fid"] == pytest.approx(base["fid"], rel=1e-12)


def test_reference_as_hub_dataset(tiny_classifier, synthetic_path):
    split = load_cifar10(synthetic_path, validation_size=0)["train"]
    images = CifarTensorDataset.from_hf(split, progress=False).images
    extractor = ClassifierFeatures(tiny_classifier)
    from_dataset = compute_generative_metrics(images[:50], split, extractor, progress=False)
    from_tensor = compute_generative_metrics(images[:50], images, extractor, progress=False)
    assert from_dataset["num_reference"] == len(split)
    assert from_dataset["fid"] == pytest.approx(from_tensor["fid"], rel=1e-12)


def test_bad_inputs_get_clear_errors(tiny_classifier, real_images):
    extractor = ClassifierFeatures(tiny_classifier)
    reference = real_images[:50]
    with pytest.raises(ValueError, match=r"\(N, 3, 32, 32\)"):
        compute_generative_metrics(torch.rand(20, 1, 32, 32), reference, extractor, progress=False)
    with pytest.raises(ValueError, match=r"\(x \+ 1\) / 2"):
        compute_generative_metrics(torch.rand(20, 3, 32, 32) * 2 - 1, reference, extractor, progress=False)
    with pytest.raises(ValueError, match="at least 2 generated"):
        compute_generative_metrics(torch.rand(1, 3, 32, 32), reference, extractor, progress=False)
    with pytest.raises(ValueError, match="lower `splits`"):
        compute_generative_metrics(torch.rand(5, 3, 32, 32), reference, extractor, progress=False)
    with pytest.raises(ValueError, match="at least 2 reference"):
        compute_generative_metrics(torch.rand(20, 3, 32, 32), reference[:1], extractor, progress=False)
    with pytest.raises(ValueError, match="uint8"):
        compute_generative_metrics(torch.ones(20, 3, 32, 32, dtype=torch.int32), reference, extractor, progress=False)
    with pytest.raises(ValueError, match="feature extractor"):
        compute_generative_metrics(reference, reference, None, progress=False)
    # fewer samples than feature dimensions: measured, with a warning
    with pytest.warns(UserWarning, match="rank-deficient"):
        compute_generative_metrics(reference[:12], reference, extractor, splits=2, progress=False)


class CountingExtractor:
    """A feature extractor without probabilities: mean colour and its square per channel (D = 6)."""

    name = "mean colour"
    feature_dim = 6

    def __init__(self):
        self.calls = 0

    def __call__(self, images):
        self.calls += 1
        means = images.mean(dim=(2, 3))
        return {"features": torch.cat([means, means**2], dim=1), "probs": None}


def test_custom_extractor_without_probs(real_images):
    extractor = CountingExtractor()
    results = compute_generative_metrics(real_images[:100], real_images[100:], extractor, progress=False)
    assert results["inception_score"] is None and results["fid"] > 0 and results["feature_extractor"] == "mean colour"


def test_reference_statistics_cache(real_images, tmp_path):
    extractor = CountingExtractor()
    first = reference_statistics(real_images, extractor, batch_size=100, cache_dir=tmp_path, progress=False)
    calls = extractor.calls
    assert calls == 4 and len(list(tmp_path.glob("*.npz"))) == 1
    second = reference_statistics(real_images, extractor, batch_size=100, cache_dir=tmp_path, progress=False)
    assert extractor.calls == calls  # read from the cache
    np.testing.assert_array_equal(first.sigma, second.sigma)
    assert second.num_examples == 400 and second.feature_extractor == "mean colour"
    reference_statistics(real_images[:200], extractor, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.glob("*.npz"))) == 2  # other data, other key
    # precomputed statistics serve as the reference; a different extractor's statistics are refused
    results = compute_generative_metrics(real_images[:50], second, extractor, progress=False)
    assert results["num_reference"] == 400
    other = FeatureStatistics(second.mu, second.sigma, 400, "inception-v3 (pytorch-fid)")
    with pytest.raises(ValueError, match="one extractor"):
        compute_generative_metrics(real_images[:50], other, extractor, progress=False)


# ---------------------------------------------------------------------------------------------- InceptionFeatures


def test_inception_without_package_or_weights_raises_clearly(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pytorch_fid", None)  # import fails, installed or not
    monkeypatch.setenv(INCEPTION_WEIGHTS_ENV, str(tmp_path / "missing.pth"))
    with pytest.raises(ImportError) as error:
        get_feature_extractor("inception")
    message = str(error.value)
    assert "pytorch-fid" in message and "missing.pth" in message and "ClassifierFeatures" in message


FAKE_PYTORCH_FID = '''
import torch
from torch import nn

FID_WEIGHTS_URL = "https://example.invalid/pt_inception.pth"


def load_state_dict_from_url(url, **kwargs):
    raise RuntimeError("tried to download")


class InceptionV3(nn.Module):
    BLOCK_INDEX_BY_DIM = {64: 0, 192: 1, 768: 2, 2048: 3}

    def __init__(self, output_blocks=(3,), resize_input=True, normalize_input=True):
        super().__init__()
        self.proj = nn.Linear(3, 2048)
        state = load_state_dict_from_url(FID_WEIGHTS_URL)
        self.proj.load_state_dict({"weight": state["proj.weight"], "bias": state["proj.bias"]})

    def forward(self, x):
        return [self.proj(x.mean(dim=(2, 3)))[:, :, None, None]]
'''


def test_inception_features_wiring_with_a_stand_in_package(monkeypatch, tmp_path):
    # pytorch-fid is not installed here: a stand-in with its interface checks the loading and the IS head
    package, module = types.ModuleType("pytorch_fid"), types.ModuleType("pytorch_fid.inception")
    exec(FAKE_PYTORCH_FID, module.__dict__)
    package.inception = module
    monkeypatch.setitem(sys.modules, "pytorch_fid", package)
    monkeypatch.setitem(sys.modules, "pytorch_fid.inception", module)
    monkeypatch.delenv(INCEPTION_WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(ImportError, match="weights file") as error:
        InceptionFeatures()
    assert "package" not in str(error.value)

    torch.manual_seed(0)
    weights = {"proj.weight": torch.randn(2048, 3), "proj.bias": torch.zeros(2048),
               "fc.weight": torch.randn(1008, 2048) / 45, "fc.bias": torch.zeros(1008)}
    path = tmp_path / "hub" / "checkpoints" / "pt_inception-2015-12-05-6726825d.pth"
    path.parent.mkdir(parents=True)
    torch.save(weights, path)
    extractor = get_feature_extractor("inception")  # found in the torch hub cache
    out = extractor(torch.rand(4, 3, 32, 32))
    assert out["features"].shape == (4, 2048) and out["probs"].shape == (4, 1008)
    torch.testing.assert_close(out["probs"], (out["features"] @ weights["fc.weight"].T).softmax(dim=-1))
    with pytest.raises(RuntimeError, match="download"):
        module.load_state_dict_from_url("x")  # restored after the build
    monkeypatch.setenv(INCEPTION_WEIGHTS_ENV, str(path))
    assert InceptionFeatures().name == "inception-v3 (pytorch-fid)"


# ------------------------------------------------------------------------------------------ the registered metrics


class StandInPipeline:
    """What the metric needs of a DiffusionPipeline: `__call__(batch_size, generator, output_type, …).images`."""

    def __init__(self):
        self.calls = []

    def __call__(self, batch_size=1, generator=None, output_type="pil", num_inference_steps=50):
        self.calls.append(num_inference_steps)
        return SimpleNamespace(images=torch.rand(batch_size, 3, 32, 32, generator=generator))


def test_registered_metrics_sample_once(tiny_classifier, real_images):
    assert METRICS["fid"].hub_type == "fid" and not METRICS["fid"].higher_is_better
    assert METRICS["inception_score"].hub_type == "inception_score" and METRICS["inception_score"].higher_is_better
    pipeline = StandInPipeline()
    split = CifarTensorDataset(real_images[:100], torch.zeros(100, dtype=torch.long))
    settings = EvalSettings(batch_size=16, options={"feature_extractor": tiny_classifier, "num_samples": 40,
                                                    "num_inference_steps": 3, "splits": 4, "seed": 1})
    fid = METRICS["fid"].compute(pipeline, split, settings)
    assert pipeline.calls == [3, 3, 3]  # 40 images in batches of 16, the pipeline option passed on
    score = METRICS["inception_score"].compute(pipeline, split, settings)
    assert len(pipeline.calls) == 3 and score == fid  # asked for both, sampled once
    assert fid["num_examples"] == 40 and fid["num_reference"] == 100 and fid["sampling"] == {"num_inference_steps": 3}
    assert set(fid["metric_configs"]) == {"fid", "inception_score"}
    # the same seed gives the same samples
    again = METRICS["fid"].compute(StandInPipeline(), split, settings)
    assert again["fid"] == pytest.approx(fid["fid"], rel=1e-12)
    with pytest.raises(ValueError, match="not a classifier"):
        METRICS["fid"].compute(tiny_classifier, split, settings)


def test_generative_results_reach_the_model_card(tiny_classifier, real_images, tmp_path):
    from huggingface_hub import ModelCard

    from hfcifar.evaluation import write_eval_results
    from hfcifar.hub import render_card

    results = compute_generative_metrics(real_images[:100], real_images[100:], ClassifierFeatures(tiny_classifier),
                                         progress=False)
    tiny_classifier.save_pretrained(tmp_path / "model")
    write_eval_results(tmp_path / "model", {**results, "metrics": ["fid", "inception_score"], "split": "train",
                                            "dataset": "uoft-cs/cifar10"})
    card = ModelCard(str(render_card(tmp_path / "model", write=False)))
    entries = {e.metric_type: e for e in card.data.eval_results}
    assert set(entries) == {"fid", "inception_score"}
    assert entries["fid"].metric_value == pytest.approx(results["fid"])
    assert entries["fid"].metric_args == {"num_examples": 100}
    assert "features: hfcifar classifier fastnet" in entries["fid"].metric_config


def test_sampling_a_real_diffusion_pipeline(tiny_classifier, real_images):
    diffusion = pytest.importorskip("hfcifar.diffusion")
    from diffusers import DDIMScheduler

    from hfcifar.evaluation.generative import sample_images

    torch.manual_seed(0)
    pipeline = diffusion.CifarClassConditionalPipeline(diffusion.create_unet("ddpm-tiny-cfg"),
                                                        DDIMScheduler(num_train_timesteps=1000))
    pipeline.set_progress_bar_config(disable=True)
    samples = sample_images(pipeline, 10, batch_size=4, seed=3, progress=False, num_inference_steps=2)
    assert samples.shape == (10, 3, 32, 32) and samples.dtype == torch.uint8
    assert torch.equal(samples, sample_images(pipeline, 10, batch_size=4, seed=3, progress=False, num_inference_steps=2))
    split = CifarTensorDataset(real_images[:60], torch.zeros(60, dtype=torch.long))
    settings = EvalSettings(batch_size=8, options={"feature_extractor": tiny_classifier, "num_samples": 20, "splits": 2,
                                                   "num_inference_steps": 2, "guidance_scale": 2.0})
    results = METRICS["fid"].compute(pipeline, split, settings)
    assert results["sampling"] == {"num_inference_steps": 2, "guidance_scale": 2.0}
    assert results["num_generated"] == 20 and results["fid"] > 0


# ------------------------------------------------------------------------------- cross-check against torchmetrics


class _SmallFeatures(torch.nn.Module):
    """A fixed random network standing in for Inception: 16-d features, 5-way logits."""

    def __init__(self, logits: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU(),
                                        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 16))
        self.head = torch.nn.Linear(16, 5)
        self.logits = logits
        self.requires_grad_(False)
        # centre the logits on typical images, so that the class probabilities vary between images (IS > 1)
        self.head.weight *= 4
        self.head.bias -= self.head(self.features(torch.rand(64, 3, 32, 32) * torch.rand(64, 1, 1, 1))).mean(dim=0)

    def features(self, images):
        return 50 * self.body(images.float())  # spread the features out: a FID of a few units

    def forward(self, images):
        features = self.features(images)
        return self.head(features) if self.logits else features


class _ModuleExtractor:
    """hfcifar's `FeatureExtractor` protocol around the same network."""

    name = "small random network"
    feature_dim = 16

    def __init__(self):
        self.network = _SmallFeatures()

    @torch.no_grad()
    def __call__(self, images):
        features = self.network(images)
        return {"features": features, "probs": self.network.head(features).softmax(dim=-1)}


def _cross_check_images():
    torch.manual_seed(1)
    real = torch.rand(240, 3, 32, 32) * torch.rand(240, 1, 1, 1)
    fake = (torch.rand(200, 3, 32, 32) * torch.rand(200, 1, 1, 1)).pow(2)  # darker: a clearly non-zero FID
    return real, fake


def test_frechet_distance_matches_torchmetrics():
    pytest.importorskip("torchmetrics", reason="torchmetrics is not installed (`pip install -e .[test]`)")
    from torchmetrics.image.fid import FrechetInceptionDistance

    real, fake = _cross_check_images()
    reference = FrechetInceptionDistance(feature=_SmallFeatures(), normalize=True)  # custom network: no torch-fidelity
    reference.update(real, real=True)
    reference.update(fake, real=False)
    expected = float(reference.compute())
    results = compute_generative_metrics(fake, real, _ModuleExtractor(), batch_size=64, splits=5, progress=False)
    assert expected > 1
    assert results["fid"] == pytest.approx(expected, rel=1e-3)
    for method in ("eigh", "sqrtm"):  # the two ways of computing tr (Σ1Σ2)^½, on the same statistics
        mu1, sigma1 = feature_statistics(_ModuleExtractor()(fake)["features"])
        mu2, sigma2 = feature_statistics(_ModuleExtractor()(real)["features"])
        assert frechet_distance(mu1, sigma1, mu2, sigma2, method=method) == pytest.approx(expected, rel=1e-3)


def test_inception_score_matches_torchmetrics():
    pytest.importorskip("torchmetrics", reason="torchmetrics is not installed (`pip install -e .[test]`)")
    from torchmetrics.image.inception import InceptionScore

    _, fake = _cross_check_images()
    splits = 5  # 200 images: equal parts, so torch.chunk and np.array_split cut them alike
    with pytest.warns(UserWarning, match="features"):  # torchmetrics warns that it keeps every feature in memory
        reference = InceptionScore(feature=_SmallFeatures(logits=True), splits=splits)
    reference.update(fake)
    torch.manual_seed(7)  # torchmetrics shuffles the images before splitting: replay its permutation
    order = torch.randperm(fake.shape[0])
    torch.manual_seed(7)
    expected_mean, expected_std = (float(v) for v in reference.compute())
    assert expected_mean > 1.1  # the probabilities differ between images
    probs = _ModuleExtractor()(fake)["probs"][order]
    mean, std = inception_score(probs, splits)
    assert mean == pytest.approx(expected_mean, rel=1e-3)
    # torchmetrics reports the unbiased standard deviation over the splits, hfcifar (as the paper's code) the biased one
    assert std * np.sqrt(splits / (splits - 1)) == pytest.approx(expected_std, rel=1e-3)
