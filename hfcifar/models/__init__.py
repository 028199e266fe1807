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


def _discover() -> dict[str, Architecture]:
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        module: ModuleType = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "CONFIG_CLASS"):
            cite = getattr(module, "citation", None) or (lambda config, text=module.CITATION: text)
            found[info.name] = Architecture(
                info.name, module.CONFIG_CLASS, module.BACKBONE_CLASS, module.MODEL_CLASS, dict(module.PRESETS), cite,
                tuple(getattr(module, "LEGACY_MODEL_TYPES", ())),
            )
    return found


ARCHITECTURES: dict[str, Architecture] = _discover()
PRESETS: dict[str, tuple[Architecture, dict]] = {
    preset: (arch, kwargs) for arch in ARCHITECTURES.values() for preset, kwargs in arch.presets.items()
}
DEFAULT_MODEL = "fastnet"


def list_models() -> list[str]:
    """The named model presets, e.g. `resnet18`, `fastnet`."""
    return sorted(PRESETS)


def create_config(name: str, **overrides) -> PreTrainedConfig:
    """The config of a named preset, with `overrides` applied (e.g. `create_config("resnet18", num_labels=100)`)."""
    if name not in PRESETS:
        raise ValueError(f"Unknown model {name!r}. Available models: {', '.join(list_models())}.")
    arch, kwargs = PRESETS[name]
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


__all__ = ["ARCHITECTURES", "DEFAULT_MODEL", "PRESETS", "architecture_of", "create_config", "create_model", "list_models", "register_auto_classes"]
