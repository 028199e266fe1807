"""Diffusion pipeline folders travel as code: every artifact kind loads where hfcifar is not installed and samples
exactly as hfcifar does (DDPM as diffusers' own `DDPMPipeline`; class-conditional CFG, latent with its VAE, an
alias-free UNet and a `USFScheduler` as remote code)."""

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMPipeline, DDPMScheduler, DiffusionPipeline, DPMSolverMultistepScheduler

from conftest import python_without_hfcifar
from hfcifar.diffusion import (
    CifarClassConditionalPipeline,
    CifarDDPMPipeline,
    CifarLatentDiffusionPipeline,
    create_unet,
    create_vae,
    load_pipeline,
    unet_config,
)
from hfcifar.diffusion.autoencoder import latent_shape
from hfcifar.diffusion.pipelines import PIPELINE_MODULE, ship_module
from hfcifar.hub.staging import stage_model
from hfcifar.methods.alias_free_diffusion import AliasFreeUNet2DModel
from hfcifar.methods.usf_s3 import USFScheduler, make_solver_schedule

PACKAGE = Path(__file__).resolve().parents[1] / "hfcifar"
# What a module shipped with a pipeline folder may import: the standard library, torch, numpy, PIL and diffusers
# (a venv with torch + transformers + diffusers has no scipy).
SHIPPED_MODULES = [PACKAGE / "diffusion" / "pipelines.py",
                   PACKAGE / "methods" / "alias_free_diffusion" / "modeling_alias_free_unet.py",
                   PACKAGE / "methods" / "usf_s3" / "scheduling_usf.py"]
ALLOWED_IMPORTS = {"__future__", "ast", "dataclasses", "inspect", "json", "math", "pathlib", "re", "shutil", "typing",
                   "numpy", "PIL", "torch", "diffusers"}

# name -> (sampling arguments, how diffusers must load it without hfcifar)
KINDS = {
    "ddpm": (dict(batch_size=2, num_inference_steps=3), "diffusers"),
    "cfg": (dict(class_labels=[1, 7], guidance_scale=2.0, num_inference_steps=3), "remote"),
    "latent": (dict(class_labels=[2, 5], guidance_scale=2.0, num_inference_steps=3), "remote"),
    "alias-free": (dict(batch_size=2, num_inference_steps=3), "remote"),
    "usf": (dict(batch_size=2, num_inference_steps=3), "remote"),
}

def without_hfcifar(code: str, cwd: Path) -> subprocess.CompletedProcess:
    """torch + transformers + diffusers only: neither hfcifar nor scipy (diffusers does not install it), one thread as
    in `sample`."""
    return python_without_hfcifar(code, cwd, timeout=300, also_hide=("scipy",), threads=1)


def quiet(pipe):
    pipe.set_progress_bar_config(disable=True)
    return pipe


def make_pipelines() -> dict:
    torch.manual_seed(0)
    vae = create_vae("vae-tiny")
    channels, side = latent_shape(vae)
    latent_unet = create_unet("ddpm-tiny-cfg", in_channels=channels, out_channels=channels, sample_size=side)
    return {
        "ddpm": CifarDDPMPipeline(create_unet("ddpm-tiny"), DDPMScheduler()),
        "cfg": CifarClassConditionalPipeline(create_unet("ddpm-tiny-cfg"), DDIMScheduler()),
        "latent": CifarLatentDiffusionPipeline(vae, latent_unet, DDIMScheduler()),
        "alias-free": CifarDDPMPipeline(AliasFreeUNet2DModel(**unet_config("ddpm-tiny")), DDIMScheduler()),
        "usf": CifarDDPMPipeline(create_unet("ddpm-tiny"), USFScheduler(solver_schedule=make_solver_schedule(3))),
    }


def sample(pipe, kind: str) -> np.ndarray:
    """hfcifar's own samples, with one thread as in the subprocess (float32 sums differ with the thread count)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return quiet(pipe)(generator=torch.manual_seed(0), output_type="np", **KINDS[kind][0]).images
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """Each kind saved as a run folder, staged for the Hub, and hfcifar's own samples of it."""
    root = tmp_path_factory.mktemp("remote-code")
    folders, expected = {}, {}
    for kind, pipe in make_pipelines().items():
        pipe.save_pretrained(root / "runs" / kind)
        folders[kind] = stage_model(root / "runs" / kind, root / "staged" / kind, repo_id=f"me/{kind}",
                                    require_results=False)
        expected[kind] = sample(pipe, kind)
    return root, folders, expected


def test_each_kind_loads_without_hfcifar_and_samples_the_same(staged):
    root, folders, expected = staged
    result = without_hfcifar(f'''
        import json
        import numpy as np
        import torch
        from diffusers import DiffusionPipeline

        kinds = {json.dumps({kind: KINDS[kind][0] for kind in KINDS})}
        folders = {json.dumps({kind: str(folder) for kind, folder in folders.items()})}
        report = {{}}
        for kind, kwargs in kinds.items():
            pipe = DiffusionPipeline.from_pretrained(folders[kind], trust_remote_code=True)
            pipe.set_progress_bar_config(disable=True)
            images = pipe(generator=torch.manual_seed(0), output_type="np", **kwargs).images
            np.save(f"{{kind}}.npy", images)
            report[kind] = [type(pipe).__module__, type(pipe).__name__, type(pipe.unet).__module__,
                            type(pipe.scheduler).__module__]
        # no remote code at all for DDPM; the others are refused without trust_remote_code, with diffusers' reason
        assert type(DiffusionPipeline.from_pretrained(folders["ddpm"])).__name__ == "DDPMPipeline"
        try:
            DiffusionPipeline.from_pretrained(folders["cfg"])
            raise SystemExit("loaded custom code without trust_remote_code")
        except ValueError as error:
            assert "trust_remote_code=True" in str(error), error
        print("REPORT", json.dumps(report))
    ''', cwd=root)
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.split("REPORT", 1)[1])
    assert report["ddpm"][:2] == ["diffusers.pipelines.ddpm.pipeline_ddpm", "DDPMPipeline"]
    for kind in ("cfg", "latent", "alias-free", "usf"):
        assert report[kind][0] == f"diffusers_modules.local.{PIPELINE_MODULE}", report[kind]
    assert report["cfg"][1] == "CifarClassConditionalPipeline" and report["latent"][1] == "CifarLatentDiffusionPipeline"
    assert report["alias-free"][2] == "diffusers_modules.local.modeling_alias_free_unet"
    assert report["usf"][3] == "diffusers_modules.local.scheduling_usf"
    for kind in KINDS:
        remote = np.load(root / f"{kind}.npy")
        assert remote.shape == expected[kind].shape and remote.std() > 0, kind
        np.testing.assert_allclose(remote, expected[kind], rtol=0, atol=1e-6, err_msg=kind)


def test_staged_folders_name_their_code_and_load_with_hfcifars_classes(staged):
    _, folders, expected = staged
    code = {kind: sorted(str(p.relative_to(folder)) for p in folder.rglob("*.py")) for kind, folder in folders.items()}
    assert code["ddpm"] == [] and code["cfg"] == code["latent"] == [f"{PIPELINE_MODULE}.py"]
    assert code["alias-free"] == [f"{PIPELINE_MODULE}.py", "unet/modeling_alias_free_unet.py"]
    assert code["usf"] == [f"{PIPELINE_MODULE}.py", "scheduler/scheduling_usf.py"]
    index = {kind: json.loads((folder / "model_index.json").read_text()) for kind, folder in folders.items()}
    assert index["ddpm"]["_class_name"] == "DDPMPipeline" and index["ddpm"]["unet"] == ["diffusers", "UNet2DModel"]
    assert index["cfg"]["_class_name"] == [PIPELINE_MODULE, "CifarClassConditionalPipeline"]
    assert index["latent"]["vae"] == ["diffusers", "AutoencoderKL"] and (folders["latent"] / "vae").is_dir()
    assert index["alias-free"]["unet"] == ["modeling_alias_free_unet", "AliasFreeUNet2DModel"]
    assert index["usf"]["scheduler"] == ["scheduling_usf", "USFScheduler"]
    classes = {"ddpm": CifarDDPMPipeline, "cfg": CifarClassConditionalPipeline, "latent": CifarLatentDiffusionPipeline,
               "alias-free": CifarDDPMPipeline, "usf": CifarDDPMPipeline}
    for kind, folder in folders.items():  # hfcifar's loading: its own classes, no trust_remote_code
        pipe = load_pipeline(folder)
        assert type(pipe) is classes[kind]
        assert all(type(c).__module__.split(".")[0] in ("diffusers", "hfcifar") for c in pipe.components.values())
        np.testing.assert_array_equal(sample(pipe, kind), expected[kind], err_msg=kind)
    assert type(load_pipeline(folders["alias-free"]).unet) is AliasFreeUNet2DModel
    assert type(CifarDDPMPipeline.from_pretrained(folders["usf"]).scheduler) is USFScheduler


def test_the_card_snippet_runs_without_hfcifar(staged):
    """The card's Python block, with the repository id pointing at the staged folder, runs where hfcifar is not
    installed (with 2 sampling steps instead of the card's 50, to keep the test short)."""
    root, folders, _ = staged
    script = []
    for kind, remote in (("cfg", True), ("ddpm", False)):
        card = (folders[kind] / "README.md").read_text()
        block = re.findall(r"```python\n(.*?)```", card, flags=re.S)[0]
        assert ("trust_remote_code=True" in block) is remote and f"me/{kind}" in block
        assert "num_inference_steps=50" in block
        if remote:
            assert f"`{PIPELINE_MODULE}.py`" in card and "CifarClassConditionalPipeline.from_pretrained" in card
        else:
            assert "diffusers' own `DDPMPipeline`" in card and "CifarDDPMPipeline.from_pretrained" in card
        (root / kind).mkdir()
        script += [f"os.chdir({str(root / kind)!r})",
                   block.replace(f"me/{kind}", str(folders[kind])).replace("inference_steps=50", "inference_steps=2")]
    result = without_hfcifar("import os\n" + "\n".join(script), cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (root / "cfg" / "sample.png").is_file() and (root / "ddpm" / "sample.png").is_file()


@pytest.mark.parametrize("scheduler_class", [DDPMScheduler, DDIMScheduler])
def test_diffusers_ddpm_pipeline_samples_as_cifar_ddpm_pipeline(scheduler_class):
    torch.manual_seed(0)
    unet, scheduler = create_unet("ddpm-tiny"), scheduler_class(num_train_timesteps=100)
    ours, theirs = quiet(CifarDDPMPipeline(unet, scheduler)), quiet(DDPMPipeline(unet, scheduler))
    for output_type in ("np", "pt"):
        kwargs = dict(batch_size=3, num_inference_steps=4, output_type=output_type)
        a = ours(generator=torch.manual_seed(1), **kwargs).images
        b = theirs(generator=torch.manual_seed(1), **kwargs).images
        assert type(a) is type(b)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_what_saves_as_diffusers_ddpm_pipeline(tmp_path):
    torch.manual_seed(0)

    def saved_class(pipe, name):
        pipe.save_pretrained(tmp_path / name)
        return json.loads((tmp_path / name / "model_index.json").read_text())["_class_name"]

    assert saved_class(CifarDDPMPipeline(create_unet("ddpm-tiny"), DDIMScheduler()), "ddim") == "DDPMPipeline"
    # a scheduler DDPMPipeline does not step the same way, or a custom UNet: saved as code
    assert saved_class(CifarDDPMPipeline(create_unet("ddpm-tiny"), DPMSolverMultistepScheduler()), "dpm") == \
        [PIPELINE_MODULE, "CifarDDPMPipeline"]
    assert (tmp_path / "dpm" / f"{PIPELINE_MODULE}.py").is_file()
    assert not (tmp_path / "ddim" / f"{PIPELINE_MODULE}.py").exists()
    assert type(load_pipeline(tmp_path / "ddim")) is CifarDDPMPipeline  # hfcifar loads its own class
    # push_to_hub's temporary save and save_config write the same index
    pipe = CifarClassConditionalPipeline(create_unet("ddpm-tiny-cfg"), DDPMScheduler())
    pipe.save_config(tmp_path / "config-only")
    assert json.loads((tmp_path / "config-only" / "model_index.json").read_text())["_class_name"][0] == PIPELINE_MODULE


def test_folders_of_older_hfcifar_versions_still_load(tmp_path):
    """Before pipelines travelled as code, model_index.json named the class and hfcifar's module paths."""
    torch.manual_seed(0)
    pipe = quiet(CifarDDPMPipeline(AliasFreeUNet2DModel(**unet_config("ddpm-tiny")),
                                   USFScheduler(solver_schedule=make_solver_schedule(3))))
    pipe.save_pretrained(tmp_path)
    for path in tmp_path.rglob("*.py"):
        path.unlink()
    index = json.loads((tmp_path / "model_index.json").read_text())
    index.update(_class_name="CifarDDPMPipeline",
                 unet=["hfcifar.methods.alias_free_diffusion.modeling_alias_free_unet", "AliasFreeUNet2DModel"],
                 scheduler=["hfcifar.methods.usf_s3.scheduling_usf", "USFScheduler"])
    (tmp_path / "model_index.json").write_text(json.dumps(index))
    loaded = load_pipeline(tmp_path)
    assert type(loaded) is CifarDDPMPipeline
    assert (type(loaded.unet), type(loaded.scheduler)) == (AliasFreeUNet2DModel, USFScheduler)
    kwargs = dict(batch_size=2, num_inference_steps=3, output_type="pt")
    torch.testing.assert_close(quiet(loaded)(generator=torch.manual_seed(0), **kwargs).images,
                               pipe(generator=torch.manual_seed(0), **kwargs).images, rtol=0, atol=0)


def test_a_component_whose_module_cannot_travel_alone_is_refused(tmp_path, monkeypatch):
    package = tmp_path / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text("STEPS = 3\n")
    for name, line in (("relative", "from .helpers import STEPS"), ("absolute", "from mypkg.helpers import STEPS")):
        (package / f"scheduling_{name}.py").write_text(f"from diffusers import DDIMScheduler\n{line}\n\n\n"
                                                       "class MyScheduler(DDIMScheduler):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from mypkg.scheduling_absolute import MyScheduler as Absolute
    from mypkg.scheduling_relative import MyScheduler as Relative

    for cls, imported in ((Relative, r"\.helpers"), (Absolute, r"mypkg\.helpers")):
        pipe = CifarDDPMPipeline(create_unet("ddpm-tiny"), cls())
        with pytest.raises(ValueError, match=rf"MyScheduler cannot travel with a saved pipeline: scheduling_\w+\.py "
                                             rf"imports {imported}\. A module shipped .* one self-contained file"):
            pipe.save_pretrained(tmp_path / "out")
    assert ship_module(CifarDDPMPipeline, tmp_path / "ok", "copy") == "copy" and (tmp_path / "ok" / "copy.py").is_file()


@pytest.mark.parametrize("path", SHIPPED_MODULES, ids=lambda p: p.name)
def test_shipped_modules_import_only_the_standard_library_torch_numpy_and_diffusers(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots = {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert not node.level, f"{path.name} has a relative import (.{node.module}): it ships as one file"
            roots = {node.module.split(".")[0]}
        else:
            continue
        assert roots <= ALLOWED_IMPORTS, f"{path.name} imports {roots - ALLOWED_IMPORTS}"
