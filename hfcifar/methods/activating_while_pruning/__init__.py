"""Row 41, `activating-while-pruning`: the dynamic dead neuron rate (DNR) and Activating-while-Pruning (AP).

Liu, Ghosh, Tan & Motani, "AP: Selective Activation for De-sparsifying Pruned Neural Networks" (2022,
https://arxiv.org/abs/2212.06145; TMLR 2023). `DeadNeuronRate` / `DynamicDNRCallback` measure the fraction of dead ReLU
nodes while a network trains (`dnr.py`); `activating_while_pruning_masks` splits each pruning step between a pruning
method of `hfcifar.pruning` and AP, which removes the surviving negative weights that moved least (`ap.py`);
`APTrainer` runs that split at every event of a `PruningTrainer` schedule (`trainer.py`); `claim.py` compares iterative
Global MP with and without AP at high sparsity.
"""

from .ap import (
    DEFAULT_AP_FRACTION,
    APStep,
    activating_while_pruning_masks,
    ap_step,
    check_ap_fraction,
    snapshot_weights,
    weight_changes,
)
from .dnr import ACTIVATION_TYPES, DeadNeuronRate, DynamicDNRCallback, dead_neuron_rate, relu_modules
from .trainer import APTrainer, APTrainingArguments

__all__ = [
    "ACTIVATION_TYPES",
    "APStep",
    "APTrainer",
    "APTrainingArguments",
    "DEFAULT_AP_FRACTION",
    "DeadNeuronRate",
    "DynamicDNRCallback",
    "activating_while_pruning_masks",
    "ap_step",
    "check_ap_fraction",
    "dead_neuron_rate",
    "relu_modules",
    "snapshot_weights",
    "weight_changes",
]
