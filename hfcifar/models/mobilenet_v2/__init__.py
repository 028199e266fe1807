from .configuration_mobilenet_v2 import CifarMobileNetV2Config
from .modeling_mobilenet_v2 import (
    CifarMobileNetV2ForImageClassification,
    CifarMobileNetV2Model,
    CifarMobileNetV2PreTrainedModel,
)

__all__ = [
    "CifarMobileNetV2Config",
    "CifarMobileNetV2ForImageClassification",
    "CifarMobileNetV2Model",
    "CifarMobileNetV2PreTrainedModel",
]

# Named sizes of this architecture (read by `hfcifar.models.create_config`).
CONFIG_CLASS = CifarMobileNetV2Config
BACKBONE_CLASS = CifarMobileNetV2Model
MODEL_CLASS = CifarMobileNetV2ForImageClassification
PRESETS = {
    # kuangliu/pytorch-cifar's MobileNetV2 (the config's defaults)
    "mobilenet_v2": {},
}
