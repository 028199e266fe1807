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
from . import quantization  # noqa: E402,F401  (registers the `qfx` quantizer with transformers)

register_pipelines()

__version__ = "0.1.0"

# Diffusion components, loaded on first use (diffusers is a heavy import): `hfcifar.CifarDDPMPipeline`,
# `hfcifar.USFScheduler`, … (saved pipeline folders record the full module path of hfcifar components in
# `model_index.json`; hfcifar's pipelines import those modules in `from_pretrained`).
_LAZY = {
    "CifarDDPMPipeline": "hfcifar.diffusion",
    "CifarClassConditionalPipeline": "hfcifar.diffusion",
    "CifarLatentDiffusionPipeline": "hfcifar.diffusion",
    "DiffusionTrainer": "hfcifar.diffusion",
    "DiffusionTrainingArguments": "hfcifar.diffusion",
    "create_unet": "hfcifar.diffusion",
    "train_diffusion": "hfcifar.diffusion",
    "USFScheduler": "hfcifar.methods.usf_s3",
    "GaussianMixtureDenoiser": "hfcifar.methods.usf_s3",
    "AliasFreeUNet2DModel": "hfcifar.methods.alias_free_diffusion",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hfcifar' has no attribute {name!r}")


__all__ = [
    *_LAZY,
    "CifarImageProcessor",
    "CifarTrainer",
    "CifarTrainingArguments",
    "create_config",
    "create_model",
    "list_models",
    "load_cifar10",
    "train_classifier",
]
