"""Row 16, `reste`: binary networks trained with the Rectified Straight Through Estimator, and the STE baseline.

Wu, Zheng, Liu & Zheng, "Estimator Meets Equilibrium Perspective: A Rectified Straight Through Estimator for Binary
Neural Networks Training" (ICCV 2023, https://arxiv.org/abs/2308.06689). The binary layers, the ReSTE and STE
autograd functions and the binary ResNet live in the model zoo (`hfcifar.models.binary_resnet`, so that a binary
model travels as Hub remote code); the estimator is its config switch (`estimator="reste" | "ste"`). This package
adds what training needs: the annealing of ReSTE's power o and the paper's two indicators, estimating error and
gradient stability (`indicators.py`), wired into `CifarTrainer` by `ReSTETrainer` (`trainer.py`); `claim.py`
compares ReSTE with STE on the same binary ResNet-20.
"""

from hfcifar.models.binary_resnet import (
    BinaryConv2d,
    BinaryLinear,
    RectifiedStraightThroughSign,
    StraightThroughSign,
    binary_sign,
    reste_gradient,
    reste_power_schedule,
)

from .indicators import (
    EquilibriumIndicatorsCallback,
    PowerScheduleCallback,
    estimating_error,
    gradient_stability,
    training_progress,
)
from .trainer import ReSTETrainer, ReSTETrainingArguments

__all__ = [
    "BinaryConv2d",
    "BinaryLinear",
    "EquilibriumIndicatorsCallback",
    "PowerScheduleCallback",
    "ReSTETrainer",
    "ReSTETrainingArguments",
    "RectifiedStraightThroughSign",
    "StraightThroughSign",
    "binary_sign",
    "estimating_error",
    "gradient_stability",
    "reste_gradient",
    "reste_power_schedule",
    "training_progress",
]
