"""Foundation check `fastnet-quick-recipe`: the default FastNet and its quick recipe.

Not a paper of METHODS.md: a check of hfcifar's own foundation. FastNet (`hfcifar.models.fastnet`) is the small
airbench-style net that `hfcifar train` trains by default, after Keller Jordan, "94% on CIFAR-10 in 3.29 Seconds
on a Single GPU" (arXiv:2404.00498); the quick recipe is `hfcifar.training.RECIPES["quick"]`. The claim check
(`claim.py`, run with `hfcifar reproduce fastnet-quick-recipe`) trains it within a CPU budget and measures its
accuracy on CIFAR-10 images it never trained on.
"""

from hfcifar.methods.base import Method, lazy_exports

METHOD = Method(
    number=0,
    slug="fastnet-quick-recipe",
    title="94% on CIFAR-10 in 3.29 Seconds on a Single GPU",
    ship="FastNet (the airbench-style default model of `hfcifar train`) and its quick recipe",
    claim="the default FastNet with the quick recipe reaches ≥ 60% accuracy on held-out CIFAR-10 images within 10 minutes of 2-core CPU",
    family="foundation",
    citation="""@article{jordan2024airbench,
  title   = {94% on {CIFAR-10} in 3.29 Seconds on a Single {GPU}},
  author  = {Jordan, Keller},
  journal = {arXiv preprint arXiv:2404.00498},
  year    = {2024},
  url     = {https://arxiv.org/abs/2404.00498}
}""",
)

__all__: list[str] = []
