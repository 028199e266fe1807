"""PubDef: Defending Against Transfer Attacks From Public Models (Sitawarin, Chang, Huang, Altoyan & Wagner,
ICLR 2024, arXiv:2310.17645).

Threat model: the attacker crafts adversarial examples on *publicly available* source models and transfers them
to the deployed target. PubDef trains the target against transfer attacks from a few diverse public models,
chosen and weighted from a game-theoretic view of the attacker's (source model, attack) strategies.

- `PubDefTrainer` / `PubDefTrainingArguments` (trainer.py): the training loss, a `CifarTrainer` hook.
- `evaluate_transfer_attacks`, `craft_transfer_examples`, `transfer_accuracy` (transfer.py): the paper's metric,
  the target's accuracy under each (source, attack) pair and under the worst one.
- claim.py: `hfcifar reproduce pubdef`.
"""

from hfcifar.methods.base import Method, lazy_exports

METHOD = Method(
    number=20,
    slug="pubdef",
    title="PubDef: Defending Against Transfer Attacks From Public Models",
    ship="PubDef training against transfer attacks from a set of public source models",
    claim="transfer-attack accuracy above undefended and PGD-AT; clean accuracy drop smaller than AT's",
    family="adversarial",
    citation="""@inproceedings{sitawarin2024pubdef,
  title     = {{PubDef}: Defending Against Transfer Attacks From Public Models},
  author    = {Sitawarin, Chawin and Chang, Jaewon and Huang, David and Altoyan, Wesson and Wagner, David},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2024},
  url       = {https://arxiv.org/abs/2310.17645}
}""",
)

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".trainer": ["PAIR_SELECTIONS", "PubDefTrainer", "PubDefTrainingArguments", "pubdef_loss"],
        ".transfer": [
            "TransferPair",
            "craft_transfer_examples",
            "create_transfer_attack",
            "evaluate_transfer_attacks",
            "load_source_models",
            "transfer_accuracy",
            "transfer_pairs",
        ],
    },
)
