"""Training families: what `hfcifar train MODEL` (and [`train`]) does with a model depends on its type.

A [`TrainingFamily`] knows how to recognise its models (preset names, saved folders, instances), the function that
trains them, the arguments class its recipes fill and the recipe it defaults to. Families live in
`TRAINING_FAMILIES`, a `Registry("training family")`:

- `classifier`  — transformers image classifiers (`hfcifar.training.train_classifier`), registered here;
- `diffusion`   — diffusers UNets and pipeline folders (`hfcifar.diffusion.train_diffusion`),
- `autoencoder` — the first stage of latent diffusion (`hfcifar.diffusion.train_vae`), both registered lazily by
  the top-level package (`provide("training family", …)`), so this package never imports diffusers.

A new family (a GAN, an energy-based model) registers a `TrainingFamily` the same way; the CLI, recipes and
`train()` then dispatch to it without a name being special-cased anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..registry import Registry, RegistryError


@dataclass(frozen=True)
class TrainingFamily:
    """One kind of model hfcifar trains.

    Args:
        name: the registry name, also the `family` of its recipes (`"classifier"`, `"diffusion"`, …).
        description: what its models are, for help texts and errors ("diffusion UNets and pipeline folders").
        train: `train(model, **options) -> summary`; its options are those of [`TrainingRun`] plus fields of
            `arguments_class` (plus the family's own, `options_class`).
        arguments_class: the `CifarTrainingArguments` subclass its recipes fill.
        default_recipe: the recipe of a model without an entry in `DEFAULT_RECIPES`.
        recognizes: `recognizes(model) -> bool` for a name, a folder or an instance; exactly one family may claim a
            model.
        presets: `presets() -> list[str]`, the named models of the family (for `--list-models` and errors).
        describe: `describe(summary, output_dir) -> str`, the line the CLI prints after a run.
        options_class: a dataclass of the parameters `train` takes beyond the shared ones and the arguments class
            (the diffusion family's `vae`), parsed by `hfcifar train` too.
        trainer_class: the family's `CifarTrainer` subclass; a method trainer whose arguments extend
            `arguments_class` (pruning on classifiers) may replace it.
        listing_order: where the family comes in listings.
    """

    name: str
    description: str
    train: Callable[..., dict]
    arguments_class: type
    default_recipe: str
    recognizes: Callable[[Any], bool]
    presets: Callable[[], list[str]] = list
    describe: Callable[[dict, str], str] | None = None
    options_class: type | None = None
    trainer_class: type | None = None
    listing_order: int = 100


TRAINING_FAMILIES: Registry[TrainingFamily] = Registry("training family")


def families() -> list[TrainingFamily]:
    """Every registered training family, in listing order."""
    return sorted((TRAINING_FAMILIES.get(name) for name in TRAINING_FAMILIES.names()),
                  key=lambda family: (family.listing_order, family.name))


def family_of(model) -> TrainingFamily:
    """The training family that recognises `model` (a preset name, a saved folder or an instance).

    Raises:
        RegistryError (a `ValueError`): no family, or more than one, recognises it.
    """
    all_families = families()
    matches = [family for family in all_families if family.recognizes(model)]
    if len(matches) == 1:
        return matches[0]
    name = model if isinstance(model, str) else type(model).__name__
    if matches:
        raise RegistryError(f"{name!r} is recognised by several training families ({', '.join(f.name for f in matches)}); "
                            "a family's `recognizes` must claim only its own models.")
    known = "; ".join(f"{family.name}: {', '.join(family.presets()) or '-'}" for family in all_families)
    raise RegistryError(f"Unknown model {name!r}: not a preset ({known}) nor a folder saved by a training family "
                        "(a config.json or a pipeline's model_index.json). `hfcifar train --list-models` lists the presets.")


def train(model, **options) -> dict:
    """Train `model` with its family's train function (`train_classifier`, `train_diffusion`, `train_vae`, …).

    `options` are the shared run parameters (`dataset`, `output_dir`, `recipe`, `resume`, …; see [`TrainingRun`]),
    fields of the family's arguments class, and the family's own (e.g. `vae` for diffusion).
    """
    return family_of(model).train(model, **options)


__all__ = ["TRAINING_FAMILIES", "TrainingFamily", "families", "family_of", "train"]
