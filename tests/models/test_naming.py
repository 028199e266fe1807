"""The zoo's naming rule (docs/ARCHITECTURE.md, Models), its field validation and its forward signatures, checked over
the registry: a new architecture folder is held to them the moment it is discovered.

Rule: the folder `<folder>` holds `configuration_<folder>.py` and `modeling_<folder>.py` with `<Name>Config`,
`<Name>PreTrainedModel`, `<Name>Model` and `<Name>ForImageClassification`; `<Name>` spells the folder in CamelCase
(`<Name>.lower() == <folder>` without underscores), prefixed with `Cifar` exactly when transformers exports a
`<Name>Config` of its own. `model_type` is `hfcifar-<folder>`; `base_model_prefix` is `<folder>`.
"""

import json

import pytest
import torch
import transformers
from transformers import AutoConfig, AutoModel, AutoModelForImageClassification

import hfcifar  # noqa: F401  (registers the Auto classes)
from conftest import python_without_hfcifar
from hfcifar.hub.staging import shipping_code
from hfcifar.models import ARCHITECTURES, architecture_of

from test_modeling_common import TINY_CONFIGS, tiny

NAMES = sorted(ARCHITECTURES)


def class_prefix(folder: str) -> str:
    """`<Name>` of the rule: the prefix of the config class, checked against the folder below."""
    return ARCHITECTURES[folder].config_class.__name__.removesuffix("Config")


@pytest.mark.parametrize("folder", NAMES)
def test_class_names_follow_the_folder(folder):
    arch = ARCHITECTURES[folder]
    prefix = class_prefix(folder)
    name = prefix.removeprefix("Cifar")
    assert name.lower() == folder.replace("_", ""), f"{prefix}Config does not spell the folder {folder!r}"
    clash = hasattr(transformers, f"{name}Config")
    assert prefix.startswith("Cifar") == clash, (
        f"{prefix}Config: the `Cifar` prefix is for names transformers exports too "
        f"(transformers {'has' if clash else 'has no'} {name}Config)"
    )
    assert arch.config_class.__name__ == f"{prefix}Config"
    assert arch.backbone_class.__name__ == f"{prefix}Model"
    assert arch.model_class.__name__ == f"{prefix}ForImageClassification"
    pretrained = arch.model_class.__mro__[1]
    assert pretrained.__name__ == f"{prefix}PreTrainedModel" and issubclass(arch.backbone_class, pretrained)
    assert arch.config_class.__module__.endswith(f".{folder}.configuration_{folder}")
    assert arch.model_class.__module__.endswith(f".{folder}.modeling_{folder}")


@pytest.mark.parametrize("folder", NAMES)
def test_model_type_and_prefix_follow_the_folder(folder):
    arch = ARCHITECTURES[folder]
    assert arch.config_class.model_type == f"hfcifar-{folder}"
    assert arch.model_class.base_model_prefix == folder
    assert hasattr(arch.model_class(arch.config_class(**TINY_CONFIGS[folder])), folder)
    for legacy in arch.legacy_model_types:
        assert legacy != arch.config_class.model_type and legacy.startswith("hfcifar-")


def old_folder(tmp_path, folder="binary_resnet", model_type="hfcifar-binary-resnet", remote_code=False):
    """A folder as hfcifar saved it before the `hfcifar-<folder>` rule: the old `model_type` in config.json (and,
    for a staged Hub folder, in the remote-code configuration file beside it)."""
    model = tiny(folder)
    if remote_code:
        model.config._auto_class = "AutoConfig"
        with shipping_code(type(model), "AutoModelForImageClassification"):
            model.save_pretrained(tmp_path)
        code = tmp_path / f"configuration_{folder}.py"
        new = f'model_type = "{model.config.model_type}"'
        assert new in code.read_text()
        code.write_text(code.read_text().replace(new, f'model_type = "{model_type}"'))
    else:
        model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["model_type"] = model_type
    (tmp_path / "config.json").write_text(json.dumps(config))
    return model


@pytest.mark.parametrize("remote_code", [False, True], ids=["saved", "staged"])
def test_a_folder_saved_under_the_old_model_type_loads(tmp_path, remote_code):
    model = old_folder(tmp_path / "old", remote_code=remote_code)
    pixels = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(pixels).logits
    for kwargs in ({}, {"trust_remote_code": True}) if remote_code else ({},):
        loaded = AutoModelForImageClassification.from_pretrained(tmp_path / "old", **kwargs).eval()
        assert type(loaded) is type(model)
        assert loaded.config.model_type == "hfcifar-binary_resnet"
        assert architecture_of(loaded.config) is ARCHITECTURES["binary_resnet"]
        with torch.no_grad():
            assert torch.equal(loaded(pixels).logits, expected)
    assert type(AutoConfig.from_pretrained(tmp_path / "old")) is type(model.config)
    assert isinstance(AutoModel.from_pretrained(tmp_path / "old"), ARCHITECTURES["binary_resnet"].backbone_class)
    loaded.save_pretrained(tmp_path / "again")  # saved back under today's model_type
    assert json.loads((tmp_path / "again" / "config.json").read_text())["model_type"] == "hfcifar-binary_resnet"


def test_a_staged_folder_with_the_old_model_type_loads_without_hfcifar(tmp_path):
    """Hub users without hfcifar run the folder's own (old) code: nothing in the rename may break that."""
    model = old_folder(tmp_path / "old", remote_code=True).eval()
    pixels = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.save({"pixels": pixels, "logits": model(pixels).logits}, tmp_path / "expected.pt")
    code = f"""
        import torch
        from transformers import AutoModelForImageClassification
        model = AutoModelForImageClassification.from_pretrained({str(tmp_path / 'old')!r}, trust_remote_code=True)
        expected = torch.load({str(tmp_path / 'expected.pt')!r})
        assert model.config.model_type == 'hfcifar-binary-resnet', model.config.model_type
        with torch.no_grad():
            assert torch.equal(model.eval()(expected['pixels']).logits, expected['logits'])
        print('ok')
    """
    result = python_without_hfcifar(code, cwd=tmp_path, timeout=300)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-2000:]


# One wrong value per kind of field: the error names the field and, for a choice, every accepted value.
INVALID = {
    "fastnet": [({"hidden_act": "swish"}, "hidden_act must be one of 'gelu', 'relu'"),
                ({"widths": []}, "widths must be a non-empty list"), ({"widths": [8, 0]}, "widths"),
                ({"stem_width": 2.5}, "stem_width must be an integer"), ({"widths": [8] * 6}, "halves the image"),
                ({"batch_norm_momentum": 1.5}, r"batch_norm_momentum must be a number in \[0, 1\]"),
                ({"logit_scale": 0}, "logit_scale")],
    "resnet": [({"block_type": "dense"}, "'basic', 'bottleneck'"), ({"shortcut_type": "c"}, "'projection', 'identity_pad'"),
               ({"depths": [2, 0, 2, 2]}, "depths"), ({"groups": 0}, "groups")],
    "binary_resnet": [({"estimator": "dorefa"}, "'reste', 'ste'"), ({"reste_power_schedule": "step"}, "'cosine', 'linear'"),
                      ({"depths": [3, -1, 3]}, "depths")],
    "wide_resnet": [({"dropout_rate": 1.5}, "dropout_rate"), ({"widen_factor": 0}, "widen_factor"), ({"depth": 12}, "6n")],
    "densenet": [({"dropout_rate": -0.1}, "dropout_rate"), ({"growth_rate": 0}, "growth_rate"),
                 ({"block_config": [1, 0]}, "block_config"), ({"compression": 0}, "compression")],
    "vgg": [({"layers": [8, "X"]}, "layers")],
    "mobilenet_v2": [({"hidden_act": "gelu"}, "'relu', 'relu6'"), ({"width_multiplier": 0}, "width_multiplier"),
                     ({"inverted_residual_setting": [[1, 16, 0, 1]]}, "inverted_residual_setting")],
    "convnet": [({"net_act": "gelu"}, "'relu', 'leakyrelu', 'sigmoid', 'swish'"),
                ({"net_norm": "instance"}, "'instancenorm', 'batchnorm'"), ({"net_width": 0}, "net_width")],
    "preact_resnet": [({"depths": [1, 0, 1]}, "depths"), ({"depths": [1, 1]}, "one entry per stage"),
                      ({"zero_init_residual": "yes"}, "zero_init_residual"), ({"hidden_sizes": [8] * 7, "depths": [1] * 7}, "halves")],
}


def test_every_architecture_has_invalid_examples():
    assert set(NAMES) <= set(INVALID), f"add invalid config examples for {set(NAMES) - set(INVALID)}"


@pytest.mark.parametrize("folder, kwargs, message", [(f, k, m) for f in NAMES for k, m in INVALID.get(f, [])])
def test_invalid_fields_are_rejected_with_the_choices(folder, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ARCHITECTURES[folder].config_class(**kwargs)


@pytest.mark.parametrize("folder", NAMES)
def test_every_config_checks_the_input_fields(folder):
    config_class = ARCHITECTURES[folder].config_class
    for kwargs, message in [({"num_channels": 0}, "num_channels"), ({"image_size": -32}, "image_size"),
                            ({"mean": [0.5, 0.5]}, "one entry per input channel"), ({"std": [0.2, 0.0, 0.2]}, "std")]:
        with pytest.raises(ValueError, match=message):
            config_class(**kwargs)
    config_class()  # the defaults are valid


@pytest.mark.parametrize("folder", NAMES)
def test_forward_rejects_unknown_keyword_arguments(folder):
    """As transformers' vision models do: a misspelt argument is an error, not silently dropped."""
    model = tiny(folder)
    pixels = torch.rand(1, 3, 32, 32)
    with pytest.raises(TypeError, match="bogus"):
        model(pixel_values=pixels, bogus=1)
    with pytest.raises(TypeError, match="bogus"):
        getattr(model, folder)(pixel_values=pixels, bogus=1)
