"""ReSTE (row 16): sign forward, the rectified power-function backward, the STE, binary layers, the two indicators,
the annealing of o and `ReSTETrainer`."""

import math

import pytest
import torch

import hfcifar
from hfcifar.data import CifarTensorDataset
from hfcifar.methods.reste import (
    ReSTETrainer,
    ReSTETrainingArguments,
    estimating_error,
    gradient_stability,
    training_progress,
)
from hfcifar.models.binary_resnet import (
    BinaryConv2d,
    BinaryLinear,
    RectifiedStraightThroughSign,
    StraightThroughSign,
    binary_sign,
    reste_gradient,
    reste_power_schedule,
)
from hfcifar.training.callbacks import WarpedSchedule

T, M = 1.5, 0.1  # the paper's threshold t and rectified interval m


def grad_of(function, z, *args):
    z = z.clone().requires_grad_(True)
    out = function.apply(z, *args)
    out.backward(torch.ones_like(out))
    return out.detach(), z.grad


def reste_backward_by_hand(z: float, o: float, t: float = T, m: float = M) -> float:
    """The rectified derivative written out from the paper's formulas, one number at a time."""
    if abs(z) > t:
        return 0.0
    if abs(z) <= m:
        return m ** (1 / o) / m  # secant slope f(m)/m of f(z) = sign(z)|z|^(1/o)
    return (1 / o) * abs(z) ** ((1 - o) / o)


Z = torch.tensor([-2.0, -1.5, -1.2, -0.7, -0.3, -0.1, -0.05, 0.0, 0.02, 0.1, 0.11, 0.4, 0.9, 1.49, 1.51, 3.0], dtype=torch.float64)


@pytest.mark.parametrize("o", [1.0, 1.5, 2.0, 3.0])
def test_reste_forward_is_sign_and_backward_matches_the_formula(o):
    out, grad = grad_of(RectifiedStraightThroughSign, Z, o, T, M)
    assert torch.equal(out, torch.where(Z >= 0, 1.0, -1.0).double())  # sign, with sign(0) = +1
    expected = torch.tensor([reste_backward_by_hand(z, o) for z in Z.tolist()], dtype=torch.float64)
    torch.testing.assert_close(grad, expected)
    torch.testing.assert_close(reste_gradient(Z, o, T, M), expected)


@pytest.mark.parametrize("o", [1.5, 3.0])
def test_reste_backward_is_the_power_functions_derivative_between_m_and_t(o):
    """Oracle independent of the formula: autograd of f(z) = sign(z)|z|^(1/o) on m < |z| < t."""
    z = torch.cat([torch.linspace(-1.45, -0.15, 14), torch.linspace(0.15, 1.45, 14)]).double().requires_grad_(True)
    (torch.sign(z) * z.abs().pow(1 / o)).sum().backward()
    _, grad = grad_of(RectifiedStraightThroughSign, z.detach(), o, T, M)
    torch.testing.assert_close(grad, z.grad)
    # and it is the derivative of the layer's estimator function (what the estimating error compares with sign)
    layer = BinaryConv2d(1, 1, 1, estimator="reste", power=o)
    w = z.detach().clone().requires_grad_(True)
    layer.estimator_function(w).sum().backward()
    torch.testing.assert_close(w.grad, z.grad)


def test_reste_gradient_is_bounded_near_zero_and_scales_the_upstream_gradient():
    z = torch.tensor([1e-8, -1e-6, 0.05])
    _, grad = grad_of(RectifiedStraightThroughSign, z, 3.0, T, M)
    assert torch.isfinite(grad).all() and torch.allclose(grad, torch.full_like(grad, M ** (1 / 3) / M))
    z = torch.tensor([0.5, -0.5], requires_grad=True)
    RectifiedStraightThroughSign.apply(z, 2.0, T, M).mul(torch.tensor([3.0, -2.0])).sum().backward()
    torch.testing.assert_close(z.grad, torch.tensor([3.0, -2.0]) * 0.5 * 0.5**-0.5)


def test_ste_backward_is_the_clipped_identity_and_reste_with_o_1_is_an_ste():
    out, grad = grad_of(StraightThroughSign, Z, 1.0)
    assert torch.equal(out, binary_sign(Z))
    torch.testing.assert_close(grad, (Z.abs() <= 1.0).double())
    # o = 1: the power function is the identity, so ReSTE is the straight-through estimator clipped at t
    torch.testing.assert_close(grad_of(RectifiedStraightThroughSign, Z, 1.0, T, M)[1], grad_of(StraightThroughSign, Z, T)[1])


def test_binary_layers_compute_with_signs_and_pass_gradients_to_the_latent_weights():
    torch.manual_seed(0)
    conv = BinaryConv2d(4, 6, 3, padding=1, estimator="reste", power=2.0)
    x = torch.randn(2, 4, 8, 8)
    expected = torch.nn.functional.conv2d(binary_sign(x), binary_sign(conv.weight) * conv.weight.abs().mean(), padding=1)
    torch.testing.assert_close(conv(x), expected)
    conv(x).sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
    linear = BinaryLinear(5, 3, estimator="ste")
    h = torch.randn(4, 5)
    torch.testing.assert_close(linear(h), binary_sign(h) @ (binary_sign(linear.weight) * linear.weight.abs().mean()).T + linear.bias)
    full = BinaryLinear(5, 3, weight_bits=32, activation_bits=32)
    torch.testing.assert_close(full(h), torch.nn.functional.linear(h, full.weight, full.bias))


@pytest.mark.parametrize("bits", [{"weight_bits": 0}, {"activation_bits": -2}, {"weight_bits": 0, "activation_bits": 0}])
def test_bit_widths_below_one_are_rejected(bits):
    with pytest.raises(ValueError, match="at least 1 bit"):
        BinaryConv2d(2, 2, 3, **bits)
    with pytest.raises(ValueError, match="at least 1 bit"):
        BinaryLinear(2, 2, **bits)
    with pytest.raises(ValueError, match="at least 1 bit"):
        hfcifar.create_model("binary-resnet20", **bits)
    with pytest.raises(ValueError, match="estimator"):
        BinaryConv2d(2, 2, 3, estimator="sign")
    with pytest.raises(ValueError, match="o must be ≥ 1"):
        BinaryLinear(2, 2, power=0.5)
    with pytest.raises(ValueError, match="0 < interval m < threshold t"):
        BinaryConv2d(2, 2, 3, reste_interval=2.0)


def tiny_binary(seed=0, **overrides):
    torch.manual_seed(seed)
    settings = {"stem_width": 8, "hidden_sizes": [8, 16], "depths": [1, 1], **overrides}
    return hfcifar.create_model("binary-resnet20", **settings)


def test_estimating_error_is_the_summed_l2_distance_between_sign_and_the_estimator():
    model = tiny_binary(estimator="reste")
    model.set_training_progress(1.0)  # o = 3
    layers = model.binary_layers().values()
    by_hand = 0.0
    for layer in layers:
        w = layer.weight.detach().double()
        f = torch.sign(w) * w.abs().clamp_max(T) ** (1 / 3)
        by_hand += math.sqrt(float(((torch.where(w >= 0, 1.0, -1.0) - f) ** 2).sum()))
    assert estimating_error(model) == pytest.approx(by_hand, rel=1e-5)
    # the STE's estimator is the clipped identity
    ste = tiny_binary(estimator="ste")
    by_hand = sum(float(torch.linalg.vector_norm(binary_sign(l.weight) - l.weight.clamp(-1, 1)).detach()) for l in ste.binary_layers().values())
    assert estimating_error(ste) == pytest.approx(by_hand, rel=1e-5)


def test_the_equilibrium_a_larger_o_lowers_the_estimating_error_and_the_gradient_stability():
    """The paper's phenomenon on fixed weights: as o grows, e falls while var(|f'(z)|) (= less stability) rises."""
    model = tiny_binary(estimator="reste")
    z = torch.randn(100_000, generator=torch.Generator().manual_seed(0)) * 0.3
    errors, variances = [], []
    for progress in (0.0, 0.5, 1.0):
        model.set_training_progress(progress)
        errors.append(estimating_error(model))
        variances.append(float(reste_gradient(z, model.reste_power_at(progress), T, M).var()))
    assert errors[0] > errors[1] > errors[2]
    assert variances[0] < variances[1] < variances[2]


def test_gradient_stability_is_the_summed_variance_of_gradient_magnitudes():
    model = tiny_binary().train()
    with pytest.raises(ValueError, match="after backward"):
        gradient_stability(model)
    model(torch.rand(4, 3, 32, 32), labels=torch.tensor([1, 2, 3, 4])).loss.backward()
    by_hand = sum(float(l.weight.grad.abs().var()) for l in model.binary_layers().values())
    assert gradient_stability(model) == pytest.approx(by_hand, rel=1e-6)
    with pytest.raises(ValueError, match="binary network"):
        estimating_error(hfcifar.create_model("fastnet-tiny"))


def test_training_progress_follows_a_warped_learning_rate_schedule():
    class State:
        global_step, max_steps = 30, 100

    assert training_progress(State()) == pytest.approx(0.3)
    warped = WarpedSchedule(lambda step: 1.0, horizon=100)
    warped.retarget(20, 60)  # from step 20 on, the remaining 80 steps of the schedule play in 40

    class Scheduler:
        lr_lambdas = [warped]

    assert training_progress(State(), Scheduler()) == pytest.approx((20 + 10 * 2) / 100)


def data(n=32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return CifarTensorDataset(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator), torch.arange(n) % 10)


def arguments(tmp_path, **overrides):
    values = dict(per_device_train_batch_size=8, max_steps=4, learning_rate=0.05, logging_steps=2, save_strategy="no",
                  eval_strategy="no", plot_curves=False, disable_tqdm=True, seed=3, optim="sgd", max_grad_norm=0.0,
                  lr_scheduler_type="constant", use_cpu=True)
    values.update(overrides)
    return ReSTETrainingArguments(str(tmp_path), **values)


def test_trainer_anneals_o_every_step_and_logs_both_indicators(tmp_path):
    model = tiny_binary(estimator="reste", reste_power_start=1.0, reste_power_end=3.0)
    trainer = ReSTETrainer(model=model, args=arguments(tmp_path), train_dataset=data())
    trainer.train()
    powers = [row["reste_power"] for row in trainer.indicators.history]
    assert powers == pytest.approx([reste_power_schedule(s / 4, 1.0, 3.0) for s in range(4)])
    assert {layer.power for layer in model.binary_layers().values()} == {3.0}  # the end of training: o_end
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logged) == 2
    for entry, rows in zip(logged, (trainer.indicators.history[:2], trainer.indicators.history[2:])):
        assert entry["estimating_error"] == pytest.approx(sum(r["estimating_error"] for r in rows) / 2)
        assert entry["gradient_stability"] == pytest.approx(sum(r["gradient_stability"] for r in rows) / 2)
        assert entry["reste_power"] == pytest.approx(rows[-1]["reste_power"])
    assert all(r["gradient_stability"] > 0 and r["estimating_error"] > 0 for r in trainer.indicators.history)


def test_reste_with_o_fixed_at_1_trains_exactly_like_the_ste(tmp_path):
    """With o = 1 and t equal to the STE's threshold, the two estimators are the same function: identical weights."""
    reste = tiny_binary(estimator="reste", reste_power_start=1.0, reste_power_end=1.0, reste_threshold=1.0)
    ste = tiny_binary(estimator="ste", ste_threshold=1.0)
    for name, model in (("reste", reste), ("ste", ste)):
        ReSTETrainer(model=model, args=arguments(tmp_path / name), train_dataset=data()).train()
    for (name, a), b in zip(reste.state_dict().items(), ste.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    assert any(not torch.equal(a, b) for a, b in zip(reste.state_dict().values(), tiny_binary().state_dict().values()))


def test_trainer_refuses_a_model_that_is_not_binary(tmp_path):
    with pytest.raises(ValueError, match="binary networks"):
        ReSTETrainer(model=hfcifar.create_model("fastnet-tiny"), args=arguments(tmp_path), train_dataset=data())


def test_claim_builds_both_arms_from_the_same_weights_with_the_papers_recipe():
    from hfcifar.methods.reste.claim import RECIPE, indicator_mean, recipe_for

    recipe = recipe_for({"batch_size": 128, "warmup_epochs": 1}, num_train=4194)
    assert recipe["per_device_train_batch_size"] == 128 and recipe["warmup_steps"] == 33  # ceil(4194 / 128)
    assert (recipe["optim"], recipe["learning_rate"], recipe["weight_decay"], recipe["max_grad_norm"]) == (
        "sgd", 0.1, 1e-4, 0.0)
    assert recipe_for({"batch_size": 256, "warmup_epochs": 5}, 50_000)["warmup_steps"] == 5 * 196
    assert "warmup_steps" not in RECIPE  # the module constant is not mutated
    # the claim's seeding: the same seed gives both estimators the same initial weights, another seed other weights
    torch.manual_seed(7)
    ste = hfcifar.create_model("binary-resnet20", estimator="ste")
    torch.manual_seed(7)
    reste = hfcifar.create_model("binary-resnet20", estimator="reste")
    torch.manual_seed(8)
    other = hfcifar.create_model("binary-resnet20", estimator="reste")
    assert all(torch.equal(a, b) for a, b in zip(ste.state_dict().values(), reste.state_dict().values()))
    assert not all(torch.equal(a, b) for a, b in zip(reste.state_dict().values(), other.state_dict().values()))
    rows = [{"e": float(i)} for i in range(10)]
    assert indicator_mean(rows, "e") == pytest.approx(4.5) and indicator_mean(rows, "e", 0.2) == pytest.approx(8.5)
