from .configuration_preact_resnet import PreActResNetConfig
from .modeling_preact_resnet import (
    PreActResNetBlock,
    PreActResNetForImageClassification,
    PreActResNetModel,
    PreActResNetPreTrainedModel,
)

__all__ = [
    "PreActResNetBlock",
    "PreActResNetConfig",
    "PreActResNetForImageClassification",
    "PreActResNetModel",
    "PreActResNetPreTrainedModel",
]

# Named sizes of this architecture (read by `hfcifar.models.create_config`).
CONFIG_CLASS = PreActResNetConfig
BACKBONE_CLASS = PreActResNetModel
MODEL_CLASS = PreActResNetForImageClassification

# He et al. (ECCV 2016): pre-activation ResNet-(6n+2) with n blocks in each of three stages of 16/32/64 channels
# (the paper's CIFAR nets are ResNet-110 and, with bottlenecks, 164 and 1001). `preact-resnet8` (one block per
# stage) is the seed the self-expanding CNN method grows from. `preact-resnet18` is kuangliu/pytorch-cifar's layout
# (four stages of 64 to 512 channels, two blocks each) with the paper's final BN → ReLU, which kuangliu's code omits
# (its PreActResNet18 has 11,171,146 parameters, this one 1,024 more).
_CIFAR = {"stem_width": 16, "hidden_sizes": [16, 32, 64]}
PRESETS = {
    "preact-resnet8": {**_CIFAR, "depths": [1, 1, 1]},
    "preact-resnet20": {**_CIFAR, "depths": [3, 3, 3]},
    "preact-resnet56": {**_CIFAR, "depths": [9, 9, 9]},
    "preact-resnet110": {**_CIFAR, "depths": [18, 18, 18]},
    "preact-resnet18": {"stem_width": 64, "hidden_sizes": [64, 128, 256, 512], "depths": [2, 2, 2, 2]},
}

# The paper the model card cites for this architecture.
CITATION = """@inproceedings{he2016identity,
  title     = {Identity Mappings in Deep Residual Networks},
  author    = {He, Kaiming and Zhang, Xiangyu and Ren, Shaoqing and Sun, Jian},
  booktitle = {European Conference on Computer Vision (ECCV)},
  pages     = {630--645},
  year      = {2016}
}"""
