"""Row 5, `ft-clipact`: weight fault injection and clipped activations with systematically chosen thresholds.

Hoang, Hanif & Shafique, "FT-ClipAct: Resilience Analysis of Deep Neural Networks and Improving their Fault Tolerance
using Clipped Activation" (DATE 2020, https://arxiv.org/abs/1912.00941). The fault model (random bit flips in the
weight memory at a fault rate) and the evaluation over seeded fault draws are the family's shared piece,
`hfcifar.faults`; so is the clipped activation itself (`ClippedReLU`, `clip_activations`: values above the
layer's threshold become zero; `hfcifar.faults.clipping`). This folder holds what the paper adds:
`select_clipping_thresholds` (`selection.py`, profiling + per-layer interval search maximizing the area under the
accuracy-vs-fault-rate curve), and `claim.py`.
"""

from hfcifar.methods.base import Method, lazy_exports

METHOD = Method(
    number=5,
    slug="ft-clipact",
    title="FT-ClipAct: Resilience Analysis of Deep Neural Networks and Improving their Fault Tolerance using Clipped Activation",
    ship="weight fault injection (random bit flips at a rate) + clipped activations with calibrated per-layer thresholds",
    claim="clipped model keeps more accuracy than the unclipped one at fault rates 1e-5…1e-3 (paper: +68.92% for VGG-16 at 1e-5)",
    family="compression",
    citation=r"""@inproceedings{hoang2020ftclipact,
  title     = {{FT-ClipAct}: Resilience Analysis of Deep Neural Networks and Improving their Fault Tolerance using
               Clipped Activation},
  author    = {Hoang, Le-Ha and Hanif, Muhammad Abdullah and Shafique, Muhammad},
  booktitle = {Design, Automation \& Test in Europe Conference \& Exhibition (DATE)},
  pages     = {1241--1246},
  year      = {2020},
  url       = {https://arxiv.org/abs/1912.00941}
}""",
    provides=(("card note", "clipped-activations", "hfcifar.faults.clipping:card_note"),),
)

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".selection": [
            "DEFAULT_SELECTION_RATES",
            "CandidateResult",
            "ThresholdSelectionOutput",
            "interval_candidates",
            "next_interval",
            "plot_thresholds",
            "select_clipping_thresholds",
        ],
    },
)
