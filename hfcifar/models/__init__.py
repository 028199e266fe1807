"""The classifier zoo: one folder per architecture (`configuration_<name>.py` + `modeling_<name>.py`).

Each architecture package exports `CONFIG_CLASS`, `BACKBONE_CLASS`, `MODEL_CLASS`, `PRESETS`
(named sizes → config arguments) and `CITATION` (the bibtex the model card cites; a `citation(config)` function
may refine it per variant), and optionally `LEGACY_MODEL_TYPES` (earlier `model_type`s that saved folders may
carry). This module discovers them, so adding a folder adds its models to `create_config`/`create_model`, to the
`Auto*` registration, to `hfcifar train MODEL` and to the tests.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from types import ModuleType
from typing import Callable

from transformers import AutoConfig, AutoModel, AutoModelForImageClassification, PreTrainedConfig, PreTrainedModel
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from ..registry import Registry
from .activations import ACTIVATIONS, get_activation, register_with_transformers


@dataclass(frozen=True)
class Architecture:
    name: str
    config_class: type[PreTrainedConfig]
    backbone_class: type[PreTrainedModel]
    model_class: type[PreTrainedModel]
    presets: dict
    cite: Callable[[PreTrainedConfig], str]
    legacy_model_types: tuple[str, ...] = ()

    def citation(self, config: PreTrainedConfig) -> str:
        """The bibtex of the paper(s) behind this architecture, for the model card."""
        return self.cite(config)


#: Architecture folders by name (`resnet`, `fastnet`, …) and named model presets (`resnet18`, `fastnet`, …) → their
#: architecture and config arguments. The folders are discovered, never listed by hand.
ARCHITECTURES: Registry[Architecture] = Registry("architecture")
PRESETS: Registry[tuple[Architecture, dict]] = Registry("model", hint="`hfcifar.list_models()` lists them.")


def _discover() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        module: ModuleType = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "CONFIG_CLASS"):
            cite = getattr(module, "citation", None) or (lambda config, text=module.CITATION: text)
            arch = Architecture(
                info.name, module.CONFIG_CLASS, module.BACKBONE_CLASS, module.MODEL_CLASS, dict(module.PRESETS), cite,
                tuple(getattr(module, "LEGACY_MODEL_TYPES", ())),
            )
            ARCHITECTURES.register(info.name, arch)
            for preset, kwargs in arch.presets.items():
                PRESETS.register(preset, (arch, kwargs))


_discover()
# `hfcifar train`'s default: FastNet at 4× the width (1.17M parameters), which with bf16 on a CPU that has bf16 units
# trains as many epochs in 10 minutes as the 0.3M `fastnet` does in fp32, and ends more accurate (issue 15 note).
DEFAULT_MODEL = "fastnet-wide"


def list_models() -> list[str]:
    """The named model presets, e.g. `resnet18`, `fastnet`."""
    return PRESETS.names()


def create_config(name: str, **overrides) -> PreTrainedConfig:
    """The config of a named preset, with `overrides` applied (e.g. `create_config("resnet18", num_labels=100)`)."""
    arch, kwargs = PRESETS.get(name)  # unknown: "Unknown model 'x'; available: …"
    return arch.config_class(**{**kwargs, **overrides})


def create_model(name: str, **overrides) -> PreTrainedModel:
    """A randomly initialized `…ForImageClassification` model of a named preset."""
    config = create_config(name, **overrides)
    return PRESETS[name][0].model_class(config)


def architecture_of(config: PreTrainedConfig) -> Architecture | None:
    """The zoo architecture a config belongs to (by `model_type`, today's or a legacy one), or None for a model from
    elsewhere."""
    for arch in ARCHITECTURES.values():
        if config.model_type == arch.config_class.model_type or config.model_type in arch.legacy_model_types:
            return arch
    return None


def register_auto_classes() -> None:
    """Register every config/model with `AutoConfig`, `AutoModel` and `AutoModelForImageClassification`.

    A legacy `model_type` maps to today's config class, so a folder saved under it loads as today's class (and is
    saved back under today's `model_type`). `AutoConfig.register` insists that the name equals the class's
    `model_type`, so the alias goes to the mapping it writes to (`CONFIG_MAPPING.register`) directly.
    """
    for arch in ARCHITECTURES.values():
        model_type = arch.config_class.model_type
        AutoConfig.register(model_type, arch.config_class, exist_ok=True)
        for legacy in arch.legacy_model_types:
            CONFIG_MAPPING.register(legacy, arch.config_class, exist_ok=True)
        AutoModel.register(arch.config_class, arch.backbone_class, exist_ok=True)
        AutoModelForImageClassification.register(arch.config_class, arch.model_class, exist_ok=True)


__all__ = ["ACTIVATIONS", "ARCHITECTURES", "DEFAULT_MODEL", "PRESETS", "architecture_of", "create_config", "create_model",
           "get_activation", "list_models", "register_auto_classes", "register_with_transformers"]
