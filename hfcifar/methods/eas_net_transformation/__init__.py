"""Row 26, `eas-net-transformation`: Efficient Architecture Search by Network Transformation (EAS).

Cai, Chen, Zhang, Yu & Wang, "Efficient Architecture Search by Network Transformation" (AAAI 2018,
https://arxiv.org/abs/1707.04873), on Chen, Goodfellow & Shlens's Net2Net (ICLR 2016). `transforms.py` holds the
function-preserving `net2wider` / `net2deeper` on the plain CNN (`VGGForImageClassification`); `controller.py` the
meta-controller (a bidirectional-LSTM encoder of the architecture, a Net2Wider and a Net2Deeper actor, REINFORCE);
`search.py` the search (`eas_search`), in which every sampled network inherits its start network's weights;
`claim.py` checks that every transform preserves the function and that the searched network beats its start.
"""

from hfcifar.methods.base import Method, lazy_exports

METHOD = Method(
    number=26,
    slug="eas-net-transformation",
    title="Efficient Architecture Search by Network Transformation",
    ship="Net2Wider/Net2Deeper function-preserving transforms + RL meta-controller",
    claim="transformed nets give the same outputs (max abs diff ≤ 1e-5); a tiny search runs and improves on its start",
    family="architecture-search",
    citation="""@inproceedings{cai2018efficient,
  title     = {Efficient Architecture Search by Network Transformation},
  author    = {Cai, Han and Chen, Tianyao and Zhang, Weinan and Yu, Yong and Wang, Jun},
  booktitle = {Proceedings of the AAAI Conference on Artificial Intelligence},
  year      = {2018}
}""",
)

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    ".transforms": ["net2wider", "net2deeper", "function_change", "conv_widths", "conv_blocks"],
    ".controller": ["EASMetaController", "architecture_tokens"],
    ".search": ["eas_search", "apply_actions", "EASSearchResult", "NetworkRecord", "Transform"],
})
