"""RD layer-adaptive pruning (row 9): distortion curves, the additivity check, the dynamic programme, method "rd"."""

import copy
import itertools

import numpy as np
import pytest
import torch
from torch.nn.utils import prune

import hfcifar
from hfcifar.data import CifarTensorDataset
from hfcifar.methods.rd_layer_adaptive_pruning import (
    additivity_check,
    allocate_sparsities,
    distortion_curves,
    dynamic_programming,
    network_outputs,
    output_distortion,
    plot_additivity,
    plot_distortion_curves,
    pruned,
    random_allocations,
    sparsity_grid,
)
from hfcifar.pruning import PRUNING_METHODS, apply_masks, compute_masks, prunable_layers, sparsity_report
from hfcifar.training import CifarTrainer, CifarTrainingArguments

GRID = [0.0, 0.3, 0.6, 0.8, 0.9, 0.95]


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return hfcifar.create_model("fastnet-tiny").eval()


def calibration(n=8, seed=0):
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def measured():
    """One tiny model and its curves, shared by the tests that only read them."""
    model, images = tiny_model(), calibration()
    return model, images, distortion_curves(model, images, grid=GRID)


def brute_force(distortion, counts, target):
    best, best_choice = np.inf, None
    for choice in itertools.product(range(distortion.shape[1]), repeat=distortion.shape[0]):
        if sum(counts[i, j] for i, j in enumerate(choice)) >= target:
            total = sum(distortion[i, j] for i, j in enumerate(choice))
            if total < best:
                best, best_choice = total, list(choice)
    return best_choice, best


@pytest.mark.parametrize("seed", range(6))
def test_dynamic_programming_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    num_layers, num_points = 4, 5
    sizes = rng.integers(5, 40, num_layers)
    amounts = np.sort(rng.uniform(0, 1, num_points))
    amounts[0] = 0
    counts = np.round(amounts[None, :] * sizes[:, None]).astype(int)
    # increasing, layer-specific distortions (random slopes): the optimum is not the uniform allocation
    distortion = np.cumsum(rng.uniform(0, 1, (num_layers, num_points)), axis=1) * rng.uniform(0.1, 3, (num_layers, 1))
    distortion[:, 0] = 0
    reachable = int(counts[:, -1].sum())
    for target in (0, int(reachable * 0.3), int(reachable * 0.7), reachable):
        chosen, total = dynamic_programming(torch.tensor(distortion), torch.tensor(counts), target)
        expected_choice, expected_total = brute_force(distortion, counts, target)
        assert total == pytest.approx(expected_total, rel=1e-12)
        assert chosen == expected_choice
        assert sum(counts[i, j] for i, j in enumerate(chosen)) >= target


def test_dynamic_programming_refuses_bad_problems():
    distortion, counts = torch.zeros(2, 3), torch.tensor([[0, 1, 2], [0, 1, 2]])
    with pytest.raises(ValueError, match="cannot be reached"):
        dynamic_programming(distortion, counts, 5)
    with pytest.raises(ValueError, match="layers, grid points"):
        dynamic_programming(torch.zeros(2, 3), torch.zeros(3, 2, dtype=torch.long), 1)
    with pytest.raises(ValueError, match="NaN"):
        dynamic_programming(torch.tensor([[0.0, float("nan")]]), torch.tensor([[0, 1]]), 1)


def test_curve_points_match_an_independent_pruning(measured):
    model, images, curves = measured
    reference = network_outputs(model, images)
    assert [float(v) for v in curves.distortion[:, 0]] == [0.0] * len(curves.layers)  # δ_i(0) = 0
    for i, j in ((0, 2), (4, 4), (len(curves.layers) - 1, 5)):
        oracle = copy.deepcopy(model)
        module = dict(oracle.named_modules())[curves.layers[i]]
        prune.l1_unstructured(module, "weight", amount=int(curves.counts[i, j]))  # torch's own magnitude pruning
        expected = ((network_outputs(oracle, images) - reference) ** 2).mean().item()
        assert curves.distortion[i, j].item() == pytest.approx(expected, rel=1e-6, abs=1e-12)
    assert torch.equal(network_outputs(model, images), reference), "measuring the curves must leave the model intact"


def test_distortion_is_zero_unpruned_and_grows_with_the_amount(measured):
    _, _, curves = measured
    for i, name in enumerate(curves.layers):
        values = curves.distortion[i]
        assert values[0] == 0
        assert 0 < values[1] < values[-1], f"{name}: δ must be > 0 once pruned and larger at 95% than at 30%"
    assert curves.counts[:, 0].eq(0).all() and (curves.counts[:, 1:] > 0).all()


def test_allocation_meets_the_target_exactly(measured):
    _, _, curves = measured
    total = sum(curves.num_weights)
    for sparsity in (0.5, 0.77, 0.9, 0.93):
        allocation = allocate_sparsities(curves, sparsity)
        assert sum(allocation.zeros.values()) == round(sparsity * total)
        assert allocation.sparsity == round(sparsity * total) / total
        for name, n in zip(curves.layers, curves.num_weights):
            assert round(allocation.sparsities[name] * n) == allocation.zeros[name]
        # the exact count comes from the grid solution by giving back less than what the grid overshot
        assert all(allocation.zeros[n] <= round(allocation.grid_choice[n] * w) for n, w in zip(curves.layers, curves.num_weights))
    with pytest.raises(ValueError, match="sparsity"):
        allocate_sparsities(curves, 1.0)


def test_allocation_never_predicts_more_distortion_than_uniform(measured):
    _, _, curves = measured
    for j in (2, 3, 4):  # targets the grid hits exactly: every layer at 60%, 80%, 90%
        allocation = allocate_sparsities(curves, int(curves.counts[:, j].sum()) / sum(curves.num_weights))
        assert sum(allocation.zeros.values()) == int(curves.counts[:, j].sum())
        assert allocation.predicted_distortion <= curves.distortion[:, j].sum().item() + 1e-12, \
            "RD's summed distortion can never exceed the uniform allocation's at the same sparsity"


def test_allocation_prunes_the_cheap_layer_more():
    from hfcifar.methods.rd_layer_adaptive_pruning import DistortionCurves

    grid = [0.0, 0.25, 0.5, 0.75]
    counts = torch.tensor([[0, 25, 50, 75], [0, 25, 50, 75]])
    cheap, costly = torch.tensor([0.0, 0.01, 0.02, 0.03]), torch.tensor([0.0, 1.0, 2.0, 3.0])
    curves = DistortionCurves(["a", "b"], [100, 100], grid, counts, torch.stack([cheap, costly]).double(), 4)
    allocation = allocate_sparsities(curves, 0.4)
    assert allocation.zeros == {"a": 75, "b": 5}
    assert allocation.grid_choice == {"a": 0.75, "b": 0.25}  # the grid overshoots by 20; b gives them back
    on_grid = allocate_sparsities(curves, 0.5)  # 50 + 50 or 75 + 25: the grid hits the target, nothing adjusted
    assert on_grid.zeros == {"a": 75, "b": 25} and on_grid.grid_choice == {"a": 0.75, "b": 0.25}


def test_pruned_context_restores_weights_and_masks():
    model = tiny_model()
    layers = prunable_layers(model)
    name = list(layers)[2]
    apply_masks(model, {name: (torch.rand_like(layers[name].weight) > 0.5).float()})  # a layer pruned before
    before = {k: v.clone() for k, v in model.state_dict().items()}
    mask = torch.zeros_like(layers[name].weight)
    with pruned(model, {name: mask, list(layers)[0]: torch.zeros_like(layers[list(layers)[0]].weight)}):
        model(torch.rand(1, 3, 32, 32))
        assert (layers[name].weight == 0).all()
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_a_progress_bar_over_the_layers_changes_no_number(measured, capsys):
    model, images, curves = measured
    capsys.readouterr()
    shown = distortion_curves(model, images, grid=GRID, progress=True)
    assert "RD distortion curves" in capsys.readouterr().err
    assert torch.equal(shown.distortion, curves.distortion) and torch.equal(shown.counts, curves.counts)


def test_curves_of_a_pruned_model_start_from_its_zeros():
    model, images = tiny_model(), calibration()
    masks = compute_masks("global", model, 0.5)
    apply_masks(model, masks)
    zeros = sparsity_report(model)["per_layer"]
    curves = distortion_curves(model, images, grid=GRID)
    for i, (name, n) in enumerate(zip(curves.layers, curves.num_weights)):
        assert int(curves.counts[i, 0]) == round(zeros[name] * n)
        assert (curves.counts[i] >= curves.counts[i, 0]).all()
        assert (curves.distortion[i][curves.counts[i] == curves.counts[i, 0]] == 0).all()
    # an iterative step: RD's next masks keep every zero and reach the new target exactly
    apply_masks(model, compute_masks("rd", model, 0.8, calibration_images=images, grid=GRID))
    report = sparsity_report(model)
    assert report["num_zeros"] == round(0.8 * report["num_weights"])
    assert all(report["per_layer"][name] >= zeros[name] for name in zeros)


def test_additivity_check_measures_joint_pruning(measured):
    model, images, curves = measured
    allocations = random_allocations(curves, 5, max_sparsity=0.9, seed=1)
    assert all(set(a) == set(curves.layers) for a in allocations)
    check = additivity_check(model, images, curves, allocations)
    reference = network_outputs(model, images)
    oracle = copy.deepcopy(model)
    for name, module in prunable_layers(oracle).items():
        prune.l1_unstructured(module, "weight", amount=allocations[0][name])
    assert check.joint[0] == pytest.approx(output_distortion(reference, network_outputs(oracle, images)), rel=1e-6)
    grid_index = {name: {int(c): j for j, c in enumerate(curves.counts[i])} for i, name in enumerate(curves.layers)}
    expected_sum = sum(curves.distortion[i, grid_index[name][allocations[0][name]]].item() for i, name in enumerate(curves.layers))
    assert check.summed[0] == pytest.approx(expected_sum, rel=1e-9)
    assert check.pearson == pytest.approx(np.corrcoef(check.joint, check.summed)[0, 1])
    assert check.log_pearson == pytest.approx(np.corrcoef(np.log(check.joint), np.log(check.summed))[0, 1])
    assert check.median_ratio == pytest.approx(np.median(np.array(check.joint) / np.array(check.summed)))


def test_additivity_is_exact_when_one_layer_is_pruned(measured):
    """With a single layer pruned, the joint distortion *is* that layer's curve point: a check that pairs an
    allocation with another's sum, prunes other amounts or layers than it says, or forgets the masks breaks r = 1."""
    model, images, curves = measured
    allocations = []
    for i, name in enumerate(curves.layers):
        for j in (1, 3, 5):
            allocation = {other: 0 for other in curves.layers}
            allocation[name] = int(curves.counts[i, j])
            allocations.append(allocation)
    check = additivity_check(model, images, curves, allocations)
    expected = [curves.distortion[i, j].item() for i in range(len(curves.layers)) for j in (1, 3, 5)]
    assert check.joint == pytest.approx(expected, rel=1e-6)
    assert check.summed == pytest.approx(expected, rel=1e-9)
    assert check.pearson == pytest.approx(1.0, abs=1e-9) and check.median_ratio == pytest.approx(1.0, rel=1e-6)
    # several layers at once are not additive by construction: the measured joint distortion differs from the sum
    several = additivity_check(model, images, curves, random_allocations(curves, 4, max_sparsity=0.9, seed=2))
    assert all(j != pytest.approx(s, rel=1e-6) for j, s in zip(several.joint, several.summed))


def test_rd_is_a_registered_pruning_method(measured):
    model, images, _ = measured
    assert "rd" in PRUNING_METHODS
    with pytest.raises(ValueError, match="calibration_images"):
        compute_masks("rd", model, 0.9)
    masks = compute_masks("rd", copy.deepcopy(model), 0.9, calibration_images=images, grid=GRID)
    assert set(masks) == set(prunable_layers(model))
    pruned_model = apply_masks(copy.deepcopy(model), masks)
    report = sparsity_report(pruned_model)
    assert report["num_zeros"] == round(0.9 * report["num_weights"])
    assert len(set(round(v, 3) for v in report["per_layer"].values())) > 1, "RD should be layer-adaptive"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"calibration_images": torch.rand(2, 32, 32)}, "N×3×H×W"),
        ({"calibration_images": torch.zeros(2, 3, 32, 32, dtype=torch.uint8)}, "float"),
        ({"calibration_images": torch.rand(2, 3, 32, 32), "grid": [0.0, 0.5, 0.3]}, "increasing"),
        ({"calibration_images": torch.rand(2, 3, 32, 32), "grid": [0.0, 1.0]}, r"\[0, 1\)"),
    ],
)
def test_bad_input_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        distortion_curves(tiny_model(), **kwargs)


def test_default_grid_is_fine_at_high_amounts():
    grid = sparsity_grid()
    assert grid[0] == 0 and grid[-1] == 0.995 and all(b > a for a, b in zip(grid, grid[1:]))
    assert np.allclose(np.diff([g for g in grid if 0.8 <= g <= 0.99]), 0.01) and len(grid) == 37
    with pytest.raises(ValueError):
        sparsity_grid(step=0)


def test_masks_persist_through_fine_tuning(measured, tmp_path):
    model, images, _ = measured
    model = copy.deepcopy(model)
    apply_masks(model, compute_masks("rd", model, 0.8, calibration_images=images, grid=GRID))
    zeros = sparsity_report(model)["num_zeros"]
    data = CifarTensorDataset(torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8), torch.arange(16) % 10)
    args = CifarTrainingArguments(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=8, save_strategy="no",
                                  eval_strategy="no", plot_curves=False, disable_tqdm=True, learning_rate=0.1)
    CifarTrainer(model=model.train(), args=args, train_dataset=data).train()
    assert sparsity_report(model)["num_zeros"] == zeros


def test_plots_draw_on_the_callers_axes(measured):
    from matplotlib.figure import Figure

    model, images, curves = measured
    allocation = allocate_sparsities(curves, 0.9)
    ax = Figure().subplots()
    plot_distortion_curves(curves, ax, {"90%": allocation})
    assert len(ax.get_lines()) >= len(curves.layers) and ax.get_yscale() == "log"
    check = additivity_check(model, images, curves, [*random_allocations(curves, 3), allocation.zeros], labels=["", "", "", "RD 90%"])
    ax = Figure().subplots()
    plot_additivity(check, ax)
    assert "Pearson r" in ax.get_title() and len(ax.collections) == 2  # the random prunings and the labelled one


def test_claim_stages_have_their_events_and_the_additivity_statistic_is_pearsons():
    from hfcifar.methods.rd_layer_adaptive_pruning.claim import pearson, stage_schedule
    from hfcifar.pruning import PruningSchedule

    for steps, events in ((99, 5), (99, 3), (2, 2), (40, 6)):
        args = stage_schedule(steps, events, 0.5)
        schedule = PruningSchedule(0.9, kind="gradual", start_step=0, end_step=args["pruning_end_step"],
                                   frequency=args["pruning_frequency"], initial_sparsity=0.5)
        assert len(schedule.pruning_steps()) == events and schedule.last_step < steps
    with pytest.raises(ValueError, match="2 events"):
        stage_schedule(10, 1, 0.5)
    rng = np.random.default_rng(0)
    x = rng.normal(size=50)
    assert pearson(np.column_stack([x, 3 * x + 1])) == pytest.approx(1.0)
    assert pearson(np.column_stack([x, -x])) == pytest.approx(-1.0)


def test_pruning_trainer_prunes_with_rd_on_a_gradual_schedule(tmp_path):
    from hfcifar.pruning import PruningTrainer, PruningTrainingArguments

    model = tiny_model().train()
    data = CifarTensorDataset(torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8), torch.arange(32) % 10)
    args = PruningTrainingArguments(
        output_dir=str(tmp_path), target_sparsity=0.8, pruning_method="rd", pruning_schedule="gradual",
        pruning_start_step=0, pruning_end_step=2, pruning_frequency=1, pruning_calibration_examples=8,
        pruning_options={"grid": GRID}, max_steps=3, per_device_train_batch_size=8, save_strategy="no",
        eval_strategy="no", plot_curves=False, disable_tqdm=True)
    trainer = PruningTrainer(model=model, args=args, train_dataset=data)
    trainer.train()
    history = trainer.pruning_history
    assert [event["step"] for event in history] == [1, 2]  # step 0's cubic target is s_i = 0: nothing to prune
    report = trainer.sparsity_report()
    assert report["num_zeros"] == round(0.8 * report["num_weights"])
    assert len({round(v, 3) for v in report["per_layer"].values()}) > 1


def test_rd_on_a_channels_last_model(measured):
    """CifarTrainer trains conv nets channels-last by default: curves, masks and `pruned` must work on such weights."""
    model, images, _ = measured
    expected = compute_masks("rd", model, 0.8, calibration_images=images, grid=GRID)
    model = copy.deepcopy(model).to(memory_format=torch.channels_last)
    masks = compute_masks("rd", model, 0.8, calibration_images=images, grid=GRID)
    assert all(torch.equal(masks[name], expected[name]) for name in expected)
    report = sparsity_report(apply_masks(model, masks))
    assert report["num_zeros"] == round(0.8 * report["num_weights"])


def test_rd_is_found_by_name_without_importing_its_folder():
    import subprocess
    import sys

    # The method provides "rd" lazily: listed after discovery, its module imported only on first use.
    code = ("import hfcifar.pruning as p, sys; assert 'rd' in p.PRUNING_METHODS; "
            "assert 'hfcifar.methods.rd_layer_adaptive_pruning.rd' not in sys.modules; "
            "fn = p.get_pruning_method('rd'); assert 'hfcifar.methods.rd_layer_adaptive_pruning.rd' in sys.modules; "
            "print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-1500:]
