"""`TRAINERS`: the classifier trainers `hfcifar train --trainer NAME` can choose, by name.

Every entry is a `CifarTrainer` subclass whose arguments class is its `arguments_class` attribute (a
`CifarTrainingArguments` subclass): `hfcifar train --trainer NAME` parses that class's fields as flags, and
`train_classifier(model, trainer="NAME")` builds it. The training package's own trainers register here, the families' (pruning,
QFX) from the top-level package; a method registers its own through its `provides` entries (`("trainer", "hard-batches", "hfcifar.methods.….trainer:HardBatchTrainer")`), so the
training package never names a method.

    >>> from hfcifar.training import trainer_classes
    >>> trainer_classes("cifar")
    (<class 'hfcifar.training.trainer.CifarTrainer'>, <class 'hfcifar.training.args.CifarTrainingArguments'>)

A model names its trainer the way it names its recipe: `DEFAULT_TRAINERS` maps a `model_type` to the trainer its
models train with when none is chosen (a binary ResNet trains with ReSTE's trainer, which its method provides:
`("default trainer", "hfcifar-binary_resnet", "…:TRAINER_NAME")`); every other classifier trains with `CifarTrainer`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..models import PRESETS
from ..registry import Registry, RegistryError
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


#: `model_type` → the name of its default trainer in `TRAINERS` (filled by methods' `provides`; the value is the
#: trainer's registered name, so a `provides` target is a `"module:NAME"` string constant).
DEFAULT_TRAINERS: Registry[str] = Registry("default trainer")


def model_type_of(model) -> str | None:
    """The `model_type` of a preset name, a saved folder (its config.json) or a model instance; `None` if unknown."""
    if hasattr(model, "config"):
        return getattr(model.config, "model_type", None)
    if isinstance(model, (str, os.PathLike)):
        if isinstance(model, str) and model in PRESETS:
            return PRESETS.get(model)[0].config_class.model_type
        config = Path(model) / "config.json"
        if config.is_file():
            return json.loads(config.read_text()).get("model_type")
    return None


def default_trainer(model) -> str:
    """The registered name of the trainer `model` trains with when none is chosen: its model type's entry in
    `DEFAULT_TRAINERS`, else `"cifar"` (`CifarTrainer`)."""
    model_type = model_type_of(model)
    if model_type is None:
        return "cifar"
    try:
        return DEFAULT_TRAINERS.get(model_type)
    except RegistryError:
        return "cifar"


def trainer_name(trainer_class: type) -> str | None:
    """The registered name of `trainer_class` (`None` when it is not registered)."""
    for name in TRAINERS.names():
        if TRAINERS.get(name) is trainer_class:
            return name
    return None


__all__ = ["DEFAULT_TRAINERS", "TRAINERS", "default_trainer", "model_type_of", "trainer_classes", "trainer_name"]
