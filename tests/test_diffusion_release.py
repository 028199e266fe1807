"""The diffusion release path: `hfcifar eval PIPELINE_DIR` (FID/IS) → card → staged upload folder."""

import json
import os
import subprocess
import sys

import pytest
import torch
from huggingface_hub import ModelCard

from hfcifar.diffusion import CifarClassConditionalPipeline, train_diffusion
from hfcifar.hub.staging import StagingError, stage_model, staged_files
from hfcifar.training import train_classifier

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def runs(cifar_source, tmp_path_factory):
    root = tmp_path_factory.mktemp("release")
    train_diffusion("ddpm-tiny-cfg", dataset=cifar_source, output_dir=root / "ddpm", max_steps=2, batch_size=8,
                    eval_strategy="no", disable_tqdm=True, num_sample_images=10, sample_inference_steps=2)
    train_classifier("fastnet-tiny", dataset=cifar_source, output_dir=root / "judge", max_steps=2, disable_tqdm=True)
    return root


def test_staging_refuses_an_unevaluated_pipeline(runs, tmp_path):
    with pytest.raises(StagingError, match="feature_extractor"):
        stage_model(runs / "ddpm", tmp_path / "staged")


def test_eval_card_and_staging_of_a_pipeline_folder(runs, tmp_path):
    command = [sys.executable, "-m", "hfcifar.cli", "eval", str(runs / "ddpm"), "--option",
               f"feature_extractor={runs / 'judge'}", "--option", "num_samples=20", "--option", "num_inference_steps=2",
               "--option", "guidance_scale=2", "--batch-size", "10"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((runs / "ddpm" / "eval_results.json").read_text())
    assert results["metrics"] == ["fid", "inception_score"] and results["num_generated"] == 20
    assert results["fid"] > 0 and results["sampler"] == {"scheduler": "ddim", "num_inference_steps": 2}
    assert results["sampling"]["guidance_scale"] == 2 and "fastnet" in results["feature_extractor"]

    staged = stage_model(runs / "ddpm", tmp_path / "staged", repo_id="me/ddpm-tiny")
    files = staged_files(staged)
    assert {"model_index.json", "unet/diffusion_pytorch_model.safetensors", "scheduler/scheduler_config.json",
            "eval_results.json", "samples.png", "README.md", "pipeline_cifar.py"} <= set(files)  # the pipeline as code
    assert json.loads((staged / "model_index.json").read_text())["_class_name"] == ["pipeline_cifar",
                                                                                   "CifarClassConditionalPipeline"]
    card = ModelCard.load(staged / "README.md")
    assert card.data.library_name == "diffusers" and card.data.pipeline_tag == "unconditional-image-generation"
    entries = {e.metric_type: e for e in card.data.eval_results}
    assert entries["fid"].metric_value == pytest.approx(results["fid"]) and entries["fid"].metric_args["num_examples"] == 20
    assert "Classifier-Free Diffusion Guidance" in card.text and "not comparable to published FIDs" in card.text
    # the staged folder samples exactly like the run folder
    a = CifarClassConditionalPipeline.from_pretrained(runs / "ddpm")
    b = CifarClassConditionalPipeline.from_pretrained(staged)
    for pipe in (a, b):
        pipe.set_progress_bar_config(disable=True)
    kwargs = dict(class_labels=[1, 7], num_inference_steps=2, output_type="pt")
    torch.testing.assert_close(a(generator=torch.manual_seed(0), **kwargs).images,
                               b(generator=torch.manual_seed(0), **kwargs).images)


def test_eval_of_a_pipeline_needs_a_feature_extractor(runs):
    result = subprocess.run([sys.executable, "-m", "hfcifar.cli", "eval", str(runs / "ddpm")], capture_output=True,
                            text=True, timeout=300, env=ENV)
    assert result.returncode != 0 and "feature_extractor" in result.stderr
