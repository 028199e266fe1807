"""Saving and loading fixed-point models the Hugging Face way.

Two folders, two purposes:

- **The trainable model** (`model.save_pretrained(dir)` of a quantized model, e.g. what `Trainer.save_model` writes):
  `config.json` carries a `quantization_config` with `"quant_method": "qfx"`, the word lengths and each quantizer's
  signedness; `model.safetensors` holds the float latent weights and the learned binary points (`…integer_bits`).
  `AutoModelForImageClassification.from_pretrained(dir)` rebuilds the quantized model through the `qfx` quantizer
  registered here with transformers (`register_quantization_config` / `register_quantizer`): before the weights
  load, `QFXHfQuantizer` applies `quantize_model` to the empty model, so every key matches. QFX training can resume.
- **The deployment export** (`save_fixed_point(model, dir)`): `fixed_point.safetensors` holds the integer tensors
  (int8/int16/int32 by word length) and `fixed_point.json` the type of every tensor and activation (word length,
  binary point, signedness, K, the HLS type), next to `save_pretrained`'s folder. `load_fixed_point(dir)` rebuilds
  the model from the integers alone and checks the export reproduces the saved model's outputs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from transformers.quantizers import HfQuantizer
from transformers.quantizers.auto import (
    AUTO_QUANTIZATION_CONFIG_MAPPING,
    AUTO_QUANTIZER_MAPPING,
    register_quantization_config,
    register_quantizer,
)

from .arithmetic import FixedPointFormat
from .config import QUANT_METHOD, QFXConfig, attach_quantization_config
from .convert import quantize_model
from .export import FixedPointExport, dequantized_model, export_fixed_point
from .modules import is_fixed_point_quantized

EXPORT_WEIGHTS = "fixed_point.safetensors"
EXPORT_FORMATS = "fixed_point.json"


class QFXHfQuantizer(HfQuantizer):
    """Rebuilds a QFX model inside `from_pretrained`: `quantize_model` on the empty model before the weights load."""

    requires_calibration = False

    def _process_model_before_weight_loading(self, model, **kwargs):
        config = self.quantization_config
        if isinstance(config, dict):
            config = QFXConfig(**config)
        return quantize_model(model, config.weight_bits, **config.quantize_options())

    def _process_model_after_weight_loading(self, model, **kwargs):
        return model

    def is_serializable(self, safe_serialization=None):
        return True

    @property
    def is_trainable(self) -> bool:
        return True

    @property
    def is_qat_trainable(self) -> bool:
        return True


def register_with_transformers() -> None:
    """Register the `qfx` quantization config and quantizer with transformers (idempotent)."""
    if QUANT_METHOD not in AUTO_QUANTIZATION_CONFIG_MAPPING:
        register_quantization_config(QUANT_METHOD)(QFXConfig)
    if QUANT_METHOD not in AUTO_QUANTIZER_MAPPING:
        register_quantizer(QUANT_METHOD)(QFXHfQuantizer)


register_with_transformers()


def save_fixed_point(model, directory: str | os.PathLike, save_model: bool = True) -> FixedPointExport:
    """Save the deployment export (integer tensors + formats) and, with `save_model`, the trainable model.

    Writes `fixed_point.safetensors`, `fixed_point.json` and (`save_pretrained`) `config.json` with the
    `quantization_config` + `model.safetensors`. Returns the export.
    """
    from safetensors.torch import save_file

    if not is_fixed_point_quantized(model):
        raise ValueError("save_fixed_point needs a quantized model (quantize_model / post_training_quantization).")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    export = export_fixed_point(model)
    attach_quantization_config(model)
    if save_model:
        model.save_pretrained(directory)
    tables = {"format": "qfx-fixed-point", "version": 1, "tensors": {}, "activations": {}}
    for name, fmt in export.formats.items():
        (tables["tensors"] if name in export.integers else tables["activations"])[name] = fmt.to_dict()
    tmp = directory / f".{EXPORT_WEIGHTS}.tmp"
    save_file(export.storage_tensors(), str(tmp), metadata={"format": "qfx-fixed-point"})
    os.replace(tmp, directory / EXPORT_WEIGHTS)
    tmp = directory / f".{EXPORT_FORMATS}.tmp"
    tmp.write_text(json.dumps(tables, indent=2) + "\n")
    os.replace(tmp, directory / EXPORT_FORMATS)
    return export


def read_fixed_point(directory: str | os.PathLike) -> FixedPointExport:
    """The export saved by `save_fixed_point` (integers as int32)."""
    from safetensors.torch import load_file

    directory = Path(directory)
    for name in (EXPORT_WEIGHTS, EXPORT_FORMATS):
        if not (directory / name).is_file():
            raise ValueError(f"{directory} has no {name}: save the model with save_fixed_point(model, directory).")
    tables = json.loads((directory / EXPORT_FORMATS).read_text())
    formats = {name: FixedPointFormat.from_dict(values)
               for name, values in {**tables["tensors"], **tables["activations"]}.items()}
    integers = {name: tensor.to(torch.int32) for name, tensor in load_file(str(directory / EXPORT_WEIGHTS)).items()}
    missing = sorted(set(tables["tensors"]) - set(integers))
    if missing:
        raise ValueError(f"{directory / EXPORT_WEIGHTS} lacks the tensors {missing[:5]} that {EXPORT_FORMATS} lists.")
    return FixedPointExport(integers, formats)


def load_fixed_point(directory: str | os.PathLike):
    """The fixed-point model as the integers describe it: every weight, BatchNorm coefficient and binary point from
    `fixed_point.safetensors` / `fixed_point.json` (the architecture and quantizer layout from `config.json`)."""
    from transformers import AutoConfig, AutoModelForImageClassification

    directory = Path(directory)
    export = read_fixed_point(directory)
    config = AutoConfig.from_pretrained(directory)
    quantization = getattr(config, "quantization_config", None)
    if quantization is None:
        raise ValueError(f"{directory / 'config.json'} has no quantization_config: save with save_fixed_point.")
    if isinstance(quantization, dict):
        quantization = QFXConfig(**{k: v for k, v in quantization.items() if k != "quant_method"})
    del config.quantization_config  # build the float architecture; quantize_model adds the quantizers
    model = AutoModelForImageClassification.from_config(config)
    quantize_model(model, quantization.weight_bits, **quantization.quantize_options())
    model.config.quantization_config = quantization
    return dequantized_model(model, export)


__all__ = [
    "EXPORT_FORMATS",
    "EXPORT_WEIGHTS",
    "QFXHfQuantizer",
    "load_fixed_point",
    "read_fixed_point",
    "register_with_transformers",
    "save_fixed_point",
]


def card_requirement(config) -> str | None:
    """The first lines of a QFX model's card: why it needs hfcifar (registered as a card requirement by `qfx`)."""
    if not _is_qfx(config):
        return None
    return ("This is a QFX fixed-point model: its layers are rebuilt by the `qfx` quantizer, which hfcifar registers "
            "with transformers (transformers cannot load a quantizer as remote code). Without hfcifar, "
            "`from_pretrained` stops with an ImportError saying so; with it, `import hfcifar` before loading gives the "
            "fixed-point model this card's results were measured on.")


def _is_qfx(config) -> bool:
    quantization = getattr(config, "quantization_config", None) or {}
    quantization = quantization if isinstance(quantization, dict) else quantization.to_dict()
    return quantization.get("quant_method") == QUANT_METHOD


def card_note(config) -> str | None:
    """The model card's note for a QFX model (registered as a card note by the `qfx` method)."""
    if not _is_qfx(config):
        return None
    return ("QFX fixed-point model: `from_pretrained` rebuilds the fixed-point emulation only after "
            "`pip install hfcifar` and `import hfcifar` (which registers the `qfx` quantizer); the integer "
            "weights and binary points for deployment are in `fixed_point.safetensors` / `fixed_point.json`.")
