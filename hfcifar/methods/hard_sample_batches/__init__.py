"""Row 21, `hard-sample-batches`: training on the top-δ highest-loss mini-batches of every epoch.

Subin Sahayam, John Zakkam & Umarani Jayaraman, "Can we learn better with hard samples?" (arXiv 2304.03486, 2023).
`sampler.py` holds `HardBatchSampler` (candidate mini-batches, the top-δ selection by loss or, as a control, at
random); `trainer.py` holds `HardBatchTrainer` (a `CifarTrainer` whose training loader is that sampler, scoring the
candidates with no-grad forward passes and counting their cost), registered as the trainer `hard-batches`
(`hfcifar train fastnet --trainer hard-batches --hard_batch_fraction 0.5`); `claim.py` measures epochs *and*
wall-clock seconds to a validation-accuracy target against standard training.
"""

from hfcifar.methods.base import Method, lazy_exports

METHOD = Method(
    number=21,
    slug="hard-sample-batches",
    title="Can we learn better with hard samples?",
    ship="trainer that trains on the top-δ highest-loss mini-batches",
    claim=("epochs and wall-clock seconds (scoring included) to a target validation accuracy vs standard training, "
           "≥ 3 seeds (paper: 26.47% fewer epochs)"),
    family="training",
    citation="""@article{sahayam2023hard,
  title   = {Can we learn better with hard samples?},
  author  = {Sahayam, Subin and Zakkam, John and Jayaraman, Umarani},
  journal = {arXiv preprint arXiv:2304.03486},
  year    = {2023}
}""",
    provides=(("trainer", "hard-batches", "hfcifar.methods.hard_sample_batches.trainer:HardBatchTrainer"),),
)

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".sampler": ["HardBatchSampler", "kept_count"],
        ".trainer": ["HardBatchTrainer", "HardBatchTrainingArguments"],
    },
)
