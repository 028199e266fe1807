"""`TRAINERS`: the classifier trainers `hfcifar train --trainer NAME` can choose, by name.

Every entry is a `CifarTrainer` subclass whose arguments class is its `arguments_class` attribute (a
`CifarTrainingArguments` subclass): `hfcifar train --trainer NAME` parses that class's fields as flags, and
`train_classifier(model, trainer="NAME")` builds it. The training package's own trainers register here, the families' (pruning,
QFX) from the top-level package; a method registers its own through its `provides` entries (`("trainer", "hard-batches", "hfcifar.methods.….trainer:HardBatchTrainer")`), so the
training package never names a method.

    >>> from hfcifar.training import trainer_classes
    >>> trainer_classes("cifar")
    (<class 'hfcifar.training.trainer.CifarTrainer'>, <class 'hfcifar.training.args.CifarTrainingArguments'>)
"""

from __future__ import annotations

from ..registry import Registry
from .args import CifarTrainingArguments
from .trainer import CifarTrainer

TRAINERS: Registry[type[CifarTrainer]] = Registry(
    "trainer", hint="`hfcifar train --list-trainers` lists them with their arguments classes.")
TRAINERS.register("cifar", CifarTrainer)
TRAINERS.register_lazy("adversarial", "hfcifar.training.adversarial:AdversarialTrainer")


def trainer_classes(name: str) -> tuple[type[CifarTrainer], type[CifarTrainingArguments]]:
    """`(trainer_class, arguments_class)` of the trainer registered as `name`.

    Raises:
        RegistryError: `name` is not registered (the message lists the names).
        TypeError: the registered object is not a `CifarTrainer` subclass with a `CifarTrainingArguments` subclass
            as its `arguments_class`.
    """
    trainer_class = TRAINERS.get(name)
    arguments_class = getattr(trainer_class, "arguments_class", None)
    if not (isinstance(trainer_class, type) and issubclass(trainer_class, CifarTrainer)
            and isinstance(arguments_class, type) and issubclass(arguments_class, CifarTrainingArguments)):
        raise TypeError(f"The trainer registered as {name!r} ({trainer_class!r}) must subclass CifarTrainer and set "
                        f"`arguments_class` to a CifarTrainingArguments subclass (got {arguments_class!r}).")
    return trainer_class, arguments_class


def trainer_name(trainer_class: type) -> str | None:
    """The registered name of `trainer_class` (`None` when it is not registered)."""
    for name in TRAINERS.names():
        if TRAINERS.get(name) is trainer_class:
            return name
    return None


__all__ = ["TRAINERS", "trainer_classes", "trainer_name"]
