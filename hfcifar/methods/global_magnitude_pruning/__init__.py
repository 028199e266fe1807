"""Row 28, `global-magnitude-pruning`: Global MP, its Minimum Threshold against layer collapse, gradual and FLOPs variants.

Gupta, Camci, Keneta, Vaidyanathan, Kanodia, Foo, Wu & Lin, "Is Complexity Required for Neural Network Pruning? A Case
Study on Global Magnitude Pruning" (2022, https://arxiv.org/abs/2209.14624). Global MP ranks every weight of the
network by magnitude and prunes the smallest, one threshold for all layers; the Minimum Threshold (MT) keeps a few
weights in every layer so that no layer collapses.

The method itself is the pruning family's shared code, so every pruning method in hfcifar uses the same one:
`hfcifar.pruning.global_magnitude_masks` (vanilla, `min_keep_fraction` = MT, `target="flops"`), the `"global"`
pruning method of `PruningTrainer`, and the one-shot / gradual (Zhu & Gupta cubic) schedules. This folder adds the
paper's measurements of a mask set (`layer_collapse.py`) and the claim check (`claim.py`).
"""

from hfcifar.methods.base import Method, lazy_exports

METHOD = Method(
    number=28,
    slug="global-magnitude-pruning",
    title="Is Complexity Required for Neural Network Pruning? A Case Study on Global Magnitude Pruning",
    ship="global MP, per-layer minimum, gradual schedule (FLOPs variant too)",
    claim="at 90% and 98% sparsity global MP ≥ uniform layer-wise MP; the minimum avoids layer collapse; masks equal torch.nn.utils.prune.global_unstructured",
    family="compression",
    citation="""@article{gupta2022globalmp,
  title   = {Is Complexity Required for Neural Network Pruning? A Case Study on Global Magnitude Pruning},
  author  = {Gupta, Manas and Camci, Efe and Keneta, Vishandi Rudy and Vaidyanathan, Abhishek and Kanodia, Ritwik
             and Foo, Chuan-Sheng and Wu, Min and Lin, Jie},
  journal = {arXiv preprint arXiv:2209.14624},
  year    = {2022},
  url     = {https://arxiv.org/abs/2209.14624}
}""",
)

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "hfcifar.pruning": [
            "PruningTrainer",
            "PruningTrainingArguments",
            "global_magnitude_masks",
            "gradual_schedule",
            "one_shot_schedule",
            "uniform_magnitude_masks",
        ],
        ".layer_collapse": ["collapsed_layers", "flops_sparsity", "layer_sparsities"],
    },
)
