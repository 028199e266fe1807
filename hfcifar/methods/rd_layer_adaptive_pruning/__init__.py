"""Row 9, `rd-layer-adaptive-pruning`: layer-adaptive weight pruning by output-distortion minimization (RD).

Xu, Wang, Geng, Lin, Wu, Li & Lin, "Efficient Joint Optimization of Layer-Adaptive Weight Pruning in Deep Neural
Networks" (ICCV 2023, https://arxiv.org/abs/2308.10438). `distortion_curves` measures each layer's output distortion
against its pruning amount on calibration images, `additivity_check` tests the property the method rests on (the
distortion of pruning several layers is the sum of their single-layer distortions), and `allocate_sparsities` solves
the resulting problem by dynamic programming (`dynamic_programming`) at a global target sparsity. Importing this
package registers the pruning method "rd" (`hfcifar.pruning.compute_masks("rd", model, 0.9,
calibration_images=images)`). `claim.py` compares RD with Global MP at equal sparsity and tests additivity.
"""

from .rd import (
    AdditivityCheck,
    DistortionCurves,
    RDAllocation,
    additivity_check,
    allocate_sparsities,
    distortion_curves,
    dynamic_programming,
    network_outputs,
    output_distortion,
    plot_additivity,
    plot_distortion_curves,
    pruned,
    random_allocations,
    rd_masks,
    sparsity_grid,
)

__all__ = [
    "AdditivityCheck",
    "DistortionCurves",
    "RDAllocation",
    "additivity_check",
    "allocate_sparsities",
    "distortion_curves",
    "dynamic_programming",
    "network_outputs",
    "output_distortion",
    "plot_additivity",
    "plot_distortion_curves",
    "pruned",
    "random_allocations",
    "rd_masks",
    "sparsity_grid",
]
