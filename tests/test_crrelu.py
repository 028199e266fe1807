"""CRReLU (row 44): the activation against its formula, `hidden_act="crrelu"` in transformers' own ViT (build, train,
save/load, what loading needs) and in FastNet (remote code without hfcifar), the activation registry, the EAFO helpers
against closed forms, bad input, and the claim's equal-start check."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from transformers import AutoModelForImageClassification, ViTConfig, ViTForImageClassification
from transformers import activations as hf_activations

import hfcifar
from conftest import python_without_hfcifar
from hfcifar.data import CifarTensorDataset
from hfcifar.methods.crrelu import (CRReLU, eafo_correction, entropy_gradient, output_entropy, reset_crrelu,
                                    worst_activation)
from hfcifar.methods.crrelu.claim import learned_epsilons, make_vit, shared_weights_equal
from hfcifar.models import ACTIVATIONS, create_config, create_model, get_activation
from hfcifar.registry import RegistryError
from hfcifar.training import CifarTrainer, CifarTrainingArguments

TINY_VIT = {"hidden_size": 16, "layers": 2, "heads": 2, "intermediate_size": 32}


def tiny_vit_config(hidden_act: str = "crrelu") -> ViTConfig:
    return ViTConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                     hidden_act=hidden_act, image_size=32, patch_size=4, num_labels=10)


# -- the activation ---------------------------------------------------------------------------------------------
def test_forward_and_gradients_follow_the_formula():
    x = torch.linspace(-4, 4, 81, dtype=torch.float64).requires_grad_()
    act = CRReLU(epsilon=0.3).double()
    y = act(x)
    expected = torch.clamp(x, min=0) + 0.3 * x * torch.exp(-x * x / 2)
    assert torch.allclose(y, expected, atol=1e-12)
    upstream = torch.randn(81, dtype=torch.float64)
    y.backward(upstream)
    with torch.no_grad():
        dx = (x > 0).double() + 0.3 * (1 - x * x) * torch.exp(-x * x / 2)
        de = (upstream * x * torch.exp(-x * x / 2)).sum()
    assert torch.allclose(x.grad, upstream * dx, atol=1e-12)
    assert act.epsilon.grad.item() == pytest.approx(de.item(), rel=1e-10)


def test_zero_epsilon_is_relu_and_reset_restores_the_start():
    x = torch.randn(1000)
    act = CRReLU(epsilon=0.0)
    assert torch.equal(act(x), torch.relu(x))
    with torch.no_grad():
        act.epsilon.fill_(2.5)
    act.reset_parameters()
    assert act.epsilon.item() == 0.0 and act.epsilon.requires_grad


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "0.01", True, None])
def test_bad_initial_epsilon_is_refused(bad):
    with pytest.raises(ValueError, match="finite number"):
        CRReLU(epsilon=bad)


def test_bf16_inputs_keep_their_dtype():
    y = CRReLU()(torch.randn(8, dtype=torch.bfloat16))
    assert y.dtype == torch.bfloat16


# -- transformers' own ViT --------------------------------------------------------------------------------------
def test_crrelu_is_a_transformers_activation_after_import_hfcifar():
    assert isinstance(hf_activations.ACT2FN["crrelu"], CRReLU)
    assert isinstance(hf_activations.ACT2CLS["crrelu"](), CRReLU)  # the way a few transformers models build it
    assert isinstance(hf_activations.get_activation("crrelu"), CRReLU)
    assert hfcifar.CRReLU is CRReLU


def test_vit_with_crrelu_builds_trains_and_learns_epsilon():
    model = ViTForImageClassification(tiny_vit_config())
    acts = [layer.mlp.activation_fn for layer in model.vit.layers]
    assert len(acts) == 2 and all(type(a) is CRReLU for a in acts)
    assert acts[0] is not acts[1]  # one ε per layer
    assert learned_epsilons(model) == pytest.approx([0.01, 0.01])
    pixels, labels = torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    out = model(pixel_values=pixels, labels=labels)
    assert out.logits.shape == (4, 10) and torch.isfinite(out.loss)
    out.loss.backward()
    assert all(a.epsilon.grad is not None and a.epsilon.grad.abs() > 0 for a in acts)


def test_vit_with_crrelu_round_trips_through_save_pretrained(tmp_path):
    torch.manual_seed(0)
    model = ViTForImageClassification(tiny_vit_config()).eval()
    with torch.no_grad():
        for i, layer in enumerate(model.vit.layers):
            layer.mlp.activation_fn.epsilon.fill_(-0.2 + 0.5 * i)
    model.save_pretrained(tmp_path / "vit")
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path / "vit").eval()
    assert type(loaded) is ViTForImageClassification and loaded.config.hidden_act == "crrelu"
    assert learned_epsilons(loaded) == pytest.approx([-0.2, 0.3])
    pixels = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(pixel_values=pixels).logits, model(pixel_values=pixels).logits)


def test_reset_crrelu_after_loading_a_gelu_checkpoint_as_crrelu(tmp_path):
    ViTForImageClassification(tiny_vit_config("gelu")).save_pretrained(tmp_path / "gelu")
    model = ViTForImageClassification.from_pretrained(tmp_path / "gelu", hidden_act="crrelu")
    assert reset_crrelu(model) == 2  # transformers leaves the missing ε uninitialized; this sets it to 0.01
    assert learned_epsilons(model) == pytest.approx([0.01, 0.01])


def test_vit_trains_with_cifar_trainer(synthetic_path, tmp_path):
    from hfcifar.data import load_cifar10

    train = CifarTensorDataset.from_hf(load_cifar10(synthetic_path)["train"], "train", progress=False)
    torch.manual_seed(0)
    model = ViTForImageClassification(tiny_vit_config())
    args = CifarTrainingArguments(str(tmp_path / "run"), max_steps=3, per_device_train_batch_size=16,
                                  learning_rate=1e-2, channels_last=False, plot_curves=False, report_to="none",
                                  save_strategy="no", disable_tqdm=True, logging_steps=1)
    trainer = CifarTrainer(model=model, args=args, train_dataset=train)
    trainer.train()
    assert trainer.state.global_step == 3
    assert all(e != pytest.approx(0.01, abs=1e-7) for e in learned_epsilons(trainer.model))  # ε is trained


def test_the_claims_arms_start_from_the_same_weights():
    models = {}
    for arm in ("crrelu", "gelu", "relu"):
        torch.manual_seed(5)
        models[arm] = make_vit(arm, TINY_VIT)
    assert shared_weights_equal(models)
    torch.manual_seed(6)
    models["relu"] = make_vit("relu", TINY_VIT)
    assert not shared_weights_equal(models)


# -- the registry ------------------------------------------------------------------------------------------------
def test_registry_lists_crrelu_and_refuses_unknown_names_with_the_choices():
    assert "crrelu" in ACTIVATIONS.names()
    assert isinstance(get_activation("crrelu", epsilon=0.5), CRReLU)
    assert isinstance(get_activation("gelu"), nn.Module)  # transformers' own names work too
    with pytest.raises(ValueError, match=r"Unknown activation 'crelu'.*crrelu.*gelu"):
        get_activation("crelu")


def test_registry_never_shadows_a_transformers_activation_and_cleans_up():
    with pytest.raises(RegistryError, match="already one of transformers' activations"):
        ACTIVATIONS.register("gelu", nn.ReLU)
    assert hf_activations.ACT2CLS["gelu"] is not nn.ReLU
    ACTIVATIONS.register("test-tanh", nn.Tanh)
    try:
        assert isinstance(hf_activations.ACT2FN["test-tanh"], nn.Tanh)
    finally:
        ACTIVATIONS.unregister("test-tanh")
    assert "test-tanh" not in hf_activations.ACT2FN and "test-tanh" not in hf_activations.ACT2CLS


# -- FastNet -----------------------------------------------------------------------------------------------------
def test_fastnet_takes_crrelu_and_round_trips(tmp_path):
    torch.manual_seed(0)
    model = create_model("fastnet-tiny", hidden_act="crrelu").eval()
    acts = [m for m in model.modules() if type(m).__name__ == "CRReLU"]
    assert len(acts) == 7 and all(a.epsilon.item() == pytest.approx(0.01) for a in acts)
    with torch.no_grad():
        for i, act in enumerate(acts):
            act.epsilon.fill_(0.1 * i - 0.3)
    model.save_pretrained(tmp_path / "fastnet")
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path / "fastnet").eval()
    pixels = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(pixels).logits, model(pixels).logits)


def test_fastnet_rejects_an_unknown_activation_listing_the_choices():
    with pytest.raises(ValueError, match="hidden_act must be one of 'gelu', 'relu', 'crrelu'; got 'swish'"):
        create_config("fastnet-tiny", hidden_act="swish")


def test_what_loads_without_hfcifar(tmp_path):
    """One fresh interpreter without hfcifar: a FastNet with CRReLU loads as remote code (the activation travels in
    its modeling file); a transformers ViT saved with hidden_act="crrelu" does not (KeyError) until `import hfcifar`."""
    from hfcifar.hub.staging import shipping_code

    torch.manual_seed(0)
    fastnet = create_model("fastnet-tiny", hidden_act="crrelu").eval()
    with torch.no_grad():
        fastnet.fastnet.stem[2].epsilon.fill_(0.7)
    fastnet.config._auto_class = "AutoConfig"
    with shipping_code(type(fastnet), "AutoModelForImageClassification"):
        fastnet.save_pretrained(tmp_path / "fastnet")
    ViTForImageClassification(tiny_vit_config()).save_pretrained(tmp_path / "vit")
    pixels = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.save({"pixels": pixels, "logits": fastnet(pixels).logits}, tmp_path / "reference.pt")
    result = python_without_hfcifar(f"""
        import torch
        from transformers import AutoModelForImageClassification
        reference = torch.load({str(tmp_path / 'reference.pt')!r})
        model = AutoModelForImageClassification.from_pretrained({str(tmp_path / 'fastnet')!r}, trust_remote_code=True)
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        with torch.no_grad():
            assert torch.equal(model.eval()(reference["pixels"]).logits, reference["logits"])
        try:
            AutoModelForImageClassification.from_pretrained({str(tmp_path / 'vit')!r})
            raise SystemExit("the crrelu ViT loaded without hfcifar")
        except KeyError as error:
            assert "crrelu" in str(error), error
        del sys.modules["hfcifar"]
        import hfcifar  # registers `crrelu` with transformers' ACT2FN
        model = AutoModelForImageClassification.from_pretrained({str(tmp_path / 'vit')!r})
        assert type(model.vit.layers[0].mlp.activation_fn).__name__ == "CRReLU"
        print("LOADING-OK")
    """, cwd=tmp_path)
    assert result.returncode == 0 and "LOADING-OK" in result.stdout, result.stderr[-3000:]


# -- EAFO ---------------------------------------------------------------------------------------------------------
def identity(x):
    return x


def test_output_entropy_matches_closed_forms():
    assert output_entropy(identity) == pytest.approx(0.5 * math.log(2 * math.pi * math.e), abs=1e-9)
    assert output_entropy(lambda x: 3 * x) == pytest.approx(0.5 * math.log(2 * math.pi * math.e) + math.log(3), abs=1e-9)
    # the worst activation with outputs in (a, b) makes Y uniform: entropy log(b − a), the maximum for that range
    assert output_entropy(worst_activation(-1.0, 2.0)) == pytest.approx(math.log(3.0), abs=1e-6)
    steeper = output_entropy(lambda x: -1.0 + 3.0 * torch.special.ndtr(1.3 * x))
    assert steeper < math.log(3.0) - 1e-3


def test_the_worst_activation_is_a_stationary_point():
    y = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)
    gradient = entropy_gradient(lambda v: torch.special.ndtri(v), y)  # the inverse of Φ, the WAFBC on (0, 1)
    assert gradient.abs().max() < 1e-9
    assert entropy_gradient(identity, y).abs().min() > 1e-3  # the identity is not


def test_eafo_correction_of_relus_branch_is_crrelus_term():
    x = torch.linspace(-5, 5, 101, dtype=torch.float64)
    correction = eafo_correction(identity, identity)(x)
    expected = -x * torch.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    assert torch.allclose(correction, expected, atol=1e-12)


def test_an_eafo_step_lowers_entropy_at_the_predicted_rate():
    # softplus: strictly increasing with a closed-form inverse; dH/dη of f + η·c at η = 0 is −∫ (δH/δg)² dy
    f, g = nn.functional.softplus, lambda y: torch.log(torch.expm1(y))
    correction = eafo_correction(f, g)
    eta = 1e-5
    slope = (output_entropy(lambda x: f(x) + eta * correction(x), bound=6)
             - output_entropy(lambda x: f(x) - eta * correction(x), bound=6)) / (2 * eta)
    y = f(torch.linspace(-6, 6, 20001, dtype=torch.float64))
    predicted = -float(torch.trapezoid(entropy_gradient(g, y) ** 2, y))
    assert predicted < 0 and slope == pytest.approx(predicted, rel=1e-3)


def test_crrelus_sign_convention_under_the_gaussian_model():
    # dH/dε at ε = 0 for x + ε·x·exp(−x²/2) is E[(1 − X²) exp(−X²/2)] = 1/(2√2): ε < 0 lowers the entropy
    eps = 1e-4
    slope = (output_entropy(lambda x: x + eps * x * torch.exp(-x * x / 2))
             - output_entropy(lambda x: x - eps * x * torch.exp(-x * x / 2))) / (2 * eps)
    assert slope == pytest.approx(1 / (2 * math.sqrt(2)), rel=1e-6)


def test_eafo_helpers_refuse_bad_input():
    with pytest.raises(ValueError, match="invertible branch"):
        output_entropy(torch.relu)
    with pytest.raises(ValueError, match="bound must be a positive"):
        output_entropy(identity, bound=float("inf"))
    with pytest.raises(ValueError, match="low < high"):
        worst_activation(1.0, 0.0)
    with pytest.raises(ValueError, match="strictly increasing inverse"):
        entropy_gradient(lambda y: -y, torch.ones(3))
    with pytest.raises(ValueError, match="elementwise"):
        output_entropy(lambda x: x.sum())
