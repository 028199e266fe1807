"""FT-ClipAct (row 5): weight bit-flip injection, accuracy under faults, clipped activations and threshold selection."""

import json
import math

import pytest
import torch
from torch import nn

import hfcifar
from hfcifar.data import CifarTensorDataset
from hfcifar.faults import (
    bit_flips,
    fault_accuracy_curve,
    fault_injection_accuracy,
    fault_parameters,
    fixed_point_fraction_bits,
    flip_bits,
    inject_bit_flips,
    predict_labels,
    resilience_auc,
    to_fixed_point,
)
from hfcifar.faults.clipping import (
    ClippedReLU,
    activation_layers,
    clip_activations,
    clipping_thresholds,
    load_clipped_model,
    profile_activations,
)
from hfcifar.methods.ft_clipact import interval_candidates, next_interval, select_clipping_thresholds
from hfcifar.methods.ft_clipact import selection as selection_module


def relu_model(seed=0, name="fastnet-tiny"):
    torch.manual_seed(seed)
    return hfcifar.create_model(name, hidden_act="relu").eval()


def own_predictions(model, n=32, seed=0):
    """Images and the model's own fault-free predictions as labels: its fault-free accuracy is 1 by construction."""
    images = torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    return images, predict_labels(model, images)


def popcount_of_xor(a: torch.Tensor, b: torch.Tensor) -> int:
    """How many bits differ between two float32 tensors."""
    x = a.contiguous().view(torch.int32) ^ b.contiguous().view(torch.int32)
    return sum(int(((x >> bit) & 1).sum()) for bit in range(32))


# ----------------------------------------------------------------------------------------------- injection


@pytest.mark.parametrize("rate", [1e-4, 1e-3, 1e-2])
def test_fp32_flips_match_the_binomial_and_the_record(rate):
    weights = torch.randn(20_000)
    n_bits = weights.numel() * 32
    mean, sd = n_bits * rate, math.sqrt(n_bits * rate * (1 - rate))
    for seed in range(5):
        result = flip_bits(weights, rate, seed=seed)
        # the record counts exactly the bits that differ, and the count is a plausible Binomial(n_bits, rate) draw
        assert popcount_of_xor(weights, result.values) == result.num_flips == result.positions.numel()
        assert abs(result.num_flips - mean) <= 5 * sd
        assert result.num_bits == n_bits
    assert torch.equal(weights, weights.clone())  # the input is not modified


def test_flips_are_spread_over_all_32_bit_positions():
    weights = torch.randn(50_000)
    result = flip_bits(weights, 0.01, seed=0)
    per_bit = torch.bincount(result.positions % 32, minlength=32).float()
    expected = weights.numel() * 0.01
    assert per_bit.min() > expected - 6 * math.sqrt(expected) and per_bit.max() < expected + 6 * math.sqrt(expected)


def test_flips_are_reproducible_under_a_seed():
    weights = torch.randn(5_000)
    a, b, c = (flip_bits(weights, 1e-3, seed=s).values for s in (7, 7, 8))
    assert torch.equal(a.view(torch.int32), b.view(torch.int32))
    assert not torch.equal(a.view(torch.int32), c.view(torch.int32))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(flip_bits(weights, 1e-3, generator=g1).positions, flip_bits(weights, 1e-3, generator=g2).positions)


def test_rate_zero_changes_nothing_and_rate_one_flips_every_bit():
    weights = torch.randn(1_000)
    assert torch.equal(flip_bits(weights, 0.0, seed=0).values.view(torch.int32), weights.view(torch.int32))
    everything = flip_bits(weights, 1.0, seed=0)
    assert torch.equal(everything.values.view(torch.int32), ~weights.view(torch.int32))
    assert everything.num_flips == weights.numel() * 32


def test_fixed_point_format_rounding_and_flips():
    weights = torch.tensor([0.7, -1.3, 0.01, 2.9, -3.0])
    bits = 8
    fraction = fixed_point_fraction_bits(weights, bits)
    assert fraction == 5  # max |w| = 3.0 < 2^2: 1 sign + 2 integer bits + 5 fraction bits
    quantized = flip_bits(weights, 0.0, "fixed", bits, seed=0)
    assert quantized.fraction_bits == fraction
    assert (quantized.values - weights).abs().max() <= 2.0 ** -(fraction + 1) + 1e-7  # round to nearest
    # every bit flipped: a two's complement word q becomes ~q = -q - 1
    codes = to_fixed_point(weights, bits, fraction)
    inverted = flip_bits(weights, 1.0, "fixed", bits, seed=0)
    torch.testing.assert_close(inverted.values, ((-codes - 1).double() * 2.0 ** -fraction).float())
    # the count is still binomial in the number of stored bits (numel × bits)
    many = torch.randn(20_000)
    result = flip_bits(many, 1e-3, "fixed", 16, seed=1)
    n_bits = many.numel() * 16
    assert result.num_bits == n_bits and abs(result.num_flips - n_bits * 1e-3) <= 5 * math.sqrt(n_bits * 1e-3)


def test_a_fixed_point_flip_moves_a_weight_by_at_most_the_format_range():
    # the point of fixed point: no flip can blow a weight up the way an fp32 exponent flip does
    # seeded: with the global RNG the maximum lands just above a power of two now and then, and the flip plus the
    # rounding to 8 bits can then exceed 2·max by a fraction of one step
    weights = torch.randn(10_000, generator=torch.Generator().manual_seed(0))
    faulty = flip_bits(weights, 1e-2, "fixed", 8, seed=0).values
    fp32 = flip_bits(weights, 1e-2, "fp32", seed=0).values
    assert (faulty - weights).abs().max() <= 2 * weights.abs().max() + 1e-6
    assert not torch.isfinite(fp32).all() or fp32.abs().max() > 1e6


@pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan"), float("inf"), "0.1", True, None])
def test_fault_rate_outside_0_1_is_refused(rate):
    with pytest.raises(ValueError, match="fault rate"):
        flip_bits(torch.randn(10), rate, seed=0)
    with pytest.raises(ValueError, match="fault rate"):
        inject_bit_flips(relu_model(), rate, seed=0)


@pytest.mark.parametrize("bits", [0, -3])
def test_bit_widths_below_one_are_refused(bits):
    with pytest.raises(ValueError, match="1 to 32 bits"):
        flip_bits(torch.randn(10), 1e-3, "fixed", bits, seed=0)


def test_other_bad_fault_settings_are_refused():
    with pytest.raises(ValueError, match="32 bits"):
        flip_bits(torch.randn(10), 1e-3, "fp32", 16, seed=0)
    with pytest.raises(ValueError, match="representation"):
        flip_bits(torch.randn(10), 1e-3, "fp16", seed=0)
    with pytest.raises(ValueError, match="float32"):
        flip_bits(torch.randn(10, dtype=torch.float64), 1e-3, seed=0)
    with pytest.raises(ValueError, match="either seed or generator"):
        flip_bits(torch.randn(10), 1e-3, seed=0, generator=torch.Generator())
    with pytest.raises(ValueError, match="No parameter"):
        inject_bit_flips(relu_model(), 1e-3, seed=0, parameters=["nope.weight"])


def test_default_fault_targets_are_the_conv_and_linear_weights():
    model = relu_model()
    names = [name for name, _ in fault_parameters(model)]
    assert names and all(name.endswith("weight") for name in names)
    assert all(isinstance(model.get_submodule(name.rsplit(".", 1)[0]), (nn.Conv2d, nn.Linear)) for name in names)
    assert len(fault_parameters(model, "all")) > len(names)  # batch-norm parameters join with parameters="all"


def test_inject_bit_flips_returns_a_faulty_copy_and_never_touches_the_model():
    model = relu_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    faulty = inject_bit_flips(model, 1e-3, seed=0)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    changed = sum(popcount_of_xor(p, q) for (_, p), (_, q) in zip(fault_parameters(model), fault_parameters(faulty)))
    assert changed == faulty.fault_injection.num_flips > 0


def test_bit_flips_context_restores_every_bit_even_after_an_error():
    model = relu_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(RuntimeError, match="inside"):
        with bit_flips(model, 1e-2, seed=0) as record:
            assert record.num_flips > 0
            assert not all(torch.equal(before[k], v) for k, v in model.state_dict().items())
            raise RuntimeError("inside")
    assert all(torch.equal(before[k].view(-1), v.view(-1)) for k, v in model.state_dict().items())
    assert 0 < record.observed_rate < 0.05


def test_a_seed_flips_the_same_bits_in_a_network_and_its_clipped_copy():
    model = relu_model()
    clipped = clip_activations(model, {layer: 1.0 for layer in activation_layers(model)})
    with bit_flips(model, 1e-3, seed=5), bit_flips(clipped, 1e-3, seed=5):
        for (_, a), (_, b) in zip(fault_parameters(model), fault_parameters(clipped)):
            assert torch.equal(a, b)


# ----------------------------------------------------------------------------------------------- evaluation


def test_predict_labels_counts_non_finite_logits_as_a_failure():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            logits = torch.zeros(x.shape[0], 10)
            logits[0, 3] = 1.0
            logits[1, 0] = float("nan")
            logits[2, 4] = float("inf")
            return logits

    assert predict_labels(Broken(), torch.rand(3, 3, 32, 32)).tolist() == [3, -1, -1]


def test_fault_injection_accuracy_over_seeded_draws():
    model = relu_model()
    images, labels = own_predictions(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    clean = fault_injection_accuracy(model, images, labels, 0.0, num_draws=2)
    assert clean.fault_free_accuracy == 1.0 and clean.accuracies == [1.0, 1.0] and clean.num_flips == [0, 0]
    result = fault_injection_accuracy(model, images, labels, 1e-2, num_draws=3, seed=4)
    assert result.seeds == [4, 5, 6] and len(result.accuracies) == 3 and all(n > 0 for n in result.num_flips)
    assert result.mean < 1.0 and result.std >= 0 and result.standard_error == pytest.approx(result.std / math.sqrt(3))
    again = fault_injection_accuracy(model, images, labels, 1e-2, num_draws=3, seed=4)
    assert again.accuracies == result.accuracies  # reproducible under the seed
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the model ends as it started
    with pytest.raises(ValueError, match="num_draws"):
        fault_injection_accuracy(model, images, labels, 1e-3, num_draws=0)


def test_progress_bars_over_draws_and_rates_change_no_number(capsys):
    model = relu_model()
    images, labels = own_predictions(model)
    quiet = fault_injection_accuracy(model, images, labels, 1e-2, num_draws=2, seed=1)
    capsys.readouterr()
    shown = fault_injection_accuracy(model, images, labels, 1e-2, num_draws=2, seed=1, progress=True)
    assert "Fault draws" in capsys.readouterr().err and shown.accuracies == quiet.accuracies
    curve = fault_accuracy_curve(model, images, labels, [1e-3, 1e-2], num_draws=2, seed=1, progress=True)
    assert "Fault rates" in capsys.readouterr().err and curve[1e-2].accuracies == quiet.accuracies


def test_fault_accuracy_curve_and_resilience_auc():
    model = relu_model()
    images, labels = own_predictions(model)
    curve = fault_accuracy_curve(model, images, labels, [1e-5, 1e-3], num_draws=1)
    assert list(curve) == [1e-5, 1e-3] and all(point.fault_free_accuracy == 1.0 for point in curve.values())
    assert resilience_auc([1e-5, 1e-4, 1e-3], [0.5, 0.5, 0.5]) == pytest.approx(0.5)
    # a straight line in log10(rate) has the mean of its ends as normalized area; the rates' order does not matter
    assert resilience_auc([1e-3, 1e-5], [0.2, 0.8]) == pytest.approx(0.5)
    assert resilience_auc([1e-5, 1e-4, 1e-3], [0.9, 0.9, 0.1]) == pytest.approx((0.9 + 0.5) / 2)
    with pytest.raises(ValueError, match="one accuracy per fault rate"):
        resilience_auc([1e-5], [0.1, 0.2])
    with pytest.raises(ValueError, match="> 0"):
        resilience_auc([0.0, 1e-3], [0.1, 0.2])


# ----------------------------------------------------------------------------------------------- clipping


def test_clipped_relu_zeroes_everything_above_the_threshold():
    x = torch.tensor([-1.0, 0.0, 0.5, 1.0, 1.5, float("inf"), float("nan")])
    assert ClippedReLU(1.0)(x).tolist() == [0.0, 0.0, 0.5, 1.0, 0.0, 0.0, 0.0]
    for bad in (-0.5, float("nan"), float("inf"), "1"):
        with pytest.raises(ValueError, match="clipping threshold"):
            ClippedReLU(bad)


def test_clip_activations_swaps_named_relus_in_a_copy_and_records_them_in_the_config():
    model = relu_model()
    layers = activation_layers(model)
    assert len(layers) == 7 and all(isinstance(model.get_submodule(n), nn.ReLU) for n in layers)
    clipped = clip_activations(model, {layers[0]: 2.0, layers[3]: 0.5})
    assert isinstance(clipped.get_submodule(layers[0]), ClippedReLU) and clipped.get_submodule(layers[3]).threshold == 0.5
    assert isinstance(clipped.get_submodule(layers[1]), nn.ReLU)
    assert all(isinstance(model.get_submodule(n), nn.ReLU) for n in layers)  # the original keeps its ReLUs
    assert clipped.config.clipped_activations == {layers[0]: 2.0, layers[3]: 0.5}
    assert not hasattr(model.config, "clipped_activations")
    assert clipped.state_dict().keys() == model.state_dict().keys()  # no new parameters or buffers
    with pytest.raises(ValueError, match="no ReLU module"):
        clip_activations(model, {"fastnet.classifier": 1.0})
    with pytest.raises(ValueError, match="clipping threshold"):
        clip_activations(model, {layers[0]: -1.0})


def test_a_clipped_model_round_trips_through_save_pretrained(tmp_path):
    from transformers import AutoModelForImageClassification

    model = relu_model()
    clipped = clip_activations(model, {layer: 0.8 for layer in activation_layers(model)})
    clipped.save_pretrained(tmp_path / "clipped")
    config = json.loads((tmp_path / "clipped" / "config.json").read_text())
    assert config["clipped_activations"] == clipped.config.clipped_activations
    loaded = load_clipped_model(tmp_path / "clipped")
    images = torch.rand(4, 3, 32, 32)
    torch.testing.assert_close(loaded(images).logits, clipped(images).logits)
    reloaded = AutoModelForImageClassification.from_pretrained(str(tmp_path / "clipped"))  # the model clips itself
    assert clipping_thresholds(reloaded) == clipped.config.clipped_activations
    torch.testing.assert_close(reloaded(images).logits, clipped(images).logits)
    model.save_pretrained(tmp_path / "plain")
    with pytest.raises(ValueError, match="no clipped activations"):
        load_clipped_model(tmp_path / "plain")


def test_profile_activations_is_the_largest_value_each_relu_passes():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 16), nn.ReLU(), nn.Linear(16, 10), nn.ReLU())
    images = torch.rand(8, 3, 32, 32)
    with torch.no_grad():
        hidden = net[1](net[0](images)).clamp_min(0)
        second = net[3](hidden).clamp_min(0)
    profile = profile_activations(net, images, batch_size=3)
    assert profile["2"] == pytest.approx(float(hidden.max()))
    assert profile["4"] == pytest.approx(float(second.max()))
    # an already clipped layer reports what a ReLU would pass, not its clipped output
    net[2] = ClippedReLU(0.01)
    assert profile_activations(net, images)["2"] == pytest.approx(profile["2"])


# ----------------------------------------------------------------------------------------------- selection


def test_interval_search_steps():
    assert interval_candidates(0.0, 3.0) == [0.0, 1.0, 2.0, 3.0]
    candidates = [0.0, 1.0, 2.0, 3.0]
    assert next_interval(candidates, 0) == (0.0, 1.0)
    assert next_interval(candidates, 2) == (1.0, 3.0)
    assert next_interval(candidates, 3) == (2.0, 3.0)


def test_selected_thresholds_are_finite_positive_and_reproducible():
    model = relu_model()
    images, labels = own_predictions(model, n=24)
    settings = dict(fault_rates=(1e-4, 1e-2), num_draws=1, max_iterations=2, min_iterations=1, seed=3)
    output = select_clipping_thresholds(model, images, labels, **settings)
    assert set(output.thresholds) == set(activation_layers(model))
    for layer, threshold in output.thresholds.items():
        assert math.isfinite(threshold) and 0 < threshold <= output.activation_max[layer] + 1e-6
    assert all(isinstance(module, nn.ReLU) for module in model.modules() if isinstance(module, (nn.ReLU, ClippedReLU)))
    assert select_clipping_thresholds(model, images, labels, **settings).thresholds == output.thresholds
    # the reported AUCs are those of real networks: re-measured here on the same draws, from the outputs alone
    def auc_of(thresholds):
        curve = fault_accuracy_curve(clip_activations(model, thresholds), images, labels, (1e-4, 1e-2), num_draws=1,
                                     seed=3)
        return resilience_auc((1e-4, 1e-2), [point.mean for point in curve.values()])

    assert output.final_auc == pytest.approx(auc_of(output.thresholds))
    assert output.start_auc == pytest.approx(auc_of(profile_activations(model, images)))
    # every candidate of every layer was measured on the same fault draws (same seeds, same count of rates)
    assert {tuple(c.accuracies) for c in output.candidates} == {(1e-4, 1e-2)}


def test_interval_search_converges_on_the_most_resilient_threshold(monkeypatch):
    """With a synthetic resilience peaked at T = 0.37·ACT_max (one layer), the search narrows onto the peak."""
    model = relu_model()
    images, labels = own_predictions(model, n=8)
    layer = activation_layers(model)[0]

    def synthetic_curve(clipped, images, labels, rates, **settings):
        threshold = clipped.get_submodule(layer).threshold
        act_max = profile_activations(model, images, [layer])[layer]
        accuracy = 1 - abs(threshold / act_max - 0.37)

        class Point:
            mean, fault_free_accuracy = accuracy, 1.0

        return {rate: Point() for rate in rates}

    monkeypatch.setattr(selection_module, "fault_accuracy_curve", synthetic_curve)
    output = select_clipping_thresholds(model, images, labels, layers=[layer], max_iterations=4, min_iterations=4)
    act_max = output.activation_max[layer]
    # after 4 iterations the interval is (2/3)^3 of ACT_max wide around the peak
    assert abs(output.thresholds[layer] / act_max - 0.37) <= (2 / 3) ** 3 / 2
    assert output.iterations[layer] == 4
    assert 0.0 not in [c.threshold for c in output.candidates]  # T = 0 is never a candidate


def test_selection_rejects_bad_settings():
    model = relu_model()
    images, labels = own_predictions(model, n=4)
    with pytest.raises(ValueError, match="fault rate"):
        select_clipping_thresholds(model, images, labels, fault_rates=(1e-3, 2.0))
    with pytest.raises(ValueError, match="min_iterations"):
        select_clipping_thresholds(model, images, labels, max_iterations=1, min_iterations=2)
    with pytest.raises(ValueError, match="no ReLU"):
        select_clipping_thresholds(hfcifar.create_model("fastnet-tiny"), images, labels)  # GELU FastNet


# ----------------------------------------------------------------------------------------------- metric, claim


def test_fault_accuracy_metric_through_the_evaluation_api(tmp_path, synthetic_path):
    from hfcifar.cli import main
    from hfcifar.evaluation import METRICS, evaluate_classifier

    assert "fault_accuracy" in METRICS
    model = relu_model()
    clip_activations(model, {layer: 1.0 for layer in activation_layers(model)}).save_pretrained(tmp_path / "m")
    results = evaluate_classifier(str(tmp_path / "m"), dataset=synthetic_path, metrics=["accuracy", "fault_accuracy"],
                                  rate=1e-3, num_draws=2, num_examples=8)
    assert len(results["fault_accuracy_draws"]) == 2 and results["fault_rate"] == 1e-3
    assert results["clipped_activations"] == 7 and results["metric_num_examples"]["fault_accuracy"] == 8
    assert "FT-ClipAct" in results["metric_configs"]["fault_accuracy"]
    unclipped = evaluate_classifier(str(tmp_path / "m"), dataset=synthetic_path, metrics=["fault_accuracy"],
                                    rate=1e-3, num_draws=2, num_examples=8, clip=False)
    assert unclipped["clipped_activations"] == 0
    with pytest.raises(ValueError, match="fault rate"):
        evaluate_classifier(str(tmp_path / "m"), dataset=synthetic_path, metrics=["fault_accuracy"], rate=2.0)
    report = tmp_path / "eval.json"
    assert main(["eval", str(tmp_path / "m"), "--dataset", synthetic_path, "--metric", "fault_accuracy",
                 "--option", "rate=1e-5", "--option", "num_draws=2", "--option", "representation=fixed",
                 "--option", "bits=8", "--output-json", str(report)]) == 0
    written = json.loads(report.read_text())
    assert written["fault_representation"] == "fixed" and written["fault_bits"] == 8


def test_claim_pairs_the_two_networks_image_by_image_on_the_same_draws():
    from hfcifar.faults import FaultAccuracy
    from hfcifar.methods.ft_clipact import claim

    def point(seeds, *draws):
        correct = [torch.tensor(d, dtype=torch.bool) for d in draws]
        return FaultAccuracy(1e-5, "fp32", 32, [float(c.float().mean()) for c in correct], seeds, [1] * len(draws), 4,
                             1.0, correct=correct)

    clipped = point([0, 1], [1, 1, 0, 1], [1, 0, 0, 1])
    unclipped = point([0, 1], [0, 1, 0, 0], [0, 0, 1, 1])
    # per image: draw 0 gives (1, 0, 0, 1), draw 1 gives (1, 0, -1, 0)
    assert claim.paired_gain_per_image(clipped, unclipped).tolist() == [1.0, 0.0, -0.5, 0.5]
    with pytest.raises(ValueError, match="same fault draws"):
        claim.paired_gain_per_image(clipped, point([5, 6], [1, 1, 1, 1], [1, 1, 1, 1]))
    data = CifarTensorDataset(torch.zeros(20, 3, 32, 32, dtype=torch.uint8), torch.arange(20))
    train, validation = claim.split_validation(data, 6, seed=1)
    assert len(validation) == 6 and len(train) == 14
    assert sorted(train.labels.tolist() + validation.labels.tolist()) == list(range(20))  # disjoint, nothing lost
    assert claim.split_validation(data, 6, seed=1)[1].labels.tolist() == validation.labels.tolist()


def test_evaluate_classifier_measures_the_clipped_network(tmp_path, synthetic_path):
    # The thresholds saved in config.json are re-applied by the evaluation API, for every metric.
    import hfcifar.evaluation as evaluation
    from hfcifar.faults.clipping import ClippedReLU, activation_layers, clip_activations

    model = relu_model()
    layer = activation_layers(model)[0]
    clip_activations(model, {layer: 1e-6}, inplace=True).save_pretrained(tmp_path / "m")
    seen = {}

    def probe(model, split, settings):
        seen["clipped"] = isinstance(model.get_submodule(layer), ClippedReLU)
        return {"probe": 0.0, "num_examples": 0}

    evaluation.METRICS.register("probe", evaluation.Metric("probe", probe, "Probe", "probe"))
    try:
        evaluation.evaluate_classifier(str(tmp_path / "m"), dataset=synthetic_path, metrics=["probe"])
        assert seen["clipped"]
        evaluation.evaluate_classifier(str(tmp_path / "m"), dataset=synthetic_path, metrics=["probe"], clip="false")
        assert not seen["clipped"]
    finally:
        evaluation.METRICS.unregister("probe")
