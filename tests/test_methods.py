import importlib
import re
from pathlib import Path

import pytest

import hfcifar.methods as methods
from hfcifar.methods import METHODS, PLANNED, Method, list_methods, method_status

ROOT = Path(__file__).resolve().parents[1]
METHODS_MD = ROOT.parent / "shared" / "METHODS.md"


def test_papers_are_numbered_rows_without_gaps_or_duplicates():
    numbers = [status.info.number for status in list_methods()]
    assert numbers == list(range(1, len(numbers) + 1))
    slugs = [status.info.slug for status in list_methods(include_foundation=True)]
    assert len(set(slugs)) == len(slugs)


def test_a_folder_supersedes_its_planned_row_and_agrees_with_it():
    # Adding a method touches only its folder: a row left in the plan is shadowed by the folder, and must not
    # contradict it (delete it when convenient; `hfcifar methods` never lists a slug twice).
    implemented = set(METHODS.names())
    assert implemented, "discovery found no method folder"
    for row in PLANNED:
        if row.slug in implemented:
            assert METHODS.get(row.slug).number == row.number, f"{row.slug}: folder and plan disagree on the number"
    taken = {METHODS.get(slug).number: slug for slug in implemented if METHODS.get(slug).number}
    for row in PLANNED:
        assert taken.get(row.number, row.slug) == row.slug, f"row {row.number} is {row.slug} in the plan, {taken[row.number]} in a folder"


@pytest.mark.skipif(not METHODS_MD.is_file(), reason=f"{METHODS_MD} (the shared method list) is not present")
def test_rows_match_methods_md():
    text = METHODS_MD.read_text()
    rows = {int(number): slug for number, slug in re.findall(r"^\|\s*(\d+)\s*\|\s*([a-z0-9-]+)\s*\|", text, flags=re.M)}
    assert rows, "no table rows found in METHODS.md"
    assert {status.info.number: status.info.slug for status in list_methods()} == rows


@pytest.mark.parametrize("slug", METHODS.names())
def test_every_method_folder_declares_its_metadata(slug):
    method = METHODS.get(slug)
    assert isinstance(method, Method)
    package = importlib.import_module(method.package)
    assert package.METHOD is method
    assert method.title and method.ship and method.claim and method.family
    assert method.citation.lstrip().startswith("@"), "the citation is the paper's BibTeX"
    # the public names resolve (lazily) and are listed
    for name in package.__all__:
        assert getattr(package, name) is not None
    if method_status(slug).has_claim_check:
        claim = importlib.import_module(f"{method.package}.claim")
        assert claim.CLAIM.citation == method.citation


def test_status_is_read_from_the_folders(tmp_path, monkeypatch):
    assert method_status("reste").implemented and method_status("reste").has_claim_check
    assert method_status("reste").summary == "implemented, claim check available"
    planned = PLANNED[0]
    status = method_status(planned.slug)
    assert not status.implemented and status.summary == "not implemented yet"


def test_unknown_slug_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown method 'no-such-method'; available: .*hfcifar methods"):
        method_status("no-such-method")


def test_a_folder_whose_slug_disagrees_is_refused(tmp_path, monkeypatch):
    (tmp_path / "my_method").mkdir()
    (tmp_path / "my_method" / "__init__.py").write_text(
        "from hfcifar.methods.base import Method\n"
        "METHOD = Method(number=99, slug='other-name', title='t', ship='s', claim='c', family='f')\n")
    monkeypatch.setattr(methods, "_method_packages", lambda: ["my_method"])
    monkeypatch.setattr(methods, "__path__", [str(tmp_path)])
    with pytest.raises(ValueError, match="folder is its slug"):
        methods.discover()


def test_method_metadata_is_validated():
    with pytest.raises(ValueError, match="lower-case words"):
        Method(number=1, slug="Bad_Slug", title="t", ship="s", claim="c", family="f")
    with pytest.raises(ValueError, match="module:attribute"):
        Method(number=1, slug="ok", title="t", ship="s", claim="c", family="f", provides=(("card note", "x", "nocolon"),))


def test_discovery_imports_only_the_folders_metadata():
    # `hfcifar methods`, a registry miss, a card note lookup: discovery must stay cheap (no method code, no diffusers).
    import subprocess
    import sys

    code = ("import sys, hfcifar; from hfcifar.methods import METHODS; names = METHODS.names(); "
            "deep = [m for m in sys.modules if m.startswith('hfcifar.methods.') and m.count('.') > 2]; "
            "print(len(names), deep, 'diffusers' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    count, deep, diffusers = result.stdout.strip().split(" ", 2)
    assert int(count) == len(METHODS.names()) and deep + " " + diffusers == "[] False"
