"""Row 44, `crrelu`: CRReLU (Correction Regularized ReLU), derived from ReLU with the entropy-based activation function
optimization (EAFO).

Haoyuan Sun, Zihao Wu, Bo Xia, Pu Chang, Zibin Dong, Yifu Yuan, Yongzhe Chang, Xueqian Wang, "Entropy-based Activation
Function Optimization: A Method on Searching Better Activation Functions" (ICLR 2025; arXiv 2405.12954, first titled
"A Method on Searching Better Activation Functions"). `activation.py` holds `CRReLU`, provided as the activation
`crrelu` (transformers' `hidden_act`, so `ViTConfig(hidden_act="crrelu")` works after `import hfcifar`; FastNet takes
`hidden_act="crrelu"` too); `eafo.py` holds the EAFO derivation helpers (output entropy, its functional gradient, the
worst activation, the first-order correction); `claim.py` compares CRReLU with GELU and ReLU on one small ViT.
"""

from hfcifar.methods.base import Method, lazy_exports

METHOD = Method(
    number=44,
    slug="crrelu",
    title="A Method on Searching Better Activation Functions",
    ship="CRReLU activation (+ EAFO derivation helper)",
    claim="CRReLU vs GELU/ReLU on a small ViT, reported",
    family="training",
    citation="""@inproceedings{sun2025eafo,
  title     = {Entropy-based Activation Function Optimization: A Method on Searching Better Activation Functions},
  author    = {Sun, Haoyuan and Wu, Zihao and Xia, Bo and Chang, Pu and Dong, Zibin and Yuan, Yifu and Chang, Yongzhe
               and Wang, Xueqian},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2025},
  note      = {arXiv:2405.12954}
}""",
    provides=(
        ("activation", "crrelu", "hfcifar.methods.crrelu.activation:CRReLU"),
        ("public name", "CRReLU", "hfcifar.methods.crrelu.activation:CRReLU"),
    ),
)

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    ".activation": ["CRReLU", "reset_crrelu"],
    ".eafo": ["eafo_correction", "entropy_gradient", "output_entropy", "worst_activation"],
})
