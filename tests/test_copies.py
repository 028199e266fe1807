import ast
from pathlib import Path

import pytest

from hfcifar.models import ARCHITECTURES
from hfcifar.utils.check_copies import PACKAGE_ROOT, find_drifted_copies

SHARED_MODELING = ["check_pixel_values", "PixelNormalization", "classification_loss", "ClippedReLU",
                   "apply_clipped_activations"]
SHARED_CONFIG = ["CIFAR10_LABELS", "CIFAR10_MEAN", "CIFAR10_STD", "default_cifar10_labels", "check_positive",
                 "check_image_fields", "check_quantization_loadable"]


def test_no_copy_has_drifted():
    assert find_drifted_copies() == []


def test_a_drifted_copy_is_caught(tmp_path):
    source = (PACKAGE_ROOT / "models" / "fastnet" / "modeling_fastnet.py").read_text()
    drifted = source.replace("return nn.functional.cross_entropy(logits, labels)", "return nn.functional.nll_loss(logits, labels)")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "modeling_copy.py").write_text(drifted)
    problems = find_drifted_copies(tmp_path / "pkg")
    assert len(problems) == 1 and "classification_loss differs" in problems[0]


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_every_model_file_carries_the_shared_blocks(name):
    folder = PACKAGE_ROOT / "models" / name
    modeling = (folder / f"modeling_{name}.py").read_text()
    config = (folder / f"configuration_{name}.py").read_text()
    for block in SHARED_MODELING:
        assert f"# Copied from hfcifar.models.fastnet.modeling_fastnet.{block}\n" in modeling, block
    for block in SHARED_CONFIG:
        assert f"# Copied from hfcifar.models.fastnet.configuration_fastnet.{block}\n" in config, block


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_model_files_import_only_torch_transformers_and_their_sibling(name):
    folder = PACKAGE_ROOT / "models" / name
    allowed = {"torch", "transformers", "math", "typing", "dataclasses", "collections", "__future__"}
    for path in (folder / f"modeling_{name}.py", folder / f"configuration_{name}.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative import: only the sibling configuration file
                    assert node.module == f"configuration_{name}", f"{path.name} imports .{node.module}"
                    continue
                roots = {node.module.split(".")[0]}
            else:
                continue
            assert roots <= allowed, f"{path.name} imports {roots - allowed}"
