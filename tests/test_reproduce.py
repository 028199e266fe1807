"""The claim-check framework (`hfcifar reproduce`): verdicts, report files, errors, data rule, and a smoke run of
every registered claim check at a tiny budget."""

import json
import math
from types import SimpleNamespace

import pytest

import hfcifar.reproduce as reproduce
from conftest import write_cifar_folder
from hfcifar.cli import main
from hfcifar.data import DatasetUnavailableError, load_train_and_eval
from hfcifar.methods import METHODS, list_methods, method_status
from hfcifar.reproduce import Claim, ClaimCheckError, Measurement, claim_check_slugs, run_claim_check
from hfcifar.training import RunDirectoryError

REPORT_KEYS = {
    "slug", "paper", "claim", "paper_value", "metric", "comparison", "tolerance", "value", "measured", "verdict",
    "reason", "dataset", "eval_dataset", "eval_split", "num_train_examples", "num_eval_examples", "budget_minutes",
    "wall_time_seconds", "seed", "plots", "model_dir", "hfcifar_version", "torch_version",
}
FAKE_DATA = {"dataset": "fake", "eval_dataset": None, "eval_split": "validation", "num_train_examples": 90, "num_eval_examples": 10}


def fake_module(value=0.7, comparison=">=", paper_value=0.6, tolerance=0.0, passed=None, reason="", run=None):
    claim = Claim(paper="A Paper", claim="the method reaches 60% (paper: 61.2%)", paper_value=paper_value,
                  metric="accuracy", comparison=comparison, tolerance=tolerance, budget_minutes=1.0)

    def default_run(ctx):
        return Measurement(value=value, measured={"accuracy": value, "steps": 3}, passed=passed, reason=reason,
                           data_info=FAKE_DATA)

    return SimpleNamespace(CLAIM=claim, run=run or default_run)


@pytest.mark.parametrize(
    "comparison, paper_value, tolerance, value, verdict",
    [
        (">=", 0.6, 0.0, 0.6, "PASS"),
        (">=", 0.6, 0.0, 0.599, "FAIL"),
        (">=", 0.6, 0.02, 0.59, "PASS"),
        (">=", 0.6, 0.02, 0.57, "FAIL"),
        ("<=", 0.1, 0.0, 0.1, "PASS"),
        ("<=", 0.1, 0.0, 0.11, "FAIL"),
        ("<=", 0.1, 0.05, 0.14, "PASS"),
        ("<=", 0.1, 0.05, 0.16, "FAIL"),
    ],
)
def test_verdict_compares_with_the_paper_value_and_tolerance(tmp_path, comparison, paper_value, tolerance, value, verdict):
    module = fake_module(value=value, comparison=comparison, paper_value=paper_value, tolerance=tolerance)
    report = run_claim_check("fake", output_dir=tmp_path / "out", module=module, progress=False)
    assert report["verdict"] == verdict
    assert report["value"] == value and report["paper_value"] == paper_value and report["tolerance"] == tolerance
    assert json.loads((tmp_path / "out" / "report.json").read_text())["verdict"] == verdict


@pytest.mark.parametrize("passed, verdict", [(True, "PASS"), (False, "FAIL")])
def test_compound_claims_decide_their_own_verdict(tmp_path, passed, verdict):
    # the number alone would say the opposite: `passed` wins, and its reason is reported
    module = fake_module(value=0.0 if passed else 1.0, passed=passed, reason="both conditions checked")
    report = run_claim_check("fake", output_dir=tmp_path / "out", module=module, progress=False)
    assert report["verdict"] == verdict and report["reason"] == "both conditions checked"


def test_report_files_have_every_field(tmp_path):
    def run(ctx):
        assert ctx.budget_minutes == 0.5 and ctx.seed == 3 and ctx.minutes_left() <= 0.5
        (ctx.output_dir / "curve.png").write_bytes(b"\x89PNG")
        return Measurement(value=0.65, measured={"accuracy": 0.65, "loss": float("nan")}, plots=["curve.png"],
                           data_info=FAKE_DATA)

    out = tmp_path / "out"
    returned = run_claim_check("fake", output_dir=out, budget_minutes=0.5, seed=3, module=fake_module(run=run))
    report = json.loads((out / "report.json").read_text())
    assert REPORT_KEYS <= set(report) and report == returned
    assert report["slug"] == "fake" and report["verdict"] == "PASS" and report["seed"] == 3
    assert report["budget_minutes"] == 0.5 and report["wall_time_seconds"] >= 0
    assert report["plots"] == ["claim.png", "curve.png"] and report["model_dir"] is None
    assert report["measured"] == {"accuracy": 0.65, "loss": None}  # strict JSON: NaN side numbers become null
    assert report["num_eval_examples"] == 10 and report["eval_split"] == "validation"
    assert (out / "claim.png").read_bytes()[:4] == b"\x89PNG"
    text = (out / "report.md").read_text()
    assert "PASS" in text and "0.65" in text and "![claim](claim.png)" in text and "![curve](curve.png)" in text
    assert "the method reaches 60%" in text
    assert not list(out.glob(".*.tmp*"))


def test_context_loads_the_data_lazily(tmp_path, synthetic_path):
    seen = {}

    def run(ctx):
        seen["sizes"] = (len(ctx.train_split), len(ctx.eval_split))
        return Measurement(value=0.5, measured={"accuracy": 0.5})

    report = run_claim_check("fake", dataset=synthetic_path, output_dir=tmp_path / "out", module=fake_module(run=run))
    assert seen["sizes"] == (108, 12)
    assert (report["num_train_examples"], report["num_eval_examples"], report["eval_split"]) == (108, 12, "validation")
    assert report["dataset"] == synthetic_path and report["verdict"] == "FAIL"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), None])
def test_a_value_that_is_not_a_number_is_an_error_not_a_verdict(tmp_path, value):
    with pytest.raises(ClaimCheckError, match="'fake'.*not a finite number"):
        run_claim_check("fake", output_dir=tmp_path / "out", module=fake_module(value=value))
    assert not (tmp_path / "out" / "report.json").exists()


def test_a_run_that_raises_names_the_slug(tmp_path):
    def run(ctx):
        raise RuntimeError("diverged")

    with pytest.raises(ClaimCheckError, match="'fake' failed: RuntimeError: diverged") as info:
        run_claim_check("fake", output_dir=tmp_path / "out", module=fake_module(run=run))
    assert isinstance(info.value.__cause__, RuntimeError)


def test_plots_the_run_did_not_write_are_an_error(tmp_path):
    def run(ctx):
        return Measurement(value=0.7, plots=["missing.png"], data_info=FAKE_DATA)

    with pytest.raises(ClaimCheckError, match="missing.png"):
        run_claim_check("fake", output_dir=tmp_path / "out", module=fake_module(run=run))


def test_a_claim_is_validated():
    with pytest.raises(ValueError, match="comparison"):
        Claim(paper="p", claim="c", paper_value=1.0, metric="m", comparison=">")
    with pytest.raises(ValueError, match="finite"):
        Claim(paper="p", claim="c", paper_value=float("nan"), metric="m")
    claim = Claim(paper="p", claim="c", paper_value=0.3, metric="m", comparison="<=", tolerance=0.1)
    assert math.isclose(claim.threshold, 0.4) and claim.holds(0.4) and not claim.holds(0.41)


def test_an_existing_output_folder_is_refused(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(RunDirectoryError, match="--overwrite"):
        run_claim_check("fake", output_dir=out, module=fake_module())
    assert not (out / "report.json").exists()
    run_claim_check("fake", output_dir=out, module=fake_module(), overwrite=True)
    assert (out / "report.json").is_file() and (out / "notes.txt").read_text() == "mine"

    monkeypatch.setattr(reproduce, "load_claim_module", lambda slug: fake_module())
    assert main(["reproduce", "fake", "--output", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["reproduce", "fake", "--output", str(out), "--overwrite"]) == 0


def test_cli_prints_claim_paper_value_measured_and_verdict(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(reproduce, "load_claim_module", lambda slug: fake_module(value=0.55))
    out = tmp_path / "out"
    assert main(["reproduce", "fake", "--output", str(out), "--budget-minutes", "0.5"]) == 0  # FAIL still exits 0
    printed = capsys.readouterr().out
    assert "the method reaches 60%" in printed and "0.6" in printed and "0.55" in printed
    assert "FAIL" in printed and str(out / "report.md") in printed
    assert json.loads((out / "report.json").read_text())["budget_minutes"] == 0.5


def test_unknown_slug_and_missing_claim_check_point_to_the_list(tmp_path, capsys):
    with pytest.raises(ValueError, match="hfcifar reproduce --list"):
        run_claim_check("no-such-method", output_dir=tmp_path / "a")
    assert main(["reproduce", "no-such-method", "--output", str(tmp_path / "b")]) == 2
    assert "hfcifar reproduce --list" in capsys.readouterr().err
    without = [m.slug for m in METHODS if not method_status(m.slug).has_claim_check]
    if without:
        with pytest.raises(ValueError, match="hfcifar reproduce --list"):
            run_claim_check(without[0], output_dir=tmp_path / "c")
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


def test_list_shows_every_claim_check_with_its_claim(capsys):
    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    slugs = claim_check_slugs()
    assert "fastnet-quick-recipe" in slugs
    for slug in slugs:
        assert slug in out
        assert reproduce.load_claim_module(slug).CLAIM.claim[:40] in out


def test_methods_lists_the_foundation_checks_apart(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    papers, _, foundation = out.partition("foundation checks")
    assert "fastnet-quick-recipe" in foundation and "fastnet-quick-recipe" not in papers
    assert len(list_methods()) == 46 and len(list_methods(include_foundation=True)) > 46
    assert method_status("fastnet-quick-recipe").has_claim_check


# ------------------------------------------------------------------------------------- the --eval-dataset rule


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_rule")
    return {
        "train_only": write_cifar_folder(root / "train_only", n=100),
        "with_test": write_cifar_folder(root / "with_test", n=50, seed=1, test=True),  # test split: 40 images
        "other": write_cifar_folder(root / "other", n=30, seed=2),
    }


def test_without_eval_dataset_a_validation_split_is_carved(folders):
    train, held_out, info = load_train_and_eval(folders["train_only"])
    assert info == {"dataset": folders["train_only"], "eval_dataset": None, "eval_split": "validation",
                    "num_train_examples": 90, "num_eval_examples": 10}
    assert (len(train), len(held_out)) == (90, 10)
    _, _, info = load_train_and_eval(folders["with_test"])
    assert (info["eval_split"], info["num_train_examples"], info["num_eval_examples"]) == ("test", 50, 40)


def test_eval_dataset_means_whole_train_split_and_its_test_split_else_its_train_split(folders):
    train, held_out, info = load_train_and_eval(folders["train_only"], eval_dataset=folders["with_test"])
    assert (len(train), len(held_out), info["eval_split"]) == (100, 40, "test")
    assert info["eval_dataset"] == folders["with_test"]
    train, held_out, info = load_train_and_eval(folders["train_only"], eval_dataset=folders["other"])
    assert (len(train), len(held_out), info["eval_split"]) == (100, 30, "train")
    with pytest.raises(ValueError, match="training images"):
        load_train_and_eval(folders["train_only"], eval_dataset=folders["train_only"])
    with pytest.raises(ValueError, match="validation_size"):
        load_train_and_eval(folders["train_only"], eval_dataset=folders["other"], validation_size=0.2)


def test_train_records_the_eval_dataset(folders, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "fastnet-tiny", "--dataset", folders["train_only"], "--eval-dataset", folders["with_test"],
                 "--output", str(out), "--max-steps", "1", "--batch-size", "50", "--no-progress"]) == 0
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["eval_dataset"] == folders["with_test"] and summary["eval_split"] == "test"
    assert (summary["num_train_examples"], summary["num_eval_examples"]) == (100, 40)


# ------------------------------------------------------------------------- every registered claim check, tiny budget


@pytest.mark.parametrize("slug", claim_check_slugs())
def test_every_claim_check_runs_end_to_end_at_a_tiny_budget(slug, cifar_source, tmp_path):
    out = tmp_path / slug
    report = run_claim_check(slug, dataset=cifar_source, output_dir=out, budget_minutes=0.05, progress=False)
    saved = json.loads((out / "report.json").read_text())
    assert REPORT_KEYS <= set(saved) and saved["verdict"] in {"PASS", "FAIL"} and saved == report
    assert (out / "report.md").is_file() and all((out / plot).is_file() for plot in saved["plots"])
    assert math.isfinite(saved["value"]) and saved["num_eval_examples"] > 0
    if saved["model_dir"] is not None:
        assert (out / saved["model_dir"]).is_dir()


@pytest.mark.parametrize("error, code", [(RuntimeError("diverged"), 1), (DatasetUnavailableError("no folder"), 2)])
def test_cli_reports_a_crashing_run_with_the_slug(tmp_path, capsys, monkeypatch, error, code):
    def run(ctx):
        raise error

    monkeypatch.setattr(reproduce, "load_claim_module", lambda slug: fake_module(run=run))
    assert main(["reproduce", "fake", "--output", str(tmp_path / "out")]) == code
    err = capsys.readouterr().err
    assert "hfcifar reproduce: error: Claim check 'fake' failed" in err
    assert ("Traceback" in err) == (code == 1)  # a crash shows where; a user error does not
    assert not (tmp_path / "out" / "report.json").exists()


def test_the_context_follows_the_eval_dataset_rule(folders, tmp_path):
    def run(ctx):
        assert ctx.eval_dataset == folders["with_test"]
        assert (len(ctx.train_split), len(ctx.eval_split)) == (100, 40)
        return Measurement(value=0.5, measured={"accuracy": 0.5})

    report = run_claim_check("fake", dataset=folders["train_only"], eval_dataset=folders["with_test"],
                             output_dir=tmp_path / "out", module=fake_module(run=run))
    assert (report["eval_dataset"], report["eval_split"], report["num_eval_examples"]) == (folders["with_test"], "test", 40)


def test_paired_comparison_is_the_error_of_the_per_example_differences():
    import math

    import numpy as np
    import torch

    from hfcifar.reproduce import paired_comparison, paired_standard_error

    a = [1, 1, 0, 1, 0, 1, 1, 0]
    b = [1, 0, 0, 1, 1, 0, 1, 0]
    d = np.array(a, float) - np.array(b, float)
    result = paired_comparison(torch.tensor(a, dtype=torch.bool), np.array(b))
    assert result["margin"] == pytest.approx(d.mean())
    assert result["standard_error"] == pytest.approx(d.std(ddof=1) / math.sqrt(8))
    assert (result["a_only_right"], result["b_only_right"], result["num_examples"]) == (2, 1, 8)
    assert paired_standard_error(a, a) == 0.0  # identical predictions: no uncertainty about the difference
    with pytest.raises(ValueError, match="same length ≥ 2"):
        paired_comparison(a, b[:4])
