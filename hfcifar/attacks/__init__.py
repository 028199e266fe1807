"""Adversarial attacks on CIFAR classifiers, one small module per attack (torchattacks' layout).

    attack = PGD(model, eps=8 / 255, alpha=2 / 255, steps=10)
    adversarial = attack(images, labels)          # images in [0, 1], as hfcifar models take them

`Attack` (base.py) owns the model handling (eval mode restored afterwards, gradients only w.r.t. the input),
the input checks, targeted mode (`attack.set_targeted()`) and a seeded generator for random starts.
`FGSM` (fgsm.py) and `PGD`/`PGDL2` (pgd.py) are bounded attacks; `CW` (cw.py) is the Carlini–Wagner L2
minimum-norm attack; `TransferAttack` (transfer.py) uses any of them on a source model against another model.
"""

import inspect

from ..registry import Registry
from .base import Attack
from .cw import CW
from .fgsm import FGSM
from .pgd import PGD, PGDL2
from .transfer import TransferAttack, TransferResult, correct_under_attack, predict, success_rate

__all__ = ["Attack", "CW", "FGSM", "PGD", "PGDL2", "TransferAttack", "TransferResult", "correct_under_attack", "predict", "success_rate"]

#: Attacks by the name the command line and training arguments use (`--attack pgd`); add one with
#: `ATTACKS.register("name", AttackClass)`. An unknown name raises a `RegistryError` (a `ValueError`) listing them.
ATTACKS: Registry[type[Attack]] = Registry("attack")
ATTACKS.register("fgsm", FGSM)
ATTACKS.register("pgd", PGD)
ATTACKS.register("pgdl2", PGDL2)
ATTACKS.register("cw", CW)


def create_attack(name: str, model, **settings) -> Attack:
    """An attack from `ATTACKS` by name, e.g. `create_attack("pgd", model, eps=8/255, steps=10)`.

    An unknown name raises the registry's error (listing the available attacks); settings an attack does not take
    are refused with a `ValueError` naming the ones it does take.
    """
    cls = ATTACKS.get(name)
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "model")]
    unknown = sorted(set(settings) - set(accepted))
    if unknown:
        raise ValueError(f"{cls.__name__} ({name!r}) takes no setting(s) {unknown}; it takes {', '.join(accepted)}.")
    return cls(model, **settings)


__all__ += ["ATTACKS", "create_attack"]
