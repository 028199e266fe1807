"""Row 16, `reste`: binary networks trained with the Rectified Straight Through Estimator, and the STE baseline.

Wu, Zheng, Liu & Zheng, "Estimator Meets Equilibrium Perspective: A Rectified Straight Through Estimator for Binary
Neural Networks Training" (ICCV 2023, https://arxiv.org/abs/2308.06689). The binary layers, the ReSTE and STE
autograd functions and the binary ResNet live in the model zoo (`hfcifar.models.binary_resnet`, so that a binary
model travels as Hub remote code); the estimator is its config switch (`estimator="reste" | "ste"`). This package
adds what training needs: the annealing of ReSTE's power o and the paper's two indicators, estimating error and
gradient stability (`indicators.py`), wired into `CifarTrainer` by `ReSTETrainer` (`trainer.py`); `claim.py`
compares ReSTE with STE on the same binary ResNet-20.
"""

from hfcifar.methods.base import Method, lazy_exports

METHOD = Method(
    number=16,
    slug="reste",
    title="Estimator Meets Equilibrium Perspective: A Rectified Straight Through Estimator for Binary Neural Networks Training",
    ship="binary conv/linear layers with ReSTE (power-function estimator), STE baseline; the two indicators",
    claim="ReSTE ≥ STE accuracy on a binary ResNet; indicators reported",
    family="compression",
    citation="""@inproceedings{wu2023estimator,
  title     = {Estimator Meets Equilibrium Perspective: A Rectified Straight Through Estimator for Binary Neural
               Networks Training},
  author    = {Wu, Xiao-Ming and Zheng, Dian and Liu, Zuhao and Zheng, Wei-Shi},
  booktitle = {IEEE/CVF International Conference on Computer Vision (ICCV)},
  pages     = {17055--17064},
  year      = {2023}
}""",
    provides=(("trainer", "reste", "hfcifar.methods.reste.trainer:ReSTETrainer"),
              ("default trainer", "hfcifar-binary_resnet", "hfcifar.methods.reste.trainer:TRAINER_NAME")),
)

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".indicators": [
            "EquilibriumIndicatorsCallback",
            "PowerScheduleCallback",
            "estimating_error",
            "gradient_stability",
            "training_progress",
        ],
        ".trainer": ["ReSTETrainer", "ReSTETrainingArguments"],
    },
)
