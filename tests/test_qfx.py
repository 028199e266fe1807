"""QFX (row 27): the differentiable fixed-point cast, learned binary points, model conversion, PTQ, export, save/load."""

import copy
import json
import math
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

import hfcifar
from hfcifar.data import CifarTensorDataset
from hfcifar.quantization import (
    FixedPointBatchNorm2d,
    FixedPointFormat,
    FixedPointQuantizer,
    QFXTrainer,
    QFXTrainingArguments,
    calibration_mode,
    export_fixed_point,
    fixed_point_quantize,
    fixed_point_quantizers,
    from_fixed_point_integers,
    from_twos_complement,
    integer_bits_by_mse,
    integer_range,
    k_hot_round,
    load_fixed_point,
    popcount,
    post_training_quantization,
    quantize_model,
    read_fixed_point,
    residual_blocks,
    round_ste,
    save_fixed_point,
    set_binary_points_trainable,
    to_fixed_point_integers,
    to_twos_complement,
    verify_export,
)
from hfcifar.training import CifarTrainingArguments


def tiny(name="fastnet-tiny", seed=0):
    torch.manual_seed(seed)
    return hfcifar.create_model(name)


def images(n=16, seed=0):
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------------------------- the arithmetic


@pytest.mark.parametrize("word_length,integer_bits,signed", [(1, 0, True), (1, 2, False), (4, 1, True), (6, -2, True),
                                                             (8, 3, False), (12, 5, True), (16, -4, False)])
def test_quantize_dequantize_is_exact_on_representable_values(word_length, integer_bits, signed):
    low, high = integer_range(word_length, signed)
    integers = torch.arange(low, high + 1) if high - low < 5000 else torch.randint(low, high + 1, (5000,))
    values = from_fixed_point_integers(integers, word_length, integer_bits)
    torch.testing.assert_close(values, integers.float() * 2.0 ** (integer_bits - word_length), rtol=0, atol=0)
    assert torch.equal(fixed_point_quantize(values, word_length, integer_bits, signed), values)
    assert torch.equal(to_fixed_point_integers(values, word_length, integer_bits, signed), integers.to(torch.int32))
    fmt = FixedPointFormat(word_length, integer_bits, signed)
    assert fmt.range == (low * fmt.step, high * fmt.step)
    assert torch.equal(fmt.from_integers(fmt.to_integers(values)), values)


def test_cast_rounds_half_to_even_and_saturates():
    # ap_fixed<4, 2>: steps of 1/4 in [-2, 1.75]
    x = torch.tensor([0.125, 0.375, 0.3, -0.125, 1.9, 5.0, -2.1, -7.0])
    expected = torch.tensor([0.0, 0.5, 0.25, -0.0, 1.75, 1.75, -2.0, -2.0])
    torch.testing.assert_close(fixed_point_quantize(x, 4, 2), expected, rtol=0, atol=0)
    # unsigned ap_ufixed<3, 1>: steps of 1/4 in [0, 1.75]: negatives saturate to 0
    torch.testing.assert_close(fixed_point_quantize(torch.tensor([-0.3, 0.6, 9.0]), 3, 1, signed=False),
                               torch.tensor([0.0, 0.5, 1.75]), rtol=0, atol=0)
    assert FixedPointFormat(8, 3).hls_type == "ap_fixed<8, 3, AP_RND_CONV, AP_SAT>"
    assert FixedPointFormat(6, 0, signed=False).hls_type == "ap_ufixed<6, 0, AP_RND_CONV, AP_SAT>"


def test_rounding_is_straight_through_and_saturation_blocks_the_gradient():
    x = torch.tensor([0.3, -0.7, 1.2, 3.0, -5.0], requires_grad=True)
    fixed_point_quantize(x, 4, 2).sum().backward()  # range [-2, 1.75]
    torch.testing.assert_close(x.grad, torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0]))


def reference_cast(x, word_length, integer_bits, signed=True):
    """The same cast written with differentiable ops only (round_ste twice): an independent gradient oracle."""
    low, high = integer_range(word_length, signed)
    step = torch.exp2(round_ste(integer_bits) - word_length)
    return round_ste(torch.clamp(x / step, low, high)) * step


@pytest.mark.parametrize("integer_bits", [0.3, 1.0, 2.6])
def test_gradient_flows_to_the_binary_point(integer_bits):
    torch.manual_seed(0)
    x = torch.randn(500) * 1.5
    upstream = torch.randn(500)
    bits = torch.tensor(integer_bits, requires_grad=True)
    (fixed_point_quantize(x, 5, bits) * upstream).sum().backward()
    oracle = torch.tensor(integer_bits, requires_grad=True)
    (reference_cast(x, 5, oracle) * upstream).sum().backward()
    assert bits.grad is not None and bits.grad.abs() > 0
    torch.testing.assert_close(bits.grad, oracle.grad, rtol=1e-4, atol=1e-5)
    # the closed form: ln 2 · Σ g · (Q(x) − x·1[inside])
    out = fixed_point_quantize(x, 5, integer_bits)
    step = 2.0 ** (round(integer_bits) - 5)
    inside = ((x / step) >= -16) & ((x / step) <= 15)
    expected = math.log(2) * (upstream * (out - x * inside)).sum()
    torch.testing.assert_close(bits.grad, expected, rtol=1e-4, atol=1e-5)


def test_gradient_descent_learns_the_mse_optimal_binary_point():
    # Heavy-tailed values: too few integer bits clip the tail, too many waste resolution. Descending the cast's MSE
    # through the binary-point gradient alone must come from either side to the exhaustive search's optimum. The
    # straight-through gradient changes sign between two neighbouring formats, so the real-valued parameter settles
    # on their boundary: the binary point ends at the optimum or next to it, with an MSE close to the optimum's.
    torch.manual_seed(0)
    x = torch.randn(4000) ** 3

    def mse(bits):
        return float((fixed_point_quantize(x, 4, bits) - x).square().mean())

    best = integer_bits_by_mse(x, 4, search=10)
    for start in (best - 4.0, best + 3.0):
        quantizer = FixedPointQuantizer(4, integer_bits=start)
        optimizer = torch.optim.SGD(quantizer.parameters(), lr=0.5)
        for _ in range(200):
            optimizer.zero_grad()
            (quantizer(x) - x).square().mean().backward()
            optimizer.step()
        assert abs(quantizer.binary_point - best) <= 1, (start, quantizer.integer_bits.item(), best)
        assert mse(quantizer.binary_point) <= 1.1 * mse(best) < 0.5 * mse(start)


def test_k_hot_integers_are_the_nearest_with_at_most_k_ones():
    low, high = integer_range(6, signed=True)
    candidates = torch.arange(low, high + 1)
    values = torch.linspace(low - 3, high + 3, 997)
    for k in (1, 2, 3):
        allowed = candidates[popcount(candidates) <= k].float()
        got = k_hot_round(values.clamp(low, high), k, low, high)
        assert bool((popcount(got.long()) <= k).all())
        assert bool(torch.isin(got, allowed).all())
        nearest = (values.clamp(low, high)[:, None] - allowed[None]).abs().min(1).values
        torch.testing.assert_close((got - values.clamp(low, high)).abs(), nearest)
    powers = k_hot_round(torch.tensor([3.1, 5.9, -12.0, 0.4, 100.0]), 1, -128, 127)
    torch.testing.assert_close(powers, torch.tensor([4.0, 4.0, -8.0, 0.0, 64.0]))


def test_multiplier_free_cast_keeps_gradients_and_k_hot_integers():
    x = torch.randn(300, requires_grad=True)
    bits = torch.tensor(1.0, requires_grad=True)
    out = fixed_point_quantize(x, 6, bits, k_hot=2)
    out.pow(2).sum().backward()
    assert x.grad.abs().sum() > 0 and bits.grad.abs() > 0
    assert bool((popcount(to_fixed_point_integers(x, 6, 1, k_hot=2)) <= 2).all())


def test_twos_complement_codes_round_trip():
    integers = torch.arange(-128, 128)
    codes = to_twos_complement(integers, 8)
    assert codes.min() == 0 and codes.max() == 255 and int(codes[integers == -1]) == 255
    assert torch.equal(from_twos_complement(codes, 8), integers)
    # flipping the sign bit of 3 (0b00000011) gives 0b10000011 = -125
    assert int(from_twos_complement(to_twos_complement(torch.tensor([3]), 8) ^ (1 << 7), 8)) == -125
    with pytest.raises(ValueError, match="fit a signed 4-bit word"):
        to_twos_complement(torch.tensor([8]), 4)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "8", 25])
def test_bad_bit_widths_raise_value_errors(bad):
    with pytest.raises(ValueError, match="bit"):
        FixedPointQuantizer(bad)
    with pytest.raises(ValueError, match="bit"):
        fixed_point_quantize(torch.zeros(2), bad, 0)
    with pytest.raises(ValueError, match="bit"):
        quantize_model(tiny(), bits=bad)
    with pytest.raises(ValueError, match="bit"):
        quantize_model(tiny(), bits=8, weight_bits=bad)
    with pytest.raises(ValueError, match="bit"):
        post_training_quantization(tiny(), bad, images(4))


def test_other_bad_input_is_named():
    with pytest.raises(ValueError, match="k_hot"):
        fixed_point_quantize(torch.zeros(2), 4, 0, k_hot=0)
    with pytest.raises(ValueError, match="calibration"):
        quantize_model(tiny(), 8, calibration="percentile")
    with pytest.raises(ValueError, match="float tensor"):
        quantize_model(tiny(), 8, calibration_images=torch.zeros(4, 3, 32, 32, dtype=torch.uint8))
    model = quantize_model(tiny(), 8)
    with pytest.raises(ValueError, match="already quantized"):
        quantize_model(model, 8)
    with pytest.raises(ValueError, match="blocks"):
        quantize_model(tiny(), 8, blocks=["no.such.block"])
    with pytest.raises(ValueError, match="quantized model"):
        export_fixed_point(tiny())


# ----------------------------------------------------------------------------------------------- model conversion


@pytest.mark.parametrize("name", ["fastnet-tiny", "resnet20"])
def test_wrappers_compute_the_float_model_when_every_cast_passes_through(name):
    model = tiny(name)
    quantized = quantize_model(copy.deepcopy(model), 4)
    x = images(8)
    for training in (False, True):
        model.train(training)
        quantized.train(training)
        with calibration_mode(quantized):
            got = quantized(pixel_values=x).logits
        torch.testing.assert_close(got, model(pixel_values=x).logits, rtol=1e-4, atol=1e-5)
    # the swapped batch norms updated their running statistics exactly as nn.BatchNorm2d did
    for (name_a, a), (name_b, b) in zip(model.named_buffers(), quantized.named_buffers()):
        assert name_a == name_b
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_every_weight_activation_batch_norm_and_residual_addition_is_quantized():
    model = quantize_model(tiny("resnet20"), 6, calibration_images=images(32))
    blocks = residual_blocks(model)
    assert len(blocks) == 9  # ResNet-20: three stages of three basic blocks
    casts = {}
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            assert isinstance(module.parametrizations.weight[0], FixedPointQuantizer)
            assert isinstance(module.input_quantizer, FixedPointQuantizer)
        if isinstance(module, nn.BatchNorm2d):
            assert isinstance(module, FixedPointBatchNorm2d)
        if name in blocks:
            module.register_forward_hook(lambda m, a, out, name=name: casts.__setitem__(name, (m.output_quantizer, out)))
    model.eval()(pixel_values=images(4, seed=1))
    assert set(casts) == set(blocks)
    for quantizer, out in casts.values():  # every block output (after the shortcut addition) is on its grid
        fmt = quantizer.format
        assert fmt.word_length == 6
        assert torch.equal(fmt.quantize(out), out)
    assert model.config.quantization_config.quant_method == "qfx"


def test_post_training_quantization_calibrates_frozen_binary_points():
    model = tiny("resnet20").eval()
    x = images(32)
    reference = model(pixel_values=x).logits
    ptq = post_training_quantization(copy.deepcopy(model), 8, x)
    assert not any(q.integer_bits.requires_grad for q in fixed_point_quantizers(ptq).values())
    error8 = (ptq(pixel_values=x).logits - reference).abs().mean()
    error4 = (post_training_quantization(copy.deepcopy(model), 4, x)(pixel_values=x).logits - reference).abs().mean()
    assert error8 < 0.1 * reference.abs().mean() and error8 < error4
    quantizers = fixed_point_quantizers(ptq)
    # inputs after a ReLU are never negative: calibrated unsigned (one more bit of resolution); the stem's input is not
    assert not quantizers["resnet.stages.0.0.conv1.input_quantizer"].signed
    assert quantizers["resnet.stem.0.input_quantizer"].signed
    # max calibration never saturates on the calibration data; MSE may move the point down, never up
    by_max = post_training_quantization(copy.deepcopy(model), 8, x, calibration="max")
    for name, quantizer in fixed_point_quantizers(by_max).items():
        assert quantizers[name].binary_point <= quantizer.binary_point


def test_multiplier_free_mode_gives_k_hot_weights_and_batch_norm_scales():
    model = quantize_model(tiny(), 6, multiplier_free=True, k_hot=2, calibration_images=images(16))
    export = export_fixed_point(model.eval())
    hot = [name for name, fmt in export.formats.items() if fmt.k_hot == 2]
    assert any(name.endswith(".weight") for name in hot) and any(name.endswith(".scale") for name in hot)
    assert not any(name.endswith((".shift", ".input", ".output")) for name in hot)
    for name in hot:
        assert bool((popcount(export.integers[name]) <= 2).all())
    assert verify_export(model, export, images(8))["exact"]


# ----------------------------------------------------------------------------------------------- export and save/load


@pytest.mark.parametrize("name", ["fastnet-tiny", "resnet20"])
def test_exported_integers_and_binary_points_reproduce_the_model(name):
    model = post_training_quantization(tiny(name), 5, images(16))
    export = export_fixed_point(model)
    report = verify_export(model, export, images(8, seed=3))
    assert report["exact"] and report["max_abs_logit_difference"] == 0.0 and report["out_of_range"] == 0
    for tensor_name, integers in export.integers.items():
        low, high = integer_range(5, export.formats[tensor_name].signed)
        assert integers.dtype == torch.int32 and integers.min() >= low and integers.max() <= high
    assert all(t.dtype == torch.int8 for t in export.storage_tensors().values())
    # the check can fail: one wrong integer in one weight changes the outputs
    conv = next(k for k in export.integers if k.endswith("weight"))
    export.integers[conv] = export.integers[conv].clone()
    export.integers[conv].view(-1)[0] += 3
    assert not verify_export(model, export, images(8, seed=3))["exact"]


def test_save_fixed_point_reloads_with_from_pretrained_and_from_the_integers(tmp_path):
    model = post_training_quantization(tiny("resnet20"), 6, images(16))
    set_binary_points_trainable(model)
    with torch.no_grad():  # a learned, non-integer binary point must survive the round trip as a parameter
        fixed_point_quantizers(model)["resnet.stem.0.input_quantizer"].integer_bits.add_(0.3)
    x = images(8, seed=2)
    reference = model.eval()(pixel_values=x).logits
    save_fixed_point(model, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["quantization_config"]["quant_method"] == "qfx"
    table = json.loads((tmp_path / "fixed_point.json").read_text())
    assert table["tensors"]["resnet.stem.0.weight"]["hls_type"].startswith("ap_fixed<6, ")
    assert "resnet.stages.0.0.output" in table["activations"]
    assert torch.equal(read_fixed_point(tmp_path).integers["classifier.weight"],
                       export_fixed_point(model).integers["classifier.weight"])
    assert torch.equal(load_fixed_point(tmp_path)(pixel_values=x).logits, reference)
    # a fresh interpreter: transformers rebuilds the trainable model through the registered `qfx` quantizer
    script = f"""
import torch, hfcifar, hfcifar.quantization
from transformers import AutoModelForImageClassification
model = AutoModelForImageClassification.from_pretrained({str(tmp_path)!r}).eval()
torch.save({{"logits": model(pixel_values=torch.load({str(tmp_path / 'x.pt')!r})).logits,
            "bits": dict((n, p.detach().clone()) for n, p in model.named_parameters() if n.endswith("integer_bits")),
            "trainable": all(p.requires_grad for n, p in model.named_parameters() if n.endswith("integer_bits"))}},
           {str(tmp_path / 'out.pt')!r})
"""
    torch.save(x, tmp_path / "x.pt")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, env=env)
    out = torch.load(tmp_path / "out.pt")
    assert torch.equal(out["logits"], reference)
    assert out["trainable"]
    torch.testing.assert_close(out["bits"]["resnet.stem.0.input_quantizer.integer_bits"],
                               fixed_point_quantizers(model)["resnet.stem.0.input_quantizer"].integer_bits.detach())


def test_load_fixed_point_names_what_is_missing(tmp_path):
    with pytest.raises(ValueError, match="save_fixed_point"):
        load_fixed_point(tmp_path)


# ----------------------------------------------------------------------------------------------- training


def qfx_arguments(path, **overrides):
    values = dict(per_device_train_batch_size=8, max_steps=3, learning_rate=0.5, weight_decay=0.1, save_strategy="no",
                  eval_strategy="no", plot_curves=False, disable_tqdm=True, optim="sgd", seed=0, lr_scheduler_type="constant")
    values.update(overrides)
    return QFXTrainingArguments(str(path), **values)


def random_data(n=16):
    return CifarTensorDataset(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8), torch.arange(n) % 10)


def test_qfx_trainer_trains_weights_and_binary_points_without_decaying_them(tmp_path):
    model = quantize_model(tiny(), 4, calibration_images=images(16))
    start_bits = {n: p.detach().clone() for n, p in model.named_parameters() if n.endswith("integer_bits")}
    start_weights = model.classifier.parametrizations.weight.original.detach().clone()
    args = qfx_arguments(tmp_path, binary_point_learning_rate=2.0)
    trainer = QFXTrainer(model=model, args=args, train_dataset=random_data())
    decay = set(trainer.get_decay_parameter_names(model))
    assert not any(name.endswith("integer_bits") for name in decay)
    assert "classifier.parametrizations.weight.original" in decay
    trainer.train()
    # the binary points form their own group: their learning rate, no weight decay
    group = trainer.optimizer.param_groups[-1]
    assert group["lr"] == 2.0 and group["weight_decay"] == 0.0 and len(group["params"]) == len(start_bits)
    others = [p for g in trainer.optimizer.param_groups[:-1] for p in g["params"]]
    assert all(g["lr"] == 0.5 for g in trainer.optimizer.param_groups[:-1]) and len(others) > 0
    moved = [n for n, p in model.named_parameters() if n.endswith("integer_bits") and not torch.equal(p, start_bits[n])]
    assert moved, "no binary point received an update"
    assert not torch.equal(model.classifier.parametrizations.weight.original, start_weights)
    with pytest.raises(ValueError, match="quantize_model"):
        QFXTrainer(model=tiny(), args=args, train_dataset=random_data())
    with pytest.raises(ValueError, match="binary_point_learning_rate"):
        qfx_arguments(tmp_path, binary_point_learning_rate=-1.0)


def test_frozen_binary_points_do_not_move_and_plain_arguments_share_the_weights_rate(tmp_path):
    model = post_training_quantization(tiny(), 4, images(16))  # PTQ: binary points frozen
    start = {n: p.detach().clone() for n, p in model.named_parameters() if n.endswith("integer_bits")}
    args = CifarTrainingArguments(str(tmp_path), per_device_train_batch_size=8, max_steps=2, learning_rate=0.1,
                                  save_strategy="no", eval_strategy="no", plot_curves=False, disable_tqdm=True,
                                  optim="sgd", seed=0)
    trainer = QFXTrainer(model=model.train(), args=args, train_dataset=random_data())
    trainer.train()
    assert all(torch.equal(p, start[n]) for n, p in model.named_parameters() if n.endswith("integer_bits"))
    set_binary_points_trainable(model)
    trainer = QFXTrainer(model=model, args=args, train_dataset=random_data())
    trainer.create_optimizer()
    assert trainer.optimizer.param_groups[-1]["lr"] == 0.1 and trainer.optimizer.param_groups[-1]["weight_decay"] == 0.0


def test_claim_labels_every_quantized_tensor_and_builds_its_recipes():
    from hfcifar.methods.qfx import claim
    from hfcifar.quantization import residual_blocks

    model = post_training_quantization(tiny("resnet20"), claim.BITS, images(8))
    kinds = claim.tensor_kinds(model)
    assert set(kinds) == set(fixed_point_quantizers(model)) == set(claim.binary_points(model))
    counts = {kind: list(kinds.values()).count(kind) for kind in set(kinds.values())}
    convs_and_linears = sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules())
    norms = sum(isinstance(m, FixedPointBatchNorm2d) for m in model.modules())
    assert counts["residual sum"] == len(residual_blocks(model)) > 0
    assert counts["layer input"] == counts["weight"] == convs_and_linears
    assert counts["BN scale"] == counts["BN shift"] == counts["BN output"] == norms > 0
    qfx = claim.recipe(claim.QFX_RECIPE)
    assert (qfx["learning_rate"], qfx["warmup_steps"], qfx["tta"], qfx["optim"]) == (0.005, 0, False, "sgd")
    assert claim.recipe(claim.FLOAT_RECIPE)["learning_rate"] == 0.05 and claim.QFX_RECIPE["recipe"] == "quick"


def test_quantization_modules_import_one_way():
    """Each module of hfcifar/quantization imports only the modules before it in this order (no cycles)."""
    import ast
    from pathlib import Path

    order = ["arithmetic", "modules", "config", "calibrate", "convert", "export", "training", "hub"]
    package = Path(hfcifar.__file__).parent / "quantization"
    assert sorted(p.stem for p in package.glob("*.py") if p.stem != "__init__") == sorted(order)
    for position, name in enumerate(order):
        tree = ast.parse((package / f"{name}.py").read_text())
        imported = {(node.module or "").split(".")[0] for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.level == 1}
        assert imported <= set(order[:position]), f"{name}.py imports {sorted(imported - set(order[:position]))}"
