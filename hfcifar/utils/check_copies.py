"""Check that every `# Copied from hfcifar.<module>.<name>` block still matches its source.

hfcifar repeats a few small blocks in every modeling file so that each travels alone as Hub remote code
(transformers' "single model, single file"). This is transformers' `utils/check_copies.py` idea: the copy
is the top-level definition right under the marker, compared line for line with the source definition.

    python -m hfcifar.utils.check_copies        # exit 1 and a list when a copy drifted
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path

MARKER = re.compile(r"^# Copied from (hfcifar(?:\.\w+)+)\.(\w+)\s*$")
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def _definitions(source: str) -> dict[str, str]:
    """Top-level functions, classes and assignments of a module, by name, as source text."""
    lines = source.splitlines()
    found = {}
    for node in ast.parse(source).body:
        names = []
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            names = [node.name]
        elif isinstance(node, ast.Assign):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        for name in names:
            found[name] = "\n".join(lines[start - 1 : node.end_lineno])
    return found


def _module_file(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(module)
    return Path(spec.origin)


def find_drifted_copies(root: Path = PACKAGE_ROOT) -> list[str]:
    """Every copy that differs from its source (or whose source is missing), as readable messages."""
    problems = []
    cache: dict[str, dict[str, str]] = {}
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        if "# Copied from" not in text:
            continue
        lines = text.splitlines()
        local = _definitions(text)
        by_line = {}
        for name, body in local.items():
            by_line.setdefault(body.splitlines()[0], []).append(name)
        for number, line in enumerate(lines):
            match = MARKER.match(line)
            if not match:
                continue
            module, name = match.groups()
            where = f"{path.relative_to(root.parent)}:{number + 1}"
            if module not in cache:
                try:
                    cache[module] = _definitions(_module_file(module).read_text())
                except FileNotFoundError:
                    problems.append(f"{where}: source module {module} not found")
                    continue
            if name not in cache[module]:
                problems.append(f"{where}: {module}.{name} does not exist")
                continue
            if local.get(name) is None or not lines[number + 1].startswith(local[name].splitlines()[0]):
                problems.append(f"{where}: the marker must sit right above the copy of {name}")
                continue
            if local[name] != cache[module][name]:
                problems.append(f"{where}: {name} differs from {module}.{name}")
    return problems


def main() -> int:
    problems = find_drifted_copies()
    for problem in problems:
        print(problem)
    print(f"{len(problems)} drifted cop{'y' if len(problems) == 1 else 'ies'}.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
