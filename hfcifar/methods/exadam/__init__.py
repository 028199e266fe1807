"""Row 12, `exadam`: EXAdam, Adam with new debiasing terms, gradient acceleration and a growing step size.

Ahmed M. Adly, "EXAdam: The Power of Adaptive Cross-Moments" (arXiv 2412.20302, 2024). `optimizer.py` holds `EXAdam`
(a `torch.optim.Optimizer`), registered as the optimizer `exadam` (`hfcifar train … --optim exadam`,
`CifarTrainingArguments(optim="exadam")`); `claim.py` compares the steps a CNN needs to reach a training-accuracy
target against Adam, each at its best learning rate of the same grid.
"""

from hfcifar.methods.base import Method, lazy_exports

METHOD = Method(
    number=12,
    slug="exadam",
    title="EXAdam: The Power of Adaptive Cross-Moments",
    ship="EXAdam torch optimizer",
    claim="steps to a target training accuracy vs Adam on the same CNN, over ≥3 seeds (paper: 48.07% faster)",
    family="training",
    citation="""@article{adly2024exadam,
  title   = {{EXAdam}: The Power of Adaptive Cross-Moments},
  author  = {Adly, Ahmed M.},
  journal = {arXiv preprint arXiv:2412.20302},
  year    = {2024}
}""",
    provides=(("optimizer", "exadam", "hfcifar.methods.exadam.optimizer:EXAdam"),),
)

__getattr__, __dir__, __all__ = lazy_exports(__name__, {".optimizer": ["EXAdam"]})
