"""Model cards rendered from what a run measured.

`render_card(model_dir)` reads the run folder — `config.json`, `eval_results.json` (the evaluation API),
`train_summary.json` (`hfcifar train`) and, when a claim check trained the model, the check's `report.json` —
and writes `README.md` through `huggingface_hub.ModelCard.from_template` with a template of `model_cards/`.
The YAML metadata holds a `model-index` with one entry per measured metric, each with its dataset, split and
number of images; nothing in the card is typed in by hand.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from transformers import AutoConfig, PreTrainedConfig

from ..data import HUB_DATASET
from ..evaluation import EVAL_RESULTS_FILE, METRICS, training_summary
from ..models import architecture_of
from ..registry import Registry
from ..training.callbacks import CURVES_FILE

TEMPLATES = Path(__file__).parent / "model_cards"
CARD_FILE = "README.md"
REPORT_FILE = "report.json"
DEFAULT_REPO_ID = "YOUR-USERNAME/MODEL-NAME"
TASK = ("image-classification", "Image Classification")
GENERATION_TASK = ("unconditional-image-generation", "Unconditional Image Generation")
PIPELINE_INDEX = "model_index.json"
SAMPLES_FILE = "samples.png"
DIFFUSION_CITATIONS = {
    "ddpm": """@inproceedings{ho2020denoising,
  title     = {Denoising Diffusion Probabilistic Models},
  author    = {Ho, Jonathan and Jain, Ajay and Abbeel, Pieter},
  booktitle = {Advances in Neural Information Processing Systems},
  year      = {2020}
}""",
    "cfg": """@article{ho2022classifier,
  title   = {Classifier-Free Diffusion Guidance},
  author  = {Ho, Jonathan and Salimans, Tim},
  journal = {arXiv preprint arXiv:2207.12598},
  year    = {2022}
}""",
    "latent": """@inproceedings{rombach2022high,
  title     = {High-Resolution Image Synthesis with Latent Diffusion Models},
  author    = {Rombach, Robin and Blattmann, Andreas and Lorenz, Dominik and Esser, Patrick and Ommer, Bj{\"o}rn},
  booktitle = {IEEE/CVF Conference on Computer Vision and Pattern Recognition},
  year      = {2022}
}""",
}

CIFAR10_CITATION = """@techreport{krizhevsky2009learning,
  title       = {Learning Multiple Layers of Features from Tiny Images},
  author      = {Krizhevsky, Alex},
  institution = {University of Toronto},
  year        = {2009}
}"""


class CardError(ValueError):
    """The folder cannot be carded (not a model folder, or its result files are malformed)."""


@dataclass(frozen=True)
class RenderedResult:
    """One row of the card's results table (and one model-index entry)."""

    name: str
    value: str
    dataset: str
    split: str
    num_examples: int | str


#: Notes a card adds for what its config carries (a quantization scheme, clipped activations, …): name →
#: `note(config) -> str | None`. Families write the note next to their mechanism; the method that uses it registers
#: it (`provides=(("card note", NAME, "module:attr"),)`), so this module names no method.
CARD_NOTES: Registry[Callable[[PreTrainedConfig], str | None]] = Registry("card note")
#: What a model needs beyond torch + transformers to load as its card says (QFX's quantizer): name →
#: `requirement(config) -> str | None`, shown in the card's first lines and in its usage snippet.
CARD_REQUIREMENTS: Registry[Callable[[PreTrainedConfig], str | None]] = Registry("card requirement")


def list_templates() -> list[str]:
    """The names of the card templates (one per family; `generic` fits any model)."""
    return sorted(p.stem for p in TEMPLATES.glob("*.md"))


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CardError(f"{path} is not valid JSON ({error}); re-create it (e.g. `hfcifar eval`).") from error


def claim_section(report: dict | None) -> str | None:
    """The card's "Claim check" section, the same for every template: each hypothesis with its estimate ± SE, 95%
    interval, n and sub-verdict, the verdict and the command that regenerates it (`report.json` of claim checks v2)."""
    if not report:
        return None
    lines = [f"## Claim check: `hfcifar reproduce {report['slug']}`", "", f"> {report['claim']}", ""]
    if "sub_verdicts" not in report:  # a report written before claim checks v2: no uncertainty was recorded
        lines += [f"**{report.get('verdict')}** (a v1 report, without standard errors): {report.get('reason', '')}"]
        return "\n".join(lines)
    from ..reproduce.report import estimate_text

    lines += ["| Hypothesis | Kind | PASS iff | Measured ± SE [95% interval] | n (images, seeds) | Paper | Verdict |",
              "|---|---|---|---|---|---|---|"]
    for row in report["sub_verdicts"]:
        n = row.get("n") or {}
        paper = "—" if row.get("paper_value") is None else f"{row['paper_value']:.4g} ({row['magnitude']})"
        lines.append(f"| {row['statement']} | {row['kind']} | {row['rule']} | {estimate_text(row)} | "
                     f"{n.get('images', '—')}, {n.get('seeds', '—')} | {paper} | {row['verdict']} |")
    prov = report.get("provenance", {})
    minutes, seconds = divmod(float(report.get("wall_time_seconds") or 0), 60)
    lines += ["", f"**{report['verdict']}**: {report['reason']}.", "",
              f"Scale `{report['scale']}`, seeds {report['seeds']}, {int(minutes)} min {seconds:.0f} s on "
              f"{prov.get('device', '?')} ({prov.get('threads', '?')} threads). Regenerate: `{prov.get('command', '')}`"]
    return "\n".join(lines)


def find_claim_report(model_dir: Path) -> dict | None:
    """The report of the claim check that trained this model: `report.json` in the folder or its parent."""
    for folder in (model_dir, model_dir.parent):
        report = _read_json(folder / REPORT_FILE)
        if report and "verdict" in report:
            return report
    return None


def _dataset_name(source: str) -> str:
    if source == HUB_DATASET:
        return "CIFAR-10"
    return f"CIFAR-10 ({Path(source).name or source})"


def eval_results_from(results: dict, task: tuple[str, str] = TASK) -> list[EvalResult]:
    """The model-index entries of an `eval_results.json`: one per registered metric it holds."""
    source = str(results.get("dataset") or HUB_DATASET)
    split = str(results.get("split", "test"))
    shared_args = {}
    if results.get("carved_from"):
        shared_args["held_out_from"] = results["carved_from"]
    if source != HUB_DATASET:
        shared_args["source"] = Path(source).name or source
    counts = results.get("metric_num_examples") or {}
    entries = []
    for name in results.get("metrics") or [m for m in METRICS if m in results]:
        if name not in METRICS or results.get(name) is None:
            continue
        metric = METRICS[name]
        count = counts.get(name, results.get("num_examples"))
        entries.append(EvalResult(
            task_type=task[0], task_name=task[1],
            dataset_type=HUB_DATASET, dataset_name=_dataset_name(source), dataset_config="plain_text",
            dataset_split=split, dataset_args=shared_args or None,
            metric_type=metric.hub_type, metric_name=metric.pretty_name, metric_value=float(results[name]),
            # how the metric was measured, when that matters (an attack and its ε, a noise level): `metric_configs`
            metric_config=(results.get("metric_configs") or {}).get(name),
            # per metric, not per dataset: the Hub groups metrics of one split under one dataset entry, and an attack
            # may run on fewer images than the accuracy next to it
            metric_args={"num_examples": int(count)} if count is not None else None,
        ))
    return entries


def _count(value) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _format_value(value: float, hub_type: str) -> str:
    return f"{100 * value:.2f}%" if "accuracy" in hub_type or hub_type == "sparsity" else f"{value:.4g}"


def _training_rows(summary: dict) -> list[tuple[str, str]]:
    if not summary:
        return []
    generator = summary.get("model_type") == "diffusion"
    args = summary.get("training_arguments", {})
    batch = args.get("per_device_train_batch_size")
    processes = summary.get("num_processes", 1)
    augmentation = [f"random crop (reflect pad {args['crop_padding']})" if args.get("crop_padding") else None,
                    "horizontal flip" if args.get("flip", True) else None,
                    f"Cutout {args['cutout_size']}" if args.get("cutout_size") else None]
    rows = [
        ("Model", f"`{summary.get('model')}` ({summary.get('num_parameters', 0) / 1e6:.2f}M parameters)"),
        ("Recipe", f"`{summary.get('recipe')}`"),
        ("Trainer", f"`{summary['trainer']}`" + (f" (`--trainer {summary['trainer_name']}`)" if summary.get("trainer_name")
                                                 else "")) if summary.get("trainer") else None,
        ("Training data", f"{_count(summary.get('num_train_examples'))} images of {_dataset_name(str(summary.get('dataset')))}"),
        ("Held-out data", f"{_count(summary.get('num_eval_examples'))} images ({summary.get('eval_split')} split), never trained on"),
        ("Optimizer", f"{args.get('optim', 'adamw')} ({args.get('optim_args') or 'defaults'}), "
                      f"weight decay {args.get('weight_decay', 0)}"),
        ("Learning rate", f"{args.get('learning_rate')} peak, {args.get('lr_scheduler_type', 'linear')} schedule"
                          + (f", warm-up {args['warmup_steps']}" if args.get("warmup_steps") else "")),
        ("Batch size", f"{batch} per process × {processes} process(es)" if batch else "default"),
        None if generator else ("Label smoothing", str(args.get("label_smoothing_factor", 0.0))),
        ("Augmentation", ", ".join(a for a in augmentation if a) or "none"),
        None if generator else ("Test-time augmentation", "flip (logits averaged)" if summary.get("tta") else "none"),
        ("Length", f"{summary.get('global_step')} steps, {float(summary.get('epochs') or 0):.1f} epochs"
                   + (" (stopped by the time budget)" if summary.get("stopped_by_time_budget") else "")),
        ("Wall time", f"{float(summary.get('train_runtime_seconds') or 0):.0f} s on {summary.get('device')}, "
                      f"torch {summary.get('torch_version')}"),
        ("Seed", str(summary.get("seed"))),
    ]
    rows = [row for row in rows if row is not None]
    if generator:
        held_out = f"{_count(summary.get('num_eval_examples') or '—')} images ({summary.get('eval_split')} split): " \
                   f"denoising loss {float(summary.get('eval_loss') or 0):.4f}"
        rows = [("Held-out data", held_out) if name == "Held-out data" else (name, text) for name, text in rows]
    rows += [tuple(row) for row in summary.get("card_rows", [])]  # a method trainer's own rows (`method_summary`)
    return rows


def _limitations(rows: list[RenderedResult], results: dict | None, summary: dict) -> list[str]:
    lines = []
    count = ((results or {}).get("metric_num_examples") or {}).get("accuracy") or (results or {}).get("num_examples")
    if results and results.get("accuracy") is not None and count:
        p, n = float(results["accuracy"]), int(count)
        lines.append(f"Accuracy was measured on {n} images: one standard error is ±{100 * math.sqrt(p * (1 - p) / n):.1f} "
                     "points, so small differences between models are not significant.")
    if results and results.get("split") == "validation":
        lines.append("The validation images come from CIFAR-10's training set (held out before training), not from "
                     "the official 10,000-image test set; accuracy there may differ.")
    if summary.get("dataset") and summary["dataset"] != HUB_DATASET:
        lines.append(f"Trained on {_dataset_name(summary['dataset'])}: {_count(summary.get('num_train_examples'))} training "
                     "images, not the full 50,000 of CIFAR-10.")
    lines.append("CIFAR-10 has 10 classes of 32×32 photographs; the model is not meant for other images or classes.")
    return lines


def render_card(
    model_dir: str | os.PathLike,
    repo_id: str | None = None,
    template: str | None = None,
    license: str = "apache-2.0",
    claim_report: str | os.PathLike | dict | None = None,
    citation: str | None = None,
    write: bool = True,
) -> ModelCard:
    """Render the model card of a run folder and write it to `model_dir/README.md`.

    Args:
        model_dir: a folder with `config.json` (and, for measured results, `eval_results.json`).
        repo_id: the Hub repository the card's usage snippet loads from (placeholder when `None`).
        template: a template name from `model_cards/` (`list_templates()`); default `classifier`.
        license: the license in the card's metadata.
        claim_report: a claim check's `report.json` (path or dict); found in the folder or its parent if `None`.
        citation: extra bibtex (a method's paper); architecture, claim and CIFAR-10 citations are added.
        write: write `README.md` (atomically); `False` only returns the card.
    """
    model_dir = Path(model_dir)
    if (model_dir / PIPELINE_INDEX).is_file():
        return render_pipeline_card(model_dir, repo_id=repo_id, template=template, license=license,
                                    claim_report=claim_report, citation=citation, write=write)
    if not (model_dir / "config.json").is_file():
        raise CardError(f"{model_dir} has no config.json: point render_card at a folder written by `hfcifar train` "
                        "or `save_pretrained`.")
    template = template or "classifier"
    if template not in list_templates():
        raise CardError(f"Unknown card template {template!r}; available: {', '.join(list_templates())}.")
    config = AutoConfig.from_pretrained(model_dir)
    results = _read_json(model_dir / EVAL_RESULTS_FILE)
    summary = training_summary(model_dir)
    if isinstance(claim_report, (str, os.PathLike)):
        claim_report = _read_json(Path(claim_report))
    report = claim_report if claim_report is not None else find_claim_report(model_dir)

    eval_results = eval_results_from(results) if results else []
    rows = [
        RenderedResult(e.metric_name + (f" ({e.metric_config})" if e.metric_config else ""),
                       _format_value(e.metric_value, e.metric_type), e.dataset_name,
                       e.dataset_split, (e.metric_args or {}).get("num_examples") or "—")
        for e in eval_results
    ]
    notes = []
    if results and results.get("carved_from"):
        carved = results["carved_from"]
        size = carved.get("validation_size")
        share = f"{100 * size:g}%" if isinstance(size, float) and size < 1 else f"{size}"
        notes.append(f"`validation` = {share} of the `{carved.get('split')}` images, held out before training "
                     f"(stratified by class, seed {carved.get('split_seed')}); the model never trained on them.")
    if results and results.get("tta"):
        notes.append("Evaluated with flip test-time augmentation (logits of each image and its mirror averaged).")
    notes += [note for name in CARD_NOTES.names() if (note := CARD_NOTES.get(name)(config))]
    requirements = [text for name in CARD_REQUIREMENTS.names() if (text := CARD_REQUIREMENTS.get(name)(config))]

    arch = architecture_of(config)
    citations = [c for c in (citation, (report or {}).get("citation"), arch.citation(config) if arch else None,
                             CIFAR10_CITATION) if c]
    name = summary.get("model") or config.model_type.removeprefix("hfcifar-")
    slug = (report or {}).get("slug")
    tags = ["hfcifar", "image-classification", "cifar10", config.model_type] + ([slug] if slug else [])
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag="image-classification",
        license=license,
        datasets=[HUB_DATASET],
        metrics=sorted({e.metric_type for e in eval_results}) or None,
        tags=tags,
        model_name=repo_id.split("/")[-1] if repo_id else name,
        eval_results=eval_results or None,
    )
    params = summary.get("num_parameters") or None
    description = (
        f"A `{name}` CIFAR-10 classifier"
        + (f" ({params / 1e6:.2f}M parameters)" if params else "")
        + (f", trained with hfcifar's `{summary['recipe']}` recipe" if summary.get("recipe") else "")
        + (f" by the claim check of `{slug}`" if slug else "")
        + ". Architecture and weights are a `transformers` `PreTrainedModel` "
        f"(`model_type: {config.model_type}`) saved as safetensors."
    )
    claim = claim_section(report)
    card = ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATES / f"{template}.md"),
        title=repo_id.split("/")[-1] if repo_id else f"{name} on CIFAR-10",
        description=description,
        repo_id=repo_id or DEFAULT_REPO_ID,
        results=rows,
        result_notes=notes,
        requirements=requirements,
        training=_training_rows(summary),
        curves=CURVES_FILE if (model_dir / CURVES_FILE).is_file() else None,
        claim=bool(claim),
        claim_section=claim,
        limitations=_limitations(rows, results, summary),
        citation="\n\n".join(citations),
    )
    if write:
        _write_card(model_dir, card)
    return card


def _write_card(model_dir: Path, card: ModelCard) -> None:
    tmp = model_dir / f".{CARD_FILE}.tmp"
    tmp.write_text(str(card))
    os.replace(tmp, model_dir / CARD_FILE)


def render_pipeline_card(
    model_dir: str | os.PathLike,
    repo_id: str | None = None,
    template: str | None = None,
    license: str = "apache-2.0",
    claim_report: str | os.PathLike | dict | None = None,
    citation: str | None = None,
    write: bool = True,
) -> ModelCard:
    """The card of a diffusion pipeline folder (`model_index.json`): FID/IS from `eval_results.json` in the
    model-index (with the feature extractor that measured them), the training table, a sample grid, citations.
    `render_card` calls this for pipeline folders; the arguments are the same."""
    model_dir = Path(model_dir)
    index = _read_json(model_dir / PIPELINE_INDEX) or {}
    template = template or "diffusion"
    if template not in list_templates():
        raise CardError(f"Unknown card template {template!r}; available: {', '.join(list_templates())}.")
    unet = _read_json(model_dir / "unet" / "config.json") or {}
    scheduler = _read_json(model_dir / "scheduler" / "scheduler_config.json") or {}
    results = _read_json(model_dir / EVAL_RESULTS_FILE)
    summary = training_summary(model_dir)
    if isinstance(claim_report, (str, os.PathLike)):
        claim_report = _read_json(Path(claim_report))
    report = claim_report if claim_report is not None else find_claim_report(model_dir)
    eval_results = eval_results_from(results, GENERATION_TASK) if results else []
    rows = [RenderedResult(e.metric_name + (f" ({e.metric_config})" if e.metric_config else ""),
                           f"{e.metric_value:.4g}", e.dataset_name, e.dataset_split,
                           (e.metric_args or {}).get("num_examples") or "—") for e in eval_results]
    pipeline_class, code_files = _pipeline_class_and_code(model_dir, index)
    conditional = unet.get("num_class_embeds") is not None
    latent = "vae" in index
    notes = []
    if results and not str(results.get("feature_extractor", "")).startswith("inception"):
        notes.append(f"FID and IS were computed in the feature space of `{results.get('feature_extractor')}`, not "
                     "Inception-v3: they compare models under that classifier and are not comparable to published FIDs.")
    keys = ["ddpm"] + (["cfg"] if conditional else []) + (["latent"] if latent else [])
    citations = [c for c in (citation, (report or {}).get("citation"), *(DIFFUSION_CITATIONS[k] for k in keys),
                             CIFAR10_CITATION) if c]
    name = summary.get("model") or pipeline_class
    slug = (report or {}).get("slug")
    tags = ["hfcifar", "diffusers", "cifar10", "diffusion"] + (["class-conditional"] if conditional else []) + \
           (["latent-diffusion"] if latent else []) + ([slug] if slug else [])
    card_data = ModelCardData(
        library_name="diffusers", pipeline_tag=GENERATION_TASK[0], license=license, datasets=[HUB_DATASET],
        metrics=sorted({e.metric_type for e in eval_results}) or None, tags=tags,
        model_name=repo_id.split("/")[-1] if repo_id else name, eval_results=eval_results or None,
    )
    params = summary.get("num_parameters")
    description = (
        f"A {'class-conditional ' if conditional else ''}{'latent ' if latent else ''}denoising diffusion model of "
        f"CIFAR-10 32×32 images: a UNet (`{unet.get('_class_name', 'UNet2DModel')}`)"
        + (f" ({params / 1e6:.2f}M parameters)" if params else "")
        + f" and a `{scheduler.get('_class_name', 'scheduler')}` ({scheduler.get('beta_schedule', '?')} β schedule, "
        f"T = {scheduler.get('num_train_timesteps', '?')}, {scheduler.get('prediction_type', 'epsilon')} prediction)"
        + (f", trained with hfcifar's `{summary['recipe']}` recipe" if summary.get("recipe") else "")
        + (f" by the claim check of `{slug}`" if slug else "") + ", sampled by hfcifar's "
        f"`{pipeline_class}`" + ("" if code_files else f" (saved as diffusers' `{index.get('_class_name')}`)") + "."
    )
    schedule = scheduler.get("solver_schedule") or {}
    steps = len(schedule["steps"]) if isinstance(schedule.get("steps"), list) else 50
    claim = claim_section(report)
    card = ModelCard.from_template(
        card_data, template_path=str(TEMPLATES / f"{template}.md"),
        title=repo_id.split("/")[-1] if repo_id else f"{name} on CIFAR-10", description=description,
        repo_id=repo_id or DEFAULT_REPO_ID, pipeline_class=pipeline_class, conditional=conditional, results=rows,
        code_files=", ".join(f"`{name}`" for name in code_files), saved_class=index.get("_class_name"),
        to_ddim=scheduler.get("_class_name") == "DDPMScheduler", num_inference_steps=steps,
        result_notes=notes, training=_training_rows(summary),
        samples=SAMPLES_FILE if (model_dir / SAMPLES_FILE).is_file() else None,
        curves=CURVES_FILE if (model_dir / CURVES_FILE).is_file() else None, claim=bool(claim), claim_section=claim,
        limitations=_pipeline_limitations(results, summary), citation="\n\n".join(citations),
    )
    if write:
        _write_card(model_dir, card)
    return card


def _pipeline_class_and_code(model_dir: Path, index: dict) -> tuple[str, list[str]]:
    """hfcifar's class for a pipeline folder, and the code files it carries (what `trust_remote_code` runs where hfcifar
    is not installed; none for a folder saved as diffusers' own pipeline)."""
    from ..diffusion.loading import pipeline_class  # diffusers: imported for pipeline folders only

    try:
        name = pipeline_class(index).__name__
    except ValueError:  # a class hfcifar does not know: name it as saved
        name = str(index.get("_class_name", "DiffusionPipeline"))
    code = sorted(str(path.relative_to(model_dir)) for path in model_dir.rglob("*.py"))
    return name, code if isinstance(index.get("_class_name"), list) else []


def _pipeline_limitations(results: dict | None, summary: dict) -> list[str]:
    lines = []
    if results and results.get("num_generated"):
        lines.append(f"FID was estimated from {results['num_generated']} samples; FID is biased upwards at small sample "
                     "counts (papers use 50,000), so compare models only at one sample count and feature extractor.")
    if summary.get("dataset") and summary["dataset"] != HUB_DATASET:
        lines.append(f"Trained on {_dataset_name(summary['dataset'])}: {_count(summary.get('num_train_examples'))} "
                     "training images, not the full 50,000 of CIFAR-10.")
    lines.append("Generates 32×32 images of CIFAR-10's 10 classes only; samples can reproduce training images.")
    return lines


__all__ = ["CARD_FILE", "CardError", "eval_results_from", "find_claim_report", "list_templates", "render_card",
           "render_pipeline_card"]
