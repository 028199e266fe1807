"""`Registry[T]`: the one way hfcifar maps names to things (models, recipes, metrics, attacks, pruning criteria,
samplers, UNet/VAE presets, diffusion components, card notes, methods).

    ATTACKS: Registry[type[Attack]] = Registry("attack")

    @ATTACKS.register("fgsm")
    class FGSM(Attack): ...

    ATTACKS.get("fgsm")         # the class
    ATTACKS.get("fsgm")         # RegistryError: unknown attack 'fsgm'; available: cw, fgsm, pgd, pgdl2.
    ATTACKS.names()             # sorted names

Layering: a registry lives in the lowest package that uses it; higher layers fill it. A method (top of the
stack) registers into a lower registry either directly (`PRUNING_METHODS.register_lazy("rd", "pkg.module:attr")`,
a downward import) or, when importing the lower package would be heavy, through `provide(kind, name, target)`,
which waits until the registry of that kind exists. Lower layers therefore never name a method: a registry that
misses a name first runs the discovery hooks the top-level package installed (`add_discovery_hook`), which import
the method folders, and only then reports the name unknown.

A lazy entry is a `"module.path:attribute"` string resolved (and cached) on first `get`, so `import hfcifar` does not
import diffusers just because a method registers a diffusers component.
"""

from __future__ import annotations

import importlib
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")

_REGISTRIES: dict[str, "Registry"] = {}
_PENDING: dict[str, list[tuple[str, object, bool]]] = {}
_DISCOVERY_HOOKS: list[Callable[[], None]] = []
_HOOKS_RUN: set = set()


class RegistryError(ValueError, KeyError):
    """An unknown or duplicate name in a registry (a `ValueError`, and a `KeyError` for dict-style callers)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class _Lazy:
    __slots__ = ("target",)

    def __init__(self, target: str):
        if ":" not in target:
            raise ValueError(f"A lazy registry target is 'module.path:attribute', got {target!r}.")
        self.target = target

    def resolve(self):
        module, _, attribute = self.target.partition(":")
        obj = importlib.import_module(module)
        for part in filter(None, attribute.split(".")):  # "module:" is the module itself
            obj = getattr(obj, part)
        return obj


def add_discovery_hook(hook: Callable[[], None]) -> None:
    """Run `hook()` (once) before any registry reports a name unknown or lists its names.

    The top-level `hfcifar` package installs the method discovery here, so a registry filled by method folders is
    complete whenever it is asked, without the registry's own package importing the methods.
    """
    if hook not in _DISCOVERY_HOOKS:
        _DISCOVERY_HOOKS.append(hook)


def _discover() -> None:
    # Each hook runs once; it is marked done before it runs, so a hook that looks a name up does not recurse.
    for hook in list(_DISCOVERY_HOOKS):
        if hook not in _HOOKS_RUN:
            _HOOKS_RUN.add(hook)
            hook()


def provide(kind: str, name: str, target: object, *, replace: bool = False) -> None:
    """Register `target` (an object or a lazy `"module:attr"` string) as `name` in the registry of `kind`.

    If that registry does not exist yet (its package is not imported), the entry waits and is added when it is
    created. This is how a method fills a registry of a heavy lower package (diffusers components) cheaply.
    """
    registry = _REGISTRIES.get(kind)
    if registry is not None:
        registry._add(name, target, replace)
    else:
        _PENDING.setdefault(kind, []).append((name, target, replace))


class Registry(Generic[T]):
    """Names → objects of one kind, with lazy entries and one error message.

    Args:
        kind: what the entries are, singular ("attack", "pruning method"); used in errors and by `provide`.
        hint: appended to the unknown-name error (e.g. "Run `hfcifar methods` for the list.").
    """

    def __init__(self, kind: str, hint: str | None = None):
        if kind in _REGISTRIES:
            raise ValueError(f"A registry of kind {kind!r} already exists ({_REGISTRIES[kind]!r}).")
        self.kind = kind
        self.hint = hint
        self._entries: dict[str, object] = {}
        _REGISTRIES[kind] = self
        for name, target, replace in _PENDING.pop(kind, []):
            self._add(name, target, replace)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"

    def _add(self, name: str, obj: object, replace: bool) -> None:
        if not isinstance(name, str) or not name:
            raise RegistryError(f"A {self.kind} name must be a non-empty string, got {name!r}.")
        if isinstance(obj, str):
            obj = _Lazy(obj)
        if name in self._entries and not replace and self._entries[name] is not obj:
            existing = self._entries[name]
            same_lazy = isinstance(existing, _Lazy) and isinstance(obj, _Lazy) and existing.target == obj.target
            if not same_lazy:
                raise RegistryError(f"A {self.kind} named {name!r} is already registered; pick another name.")
        self._entries[name] = obj

    def register(self, name: str, obj: T | None = None, *, replace: bool = False):
        """`registry.register(name, obj)`, or `@registry.register(name)` as a decorator (returns the object)."""
        if obj is not None:
            self._add(name, obj, replace)
            return obj

        def decorate(fn: T) -> T:
            self._add(name, fn, replace)
            return fn

        return decorate

    def unregister(self, name: str) -> None:
        """Remove `name` (tests that register a temporary entry clean up with this)."""
        if name not in self._entries:
            raise RegistryError(f"No {self.kind} named {name!r} is registered.")
        del self._entries[name]

    def register_lazy(self, name: str, target: str, *, replace: bool = False) -> None:
        """Register `"module.path:attribute"` (or `"module.path:"`, the module), imported on the first `get(name)`."""
        self._add(name, _Lazy(target), replace)

    def get(self, name: str) -> T:
        """The entry `name`; an unknown name raises `RegistryError` listing the available ones."""
        if name not in self._entries:
            _discover()
        if name not in self._entries:
            available = ", ".join(self.names()) or "none registered"
            message = f"Unknown {self.kind} {name!r}; available: {available}."
            raise RegistryError(f"{message} {self.hint}" if self.hint else message)
        entry = self._entries[name]
        if isinstance(entry, _Lazy):
            try:
                entry = entry.resolve()
            except (ImportError, AttributeError) as error:
                raise RegistryError(
                    f"The {self.kind} {name!r} is registered as {entry.target!r}, which cannot be imported: {error}"
                ) from error
            self._entries[name] = entry
        return entry

    def names(self) -> list[str]:
        """The registered names, sorted (after discovery, so method-provided names are included)."""
        _discover()
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """(name, entry) pairs, resolving lazy entries."""
        return [(name, self.get(name)) for name in self.names()]

    def values(self) -> list[T]:
        """The entries, in name order (resolving lazy ones)."""
        return [self.get(name) for name in self.names()]

    def __contains__(self, name: object) -> bool:
        if name not in self._entries:
            _discover()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __getitem__(self, name: str) -> T:
        return self.get(name)


def registry(kind: str) -> Registry:
    """The registry of `kind` (for tests and tools that walk every registry)."""
    if kind not in _REGISTRIES:
        raise RegistryError(f"Unknown registry kind {kind!r}; available: {', '.join(sorted(_REGISTRIES))}.")
    return _REGISTRIES[kind]


def registries() -> dict[str, Registry]:
    """Every registry created so far, by kind."""
    return dict(_REGISTRIES)


__all__ = ["Registry", "RegistryError", "add_discovery_hook", "provide", "registries", "registry"]
