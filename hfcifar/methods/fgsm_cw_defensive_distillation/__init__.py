"""Row 1, `fgsm-cw-defensive-distillation`: FGSM and CW-L2 against defensive distillation.

"Evaluating Adversarial Robustness: A Comparison Of FGSM, Carlini-Wagner Attacks, And The Role of Distillation as
Defense Mechanism" (the row-1 technical report) attacks ResNeXt-50 (32×4d),
DenseNet-201 and VGG-19 with FGSM and CW-L2 and defends a ResNet-101 → ResNeXt-50 (32×4d) pair on CIFAR-10 with
defensive distillation (Papernot et al., 2016): distillation thwarts FGSM but not CW. The attacks are
`hfcifar.attacks.FGSM` and `hfcifar.attacks.CW`; the models `resnext50_32x4d`, `densenet201`, `vgg19`, `resnet101`
(`hfcifar.create_model`); this folder adds the `DefensiveDistillationTrainer` and the claim check (`claim.py`).
"""

from hfcifar.methods.base import Method, lazy_exports

METHOD = Method(
    number=1,
    slug="fgsm-cw-defensive-distillation",
    title="Evaluating Adversarial Robustness: A Comparison Of FGSM, Carlini-Wagner Attacks, And The Role of Distillation as Defense Mechanism",
    ship="FGSM and CW-L2 attacks; DefensiveDistillationTrainer (temperature T, teacher→student); ResNeXt50_32x4d, DenseNet-201, VGG-19, ResNet-101 models",
    claim="distillation thwarts FGSM, not CW → FGSM success rate on the distilled student far below the undistilled model; CW-L2 success stays high",
    family="adversarial",
    citation="""@inproceedings{papernot2016distillation,
  title     = {Distillation as a Defense to Adversarial Perturbations against Deep Neural Networks},
  author    = {Papernot, Nicolas and McDaniel, Patrick and Wu, Xi and Jha, Somesh and Swami, Ananthram},
  booktitle = {2016 IEEE Symposium on Security and Privacy (SP)},
  pages     = {582--597},
  year      = {2016},
  url       = {https://arxiv.org/abs/1511.04508}
}
@inproceedings{carlini2017towards,
  title     = {Towards Evaluating the Robustness of Neural Networks},
  author    = {Carlini, Nicholas and Wagner, David},
  booktitle = {2017 IEEE Symposium on Security and Privacy (SP)},
  pages     = {39--57},
  year      = {2017},
  url       = {https://arxiv.org/abs/1608.04644}
}""",
)

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".trainer": [
            "PRESETS",
            "STAGES",
            "DefensiveDistillationTrainer",
            "DefensiveDistillationTrainingArguments",
            "distillation_arguments",
            "soft_cross_entropy",
            "soft_labels",
            "train_defensive_distillation",
        ],
    },
)
