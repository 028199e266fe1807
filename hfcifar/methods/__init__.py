"""The methods: one folder per paper of METHODS.md (and per foundation check), discovered, never declared by hand.

A method is `hfcifar/methods/<slug_with_underscores>/`: its `__init__.py` declares `METHOD = Method(...)` (number,
slug, title, what it ships, the claim, family, citation, and what it `provides` to lower layers' registries) and
exports its public names lazily; an optional `claim.py` holds its claim check (`CLAIM` and `run(ctx)`). Discovery
(`discover()`, installed as a registry discovery hook by `import hfcifar`) imports each folder's `__init__`, registers
the method in `METHODS`, its claim check in `hfcifar.reproduce.CLAIM_CHECKS`, and each `provides` entry in its
registry. Rows of METHODS.md without a folder are the plan (`catalog.PLANNED`). See docs/ADDING_A_METHOD.md.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from dataclasses import dataclass
from pathlib import Path

from ..registry import Registry, provide
from .base import Method, lazy_exports
from .catalog import PLANNED, PlannedMethod

_HERE = Path(__file__).parent

#: Every implemented method (papers and foundation checks) by slug, filled by `discover()`.
METHODS: Registry[Method] = Registry("method", hint="Run `hfcifar methods` for the list of slugs.")


def _method_packages(root: Path = _HERE):
    for info in sorted(pkgutil.iter_modules([str(root)]), key=lambda i: i.name):
        if info.ispkg:
            yield info.name


def discover() -> None:
    """Import every method folder's `__init__`, check its `METHOD`, and register it and what it provides."""
    for name in _method_packages():
        module = importlib.import_module(f"{__name__}.{name}")
        method = getattr(module, "METHOD", None)
        if not isinstance(method, Method):
            raise TypeError(f"hfcifar/methods/{name}/__init__.py must declare `METHOD = Method(...)` "
                            "(see docs/ADDING_A_METHOD.md).")
        if method.slug.replace("-", "_") != name:
            raise ValueError(f"hfcifar/methods/{name}/ declares slug {method.slug!r}; a method's folder is its slug "
                             f"with '_' for '-' ({method.slug.replace('-', '_')!r}).")
        if method.slug in METHODS._entries:
            continue
        METHODS.register(method.slug, method)
        if importlib.util.find_spec(f"{module.__name__}.claim") is not None:
            provide("claim check", method.slug, method)
        for kind, key, target in method.provides:
            provide(kind, key, target)


@dataclass(frozen=True)
class MethodStatus:
    """A paper or foundation check and what exists for it."""

    info: Method | PlannedMethod
    implemented: bool
    has_claim_check: bool

    @property
    def summary(self) -> str:
        if not self.implemented:
            return "not implemented yet"
        return "implemented, claim check available" if self.has_claim_check else "implemented, no claim check yet"


def _has_claim(method: Method) -> bool:
    return importlib.util.find_spec(f"{method.package}.claim") is not None


def method_status(slug: str) -> MethodStatus:
    """What exists for `slug`: a folder (implemented, maybe with a claim check) or only a row of the plan."""
    if slug in METHODS:
        method = METHODS.get(slug)
        return MethodStatus(method, True, _has_claim(method))
    planned = next((row for row in PLANNED if row.slug == slug), None)
    if planned is None:
        METHODS.get(slug)  # raises the registry's "unknown method …; available: …" error
    return MethodStatus(planned, False, False)


def method_info(slug: str) -> Method | PlannedMethod:
    """The metadata of a paper or foundation check (its folder's `METHOD`, or its row of the plan)."""
    return method_status(slug).info


def list_methods(include_foundation: bool = False) -> list[MethodStatus]:
    """The papers of METHODS.md in row order (implemented and planned); with `include_foundation`, followed by the
    foundation checks (number 0)."""
    implemented = [METHODS.get(slug) for slug in METHODS.names()]
    papers = sorted([m for m in implemented if not m.is_foundation] + [p for p in PLANNED if p.slug not in METHODS],
                    key=lambda m: m.number)
    statuses = [method_status(m.slug) for m in papers]
    if include_foundation:
        statuses += [method_status(m.slug) for m in implemented if m.is_foundation]
    return statuses


def load_method_module(slug: str, module: str = "claim"):
    """Import `hfcifar.methods.<slug>.<module>` of an implemented method."""
    status = method_status(slug)
    if not status.implemented:
        raise ValueError(f"Method {slug!r} is not implemented yet ({status.info.title}).")
    name = f"{status.info.package}.{module}"
    if importlib.util.find_spec(name) is None:
        raise ValueError(f"Method {slug!r} has no {module}.py.")
    return importlib.import_module(name)


__all__ = [
    "METHODS",
    "PLANNED",
    "Method",
    "MethodStatus",
    "PlannedMethod",
    "discover",
    "lazy_exports",
    "list_methods",
    "load_method_module",
    "method_info",
    "method_status",
]
