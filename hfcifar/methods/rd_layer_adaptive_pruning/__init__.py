"""Row 9, `rd-layer-adaptive-pruning`: layer-adaptive weight pruning by output-distortion minimization (RD).

Xu, Wang, Geng, Lin, Wu, Li & Lin, "Efficient Joint Optimization of Layer-Adaptive Weight Pruning in Deep Neural
Networks" (ICCV 2023, https://arxiv.org/abs/2308.10438). `distortion_curves` measures each layer's output distortion
against its pruning amount on calibration images, `additivity_check` tests the property the method rests on (the
distortion of pruning several layers is the sum of their single-layer distortions), and `allocate_sparsities` solves
the resulting problem by dynamic programming (`dynamic_programming`) at a global target sparsity. Importing this
package registers the pruning method "rd" (`hfcifar.pruning.compute_masks("rd", model, 0.9,
calibration_images=images)`). `claim.py` compares RD with Global MP at equal sparsity and tests additivity.
"""

from hfcifar.methods.base import Method, lazy_exports

METHOD = Method(
    number=9,
    slug="rd-layer-adaptive-pruning",
    title="Efficient Joint Optimization of Layer-Adaptive Weight Pruning in Deep Neural Networks",
    ship="per-layer output-distortion curves, additivity, dynamic-programming allocation to a target sparsity",
    claim="at equal sparsity it keeps accuracy ≥ global and uniform magnitude pruning; distortion additivity holds (correlation reported)",
    family="compression",
    citation="""@inproceedings{xu2023rdpruning,
  title     = {Efficient Joint Optimization of Layer-Adaptive Weight Pruning in Deep Neural Networks},
  author    = {Xu, Kaixin and Wang, Zhe and Geng, Xue and Lin, Jie and Wu, Min and Li, Xiaoli and Lin, Weisi},
  booktitle = {Proceedings of the IEEE/CVF International Conference on Computer Vision (ICCV)},
  pages     = {17447--17457},
  year      = {2023},
  url       = {https://arxiv.org/abs/2308.10438}
}""",
    provides=(("pruning method", "rd", "hfcifar.methods.rd_layer_adaptive_pruning.rd:rd_masks"),),
)

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".plots": ["plot_additivity", "plot_distortion_curves"],
        ".rd": [
            "AdditivityCheck",
            "DistortionCurves",
            "RDAllocation",
            "additivity_check",
            "allocate_sparsities",
            "distortion_curves",
            "dynamic_programming",
            "network_outputs",
            "output_distortion",
            "pruned",
            "random_allocations",
            "rd_masks",
            "sparsity_grid",
        ],
    },
)
