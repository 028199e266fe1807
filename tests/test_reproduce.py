"""The claim-check framework (`hfcifar reproduce`): the verdict rules, seeds and standard errors, completeness,
report files and schema, the CLI (--plan, --scale, --summary), the data rule, every registered check's verdict rule
on synthetic measurements, and a smoke run of every check."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

import hfcifar.reproduce as reproduce
from conftest import write_cifar_folder
from hfcifar.cli import main
from hfcifar.data import DatasetUnavailableError, load_train_and_eval
from hfcifar.methods import list_methods, method_status
from hfcifar.reproduce import (FAIL, INCONCLUSIVE, NON_INFERIORITY, PASS, REPORT_SCHEMA, SMOKE, SUPERIORITY,
                               THRESHOLD, Claim, ClaimCheckError, Hypothesis, Measurement, Result, Scale,
                               claim_check_slugs, decide, decide_hypothesis, load_claim_module, paired_difference,
                               per_example_estimate, pool_seeds, run_claim_check)
from hfcifar.training import RunDirectoryError

FAKE_DATA = {"dataset": "fake", "eval_dataset": None, "eval_split": "validation", "num_train_examples": 90, "num_eval_examples": 10}
SCALES = {"smoke": Scale({"steps": 1}), "cpu": Scale({"steps": 10}, seeds=1, minutes=1.0), "paper": Scale({"steps": 100})}


def fake_claim(*hypotheses, combine="all", min_seeds=1, minimums=None):
    hypotheses = hypotheses or (Hypothesis("margin", SUPERIORITY, "new beats old", paper_value=0.05),)
    return Claim(paper="A Paper", claim="the method beats the baseline (paper: +5 points)", hypotheses=hypotheses,
                 scales=SCALES, combine=combine, min_seeds=min_seeds, minimums=minimums or {})


def fake_module(estimate=0.04, se=0.01, claim=None, run=None, sizes=None):
    claim = claim or fake_claim()

    def default_run(ctx):
        return Result(measurements={claim.metric: Measurement(estimate, se, n_images=400, n_seeds=len(ctx.seeds))},
                      details={"steps": ctx.work["steps"]}, sizes=sizes or {})

    return SimpleNamespace(CLAIM=claim, run=run or default_run)


# ------------------------------------------------------------------------------------------------ the rules


@pytest.mark.parametrize("kind, higher, estimate, se, verdict", [
    (SUPERIORITY, True, 0.04, 0.01, PASS),          # [0.020, 0.060] > 0
    (SUPERIORITY, True, 0.01, 0.01, INCONCLUSIVE),  # [-0.010, 0.030] holds 0
    (SUPERIORITY, True, 0.0, 0.0, INCONCLUSIVE),    # an exact tie is never a PASS
    (SUPERIORITY, True, -0.04, 0.01, FAIL),
    (SUPERIORITY, False, -0.04, 0.01, PASS),        # lower is better: an interval below 0 passes
    (SUPERIORITY, False, 0.04, 0.01, FAIL),
])
def test_superiority_is_decided_by_the_95_percent_interval(kind, higher, estimate, se, verdict):
    h = Hypothesis("m", kind, "s", higher_is_better=higher)
    assert decide_hypothesis(h, Measurement(estimate, se)).verdict == verdict


def test_one_standard_error_worse_is_no_longer_a_pass():
    # v1 passed "within one SE worse" (ReSTE −1.3 ± 2.1): now a tie at best
    h = Hypothesis("margin", SUPERIORITY, "ReSTE beats STE")
    assert decide_hypothesis(h, Measurement(-0.013, 0.021)).verdict == INCONCLUSIVE
    assert decide_hypothesis(h, Measurement(0.019, 0.0101)).verdict == INCONCLUSIVE  # +1.9 ± 1.9 is inside the noise


@pytest.mark.parametrize("estimate, verdict", [(-0.005, PASS), (-0.027, INCONCLUSIVE), (-0.06, FAIL)])
def test_non_inferiority_uses_the_declared_margin(estimate, verdict):
    h = Hypothesis("m", NON_INFERIORITY, "not worse by more than 3 points", margin=0.03, margin_reason="one SE")
    assert h.bound == pytest.approx(-0.03)
    assert decide_hypothesis(h, Measurement(estimate, 0.005)).verdict == verdict


@pytest.mark.parametrize("estimate, verdict", [(0.70, PASS), (0.61, INCONCLUSIVE), (0.50, FAIL)])
def test_threshold_must_be_passed_by_the_whole_interval(estimate, verdict):
    h = Hypothesis("accuracy", THRESHOLD, "above 60%", threshold=0.6)
    assert decide_hypothesis(h, Measurement(estimate, 0.02)).verdict == verdict


def test_nothing_measured_or_not_finite_is_inconclusive():
    h = Hypothesis("m", SUPERIORITY, "s")
    assert decide_hypothesis(h, None).verdict == INCONCLUSIVE
    assert decide_hypothesis(h, Measurement(float("nan"), 0.01)).verdict == INCONCLUSIVE
    assert decide_hypothesis(h, Measurement(0.5, float("inf"))).verdict == INCONCLUSIVE


def test_magnitude_is_reported_and_counts_only_at_the_paper_scale():
    h = Hypothesis("m", SUPERIORITY, "s", paper_value=0.10)
    small = Measurement(0.04, 0.01)  # established, but smaller than the paper's +10
    cpu = decide_hypothesis(h, small, scale="cpu")
    assert (cpu.verdict, cpu.magnitude) == (PASS, "above") and "smaller effect" in cpu.reason
    assert decide_hypothesis(h, small, scale="paper").verdict == FAIL
    assert decide_hypothesis(h, Measurement(0.09, 0.01), scale="paper").magnitude == "inside"
    assert decide_hypothesis(h, Measurement(0.30, 0.01), scale="paper").verdict == PASS  # larger than claimed: fine
    assert decide_hypothesis(Hypothesis("m", SUPERIORITY, "s"), small).magnitude == "no comparable paper value"


def test_compound_all_and_a_preregistered_any_family():
    a, b = Hypothesis("a", SUPERIORITY, "a"), Hypothesis("b", SUPERIORITY, "b")
    win, tie, loss = Measurement(0.05, 0.01), Measurement(0.0, 0.01), Measurement(-0.05, 0.01)
    claim_all = fake_claim(a, b)
    assert decide(claim_all, {"a": win, "b": win}).verdict == PASS
    assert decide(claim_all, {"a": win, "b": tie}).verdict == INCONCLUSIVE
    assert decide(claim_all, {"a": win, "b": loss}).verdict == FAIL
    claim_any = fake_claim(a, b, combine="any")
    assert decide(claim_any, {"a": tie, "b": win}).verdict == PASS
    assert decide(claim_any, {"a": loss, "b": tie}).verdict == INCONCLUSIVE
    assert decide(claim_any, {"a": loss, "b": loss}).verdict == FAIL
    # Bonferroni: 2.2 SE clears 1.96 alone but not the 2.24 of a family of two
    edge = Measurement(0.022, 0.01)
    assert decide(fake_claim(a), {"a": edge}).verdict == PASS
    assert decide(claim_any, {"a": edge, "b": tie}).verdict == INCONCLUSIVE


def test_incomplete_or_undersized_runs_are_inconclusive_and_smoke_is_smoke():
    claim = fake_claim(min_seeds=3, minimums={"eval_images": 400})
    win = {"margin": Measurement(0.05, 0.01)}
    assert decide(claim, win, sizes={"eval_images": 466}, seeds=3).verdict == PASS
    for kwargs, text in [({"sizes": {"eval_images": 200}, "seeds": 3}, "below the claim's minimum"),
                         ({"sizes": {}, "seeds": 3}, "did not report"),
                         ({"sizes": {"eval_images": 466}, "seeds": 1}, "needs ≥ 3"),
                         ({"sizes": {"eval_images": 466}, "seeds": 3, "incomplete": ["cut short"]}, "cut short")]:
        decision = decide(claim, win, **kwargs)
        assert decision.verdict == INCONCLUSIVE and text in decision.reason and "would say PASS" in decision.reason
    smoke = decide(claim, win, scale="smoke", seeds=1)
    assert smoke.verdict == SMOKE and "decides nothing" in smoke.reason


def test_claims_are_validated():
    with pytest.raises(ValueError, match="kind"):
        Hypothesis("m", "better", "s")
    with pytest.raises(ValueError, match="margin"):
        Hypothesis("m", NON_INFERIORITY, "s")
    with pytest.raises(ValueError, match="margin_reason"):
        Hypothesis("m", NON_INFERIORITY, "s", margin=0.01)
    with pytest.raises(ValueError, match="threshold"):
        Hypothesis("m", THRESHOLD, "s")
    with pytest.raises(ValueError, match="scales"):
        Claim(paper="p", claim="c", hypotheses=[Hypothesis("m", SUPERIORITY, "s")], scales={"cpu": Scale({})})
    with pytest.raises(ValueError, match="repeated"):
        fake_claim(Hypothesis("m", SUPERIORITY, "s"), Hypothesis("m", SUPERIORITY, "t"))


# ------------------------------------------------------------------------------------------ statistics


def test_per_example_estimate_adds_seed_and_image_variation():
    rng = np.random.default_rng(0)
    one = rng.integers(0, 2, 500)
    single = per_example_estimate(one, proportion=False)
    assert single.standard_error == pytest.approx(one.std(ddof=1) / math.sqrt(500))
    assert (single.n_images, single.n_seeds) == (500, 1)
    # three seeds that disagree a lot: the seed term dominates, so the SE is far above the one-seed SE
    seeds = np.stack([rng.random(500) < p for p in (0.3, 0.5, 0.7)]).astype(float)
    pooled = per_example_estimate(seeds)
    seed_means = seeds.mean(axis=1)
    floor = reproduce.agresti_coull_variance(seeds.sum(), seeds.size)
    expected = math.sqrt(max(seeds.mean(axis=0).var(ddof=1) / 500, floor) + seed_means.var(ddof=1) / 3)
    assert pooled.standard_error == pytest.approx(expected) and pooled.standard_error > 0.1
    assert pooled.per_seed == pytest.approx(list(seed_means)) and pooled.n_seeds == 3


def test_a_proportion_at_zero_or_one_keeps_an_honest_standard_error():
    from hfcifar.reproduce import proportion

    h = Hypothesis("success", THRESHOLD, "succeeds on > 90%", threshold=0.9)
    # 8 of 8 is not a certainty: the plain binomial SE (0) would PASS any threshold below 100%
    assert per_example_estimate(np.ones(8)).standard_error > 0.05
    assert decide_hypothesis(h, per_example_estimate(np.ones(8))).verdict == INCONCLUSIVE
    assert decide_hypothesis(h, proportion(8, 8)).verdict == INCONCLUSIVE
    assert decide_hypothesis(h, proportion(300, 300)).verdict == PASS
    # away from the extremes the floor changes nothing
    half = np.tile([0.0, 1.0], 250)
    assert per_example_estimate(half).standard_error == pytest.approx(half.std(ddof=1) / math.sqrt(500))


def test_paired_difference_and_pooling():
    a = np.array([[1, 1, 0, 1, 0, 1, 1, 0]], float)
    b = np.array([[1, 0, 0, 1, 1, 0, 1, 0]], float)
    d = (a - b)[0]
    m = paired_difference(a, b)
    assert m.estimate == pytest.approx(d.mean()) and m.standard_error == pytest.approx(d.std(ddof=1) / math.sqrt(8))
    assert paired_difference(a, a).standard_error == 0.0
    with pytest.raises(ValueError, match="same shape"):
        paired_difference(a, b[:, :4])
    pooled = pool_seeds([1.0, 1.2, 0.8], [0.1, 0.1, 0.1])
    assert pooled.estimate == pytest.approx(1.0)
    assert pooled.standard_error == pytest.approx(math.sqrt(0.01 + np.var([1.0, 1.2, 0.8], ddof=1) / 3))


def test_paired_comparison_is_the_error_of_the_per_example_differences():
    import torch

    from hfcifar.reproduce import paired_comparison, paired_standard_error

    a = [1, 1, 0, 1, 0, 1, 1, 0]
    b = [1, 0, 0, 1, 1, 0, 1, 0]
    d = np.array(a, float) - np.array(b, float)
    result = paired_comparison(torch.tensor(a, dtype=torch.bool), np.array(b))
    assert result["margin"] == pytest.approx(d.mean())
    assert result["standard_error"] == pytest.approx(d.std(ddof=1) / math.sqrt(8))
    assert (result["a_only_right"], result["b_only_right"], result["num_examples"]) == (2, 1, 8)
    assert paired_standard_error(a, a) == 0.0
    with pytest.raises(ValueError, match="same length ≥ 2"):
        paired_comparison(a, b[:4])


# ------------------------------------------------------------------------------------------ running, reports


def test_report_has_the_schema_and_provenance(tmp_path):
    out = tmp_path / "out"
    returned = run_claim_check("fake", output_dir=out, seed=3, module=fake_module(), progress=False)
    report = json.loads((out / "report.json").read_text())
    assert set(REPORT_SCHEMA) <= set(report) and report == returned
    assert (report["kind"], report["metric"], report["verdict"], report["scale"], report["mode"]) == (
        "superiority", "margin", "PASS", "cpu", "fixed")
    assert report["estimate"] == 0.04 and report["standard_error"] == 0.01
    assert report["interval"] == pytest.approx([0.04 - 1.96 * 0.01, 0.04 + 1.96 * 0.01], abs=1e-4)
    assert report["n"] == {"images": 400, "seeds": 1} and report["seeds"] == [3]
    assert report["paper_value"] == 0.05 and report["magnitude"] == "inside"
    assert report["sub_verdicts"][0]["verdict"] == "PASS" and report["details"] == {"steps": 10}
    prov = report["provenance"]
    assert {"commit", "versions", "threads", "device", "command", "scale", "seeds", "wall_time_seconds"} <= set(prov)
    assert prov["versions"]["torch"] and prov["threads"] >= 1
    assert prov["command"].startswith("hfcifar reproduce fake --scale cpu --seeds 1 --seed 3 --dataset ")
    assert report["guard_minutes"] == pytest.approx(3.0)  # GUARD_FACTOR × the scale's 1-minute estimate
    text = (out / "report.md").read_text()
    assert "PASS" in text and "0.04 ± 0.01" in text and "![claim](claim.png)" in text and prov["command"] in text
    assert (out / "claim.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(out.glob(".*.tmp*"))


def test_seeds_scales_and_budget_mode(tmp_path):
    seen = {}

    def run(ctx):
        seen.update(seeds=ctx.seeds, work=ctx.work, guard=ctx.guard_minutes, mode=ctx.mode)
        return Result(measurements={"margin": Measurement(0.04, 0.01, n_seeds=len(ctx.seeds))})

    report = run_claim_check("fake", output_dir=tmp_path / "a", scale="smoke", module=fake_module(run=run))
    assert report["verdict"] == SMOKE and seen == {"seeds": [0], "work": {"steps": 1}, "guard": None, "mode": "fixed"}
    report = run_claim_check("fake", output_dir=tmp_path / "b", seeds=3, seed=5, budget_minutes=2.0,
                             module=fake_module(run=run))
    assert seen["seeds"] == [5, 6, 7] and seen["guard"] == 2.0 and report["mode"] == "budget"
    assert "--budget-minutes 2" in report["provenance"]["command"]
    with pytest.raises(ValueError, match="scale"):
        run_claim_check("fake", output_dir=tmp_path / "c", scale="huge", module=fake_module())


def test_an_overrun_in_budget_mode_is_inconclusive(tmp_path):
    def run(ctx):
        ctx.start_time -= 1000  # as if the run had taken 16.7 minutes
        return Result(measurements={"margin": Measurement(0.04, 0.01)})

    report = run_claim_check("fake", output_dir=tmp_path / "o", budget_minutes=10.0, module=fake_module(run=run))
    assert report["verdict"] == INCONCLUSIVE and "over 1.2× its 10-minute budget" in report["reason"]
    report = run_claim_check("fake", output_dir=tmp_path / "p", budget_minutes=20.0, module=fake_module(run=run))
    assert report["verdict"] == PASS


def test_a_run_that_measured_nothing_or_nan_is_inconclusive_not_an_error(tmp_path):
    report = run_claim_check("fake", output_dir=tmp_path / "a", module=fake_module(estimate=float("nan")))
    assert report["verdict"] == INCONCLUSIVE and report["estimate"] is None
    empty = fake_module(run=lambda ctx: Result(measurements={}))
    report = run_claim_check("fake", output_dir=tmp_path / "b", module=empty)
    assert report["verdict"] == INCONCLUSIVE and "measured nothing" in report["reason"]


def test_context_trains_fixed_work_and_records_completeness(tmp_path, synthetic_path):
    from hfcifar.models import create_model

    def run(ctx):
        train, held_out = ctx.tensors()
        first = ctx.train(create_model("fastnet-tiny"), "quick", name="a", max_steps=2)
        second = ctx.train(create_model("fastnet-tiny"), "quick", name="b", max_steps=3)
        ctx.same_work([first, second])
        correct = ctx.correct(first.model, held_out)
        with ctx.figure("f.png") as (fig, ax):
            ax.plot([0, 1])
        assert correct.dtype == bool and correct.shape == (len(held_out),)
        return Result(measurements={"margin": per_example_estimate(correct)}, sizes={"eval_images": len(held_out)})

    report = run_claim_check("fake", dataset=synthetic_path, output_dir=tmp_path / "o", module=fake_module(run=run))
    assert [r["steps"] for r in report["training_runs"]] == [2, 3]
    assert report["verdict"] == INCONCLUSIVE and "different numbers of steps" in report["reason"]
    assert "f.png" in report["plots"] and (tmp_path / "o" / "f.png").is_file()
    assert report["data"]["num_eval_examples"] == 12


def test_errors_name_the_slug(tmp_path):
    def run(ctx):
        raise RuntimeError("diverged")

    with pytest.raises(ClaimCheckError, match="'fake' failed: RuntimeError: diverged") as info:
        run_claim_check("fake", output_dir=tmp_path / "a", module=fake_module(run=run))
    assert isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(ClaimCheckError, match="must return a Result"):
        run_claim_check("fake", output_dir=tmp_path / "b", module=fake_module(run=lambda ctx: 0.5))
    with pytest.raises(ClaimCheckError, match="missing.png"):
        run_claim_check("fake", output_dir=tmp_path / "c",
                        module=fake_module(run=lambda ctx: Result(measurements={}, plots=["missing.png"])))
    assert not (tmp_path / "a" / "report.json").exists()


def test_an_existing_output_folder_is_refused(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(RunDirectoryError, match="--overwrite"):
        run_claim_check("fake", output_dir=out, module=fake_module())
    assert not (out / "report.json").exists()
    run_claim_check("fake", output_dir=out, module=fake_module(), overwrite=True)
    assert (out / "report.json").is_file() and (out / "notes.txt").read_text() == "mine"
    monkeypatch.setattr(reproduce.runner, "load_claim_module", lambda slug: fake_module())
    monkeypatch.setattr(reproduce, "load_claim_module", lambda slug: fake_module())
    assert main(["reproduce", "fake", "--output", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["reproduce", "fake", "--output", str(out), "--overwrite"]) == 0


def test_cli_prints_each_hypothesis_and_the_verdict(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(reproduce, "load_claim_module", lambda slug: fake_module(estimate=0.005))
    out = tmp_path / "out"
    assert main(["reproduce", "fake", "--output", str(out), "--seeds", "2"]) == 0  # INCONCLUSIVE still exits 0
    printed = capsys.readouterr().out
    assert "the method beats the baseline" in printed and "0.005 ± 0.01" in printed and "paper 0.05" in printed
    assert "INCONCLUSIVE" in printed and str(out / "report.md") in printed
    assert json.loads((out / "report.json").read_text())["seeds"] == [0, 1]


def test_summary_table_comes_from_the_reports(tmp_path, capsys):
    run_claim_check("fake", output_dir=tmp_path / "r" / "fake", module=fake_module())
    assert main(["reproduce", "--summary", str(tmp_path / "r")]) == 0
    table = capsys.readouterr().out
    assert "| fake | **PASS** |" in table and "hfcifar reproduce fake --scale cpu" in table
    assert "not yet run under claim checks v2" in table  # the registered checks without a report
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- claim-table:start -->\nold\n<!-- claim-table:end -->\nend\n")
    assert main(["reproduce", "--summary", str(tmp_path / "r"), "--update-readme", str(readme)]) == 0
    text = readme.read_text()
    assert "old" not in text and "| fake | **PASS** |" in text and text.endswith("end\n")


def test_readme_claim_table_is_generated_from_the_committed_reports():
    from pathlib import Path

    from hfcifar.reproduce.summary import END, START, find_reports, summary_table

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    block = readme.split(START, 1)[1].split(END, 1)[0].strip()
    assert block == summary_table(find_reports([root / "docs" / "reports"]), slugs=claim_check_slugs()), (
        "README's claim table is stale: run `hfcifar reproduce --summary docs/reports --update-readme README.md`")


def test_unknown_slug_and_missing_claim_check_point_to_the_list(tmp_path, capsys):
    with pytest.raises(ValueError, match="hfcifar reproduce --list"):
        run_claim_check("no-such-method", output_dir=tmp_path / "a")
    assert main(["reproduce", "no-such-method", "--output", str(tmp_path / "b")]) == 2
    assert "hfcifar reproduce --list" in capsys.readouterr().err
    without = [s.info.slug for s in list_methods() if not s.has_claim_check]
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
        assert load_claim_module(slug).CLAIM.claim[:40] in out


def test_methods_lists_the_foundation_checks_apart(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    papers, _, foundation = out.partition("foundation checks")
    assert "fastnet-quick-recipe" in foundation and "fastnet-quick-recipe" not in papers
    assert len(list_methods(include_foundation=True)) > len(list_methods())
    assert method_status("fastnet-quick-recipe").has_claim_check


# ------------------------------------------------------------------------------------- the --eval-dataset rule


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_rule")
    return {
        "train_only": write_cifar_folder(root / "train_only", n=100),
        "with_test": write_cifar_folder(root / "with_test", n=50, seed=1, test=True),  # test split: 40 images
        "other": write_cifar_folder(root / "other", n=30, seed=2),
        "test_only": _test_only(write_cifar_folder(root / "test_only", n=50, seed=3, test=True)),  # 40 test images
    }


def _test_only(folder: str) -> str:
    from pathlib import Path

    (Path(folder) / "train-00000-of-00001.parquet").unlink()
    return folder


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


def test_an_eval_dataset_with_only_a_test_split_is_used_whole(folders, tmp_path, capsys):
    train, held_out, info = load_train_and_eval(folders["train_only"], eval_dataset=folders["test_only"])
    assert (len(train), len(held_out), info["eval_split"]) == (100, 40, "test")
    out = tmp_path / "run"
    assert main(["train", "fastnet-tiny", "--dataset", folders["train_only"], "--eval-dataset", folders["test_only"],
                 "--output", str(out), "--max-steps", "1", "--batch-size", "50", "--no-progress"]) == 0
    for extra in (["--split", "test"], []):
        assert main(["eval", str(out), "--dataset", folders["test_only"], *extra]) == 0
        results = json.loads((out / "eval_results.json").read_text())
        assert (results["split"], results["num_examples"]) == ("test", 40)
    capsys.readouterr()
    # training data still needs a train split, and says where evaluation-only data goes
    from hfcifar.data import DatasetSchemaError, load_cifar10

    with pytest.raises(DatasetSchemaError, match="--eval-dataset"):
        load_cifar10(folders["test_only"])


def test_train_records_the_eval_dataset(folders, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "fastnet-tiny", "--dataset", folders["train_only"], "--eval-dataset", folders["with_test"],
                 "--output", str(out), "--max-steps", "1", "--batch-size", "50", "--no-progress"]) == 0
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["eval_dataset"] == folders["with_test"] and summary["eval_split"] == "test"
    assert (summary["num_train_examples"], summary["num_eval_examples"]) == (100, 40)




# ------------------------------------------------------------------------- every registered claim check


def synthetic(hypothesis: Hypothesis, outcome: str) -> Measurement:
    """A measurement that wins, ties or loses `hypothesis` by a wide margin (10 SE)."""
    se = 0.01 * max(1.0, abs(hypothesis.bound))
    sign = 1 if hypothesis.higher_is_better else -1
    offset = {"win": 10 * se, "tie": 0.0, "loss": -10 * se}[outcome] * sign
    return Measurement(hypothesis.bound + offset, se, n_images=10_000, n_seeds=10)


@pytest.mark.parametrize("slug", claim_check_slugs())
@pytest.mark.parametrize("outcome, verdict", [("win", PASS), ("tie", INCONCLUSIVE), ("loss", FAIL)])
def test_every_claim_checks_rule_gives_pass_inconclusive_fail(slug, outcome, verdict):
    claim = load_claim_module(slug).CLAIM
    sizes = {key: value for key, value in claim.minimums.items()}
    measurements = {h.name: synthetic(h, outcome) for h in claim.hypotheses}
    decision = decide(claim, measurements, scale="cpu", sizes=sizes, seeds=claim.min_seeds)
    assert decision.verdict == verdict, decision.reason
    # below a declared minimum, or one seed short, even a clear win is INCONCLUSIVE
    if outcome == "win":
        for key in claim.minimums:
            short = decide(claim, measurements, sizes={**sizes, key: claim.minimums[key] - 1}, seeds=claim.min_seeds)
            assert short.verdict == INCONCLUSIVE and key in short.reason
        if claim.min_seeds > 1:
            assert decide(claim, measurements, sizes=sizes, seeds=claim.min_seeds - 1).verdict == INCONCLUSIVE


@pytest.mark.parametrize("slug", claim_check_slugs())
def test_every_claim_check_declares_three_scales_and_plans_them(slug, capsys):
    claim = load_claim_module(slug).CLAIM
    assert set(claim.scales) >= {"smoke", "cpu", "paper"}
    cpu = claim.scales["cpu"]
    assert cpu.minutes is not None and cpu.minutes <= 25, "the cpu scale must fit ~15 (at most 25) minutes here"
    assert main(["reproduce", slug, "--plan"]) == 0
    out = capsys.readouterr().out
    assert all(f"[{scale}]" in out for scale in ("smoke", "cpu", "paper")) and claim.headline.name in out


@pytest.mark.parametrize("slug", claim_check_slugs())
def test_every_claim_check_runs_end_to_end_at_the_smoke_scale(slug, cifar_source, tmp_path):
    out = tmp_path / slug
    report = run_claim_check(slug, dataset=cifar_source, output_dir=out, scale="smoke", progress=False)
    saved = json.loads((out / "report.json").read_text())
    assert set(REPORT_SCHEMA) <= set(saved) and saved["verdict"] == SMOKE and saved == report
    assert (out / "report.md").is_file() and all((out / plot).is_file() for plot in saved["plots"])
    assert [s["name"] for s in saved["sub_verdicts"]] == [h.name for h in load_claim_module(slug).CLAIM.hypotheses]
    assert saved["estimate"] is not None, f"the smoke run measured nothing for {saved['metric']}"
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
        return Result(measurements={"margin": Measurement(0.5, 0.1)})

    report = run_claim_check("fake", dataset=folders["train_only"], eval_dataset=folders["with_test"],
                             output_dir=tmp_path / "out", module=fake_module(run=run))
    data = report["data"]
    assert (data["eval_dataset"], data["eval_split"], data["num_eval_examples"]) == (folders["with_test"], "test", 40)


def test_the_same_command_twice_gives_the_same_numbers(cifar_source, tmp_path):
    # fixed work and seeds, not a clock: two runs of the same scale and seed measure the same experiment
    first = run_claim_check("fastnet-quick-recipe", dataset=cifar_source, output_dir=tmp_path / "a", scale="smoke",
                            seeds=2, progress=False)
    second = run_claim_check("fastnet-quick-recipe", dataset=cifar_source, output_dir=tmp_path / "b", scale="smoke",
                             seeds=2, progress=False)
    assert first["sub_verdicts"] == second["sub_verdicts"] and first["details"]["steps"] == second["details"]["steps"]
    assert [r["steps"] for r in first["training_runs"]] == [2, 2]
