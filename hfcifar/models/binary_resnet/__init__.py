from .configuration_binary_resnet import BinaryResNetConfig
from .modeling_binary_resnet import (
    BinaryConv2d,
    BinaryLinear,
    BinaryResNetForImageClassification,
    BinaryResNetModel,
    BinaryResNetPreTrainedModel,
    RectifiedStraightThroughSign,
    StraightThroughSign,
    binary_sign,
    reste_gradient,
    reste_power_schedule,
)

__all__ = [
    "BinaryConv2d",
    "BinaryLinear",
    "BinaryResNetConfig",
    "BinaryResNetForImageClassification",
    "BinaryResNetModel",
    "BinaryResNetPreTrainedModel",
    "RectifiedStraightThroughSign",
    "StraightThroughSign",
    "binary_sign",
    "reste_gradient",
    "reste_power_schedule",
]

# Named sizes of this architecture (read by `hfcifar.models.create_config`).
CONFIG_CLASS = BinaryResNetConfig
BACKBONE_CLASS = BinaryResNetModel
MODEL_CLASS = BinaryResNetForImageClassification
# `model_type`s this architecture was saved under before the `hfcifar-<folder>` rule: folders that carry them still
# load, as today's classes (see `hfcifar.models.register_auto_classes`).
LEGACY_MODEL_TYPES = ("hfcifar-binary-resnet",)

# Wu et al. (2023): ResNet-20 (three stages of 16/32/64 channels, 3 blocks each) with 1-bit weights and activations
# ("1W/1A", 86.75% on CIFAR-10 with ReSTE) or 1-bit weights only ("1W/32A", 91.32%); the paper's numbers as the
# official repository (DravenALG/ReSTE) lists them.
# The estimator is a config switch: `create_model("binary-resnet20", estimator="ste")` is the STE baseline.
PRESETS = {
    "binary-resnet20": {"depths": [3, 3, 3]},
    "binary-resnet20-1w32a": {"depths": [3, 3, 3], "activation_bits": 32},
}

# The papers the model card cites: ReSTE (the binarization and its estimator) and the ResNet it binarizes.
CITATION = """@inproceedings{wu2023estimator,
  title     = {Estimator Meets Equilibrium Perspective: A Rectified Straight Through Estimator for Binary Neural
               Networks Training},
  author    = {Wu, Xiao-Ming and Zheng, Dian and Liu, Zuhao and Zheng, Wei-Shi},
  booktitle = {IEEE/CVF International Conference on Computer Vision (ICCV)},
  pages     = {17055--17064},
  year      = {2023}
}

@inproceedings{he2016deep,
  title     = {Deep Residual Learning for Image Recognition},
  author    = {He, Kaiming and Zhang, Xiangyu and Ren, Shaoqing and Sun, Jian},
  booktitle = {IEEE Conference on Computer Vision and Pattern Recognition (CVPR)},
  year      = {2016}
}"""
