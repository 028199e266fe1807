"""Issue 17: a published classifier artifact loads where hfcifar is not installed and does what its card says —
or refuses with the reason its card gives. (Plain classifiers: tests/test_hub.py; the certified-classification
pipeline: tests/test_randomized_smoothing.py.)"""

import json

import torch

import hfcifar
from conftest import python_without_hfcifar
from hfcifar.faults import activation_layers, clip_activations, load_clipped_model
from hfcifar.hub import render_card, stage_model


def test_the_interpreter_without_hfcifar_really_lacks_it(tmp_path):
    """The helper every "without hfcifar" test uses: hfcifar (and what `also_hide` names) will not import there, its
    submodules neither, and the code can bring hfcifar back as a user who installs it would."""
    result = python_without_hfcifar("""
        import os
        for name in ("hfcifar", "hfcifar.models", "scipy"):
            try:
                __import__(name)
                raise SystemExit(f"{name} imported")
            except ImportError:
                pass
        assert os.environ["OMP_NUM_THREADS"] == "1" and "PYTHONPATH" not in os.environ
        del sys.modules["hfcifar"]
        import hfcifar.models
        print("HIDDEN-OK")
    """, cwd=tmp_path, also_hide=("scipy",), threads=1)
    assert result.returncode == 0 and "HIDDEN-OK" in result.stdout, result.stderr[-2000:]


def _reference(model, tmp_path):
    torch.manual_seed(0)
    images = torch.rand(6, 3, 32, 32)
    with torch.no_grad():
        logits = model.eval()(images).logits
    torch.save({"images": images, "logits": logits}, tmp_path / "reference.pt")
    return images, logits


def test_a_clipped_model_loads_clipped_without_hfcifar(tmp_path):
    torch.manual_seed(0)
    plain = hfcifar.create_model("resnet20").eval()
    layers = activation_layers(plain)
    clipped = clip_activations(plain, {name: 0.05 for name in layers[:4]})  # tight thresholds: outputs change
    clipped.save_pretrained(tmp_path / "run")
    images, expected = _reference(clipped, tmp_path)
    with torch.no_grad():
        assert not torch.allclose(plain(images).logits, expected)  # the test can tell clipped from unclipped
    # hfcifar's own loading applies the thresholds in the model's constructor
    from transformers import AutoModelForImageClassification

    with torch.no_grad():
        for reloaded in (AutoModelForImageClassification.from_pretrained(tmp_path / "run"),
                         load_clipped_model(tmp_path / "run")):
            assert torch.equal(reloaded.eval()(images).logits, expected)
    staged = stage_model(tmp_path / "run", tmp_path / "staged", require_results=False)
    from hfcifar.hub.cards import CARD_NOTES

    assert "gives the clipped network" in CARD_NOTES.get("clipped-activations")(reloaded.config)
    result = python_without_hfcifar(f"""
        import torch
        from transformers import AutoModelForImageClassification
        reference = torch.load({str(tmp_path / 'reference.pt')!r})
        model = AutoModelForImageClassification.from_pretrained({str(staged)!r}, trust_remote_code=True).eval()
        clipped = [name for name, module in model.named_modules() if type(module).__name__ == "ClippedReLU"]
        assert len(clipped) == 4, clipped
        with torch.no_grad():
            logits = model(reference["images"]).logits
        assert torch.equal(logits, reference["logits"]), (logits - reference["logits"]).abs().max()
        print("CLIPPED-OK")
    """, cwd=tmp_path)
    assert result.returncode == 0 and "CLIPPED-OK" in result.stdout, result.stderr[-3000:]


def test_a_qfx_model_refuses_without_hfcifar_as_its_card_says(tmp_path):
    from transformers import AutoModelForImageClassification

    from hfcifar.quantization import quantize_model

    torch.manual_seed(0)
    model = quantize_model(hfcifar.create_model("fastnet-tiny"), 8)
    model.save_pretrained(tmp_path / "run")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["quantization_config"]["quant_method"] == "qfx"
    images, expected = _reference(model, tmp_path)
    with torch.no_grad():  # with hfcifar (imported), from_pretrained rebuilds the fixed-point model
        reloaded = AutoModelForImageClassification.from_pretrained(tmp_path / "run").eval()
        assert torch.equal(reloaded(images).logits, expected)
    staged = stage_model(tmp_path / "run", tmp_path / "staged", require_results=False)
    card = (staged / "README.md").read_text()
    first_lines = card.split("## Results")[0]
    assert "**Requires hfcifar.**" in first_lines and "import hfcifar" in card
    result = python_without_hfcifar(f"""
        from transformers import AutoModelForImageClassification
        try:
            AutoModelForImageClassification.from_pretrained({str(staged)!r}, trust_remote_code=True)
        except ImportError as error:
            print("REFUSED:", error)
        else:
            raise SystemExit("a QFX model loaded without hfcifar")
    """, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "REFUSED:" in result.stdout and "pip install hfcifar" in result.stdout and "QFX" in result.stdout


def test_cards_of_plain_models_say_nothing_is_required(tmp_path):
    hfcifar.create_model("fastnet-tiny").save_pretrained(tmp_path / "plain")
    card = str(render_card(tmp_path / "plain", write=False))
    assert "Requires hfcifar" not in card and "import hfcifar  #" not in card
