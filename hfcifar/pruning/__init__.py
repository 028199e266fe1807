"""The pruning family's shared pieces: one mask utility on `torch.nn.utils.prune` (masks.py), the pruning-method
registry (registry.py), sparsity schedules (schedules.py) and `PruningTrainer` (trainer.py).

Methods (Global MP, RD layer-adaptive pruning, Activating-while-Pruning) compute masks with these functions and
apply them with `apply_masks`; `make_permanent` runs before saving so a pruned model loads with `from_pretrained`.
`PruningTrainer` prunes on a schedule inside `transformers.Trainer` and always saves plain sparse weights.
"""

from .masks import (
    PRUNABLE_TYPES,
    apply_masks,
    check_sparsity,
    effective_weight,
    global_magnitude_masks,
    layer_flops_per_weight,
    layer_magnitude_masks,
    make_permanent,
    prunable_layers,
    sparsity_report,
    uniform_magnitude_masks,
)
from .registry import PRUNING_METHODS, compute_masks, get_pruning_method, register_pruning_method
from .schedules import SCHEDULES, PruningSchedule, cubic_sparsity, gradual_schedule, one_shot_schedule
from .trainer import MASKS_FILE, PruningCallback, PruningTrainer, PruningTrainingArguments, plain_state_dict

__all__ = [
    "MASKS_FILE",
    "PruningCallback",
    "PruningSchedule",
    "PruningTrainer",
    "PruningTrainingArguments",
    "SCHEDULES",
    "cubic_sparsity",
    "gradual_schedule",
    "one_shot_schedule",
    "plain_state_dict",
    "PRUNING_METHODS",
    "compute_masks",
    "get_pruning_method",
    "register_pruning_method",
    "PRUNABLE_TYPES",
    "apply_masks",
    "check_sparsity",
    "effective_weight",
    "global_magnitude_masks",
    "layer_flops_per_weight",
    "layer_magnitude_masks",
    "make_permanent",
    "prunable_layers",
    "sparsity_report",
    "uniform_magnitude_masks",
]
