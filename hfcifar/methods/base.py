"""What a method folder declares: `METHOD = Method(...)` in its `__init__.py`, and its public names, imported lazily.

    METHOD = Method(
        number=16, slug="reste", title="Estimator Meets Equilibrium Perspective: …", family="compression",
        ship="ReSTETrainer, binary ResNets …", claim="ReSTE beats STE …", citation="@inproceedings{…}",
        provides=(("card note", "qfx", "hfcifar.quantization.hub:card_note"),),
    )
    __getattr__, __dir__, __all__ = lazy_exports(__name__, {".trainer": ["ReSTETrainer"], ...})

Discovery (`hfcifar.methods.discover`) imports every folder's `__init__` to read `METHOD`, so an `__init__` must stay
cheap: the metadata, and its public names resolved on first attribute access (PEP 562), not at import.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Method:
    """One method (a paper of METHODS.md, or a foundation check with `number=0`).

    Args:
        number: its row in METHODS.md (1, 2, …); 0 for hfcifar's own foundation checks.
        slug: the name everywhere (`hfcifar reproduce SLUG`, the card's tag); its folder is the slug with `_` for `-`.
        title: the paper's title.
        ship: what hfcifar ships for it (trainers, models, pipelines), one line.
        claim: the paper's headline claim that its claim check measures, one line.
        family: the family it belongs to ("adversarial", "compression", "generative", …).
        citation: the paper's BibTeX (model cards and claim reports cite it).
        provides: `(registry kind, name, "module:attribute")` entries this method adds to lower layers' registries
            (a pruning criterion, a diffusion component, a model-card note, a top-level `hfcifar.NAME`), registered
            lazily by discovery so that lower layers never name the method.
    """

    number: int
    slug: str
    title: str
    ship: str
    claim: str
    family: str
    citation: str = ""
    provides: tuple[tuple[str, str, str], ...] = field(default_factory=tuple)

    def __post_init__(self):
        if not isinstance(self.number, int) or self.number < 0:
            raise ValueError(f"Method {self.slug!r}: number must be its METHODS.md row (≥ 1) or 0, got {self.number!r}.")
        if not self.slug or self.slug != self.slug.lower() or "_" in self.slug or " " in self.slug:
            raise ValueError(f"Method slug {self.slug!r} must be lower-case words joined by '-'.")
        for entry in self.provides:
            if len(entry) != 3 or not all(isinstance(part, str) for part in entry) or ":" not in entry[2]:
                raise ValueError(f"Method {self.slug!r}: each `provides` entry is (kind, name, 'module:attribute'), "
                                 f"got {entry!r}.")

    @property
    def package(self) -> str:
        """The method's package, `hfcifar.methods.<slug with underscores>`."""
        return f"hfcifar.methods.{self.slug.replace('-', '_')}"

    @property
    def is_foundation(self) -> bool:
        return self.number == 0


def lazy_exports(package: str, exports: dict[str, list[str]]):
    """Module-level `__getattr__`, `__dir__` and `__all__` that import each public name from its module on first use.

    `exports` maps a module (relative to `package`, like `".trainer"`, or absolute) to the names it provides.
    """
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name], package), name)
        importlib.import_module(package).__dict__[name] = value  # cache: later lookups skip __getattr__
        return value

    def __dir__():
        return sorted(set(importlib.import_module(package).__dict__) | set(where))

    return __getattr__, __dir__, sorted(where)


__all__ = ["Method", "lazy_exports"]
