"""Row 1, `fgsm-cw-defensive-distillation`: FGSM and CW-L2 against defensive distillation.

"Evaluating Adversarial Robustness: A Comparison Of FGSM, Carlini-Wagner Attacks, And The Role of Distillation as
Defense Mechanism" (the row-1 technical report) attacks ResNeXt-50 (32×4d),
DenseNet-201 and VGG-19 with FGSM and CW-L2 and defends a ResNet-101 → ResNeXt-50 (32×4d) pair on CIFAR-10 with
defensive distillation (Papernot et al., 2016): distillation thwarts FGSM but not CW. The attacks are
`hfcifar.attacks.FGSM` and `hfcifar.attacks.CW`; the models `resnext50_32x4d`, `densenet201`, `vgg19`, `resnet101`
(`hfcifar.create_model`); this folder adds the `DefensiveDistillationTrainer` and the claim check (`claim.py`).
"""

from .trainer import (
    PRESETS,
    STAGES,
    DefensiveDistillationTrainer,
    DefensiveDistillationTrainingArguments,
    distillation_arguments,
    soft_cross_entropy,
    soft_labels,
    train_defensive_distillation,
)

__all__ = [
    "PRESETS",
    "STAGES",
    "DefensiveDistillationTrainer",
    "DefensiveDistillationTrainingArguments",
    "distillation_arguments",
    "soft_cross_entropy",
    "soft_labels",
    "train_defensive_distillation",
]
