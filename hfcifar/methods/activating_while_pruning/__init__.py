"""Row 41, `activating-while-pruning`: the dynamic dead neuron rate (DNR) and Activating-while-Pruning (AP).

Liu, Ghosh, Tan & Motani, "AP: Selective Activation for De-sparsifying Pruned Neural Networks" (2022,
https://arxiv.org/abs/2212.06145; TMLR 2023). `DeadNeuronRate` / `DynamicDNRCallback` measure the fraction of dead ReLU
nodes while a network trains (`dnr.py`); `activating_while_pruning_masks` splits each pruning step between a pruning
method of `hfcifar.pruning` and AP, which removes the surviving negative weights that moved least (`ap.py`);
`APTrainer` runs that split at every event of a `PruningTrainer` schedule (`trainer.py`); `claim.py` compares iterative
Global MP with and without AP at high sparsity.
"""

from hfcifar.methods.base import Method, lazy_exports

METHOD = Method(
    number=41,
    slug="activating-while-pruning",
    title="AP: Selective Activation for De-sparsifying Pruned Neural Networks",
    ship="AP on top of magnitude pruning; dynamic dead-neuron rate",
    claim="pruning + AP ≥ pruning alone at high sparsity",
    family="compression",
    citation="""@article{liu2023ap,
  title   = {{AP}: Selective Activation for De-sparsifying Pruned Networks},
  author  = {Liu, Shiyu and Ghosh, Rohan and Tan, Dylan and Motani, Mehul},
  journal = {Transactions on Machine Learning Research},
  year    = {2023},
  url     = {https://arxiv.org/abs/2212.06145}
}""",
    provides=(("trainer", "activating-while-pruning", "hfcifar.methods.activating_while_pruning.trainer:APTrainer"),),
)

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".ap": [
            "DEFAULT_AP_FRACTION",
            "APStep",
            "activating_while_pruning_masks",
            "ap_step",
            "check_ap_fraction",
            "snapshot_weights",
            "weight_changes",
        ],
        ".dnr": ["ACTIVATION_TYPES", "DeadNeuronRate", "DynamicDNRCallback", "dead_neuron_rate", "relu_modules"],
        ".trainer": ["APTrainer", "APTrainingArguments"],
    },
)
