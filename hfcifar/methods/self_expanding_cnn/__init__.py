"""Row 2, `self-expanding-cnn`: a CNN that adds layers during training when the natural expansion score says so.

Appolinary, Deaconu, Yang & Li, "Self Expanding Convolutional Neural Networks" (arXiv 2401.05686, 2024), after
Mitchell, Menzenbach, Kersting & Mundt, "Self-Expanding Neural Networks" (arXiv 2307.04526). The expandable network
is the zoo's pre-activation ResNet (`hfcifar.models.preact_resnet`: `config.depths` is its size, `add_block(stage)`
adds an identity block without changing any output), so a grown network loads with `from_pretrained` and travels as
remote code. This package adds the natural expansion score and the decision (`expansion.py`) and
`SelfExpandingTrainer` (`trainer.py`, `hfcifar train preact-resnet8 --trainer self-expanding`), which grows the network
during training, rebuilds the optimizer and the DDP wrapper, and saves `sizes/checkpoint-size-K` at every size;
`claim.py` compares a grown network with one of its final size trained from scratch for the same steps.
"""

from hfcifar.methods.base import Method, lazy_exports

METHOD = Method(
    number=2,
    slug="self-expanding-cnn",
    title="Self Expanding Convolutional Neural Networks",
    ship="SelfExpandingTrainer: natural expansion score decides when/where to add layers; a checkpoint per size",
    claim=("a model grown from one block reaches the accuracy of a fixed model of its final size within tolerance, "
           "emitting checkpoints of increasing size"),
    family="architecture-search",
    citation="""@article{appolinary2024self,
  title   = {Self Expanding Convolutional Neural Networks},
  author  = {Appolinary, Blaise and Deaconu, Alex and Yang, Sophia and Li, Qingze},
  journal = {arXiv preprint arXiv:2401.05686},
  year    = {2024}
}""",
    provides=(("trainer", "self-expanding", "hfcifar.methods.self_expanding_cnn.trainer:SelfExpandingTrainer"),),
)

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".expansion": ["ExpansionScores", "expansion_ratio", "grow", "growth_plan", "natural_expansion_scores"],
        ".trainer": ["ExpansionCallback", "SelfExpandingTrainer", "SelfExpandingTrainingArguments"],
    },
)
