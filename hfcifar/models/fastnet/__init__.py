from .configuration_fastnet import FastNetConfig
from .modeling_fastnet import FastNetForImageClassification, FastNetModel, FastNetPreTrainedModel

__all__ = ["FastNetConfig", "FastNetForImageClassification", "FastNetModel", "FastNetPreTrainedModel"]

# Named sizes of this architecture (read by `hfcifar.models.create_config`).
CONFIG_CLASS = FastNetConfig
BACKBONE_CLASS = FastNetModel
MODEL_CLASS = FastNetForImageClassification
PRESETS = {
    # the default model of `hfcifar train`: 0.30M parameters, ~1,000 img/s training on 2 CPU cores
    "fastnet": {},
    # 4× the width (1.17M parameters): the default of `hfcifar train` (with bf16 where fast) and for GPUs
    "fastnet-wide": {"stem_width": 32, "widths": [64, 128, 256]},
    # a tiny variant for tests and smoke runs
    "fastnet-tiny": {"stem_width": 8, "widths": [16, 16, 32]},
}

# The paper the model card cites for this architecture.
CITATION = """@article{jordan2024airbench,
  title   = {94\\% on {CIFAR-10} in 3.29 Seconds on a Single {GPU}},
  author  = {Jordan, Keller},
  journal = {arXiv preprint arXiv:2404.00498},
  year    = {2024}
}"""
