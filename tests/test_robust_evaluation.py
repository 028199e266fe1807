"""Robust accuracy through the evaluation API, the `hfcifar eval --attack …` flags and the model card."""

import json

import pytest
import torch
from conftest import MINI
import yaml

from hfcifar.cli import main
from hfcifar.evaluation import METRICS, EvalSettings, evaluate_classifier
from hfcifar.evaluation.robustness import describe_attack, robust_accuracy
from hfcifar.attacks import create_attack
from hfcifar.hub import render_card
from hfcifar.models import create_model
from hfcifar.training import train_classifier


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Small tensors on a shared 2-core machine: one thread avoids OpenMP threads waiting on each other.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def run_dir(cifar_source, tmp_path_factory):
    """A fastnet-tiny run folder trained for a few steps (real images when present; on the 120 synthetic images half
    are held out, so the tests' 48 evaluation images exist either way)."""
    out = tmp_path_factory.mktemp("robust") / "run"
    held_out = None if cifar_source == str(MINI) else 0.5
    train_classifier(model="fastnet-tiny", dataset=cifar_source, output_dir=out, max_steps=8, disable_tqdm=True,
                     logging_steps=4, validation_size=held_out)
    return out


def test_robust_accuracy_is_registered_with_its_model_index_type():
    metric = METRICS["robust_accuracy"]
    assert metric.hub_type == "robust_accuracy" and metric.pretty_name == "Robust accuracy" and metric.higher_is_better


def test_robust_accuracy_is_at_most_clean_accuracy_and_is_deterministic(run_dir):
    options = dict(attack="pgd", eps=8 / 255, steps=2, alpha=4 / 255, num_examples=48, batch_size=20)
    results = evaluate_classifier(run_dir, metrics=["robust_accuracy"], **options)
    assert results["num_examples"] == 48 and results["metrics"] == ["robust_accuracy"]
    assert 0 <= results["robust_accuracy"] <= results["clean_accuracy"] <= 1
    assert results["perturbation_linf_max"] <= 8 / 255 + 1e-6 and results["perturbation_linf_mean"] > 0
    assert results["perturbation_l2_mean"] <= results["perturbation_l2_max"]
    # success rate = among clean-correct images, the fraction the attack flips; robust = clean × (1 − success)
    if results["attack_success_rate"] is not None:
        assert results["robust_accuracy"] == pytest.approx(
            results["clean_accuracy"] * (1 - results["attack_success_rate"]), abs=1e-6)
    assert results["metric_configs"]["robust_accuracy"] == \
        "PGD-L∞ ε=8/255, α=4/255, 2 steps, random start, flip TTA; first 48 images"  # the recipe trains with TTA
    again = evaluate_classifier(run_dir, metrics=["robust_accuracy"], **options)
    assert again == results


@pytest.mark.parametrize("attack, settings", [("pgd", {"steps": 2}), ("fgsm", {}), ("pgdl2", {"steps": 2}),
                                              ("cw", {"steps": 3, "binary_search_steps": 1})])
def test_eps_zero_leaves_accuracy_unchanged(run_dir, attack, settings):
    results = evaluate_classifier(run_dir, metrics=["robust_accuracy"], attack=attack, eps=0.0, num_examples=24,
                                  **settings)
    assert results["robust_accuracy"] == results["clean_accuracy"]
    assert results["perturbation_linf_max"] == 0.0 and results["attack_success_rate"] in (0.0, None)


def test_a_random_model_in_memory_and_a_split_of_tensors():
    from hfcifar.data import CifarTensorDataset

    torch.manual_seed(0)
    split = CifarTensorDataset(torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8), torch.arange(10))
    model = create_model("fastnet-tiny")
    results = robust_accuracy(model, split, EvalSettings(batch_size=4, options={"attack": "fgsm", "eps": 4 / 255}))
    assert results["num_examples"] == 10 and results["robust_accuracy"] <= results["clean_accuracy"]
    assert results["perturbation_linf_max"] == pytest.approx(4 / 255, rel=1e-5)


def test_a_progress_bar_over_the_batches_changes_no_number(capsys):
    from hfcifar.data import CifarTensorDataset

    torch.manual_seed(0)
    split = CifarTensorDataset(torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8), torch.arange(6))
    model = create_model("fastnet-tiny")
    options = {"attack": "pgd", "steps": 1, "batch_size": 3}
    quiet = robust_accuracy(model, split, EvalSettings(options={**options, "progress": False}))
    assert "Attacking" not in capsys.readouterr().err
    shown = robust_accuracy(model, split, EvalSettings(options=options))  # on by default
    assert "Attacking (pgd)" in capsys.readouterr().err and shown == quiet
    with pytest.raises(ValueError, match="progress must be true or false"):
        robust_accuracy(model, split, EvalSettings(options={**options, "progress": "sometimes"}))


def test_flip_tta_attacks_the_averaged_classifier(run_dir):
    results = evaluate_classifier(run_dir, metrics=["robust_accuracy"], tta=True, attack="fgsm", num_examples=16)
    assert results["tta"] and results["metric_configs"]["robust_accuracy"].endswith("flip TTA; first 16 images")


def test_transfer_from_a_source_model(run_dir, tmp_path):
    source = tmp_path / "source"
    create_model("fastnet-tiny").save_pretrained(source)
    results = evaluate_classifier(run_dir, metrics=["robust_accuracy"], attack="pgd", steps=2, num_examples=16,
                                  source_model=str(source))
    assert results["source_model"] == str(source) and 0 <= results["robust_accuracy"] <= results["clean_accuracy"]
    assert f"transferred from {source}" in results["metric_configs"]["robust_accuracy"]


def test_bad_options_get_clear_errors(run_dir):
    with pytest.raises(ValueError, match="Unknown attack 'deepfool'"):
        evaluate_classifier(run_dir, metrics=["robust_accuracy"], attack="deepfool")
    with pytest.raises(ValueError, match="takes no steps"):
        evaluate_classifier(run_dir, metrics=["robust_accuracy"], attack="fgsm", steps=10, num_examples=4)
    with pytest.raises(ValueError, match="eps must be ≥ 0"):
        evaluate_classifier(run_dir, metrics=["robust_accuracy"], eps=-1, num_examples=4)
    with pytest.raises(ValueError, match="num_examples must be ≥ 1"):
        evaluate_classifier(run_dir, metrics=["robust_accuracy"], num_examples=0)


def test_describe_attack_states_the_threat_model():
    model = create_model("fastnet-tiny")
    assert describe_attack("pgd", create_attack("pgd", model)) == "PGD-L∞ ε=8/255, α=2/255, 10 steps, random start"
    assert describe_attack("fgsm", create_attack("fgsm", model, eps=0.03)) == "FGSM-L∞ ε=0.03"
    assert describe_attack("pgdl2", create_attack("pgdl2", model)).startswith("PGD-L2 ε=0.5, α=0.1, 10 steps")
    assert describe_attack("cw", create_attack("cw", model, eps=0.5)).startswith("CW-L2 ‖δ‖₂≤0.5, 9×100 steps")


def test_cli_writes_robust_results_and_the_card_shows_them(run_dir, capsys):
    code = main(["eval", str(run_dir), "--attack", "pgd", "--eps", "8/255", "--steps", "2", "--alpha", "2/255"])
    assert code == 0
    results = json.loads((run_dir / "eval_results.json").read_text())
    assert results["metrics"] == ["accuracy", "robust_accuracy"]
    for key in ["accuracy", "robust_accuracy", "clean_accuracy", "attack_success_rate", "perturbation_linf_mean",
                "perturbation_linf_max", "perturbation_l2_mean", "perturbation_l2_max"]:
        assert key in results, key
    assert results["attack_settings"]["eps"] == pytest.approx(8 / 255) and results["attack_settings"]["steps"] == 2
    # the whole split was attacked, so accuracy and clean accuracy describe the same images
    assert results["clean_accuracy"] == pytest.approx(results["accuracy"], abs=1e-6)

    card = render_card(run_dir, template="robustness")
    metadata = yaml.safe_load(str(card).split("---")[1])
    entries = {m["type"]: m for r in metadata["model-index"][0]["results"] for m in r["metrics"]}
    assert entries["robust_accuracy"]["value"] == pytest.approx(results["robust_accuracy"])
    assert entries["robust_accuracy"]["config"].startswith("PGD-L∞ ε=8/255, α=2/255, 2 steps")
    assert "## Robustness" in str(card) and "| Robust accuracy (PGD-L∞ ε=8/255" in str(card)


def test_cli_num_examples_cards_each_metric_with_its_own_image_count(run_dir, capsys):
    assert main(["eval", str(run_dir), "--attack", "fgsm", "--num-examples", "12"]) == 0
    results = json.loads((run_dir / "eval_results.json").read_text())
    assert results["metrics"] == ["accuracy", "robust_accuracy"]
    whole_split = results["metric_num_examples"]["accuracy"]
    assert results["metric_num_examples"]["robust_accuracy"] == 12 < whole_split == results["num_examples"]
    card = render_card(run_dir, write=False)
    counts = {e.metric_type: e.metric_args["num_examples"] for e in card.data.eval_results}
    assert counts == {"accuracy": whole_split, "robust_accuracy": 12}
    assert main(["eval", str(run_dir), "--attack", "fgsm", "--steps", "3", "--num-examples", "4"]) == 2
    assert "takes no steps" in capsys.readouterr().err
