import pytest

import hfcifar.methods as methods
from hfcifar.methods import METHODS, method_status


def test_catalog_has_the_46_papers_in_order():
    assert [m.number for m in METHODS] == list(range(1, 47))
    assert len({m.slug for m in METHODS}) == 46
    assert METHODS[27].slug == "global-magnitude-pruning"
    assert METHODS[27].title.startswith("Is Complexity Required for Neural Network Pruning?")


def test_status_is_read_from_the_package_not_declared(tmp_path, monkeypatch):
    monkeypatch.setattr(methods, "_HERE", tmp_path)
    assert not method_status("exadam").implemented
    (tmp_path / "exadam").mkdir()
    (tmp_path / "exadam" / "__init__.py").write_text("")
    assert method_status("exadam").implemented and not method_status("exadam").has_claim_check
    (tmp_path / "exadam" / "claim.py").write_text("")
    assert method_status("exadam").has_claim_check
    assert method_status("exadam").summary == "implemented, claim check available"


def test_unknown_slug_is_a_clear_error():
    with pytest.raises(ValueError, match="hfcifar methods"):
        method_status("no-such-method")
