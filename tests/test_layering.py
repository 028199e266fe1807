"""The layering rule of docs/ARCHITECTURE.md, enforced on the import graph.

Layers, bottom to top; a module may import from lower layers and from its own package, never from a higher layer or
from a sibling of its own layer (families stay independent; what two of them share moves down):

    0  registry, utils
    1  data, image_processing_cifar, models, attacks, pipelines
    2  training
    3  pruning, quantization, faults, diffusion, certification   (the families)
    4  evaluation
    5  reproduce
    6  hub
    7  methods        (each method folder is independent of the others)
    8  cli, train, the top-level `hfcifar/__init__.py`

"Import" covers `import`/`from … import` anywhere in a module (also inside functions) and module paths handed to the
dynamic importers (`importlib.import_module("hfcifar.…")`, `register_lazy`/`provide("…", "…", "hfcifar.…:attr")`),
and `getattr(hfcifar, …)` / `import hfcifar` (the top layer) below the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hfcifar"

LAYERS: list[set[str]] = [
    {"registry", "utils"},
    {"data", "image_processing_cifar", "models", "attacks", "pipelines"},
    {"training"},
    {"pruning", "quantization", "faults", "diffusion", "certification"},
    {"evaluation"},
    {"reproduce"},
    {"hub"},
    {"methods"},
    {"cli", "train", "__main__", ""},  # "" is the top-level hfcifar/__init__.py
]
LAYER_OF = {name: level for level, names in enumerate(LAYERS) for name in names}
DYNAMIC_IMPORTERS = {"import_module", "register_lazy", "provide", "__import__", "find_spec"}
#: Files over this many lines must say why in their first lines ("# Longer than 500 lines because: …").
MAX_LINES = 500
LONG_FILE_MARK = "# Longer than 500 lines because:"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def unit(module: str) -> tuple[str, str | None]:
    """(top-level unit, method folder or None) of a dotted module name inside hfcifar."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    method = parts[2] if top == "methods" and len(parts) > 2 and parts[2] not in ("base", "catalog") else None
    return top, method


def _is_module(dotted: str) -> bool:
    path = PACKAGE.parent.joinpath(*dotted.split("."))
    return path.is_dir() or path.with_suffix(".py").is_file()


def imported_modules(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute hfcifar module) for every import of hfcifar code in `source` (module `module`)."""
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module and not (node.level == 0 and target == "hfcifar"):
                targets = [target]
            else:  # `from hfcifar import x` / `from .. import x`: x is a submodule, or a name of that package
                targets = [f"{target}.{a.name}" if _is_module(f"{target}.{a.name}") else target for a in node.names]
            found += [(node.lineno, t) for t in targets]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in DYNAMIC_IMPORTERS:
                for arg in node.args:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("hfcifar"):
                        found.append((node.lineno, arg.value.split(":")[0]))
            if name == "getattr" and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id == "hfcifar":
                found.append((node.lineno, "hfcifar"))
    return [(line, target) for line, target in found if target == "hfcifar" or target.startswith("hfcifar.")]


def violations_in(path: Path, source: str | None = None) -> list[str]:
    source = path.read_text() if source is None else source
    module = module_name(path)
    own, own_method = unit(module)
    problems = []
    for line, target in imported_modules(source, module, path.name == "__init__.py"):
        other, other_method = unit(target)
        where = f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}"
        if other == own:
            if own == "methods" and own_method and other_method and other_method != own_method:
                problems.append(f"{where}: a method folder imports another method; move the shared part down")
            elif own == "methods" and own_method is None and other_method is not None and module != "hfcifar.methods":
                problems.append(f"{where}: methods' shared modules must not import a method folder")
            continue
        mine, theirs = LAYER_OF.get(own), LAYER_OF.get(other)
        if mine is None or theirs is None:
            problems.append(f"{where}: {own or other!r} has no layer in tests/test_layering.py (add it to LAYERS)")
        elif theirs > mine:
            problems.append(f"{where}: layer {mine} ({own or 'hfcifar'}) imports layer {theirs} ({other or 'hfcifar'})")
        elif theirs == mine and mine < len(LAYERS) - 1:  # the top layer (entry points) may use itself
            problems.append(f"{where}: {own!r} and {other!r} are siblings of layer {mine}; move the shared part down")
    return problems


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_package_has_a_layer():
    tops = {unit(module_name(path))[0] for path in SOURCES}
    assert tops <= set(LAYER_OF), f"packages without a layer: {sorted(tops - set(LAYER_OF))}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_point_down(path):
    assert violations_in(path) == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_files_stay_small_or_say_why(path):
    lines = path.read_text().splitlines()
    if len(lines) > MAX_LINES:
        assert any(line.startswith(LONG_FILE_MARK) for line in lines[:60]), (
            f"{path.relative_to(PACKAGE.parent)} has {len(lines)} lines: split it by concern, or write "
            f"'{LONG_FILE_MARK} …' near its top")


@pytest.mark.parametrize(("where", "source", "expected"), [
    ("evaluation/new_metric.py", "from ..methods.reste import ReSTETrainer\n", "layer 4 (evaluation) imports layer 7"),
    ("evaluation/new_metric.py", "def f():\n    from hfcifar.methods import METHODS\n", "imports layer 7"),
    ("pruning/new.py", "import importlib\nimportlib.import_module('hfcifar.methods.rd_layer_adaptive_pruning')\n",
     "imports layer 7"),
    ("diffusion/new.py", "import hfcifar\ncls = getattr(hfcifar, 'X')\n", "imports layer 8"),
    ("training/new.py", "from ..diffusion import create_unet\n", "layer 2 (training) imports layer 3"),
    ("faults/new.py", "from ..pruning import compute_masks\n", "siblings of layer 3"),
    ("methods/reste/new.py", "from ..qfx import claim\n", "imports another method"),
    ("models/new.py", "from hfcifar import evaluation\n", "layer 1 (models) imports layer 4"),
])
def test_the_checker_catches_upward_imports(where, source, expected):
    problems = violations_in(PACKAGE / where, source)
    assert problems and expected in problems[0], problems


@pytest.mark.parametrize("source", [
    "from ..data import load_cifar10\n",                 # down
    "from .robustness import robust_accuracy\n",         # own package
    "from ..faults.clipping import clip_activations\n",  # down, into a family
])
def test_the_checker_allows_downward_imports(source):
    assert violations_in(PACKAGE / "evaluation" / "new.py", source) == []
