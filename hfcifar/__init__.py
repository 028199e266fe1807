"""hfcifar: CIFAR-10 research methods as Hugging Face models, trainers and pipelines.

Importing hfcifar registers every classifier config/model with `AutoConfig`, `AutoModel`,
`AutoModelForImageClassification` and `AutoImageProcessor`, and every hfcifar pipeline with transformers'
`PIPELINE_REGISTRY`.
"""

from transformers import AutoImageProcessor

from .data import load_cifar10
from .image_processing_cifar import CifarImageProcessor
from .models import ARCHITECTURES, create_config, create_model, list_models, register_auto_classes

register_auto_classes()
for _arch in ARCHITECTURES.values():
    AutoImageProcessor.register(_arch.config_class, image_processor_classes={"pil": CifarImageProcessor}, exist_ok=True)

from .pipelines import register_pipelines  # noqa: E402
from .training import CifarTrainer, CifarTrainingArguments, train_classifier  # noqa: E402
from .registry import provide  # noqa: E402

# The diffusion training families, registered lazily (diffusers loads when `hfcifar train` meets one of their models).
provide("training family", "diffusion", "hfcifar.diffusion.run:DIFFUSION_FAMILY")
provide("training family", "autoencoder", "hfcifar.diffusion.autoencoder:AUTOENCODER_FAMILY")
# The pruning family's trainer, for `hfcifar train --trainer pruning` (methods add theirs with `provides`).
provide("trainer", "pruning", "hfcifar.pruning.trainer:PruningTrainer")

from . import quantization  # noqa: E402,F401  (registers the `qfx` quantizer with transformers)

register_pipelines()

__version__ = "0.1.0"

# Method folders are discovered the first time a registry is asked for a name it lacks (or for its list): the
# lower layers own the registries, the methods fill them, and nothing below `hfcifar.methods` names a method.
from .registry import Registry, RegistryError, add_discovery_hook  # noqa: E402
from .methods import discover as _discover_methods  # noqa: E402

add_discovery_hook(_discover_methods)

#: Top-level names loaded on first use (`hfcifar.CifarDDPMPipeline`, `hfcifar.USFScheduler`, …): diffusers is a heavy
#: import. Methods add theirs with `provides=(("public name", NAME, "module:attr"),)`.
PUBLIC_NAMES: Registry = Registry("public name")
for _name in ("CifarDDPMPipeline", "CifarClassConditionalPipeline", "CifarLatentDiffusionPipeline", "DiffusionTrainer",
              "DiffusionTrainingArguments", "create_unet", "train_diffusion"):
    PUBLIC_NAMES.register_lazy(_name, f"hfcifar.diffusion:{_name}")

# Activations that methods provide (`crrelu`) become `hidden_act` names of transformers' own models (ACT2FN) now, so
# `ViTConfig(hidden_act="crrelu")` builds and loads after `import hfcifar`: transformers looks the name up in its own
# table, never in a registry of ours, so this one registry is filled at import (discovery imports every method's cheap
# `__init__`, a few ms; the activations' modules load only when a model is built).
from .models import register_with_transformers  # noqa: E402

register_with_transformers()


def __getattr__(name: str):
    if name.startswith("__"):  # dunder probes (copy, pickle, inspect) never trigger discovery
        raise AttributeError(f"module 'hfcifar' has no attribute {name!r}")
    try:
        return PUBLIC_NAMES.get(name)
    except RegistryError:
        raise AttributeError(f"module 'hfcifar' has no attribute {name!r}") from None


__all__ = [
    "CifarClassConditionalPipeline",
    "CifarDDPMPipeline",
    "CifarLatentDiffusionPipeline",
    "DiffusionTrainer",
    "DiffusionTrainingArguments",
    "create_unet",
    "train_diffusion",
    "CifarImageProcessor",
    "CifarTrainer",
    "CifarTrainingArguments",
    "create_config",
    "create_model",
    "list_models",
    "load_cifar10",
    "train_classifier",
]
