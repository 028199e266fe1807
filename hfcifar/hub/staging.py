"""Stage exactly the folder that goes to the Hub: weights, config, image processor, card, plots and remote code.

The staged folder loads where hfcifar is not installed: the modeling, configuration and image-processing files
are saved beside the weights and `auto_map` points the Auto classes at them (transformers' remote code), so
`AutoModelForImageClassification.from_pretrained(repo, trust_remote_code=True)` and
`pipeline("image-classification", model=repo, trust_remote_code=True)` work with torch + transformers only.
Custom pipelines (`hfcifar.pipelines`) travel the same way, listed under `custom_pipelines` in `config.json`.
Diffusion pipeline folders carry their code as diffusers' custom pipelines do (`DiffusionPipeline.from_pretrained(repo,
trust_remote_code=True)`); their `save_pretrained` writes it (`hfcifar.diffusion.pipelines`).
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from transformers import AutoImageProcessor, AutoModelForImageClassification
from transformers.pipelines import PIPELINE_REGISTRY

from ..evaluation import EVAL_RESULTS_FILE
from ..image_processing_cifar import CifarImageProcessor
from ..models import architecture_of
from ..training.callbacks import CURVES_FILE
from ..training.run import SUMMARY_FILE
from .cards import PIPELINE_INDEX, SAMPLES_FILE, CardError, find_claim_report, render_card

SAMPLES_DIR = "samples"  # DiffusionTrainer's sample grids (hfcifar.diffusion.trainer.SAMPLES_DIR)

WEIGHTS_FILE = "model.safetensors"
# Files of the run folder that are uploaded as they are, besides what `save_pretrained` writes.
EXTRA_FILES = (EVAL_RESULTS_FILE, SUMMARY_FILE, CURVES_FILE,
               "fixed_point.safetensors", "fixed_point.json")  # QFX's integer export (hfcifar.quantization)


class StagingError(ValueError):
    """The folder cannot be staged (not a loadable hfcifar model, or the staging folder is taken)."""


def check_model_folder(model_dir: str | os.PathLike) -> Path:
    """Raise `StagingError` unless `model_dir` holds a safetensors hfcifar classifier with its config."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise StagingError(f"{model_dir} is not a folder. Pass the output folder of `hfcifar train`.")
    if not (model_dir / "config.json").is_file():
        raise StagingError(f"{model_dir} has no config.json, so it is not a model folder. Pass the output folder "
                           "of `hfcifar train` (or of `save_pretrained`).")
    has_safetensors = (model_dir / WEIGHTS_FILE).is_file() or (model_dir / f"{WEIGHTS_FILE}.index.json").is_file()
    if not has_safetensors:
        pickled = sorted(p.name for p in model_dir.glob("*.bin")) + sorted(p.name for p in model_dir.glob("*.pt*"))
        hint = (f" It holds {', '.join(pickled)}: load it and re-save with `model.save_pretrained(DIR)`, which writes "
                "safetensors.") if pickled else ""
        raise StagingError(f"{model_dir} has no {WEIGHTS_FILE}; hfcifar publishes safetensors weights only.{hint}")
    return model_dir


@contextmanager
def shipping_code(cls: type, auto_class: str):
    """`cls.register_for_auto_class(auto_class)` for the duration of a save only.

    `PreTrainedModel.save_pretrained` copies the modeling file and writes `auto_map` when the *class* is registered;
    registering for good would make every later `save_pretrained` of that class in the process write remote code.
    """
    had_own = "_auto_class" in cls.__dict__
    previous = cls.__dict__.get("_auto_class")
    cls.register_for_auto_class(auto_class)
    try:
        yield
    finally:
        if had_own:
            cls._auto_class = previous
        else:
            del cls._auto_class


def _pipeline_files(tasks: list[str], staging: Path) -> dict:
    """Copy the module of each custom pipeline into `staging`; return the `custom_pipelines` entries for config.json."""
    entries = {}
    for task in tasks:
        if task not in PIPELINE_REGISTRY.supported_tasks:
            raise StagingError(f"No pipeline is registered for the task {task!r}; hfcifar's are listed by "
                               "`hfcifar.pipelines.list_pipelines()`.")
        info = dict(PIPELINE_REGISTRY.supported_tasks[task])
        cls = info["impl"]
        source = Path(inspect.getsourcefile(cls))
        shutil.copy2(source, staging / source.name)
        # The same entry `Pipeline.save_pretrained` writes: "module.Class" and the names of the model classes.
        info["impl"] = f"{source.stem}.{cls.__name__}"
        info["pt"] = [c.__name__ for c in info.get("pt", ())]
        entries[task] = info
    return entries


def stage_model(
    model_dir: str | os.PathLike,
    staging_dir: str | os.PathLike | None = None,
    repo_id: str | None = None,
    pipelines: tuple[str, ...] | list[str] = (),
    overwrite: bool = False,
    require_results: bool = True,
    **card_kwargs,
) -> Path:
    """Write the folder that would be uploaded for `model_dir` into `staging_dir` and return it.

    Args:
        model_dir: a run folder of `hfcifar train` (safetensors weights, config, `eval_results.json`).
        staging_dir: where to stage; a fresh temporary folder when `None`. An existing non-empty folder is refused
            unless `overwrite`.
        repo_id: the Hub repository, for the card's usage snippet.
        pipelines: tasks of custom pipelines (`hfcifar.pipelines`) to ship with the model.
        require_results: refuse a folder without `eval_results.json` (a card must report measured numbers).
        card_kwargs: passed to [`render_card`] (template, license, citation, claim_report).

    The folder is written next to `staging_dir` first and renamed into place, so a failure leaves no half-staged
    folder behind.
    """
    if (Path(model_dir) / PIPELINE_INDEX).is_file():
        if pipelines:
            raise StagingError("Custom transformers pipelines (--pipeline) ship with classifiers; a diffusion pipeline "
                               "folder is itself the pipeline.")
        return stage_pipeline(model_dir, staging_dir, repo_id=repo_id, overwrite=overwrite,
                              require_results=require_results, **card_kwargs)
    model_dir = check_model_folder(model_dir)
    if require_results and not (model_dir / EVAL_RESULTS_FILE).is_file():
        raise StagingError(f"{model_dir} has no {EVAL_RESULTS_FILE}: run `hfcifar eval {model_dir}` first, so the "
                           "model card reports measured results.")
    try:
        model = AutoModelForImageClassification.from_pretrained(model_dir)
    except Exception as error:  # transformers raises many types for unreadable folders
        raise StagingError(f"{model_dir} does not load with AutoModelForImageClassification.from_pretrained "
                           f"({type(error).__name__}: {error}).") from error
    if architecture_of(model.config) is None:
        raise StagingError(f"{model_dir} holds a {model.config.model_type!r} model, not an hfcifar architecture; "
                           "hfcifar stages only models whose code it can ship as remote code.")
    with _staging_folders(staging_dir, overwrite) as (staging_dir, work):
        model.config._auto_class = "AutoConfig"
        custom = _pipeline_files(list(pipelines), work)
        if custom:
            model.config.custom_pipelines = custom
        with shipping_code(type(model), "AutoModelForImageClassification"):
            model.save_pretrained(work)
        processor = _image_processor(model_dir)
        processor._auto_class = "AutoImageProcessor"
        processor.save_pretrained(work)
        _copy_results_and_card(model_dir, work, repo_id, card_kwargs)
    return staging_dir


def _copy_results_and_card(model_dir: Path, work: Path, repo_id: str | None, card_kwargs: dict) -> None:
    for name in EXTRA_FILES:
        if (model_dir / name).is_file():
            shutil.copy2(model_dir / name, work / name)
    # The claim check that trained the model sits beside the run folder, not beside the staging folder.
    report = card_kwargs.pop("claim_report", None) or find_claim_report(model_dir) or {}
    render_card(work, repo_id=repo_id, claim_report=report, **card_kwargs)


@contextmanager
def _staging_folders(staging_dir, overwrite: bool):
    """Yield the staging folder (checked) and a fresh work folder beside it; the work folder replaces the staging
    folder when the block completes and is removed when it fails (a card error becomes a `StagingError`)."""
    if staging_dir is None:
        staging_dir = tempfile.mkdtemp(prefix="hfcifar-stage-")
    staging_dir = Path(staging_dir)
    if staging_dir.exists() and any(staging_dir.iterdir()) and not overwrite:
        raise StagingError(f"{staging_dir} is not empty; choose another folder or pass overwrite=True (--overwrite).")
    staging_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".staging-", dir=staging_dir.parent))
    try:
        yield staging_dir, work
        if staging_dir.exists():
            shutil.rmtree(staging_dir)
        os.replace(work, staging_dir)
    except CardError as error:
        shutil.rmtree(work, ignore_errors=True)
        raise StagingError(str(error)) from error
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _latest_sample_grid(model_dir: Path) -> Path | None:
    grids = sorted((model_dir / SAMPLES_DIR).glob("step-*.png"), key=lambda p: int(p.stem.split("-")[-1]))
    return grids[-1] if grids else None


def stage_pipeline(
    model_dir: str | os.PathLike,
    staging_dir: str | os.PathLike | None = None,
    repo_id: str | None = None,
    overwrite: bool = False,
    require_results: bool = True,
    **card_kwargs,
) -> Path:
    """`stage_model` for a diffusion pipeline folder (`model_index.json`): the pipeline re-saved with `save_pretrained`
    (safetensors components, and the code that loads it where hfcifar is not installed: `pipeline_cifar.py` and
    custom components' modules, or diffusers' own `DDPMPipeline`), the run's result files, the last sample grid as
    `samples.png`, and the card."""
    from ..diffusion.loading import load_pipeline

    model_dir = Path(model_dir)
    if require_results and not (model_dir / EVAL_RESULTS_FILE).is_file():
        raise StagingError(f"{model_dir} has no {EVAL_RESULTS_FILE}: run `hfcifar eval {model_dir} --option "
                           "feature_extractor=CLASSIFIER_DIR` first, so the model card reports measured FID/IS.")
    try:
        pipe = load_pipeline(model_dir)
    except Exception as error:  # diffusers raises many types for unreadable folders
        raise StagingError(f"{model_dir} does not load as a diffusion pipeline ({type(error).__name__}: {error}).") from error
    with _staging_folders(staging_dir, overwrite) as (staging_dir, work):
        pipe.save_pretrained(work, safe_serialization=True)
        grid = _latest_sample_grid(model_dir)
        if grid is not None:
            shutil.copy2(grid, work / SAMPLES_FILE)
        _copy_results_and_card(model_dir, work, repo_id, card_kwargs)
    return staging_dir


def _image_processor(model_dir: Path):
    if (model_dir / "preprocessor_config.json").is_file():
        processor = AutoImageProcessor.from_pretrained(model_dir)
        if isinstance(processor, CifarImageProcessor):
            return processor
    return CifarImageProcessor()


def staged_files(staging_dir: str | os.PathLike) -> list[str]:
    """The files of a staged folder, relative and sorted (what `upload_folder` sends)."""
    root = Path(staging_dir)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def read_auto_map(staging_dir: str | os.PathLike) -> dict:
    return json.loads((Path(staging_dir) / "config.json").read_text()).get("auto_map", {})


__all__ = ["StagingError", "check_model_folder", "read_auto_map", "stage_model", "stage_pipeline", "staged_files"]
