"""The release path: measured model cards, staging, remote code without hfcifar, upload through huggingface_hub."""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard

import hfcifar
from conftest import python_without_hfcifar
from hfcifar.cli import main as hfcifar_main
from hfcifar.evaluation import EVAL_RESULTS_FILE, evaluate_classifier, write_eval_results
from hfcifar.hub import PushError, StagingError, push_model, render_card, stage_model, staged_files
from hfcifar.hub.push import main as push_main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_dir(cifar_source, tmp_path_factory):
    """A tiny trained and evaluated run folder, as `hfcifar train` + `hfcifar eval` leave it."""
    out = tmp_path_factory.mktemp("hub") / "run"
    hfcifar.train_classifier("fastnet-tiny", dataset=cifar_source, output_dir=out, max_steps=3, disable_tqdm=True)
    write_eval_results(out, evaluate_classifier(out))
    return out


@pytest.fixture(scope="module")
def staged(run_dir, tmp_path_factory):
    return stage_model(run_dir, tmp_path_factory.mktemp("staged") / "upload", repo_id="me/fastnet-tiny-cifar10")


# -- cards -----------------------------------------------------------------------------------------------------
def test_card_metadata_and_model_index_parse_back(run_dir):
    card = render_card(run_dir, repo_id="me/fastnet-tiny-cifar10")
    loaded = ModelCard.load(run_dir / "README.md")
    assert loaded.data.eval_results == card.data.eval_results
    data = loaded.data.to_dict()
    assert data["library_name"] == "transformers" and data["pipeline_tag"] == "image-classification"
    assert data["datasets"] == ["uoft-cs/cifar10"] and data["license"] == "apache-2.0"
    assert data["metrics"] == ["accuracy"] and "hfcifar" in data["tags"]

    results = json.loads((run_dir / EVAL_RESULTS_FILE).read_text())
    (entry,) = loaded.data.eval_results
    assert entry.metric_type == "accuracy" and entry.metric_value == pytest.approx(results["accuracy"])
    assert entry.dataset_split == results["split"] and entry.metric_args["num_examples"] == results["num_examples"]
    body = loaded.text
    assert f"{100 * results['accuracy']:.2f}%" in body and "Deep Residual" not in body
    assert "jordan2024airbench" in body and "krizhevsky2009learning" in body  # architecture + dataset citations
    summary = json.loads((run_dir / "train_summary.json").read_text())
    assert f"{summary['global_step']} steps" in body


def test_card_without_results_has_no_model_index(run_dir, tmp_path):
    bare = tmp_path / "bare"
    hfcifar.create_model("fastnet-tiny").save_pretrained(bare)
    card = render_card(bare)
    assert card.data.eval_results is None and "Not evaluated yet" in card.text


def test_card_reports_the_claim_check_that_trained_the_model(run_dir, tmp_path):
    from types import SimpleNamespace

    from hfcifar.reproduce import THRESHOLD, Claim, Hypothesis, Measurement, Result, Scale, run_claim_check

    claim = Claim(paper="A claim", claim="reaches 60%", citation="@misc{claimpaper2099, title={A claim}}",
                  hypotheses=[Hypothesis("accuracy", THRESHOLD, "held-out accuracy above 60%", threshold=0.6,
                                         paper_value=0.94)],
                  scales={"smoke": Scale({}), "cpu": Scale({}, minutes=1), "paper": Scale({})})
    module = SimpleNamespace(CLAIM=claim, run=lambda ctx: Result(measurements={"accuracy": Measurement(0.42, 0.02, 466)}))
    report = run_claim_check("fastnet-quick-recipe", output_dir=tmp_path / "claim", module=module, progress=False)
    card = render_card(run_dir, claim_report=report, write=False)
    assert "**FAIL**" in card.text and "hfcifar reproduce fastnet-quick-recipe" in card.text
    assert "0.42 ± 0.02 [0.3808, 0.4592]" in card.text and "0.94 (above)" in card.text
    assert report["provenance"]["command"] in card.text
    assert "claimpaper2099" in card.text and "fastnet-quick-recipe" in card.data.tags


def test_unknown_template_is_refused(run_dir):
    with pytest.raises(ValueError, match="Unknown card template"):
        render_card(run_dir, template="nope", write=False)


# -- staging ---------------------------------------------------------------------------------------------------
def test_staged_folder_holds_exactly_the_upload(staged):
    assert staged_files(staged) == sorted([
        "README.md", "config.json", "configuration_fastnet.py", "eval_results.json", "image_processing_cifar.py",
        "model.safetensors", "modeling_fastnet.py", "preprocessor_config.json", "train_summary.json",
        "training_curves.png",
    ])
    config = json.loads((staged / "config.json").read_text())
    assert config["auto_map"] == {"AutoConfig": "configuration_fastnet.FastNetConfig",
                                  "AutoModelForImageClassification": "modeling_fastnet.FastNetForImageClassification"}
    processor = json.loads((staged / "preprocessor_config.json").read_text())
    assert processor["auto_map"] == {"AutoImageProcessor": "image_processing_cifar.CifarImageProcessor"}
    # staging ships code for this folder only: the class is not left registered for the whole process
    assert type(hfcifar.create_model("fastnet-tiny"))._auto_class is None


def test_staging_refuses_what_is_not_a_carded_model(run_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(StagingError, match="no config.json"):
        stage_model(tmp_path / "empty", tmp_path / "s1")
    pickled = tmp_path / "pickled"
    hfcifar.create_model("fastnet-tiny").save_pretrained(pickled)
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    with pytest.raises(StagingError, match="safetensors"):
        stage_model(pickled, tmp_path / "s2")
    unevaluated = tmp_path / "unevaluated"
    hfcifar.create_model("fastnet-tiny").save_pretrained(unevaluated)
    with pytest.raises(StagingError, match="hfcifar eval"):
        stage_model(unevaluated, tmp_path / "s3")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    with pytest.raises(StagingError, match="not empty"):
        stage_model(run_dir, taken)
    assert (taken / "keep.txt").read_text() == "mine"


def test_remote_code_loads_without_hfcifar_with_identical_logits(staged, run_dir, tmp_path):
    model = hfcifar.create_model("fastnet-tiny").from_pretrained(run_dir).eval()
    torch.manual_seed(0)
    images = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        expected = model(images).logits
    torch.save({"images": images, "logits": expected}, tmp_path / "reference.pt")
    result = python_without_hfcifar(f"""
        import torch
        from PIL import Image
        from transformers import AutoModelForImageClassification, pipeline
        try:
            import hfcifar
            raise SystemExit("hfcifar was importable")
        except ImportError:
            pass
        reference = torch.load({str(tmp_path / 'reference.pt')!r})
        model = AutoModelForImageClassification.from_pretrained({str(staged)!r}, trust_remote_code=True)
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        with torch.no_grad():
            logits = model(reference["images"]).logits
        assert torch.equal(logits, reference["logits"]), (logits - reference["logits"]).abs().max()
        classify = pipeline("image-classification", model={str(staged)!r}, trust_remote_code=True)
        labels = [p["label"] for p in classify(Image.new("LA", (57, 41)), top_k=10)]
        assert sorted(labels) == sorted(model.config.id2label.values()), labels
        print("REMOTE-OK")
    """, cwd=tmp_path)
    assert result.returncode == 0 and "REMOTE-OK" in result.stdout, result.stderr[-3000:]


def test_card_usage_snippet_runs_when_pasted(staged, tmp_path):
    """The card's Python block, with the repository id pointing at the staged folder, runs without hfcifar."""
    card = (staged / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", card, flags=re.S)
    assert blocks and "me/fastnet-tiny-cifar10" in blocks[0]
    result = python_without_hfcifar(blocks[0].replace("me/fastnet-tiny-cifar10", str(staged)), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "'label':" in result.stdout


def test_custom_pipeline_travels_with_the_model(run_dir, tmp_path, monkeypatch):
    """The pattern of hfcifar.pipelines: a pipeline module staged with the model loads by task without hfcifar."""
    package = tmp_path / "toy"
    package.mkdir()
    (package / "pipeline_top_class.py").write_text(textwrap.dedent('''
        import torch
        from transformers import AutoModelForImageClassification, Pipeline

        TASK = "hfcifar-test-top-class"
        PT_MODEL = AutoModelForImageClassification
        TYPE = "image"


        class TopClassPipeline(Pipeline):
            def _sanitize_parameters(self, **kwargs):
                return {}, {}, {}

            def preprocess(self, image):
                return self.image_processor(image, return_tensors="pt")

            def _forward(self, inputs):
                return self.model(**inputs)

            def postprocess(self, outputs):
                return self.model.config.id2label[int(outputs.logits.argmax(-1)[0])]
    '''))
    monkeypatch.syspath_prepend(str(package))
    import pipeline_top_class

    from hfcifar.pipelines import register_pipeline_module

    task = register_pipeline_module(pipeline_top_class)
    out = stage_model(run_dir, tmp_path / "staged", pipelines=[task])
    config = json.loads((out / "config.json").read_text())
    assert config["custom_pipelines"][task]["impl"] == "pipeline_top_class.TopClassPipeline"
    assert (out / "pipeline_top_class.py").is_file()
    result = python_without_hfcifar(f"""
        from PIL import Image
        from transformers import pipeline
        top = pipeline({task!r}, model={str(out)!r}, trust_remote_code=True)
        print("TOP", top(Image.new("RGB", (32, 32), "red")))
    """, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"TOP (airplane|automobile|bird|cat|deer|dog|frog|horse|ship|truck)", result.stdout)


# -- push ------------------------------------------------------------------------------------------------------
class RecordingHfApi:
    """Stands in for `huggingface_hub.HfApi`: records the calls and what the uploaded folder held."""

    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))

    def create_branch(self, repo_id, **kwargs):
        self.calls.append(("create_branch", repo_id, kwargs))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs["repo_id"], {**kwargs, "files": staged_files(kwargs["folder_path"])}))

        class Commit:
            commit_url = f"https://hub.example/{kwargs['repo_id']}/commit/abc"
            oid = "abc"

        return Commit()


def test_push_creates_the_repo_and_uploads_the_staged_folder(run_dir, staged, capsys, monkeypatch):
    secret = "hf_" + "x" * 34
    monkeypatch.setenv("HF_TOKEN", secret)
    api = RecordingHfApi()
    from hfcifar.hub import push

    args = push.build_parser().parse_args([str(run_dir), "--repo-id", "me/fastnet-tiny-cifar10", "--private",
                                           "--revision", "v1", "--commit-message", "first"])
    assert push.run(args, api=api) == 0
    names = [c[0] for c in api.calls]
    assert names == ["create_repo", "create_branch", "upload_folder"]
    assert api.calls[0][2]["private"] is True and api.calls[0][2]["exist_ok"] is True
    assert api.calls[1][2]["branch"] == "v1"
    upload = api.calls[2][2]
    assert upload["revision"] == "v1" and upload["commit_message"] == "first"
    assert upload["files"] == staged_files(staged)  # exactly what --dry-run stages
    assert not Path(upload["folder_path"]).exists()  # the scratch copy is cleaned up
    out = capsys.readouterr()
    assert secret not in out.out + out.err and "Uploaded 10 files" in out.out


def test_push_without_repo_id_is_refused_with_exit_code_2(run_dir, capsys):
    assert push_main([str(run_dir)]) == 2
    assert "--repo-id" in capsys.readouterr().err
    assert hfcifar_main(["push", str(run_dir), "--dry-run", "/nonexistent-never-written"]) == 2
    with pytest.raises(PushError, match="OWNER/NAME"):
        push_model(run_dir, "just-a-name", api=RecordingHfApi())


def test_dry_run_via_script_and_cli(run_dir, tmp_path):
    script = subprocess.run([sys.executable, str(REPO / "push_to_hub.py"), str(run_dir), "--repo-id", "me/m",
                             "--dry-run", str(tmp_path / "a")], capture_output=True, text=True, timeout=180,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert script.returncode == 0, script.stderr[-2000:]
    assert "nothing uploaded" in script.stdout
    assert hfcifar_main(["push", str(run_dir), "--repo-id", "me/m", "--dry-run", str(tmp_path / "b")]) == 0
    assert staged_files(tmp_path / "a") == staged_files(tmp_path / "b")
    card = ModelCard.load(tmp_path / "b" / "README.md")
    assert card.data.eval_results == render_card(run_dir, write=False).data.eval_results
    assert 'model="me/m"' in card.text


# -- the evaluation API's metric registry feeds the card ------------------------------------------------------
def test_a_registered_metric_flows_into_eval_results_and_the_model_index(run_dir, request):
    from hfcifar import evaluation
    from hfcifar.hub import eval_results_from

    def mean_top_probability(model, split, settings):
        assert settings.options == {"temperature": 2.0}
        return {"mean_top_probability": 0.25, "num_examples": len(split)}

    evaluation.register_metric("mean_top_probability", "Mean top probability", hub_type="confidence")(mean_top_probability)
    request.addfinalizer(lambda: evaluation.METRICS.unregister("mean_top_probability"))
    results = evaluation.evaluate_classifier(run_dir, metrics=["accuracy", "mean_top_probability"], temperature=2.0)
    assert results["metrics"] == ["accuracy", "mean_top_probability"] and results["mean_top_probability"] == 0.25
    entries = eval_results_from(results)
    assert [(e.metric_type, e.metric_name) for e in entries] == [("accuracy", "Accuracy"), ("confidence", "Mean top probability")]
    with pytest.raises(ValueError, match="already registered"):
        evaluation.register_metric("accuracy", "Accuracy")(mean_top_probability)
    with pytest.raises(ValueError, match="Unknown metric"):
        evaluation.evaluate_classifier(run_dir, metrics=["top5"])
