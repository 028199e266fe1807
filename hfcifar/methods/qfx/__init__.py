"""Row 27, `qfx`: trainable fixed-point quantization with learned binary points (and a multiplier-free mode).

Dai, Zhang, Zhang, Hu, Cai, Sun & Zhang, "Trainable Fixed-Point Quantization for Deep Learning Acceleration on
FPGAs" (2024, https://arxiv.org/abs/2401.17544). The method lives in the quantization family package
(`hfcifar.quantization`): `quantize_model` converts a zoo model to its fixed-point emulation (weights, layer inputs,
BatchNorm and residual additions, each tensor with a learned binary point), `QFXTrainer` trains it through
`CifarTrainer`, `post_training_quantization` is the paper's baseline, and `export_fixed_point` / `save_fixed_point`
give the integers and binary points an HLS design needs. `claim.py` compares QFX with post-training quantization at
4, 6 and 8 bits.
"""

from hfcifar.methods.base import Method, lazy_exports

METHOD = Method(
    number=27,
    slug="qfx",
    title="Trainable Fixed-Point Quantization for Deep Learning Acceleration on FPGAs",
    ship="trainable fixed-point quantization with learned binary point; multiplier-free option",
    claim="at 4–8 bits QFX ≥ post-training quantization accuracy",
    family="compression",
    citation="""@article{dai2024qfx,
  title   = {Trainable Fixed-Point Quantization for Deep Learning Acceleration on {FPGAs}},
  author  = {Dai, Dingyi and Zhang, Yichi and Zhang, Jiahao and Hu, Zhanqiu and Cai, Yaohui and Sun, Qi and Zhang, Zhiru},
  journal = {arXiv preprint arXiv:2401.17544},
  year    = {2024},
  url     = {https://arxiv.org/abs/2401.17544}
}""",
    provides=(("card note", "qfx", "hfcifar.quantization.hub:card_note"),
              ("card requirement", "qfx", "hfcifar.quantization.hub:card_requirement"),
              ("trainer", "qfx", "hfcifar.quantization.training:QFXTrainer")),
)

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "...quantization": [
            "FixedPointBatchNorm2d",
            "FixedPointExport",
            "FixedPointFormat",
            "FixedPointQuantizer",
            "QFXConfig",
            "QFXTrainer",
            "export_fixed_point",
            "fixed_point_quantize",
            "load_fixed_point",
            "post_training_quantization",
            "quantize_model",
            "save_fixed_point",
            "set_binary_points_trainable",
            "verify_export",
        ],
    },
)
