"""One mixin-style test suite run over every registered architecture (transformers' ModelTesterMixin idea).

A new architecture folder is tested the moment it is registered; it only needs a tiny config below.
"""

import json
import subprocess
import sys

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForImageClassification

import hfcifar  # noqa: F401  (registers the Auto classes)
from hfcifar.models import ARCHITECTURES

# Small configs of each architecture: fast forward/backward on CPU, every code path exercised.
TINY_CONFIGS = {
    "binary_resnet": {"stem_width": 8, "hidden_sizes": [8, 16], "depths": [1, 1], "reste_power_start": 2.0},
    "fastnet": {"stem_width": 8, "widths": [8, 16, 16]},
    "resnet": {"stem_width": 8, "hidden_sizes": [8, 16], "depths": [1, 1], "block_type": "bottleneck", "groups": 2, "width_per_group": 8},
    "wide_resnet": {"depth": 10, "widen_factor": 1, "dropout_rate": 0.1},
    "densenet": {"growth_rate": 4, "block_config": [1, 2], "compression": 0.5},
    "vgg": {"layers": [8, "M", 16, "M"]},
    "mobilenet_v2": {"width_multiplier": 0.25, "last_channels": 32},
    "convnet": {"net_width": 8, "net_depth": 2},
    "preact_resnet": {"stem_width": 8, "hidden_sizes": [8, 16], "depths": [1, 2], "zero_init_residual": False},
}
NAMES = sorted(ARCHITECTURES)


def tiny(name):
    arch = ARCHITECTURES[name]
    torch.manual_seed(0)
    return arch.model_class(arch.config_class(**TINY_CONFIGS[name])).eval()


def test_every_architecture_has_a_tiny_config():
    assert set(NAMES) <= set(TINY_CONFIGS), f"add tiny configs for {set(NAMES) - set(TINY_CONFIGS)}"


@pytest.mark.parametrize("name", NAMES)
def test_forward_loss_backward(name):
    model = tiny(name).train()
    pixels = torch.rand(4, 3, 32, 32)
    labels = torch.tensor([0, 3, 9, 1])
    out = model(pixel_values=pixels, labels=labels, output_hidden_states=True)
    assert out.logits.shape == (4, 10) and out.hidden_states
    assert torch.allclose(out.loss, torch.nn.functional.cross_entropy(out.logits, labels))
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model(pixel_values=pixels).loss is None


@pytest.mark.parametrize("name", NAMES)
def test_backbone_outputs_features(name):
    arch = ARCHITECTURES[name]
    backbone = arch.backbone_class(arch.config_class(**TINY_CONFIGS[name])).eval()
    out = backbone(torch.rand(2, 3, 32, 32))
    assert out.pooler_output.shape[0] == 2 and out.pooler_output.dim() == 2 and out.last_hidden_state.shape[0] == 2


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs_name_the_expected_input(name):
    model = tiny(name)
    for bad in (torch.randint(0, 255, (2, 3, 32, 32), dtype=torch.uint8), torch.rand(2, 32, 32, 3), torch.rand(2, 3, 32, 32) * 4 - 2):
        with pytest.raises(ValueError, match=r"\(batch, 3, 32, 32\) with values in \[0, 1\]"):
            model(pixel_values=bad)
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        model(pixel_values=torch.rand(2, 3, 32, 32), labels=torch.tensor([1, 10]))


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip_is_exact(name, tmp_path):
    model = tiny(name)
    pixels = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        expected = model(pixels).logits
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path).eval()
    assert type(loaded) is type(model)
    with torch.no_grad():
        assert torch.equal(loaded(pixels).logits, expected)
    assert isinstance(AutoModel.from_pretrained(tmp_path), ARCHITECTURES[name].backbone_class)


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip_keeps_every_argument(name, tmp_path):
    arch = ARCHITECTURES[name]
    config = arch.config_class(**TINY_CONFIGS[name], mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25])
    config.save_pretrained(tmp_path)
    again = AutoConfig.from_pretrained(tmp_path)
    assert type(again) is arch.config_class and again.model_type.startswith("hfcifar-")
    for key, value in TINY_CONFIGS[name].items():
        assert getattr(again, key) == value, key
    assert again.mean == [0.5, 0.5, 0.5] and again.id2label[3] == "cat"
    drop = lambda d: {k: v for k, v in d.items() if k != "_name_or_path"}  # noqa: E731
    assert drop(again.to_dict()) == drop(config.to_dict())


def test_model_types_are_unique():
    types = [a.config_class.model_type for a in ARCHITECTURES.values()]
    assert len(types) == len(set(types))


def test_from_pretrained_in_a_fresh_process_gives_identical_logits(tmp_path):
    """The oracle is transformers' own loader in a new interpreter, after nothing but `import hfcifar`."""
    pixels = torch.rand(2, 3, 32, 32)
    torch.save(pixels, tmp_path / "pixels.pt")
    for name in NAMES:
        model = tiny(name)
        model.save_pretrained(tmp_path / name)
        with torch.no_grad():
            torch.save(model(pixels).logits, tmp_path / name / "expected.pt")
    script = f"""
import json, sys, torch
import hfcifar
from transformers import AutoModelForImageClassification
pixels = torch.load({str(tmp_path / 'pixels.pt')!r})
report = {{}}
for name in {NAMES!r}:
    folder = {str(tmp_path)!r} + "/" + name
    model = AutoModelForImageClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        report[name] = bool(torch.equal(model(pixels).logits, torch.load(folder + "/expected.pt")))
print(json.dumps(report))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {name: True for name in NAMES}
