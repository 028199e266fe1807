"""Row 36, `dice-sgd`: differentially private training — DP-SGD with gradient clipping and DiceSGD's error feedback.

Zhang, Bu, Wu & Hong, "Differentially Private SGD Without Clipping Bias: An Error-Feedback Approach" (ICLR 2024,
https://arxiv.org/abs/2311.14632). Per-sample gradients, Poisson sampling and the Rényi-DP accountant are Opacus'
(`pip install "hfcifar[dp]"`); `optimizer.py` holds `DiceSGDOptimizer` (Opacus' `DPOptimizer` with the paper's
clipped error feedback), `privacy.py` the sampler and accountant calls, `trainer.py` `DPTrainer` (`CifarTrainer`
made private; `hfcifar train convnet --trainer dp --target_epsilon 8`, `--trainer dice-sgd` for DiceSGD) and
`claim.py` compares DiceSGD with DP-SGD-GC at the same (ε, δ) across clipping norms.
"""

from hfcifar.methods.base import Method, lazy_exports

METHOD = Method(
    number=36,
    slug="dice-sgd",
    title="Differentially Private SGD Without Clipping Bias: An Error-Feedback Approach",
    ship="DP-SGD with clipping and the error-feedback variant, Rényi-DP accountant",
    claim="at the same ε the EF variant's accuracy ≥ DP-SGD-GC; ε matches a reference accountant",
    family="training",
    citation="""@inproceedings{zhang2024differentially,
  title     = {Differentially Private {SGD} Without Clipping Bias: An Error-Feedback Approach},
  author    = {Zhang, Xinwei and Bu, Zhiqi and Wu, Zhiwei Steven and Hong, Mingyi},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2024}
}""",
    provides=(
        ("trainer", "dp", "hfcifar.methods.dice_sgd.trainer:DPTrainer"),
        ("trainer", "dice-sgd", "hfcifar.methods.dice_sgd.trainer:DiceSGDTrainer"),
    ),
)

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".optimizer": ["DiceSGDOptimizer"],
        ".privacy": ["PoissonBatchSampler", "noise_multiplier_for", "rdp_epsilon"],
        ".trainer": ["DPTrainer", "DPTrainingArguments", "DiceSGDTrainer", "DiceSGDTrainingArguments"],
    },
)
