"""Activations by name, shared with transformers: every entry of `ACTIVATIONS` is also a `hidden_act` of transformers.

transformers builds the activation of a model from its config's string through `transformers.activations.ACT2FN`
(`ACT2FN[config.hidden_act]`, e.g. in `ViTMLP`) and, in a few models, `ACT2CLS[name]()`. hfcifar adds activations
there without forking any model: a method provides one into this registry,

    METHOD = Method(..., provides=(("activation", "crrelu", "hfcifar.methods.crrelu.activation:CRReLU"),))

and the registry puts a small factory under the same name into both transformers tables. The factory resolves the
registry entry when a model is built, so the method's module is imported only then. `register_with_transformers()`
(called by `import hfcifar`) runs method discovery once so every provided activation is in the tables before any model
is built; after `import hfcifar`, `ViTForImageClassification(ViTConfig(hidden_act="crrelu"))` works, and so does
`from_pretrained` of a folder saved with that config. Without hfcifar such a folder does not load: transformers raises
a `KeyError` for the unknown activation name.

hfcifar's own models do not go through this table for their `hidden_act`: their modeling files travel as Hub remote
code and carry their activations as code (`# Copied from` blocks).
"""

from __future__ import annotations

from torch import nn
from transformers import activations as transformers_activations

from ..registry import Registry, RegistryError


class TransformersActivation:
    """What `ACT2CLS[name]` holds for an hfcifar activation: called (with the table's keyword arguments, if any), it
    builds the module registered as `name` in `ACTIVATIONS`."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, **kwargs) -> nn.Module:
        return ACTIVATIONS.get(self.name)(**kwargs)

    def __repr__(self) -> str:
        return f"TransformersActivation({self.name!r})"


class ActivationRegistry(Registry):
    """A [`Registry`] of `nn.Module` classes (or factories) whose every name is also added to transformers'
    `ACT2CLS` and `ACT2FN`. A name transformers already defines is refused, so no built-in activation is shadowed."""

    def _add(self, name: str, obj: object, replace: bool) -> None:
        existing = transformers_activations.ACT2CLS.get(name)
        if existing is not None and not isinstance(existing, TransformersActivation):
            raise RegistryError(f"{name!r} is already one of transformers' activations ({existing!r}); register the "
                                f"{self.kind} under another name.")
        super()._add(name, obj, replace)
        factory = TransformersActivation(name)
        transformers_activations.ACT2CLS[name] = factory
        transformers_activations.ACT2FN[name] = factory

    def unregister(self, name: str) -> None:
        """Remove `name` here and from transformers' tables."""
        super().unregister(name)
        for table in (transformers_activations.ACT2CLS, transformers_activations.ACT2FN):
            if isinstance(table.get(name), TransformersActivation):
                del table[name]


#: Activations that hfcifar adds to transformers' `hidden_act` names (methods provide them: `crrelu`, …).
ACTIVATIONS: ActivationRegistry = ActivationRegistry(
    "activation", hint="transformers' own names (gelu, relu, silu, …) are in `transformers.activations.ACT2CLS`.")


def register_with_transformers() -> list[str]:
    """Make every activation that methods provide a `hidden_act` name of transformers now (runs method discovery once;
    the activations' modules are still imported only when a model is built). Returns the names."""
    return ACTIVATIONS.names()


def get_activation(name: str, **kwargs) -> nn.Module:
    """A new activation module by name: hfcifar's (`ACTIVATIONS`) or transformers' (`ACT2FN`). An unknown name raises
    a `ValueError` listing both sets of choices."""
    if name in ACTIVATIONS:
        return ACTIVATIONS.get(name)(**kwargs)
    table = transformers_activations.ACT2CLS
    if name not in table:
        raise ValueError(f"Unknown activation {name!r}; hfcifar's: {', '.join(ACTIVATIONS.names()) or 'none'}; "
                         f"transformers': {', '.join(sorted(table))}.")
    entry = table[name]
    cls, defaults = entry if isinstance(entry, tuple) else (entry, {})
    return cls(**{**defaults, **kwargs})


__all__ = ["ACTIVATIONS", "ActivationRegistry", "TransformersActivation", "get_activation",
           "register_with_transformers"]
