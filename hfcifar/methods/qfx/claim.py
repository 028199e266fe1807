"""Claim check (row 27): QFX's trained fixed-point models are at least as accurate as post-training quantization.

Dai et al. (2024): "compared to post-training quantization, QFX can quantize models trained with element-wise layers
quantized to fewer bits and achieve higher accuracy on both CIFAR-10 and ImageNet". Scaled to a 2-core CPU, on the
4,194 training images of cifar10-mini:

1. Train one float ResNet-20 (He et al.'s CIFAR net: its shortcut additions are the element-wise layers the paper
   quantizes besides BatchNorm) with the quick recipe, epochs sized from the budget.
2. At each word length W ∈ {4, 6, 8}, everything in fixed point at W bits: weights, layer inputs, BatchNorm (scale,
   shift, output) and residual additions, one binary point per tensor.
   - PTQ: the float model cast with binary points calibrated on 512 training images (the MSE-optimal position per
     tensor, a stronger baseline than the no-overflow position).
   - QFX: the *same* PTQ model (same weights, same starting binary points) fine-tuned with QFX: straight-through
     rounding and learned binary points, through `QFXTrainer` (SGD, the same epochs at every W).
3. Accuracy of the float, PTQ and QFX models on the same held-out images; the exported integers of every QFX model are
   checked to reproduce its outputs exactly.

PASS iff QFX ≥ PTQ − 1 paired standard error at every W (and the float model beats chance, so the comparison says
something). The value is the smallest margin QFX − PTQ over the word lengths.
"""

from __future__ import annotations

import copy
import math
import tempfile
import time

import torch

from hfcifar.reproduce import paired_standard_error
from hfcifar.reproduce import Claim, ClaimContext, Measurement
from hfcifar.reproduce import seconds_per_step as measure_seconds_per_step

CLAIM = Claim(
    paper="Trainable Fixed-Point Quantization for Deep Learning Acceleration on FPGAs",
    claim=(
        "Compared to post-training quantization, QFX can quantize models with element-wise layers quantized to fewer "
        "bits and achieve higher accuracy on CIFAR-10. Measured on a ResNet-20 with weights, activations, BatchNorm "
        "and residual additions all in W-bit fixed point: QFX accuracy ≥ PTQ accuracy (within one paired standard "
        "error) at W = 4, 6 and 8; the value is the smallest margin QFX − PTQ."
    ),
    paper_value=0.0,
    metric="min_accuracy_margin_qfx_minus_ptq",
    comparison=">=",
    tolerance=0.0,
    budget_minutes=15.0,
    citation="""@article{dai2024qfx,
  title   = {Trainable Fixed-Point Quantization for Deep Learning Acceleration on {FPGAs}},
  author  = {Dai, Dingyi and Zhang, Yichi and Zhang, Jiahao and Hu, Zhanqiu and Cai, Yaohui and Sun, Qi and Zhang, Zhiru},
  journal = {arXiv preprint arXiv:2401.17544},
  year    = {2024},
  url     = {https://arxiv.org/abs/2401.17544}
}""",
)

MODEL = "resnet20"
BIT_WIDTHS = (4, 6, 8)
CALIBRATION_IMAGES = 512
CALIBRATION = "mse"
BATCH_SIZE = 128
MAX_FLOAT_EPOCHS = 40
MAX_QFX_EPOCHS = 12
#: Share of the training time the float model gets; the three QFX fine-tunings share the rest equally.
FLOAT_SHARE = 0.5
#: Trainer overhead over the bare timed step (data, augmentation, logging).
OVERHEAD = 1.15
#: The float model: the quick recipe (SGD-Nesterov, triangular LR, label smoothing, flip + translate), no TTA.
FLOAT_RECIPE = {"learning_rate": 0.05, "warmup_steps": 0.2}
#: QFX fine-tuning from the PTQ model: a tenth of the peak rate, decayed linearly, no warm-up (weights and binary
#: points are already close to a good fixed-point model). The binary points train at the weights' rate, as ordinary
#: parameters (`binary_point_learning_rate=None`), fixed before the first run.
QFX_RECIPE = {"learning_rate": 0.005, "warmup_steps": 0, "binary_point_learning_rate": None}


def qat_seconds_per_step(model, images: torch.Tensor, labels: torch.Tensor, steps: int = 3) -> float:
    """The median time of one QFX training step (forward, backward, SGD) of a quantized model on this machine, in
    the channels-last format `CifarTrainer` trains in."""
    model = copy.deepcopy(model).train().to(memory_format=torch.channels_last)
    images = images.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.0)
    times = []
    for _ in range(steps + 1):  # one warm-up step
        start = time.perf_counter()
        optimizer.zero_grad()
        model(pixel_values=images, labels=labels).loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[steps // 2]


def plan_float(ctx: ClaimContext, num_train: int, step_seconds: float | None) -> dict:
    """Float epochs from a timed step: FLOAT_SHARE of what the evaluation and calibration leave (at least 1).

    `step_seconds=None` is a smoke run (a budget of seconds): one step per model, a few images.
    """
    if step_seconds is None:
        return {"smoke": True, "float_epochs": 1, "calibration_images": 32, "eval_examples": 64, "stage_minutes": 0.05}
    epoch_seconds = math.ceil(num_train / BATCH_SIZE) * step_seconds * OVERHEAD
    training_seconds = 0.9 * ctx.minutes_left() * 60  # 10% for calibration, evaluation, export checks and plots
    epochs = min(max(int(FLOAT_SHARE * training_seconds / epoch_seconds), 1), MAX_FLOAT_EPOCHS)
    guard = min(1.5 * epochs * epoch_seconds, 0.6 * training_seconds) / 60  # a guard only
    return {"smoke": False, "float_epochs": epochs, "calibration_images": CALIBRATION_IMAGES, "eval_examples": None,
            "stage_minutes": max(0.05, guard)}


def plan_qfx(ctx: ClaimContext, num_train: int, qat_step_seconds: float) -> dict:
    """QFX epochs per word length (the same at every W, at least 1) from a timed QFX step and what is left."""
    epoch_seconds = math.ceil(num_train / BATCH_SIZE) * qat_step_seconds * OVERHEAD
    training_seconds = 0.85 * ctx.minutes_left() * 60
    epochs = min(max(int(training_seconds / (len(BIT_WIDTHS) * epoch_seconds)), 1), MAX_QFX_EPOCHS)
    return {"qfx_epochs": epochs, "stage_minutes": max(0.05, 1.5 * epochs * epoch_seconds / 60)}


def correct_predictions(model, split) -> torch.Tensor:
    """Per held-out image, whether `model` classifies it correctly (bool), through `CifarTrainer.predict`."""
    from hfcifar.training import CifarTrainer, CifarTrainingArguments

    with tempfile.TemporaryDirectory() as scratch:
        args = CifarTrainingArguments(output_dir=scratch, per_device_eval_batch_size=512, tta=False, plot_curves=False,
                                      disable_tqdm=True, report_to="none")
        output = CifarTrainer(model=model, args=args).predict(split)
    logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    return torch.as_tensor(logits).argmax(-1) == torch.as_tensor(output.label_ids)



def plot_accuracy_vs_bits(path, results: dict, float_accuracy: float, float_se: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bits = sorted(results)
    fig, ax = plt.subplots(figsize=(6.8, 4.4))
    ax.axhline(float_accuracy, color="gray", linestyle="--", linewidth=1.2, label=f"float32 ({float_accuracy:.1%})")
    ax.axhspan(float_accuracy - float_se, float_accuracy + float_se, color="gray", alpha=0.1)
    for key, label, style, colour in (("ptq", "post-training quantization", "-s", "tab:orange"),
                                      ("qfx", "QFX (learned binary points)", "-o", "tab:blue")):
        values = [results[b][key] for b in bits]
        errors = [results[b][f"{key}_se"] for b in bits]
        ax.errorbar(bits, values, yerr=errors, fmt=style, color=colour, capsize=4, label=label)
    for b in bits:
        margin, se = results[b]["margin"], results[b]["margin_se"]
        ax.text(b, 0.14, f"QFX − PTQ\n{margin:+.1%} ± {se:.1%}", ha="center", va="bottom", fontsize=8,
                color="tab:blue" if margin >= -se else "tab:red")
    ax.axhline(0.1, color="black", linestyle=":", linewidth=0.8, label="chance (10%)")
    ax.set_xticks(bits)
    ax.set_xlim(min(bits) - 1, max(bits) + 1)
    ax.set(xlabel="word length W (bits) of every tensor: weights, activations, BatchNorm, residual additions",
           ylabel="held-out accuracy (± 1 s.e.)", title="ResNet-20 in W-bit fixed point: QFX vs PTQ", ylim=(0, 1))
    ax.xaxis.label.set_size(8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def tensor_kinds(model) -> dict[str, str]:
    """What each quantizer casts: weight, bias, layer input, BatchNorm scale/shift/output, or residual sum."""
    from hfcifar.quantization import FixedPointBatchNorm2d, fixed_point_quantizers

    kinds = {}
    for name in fixed_point_quantizers(model):
        parent_name, _, leaf = name.rpartition(".")
        if ".parametrizations." in f".{name}":
            kinds[name] = "bias" if ".parametrizations.bias" in f".{name}" else "weight"
        elif leaf == "input_quantizer":
            kinds[name] = "layer input"
        elif leaf in ("scale_quantizer", "shift_quantizer"):
            kinds[name] = f"BN {leaf.removesuffix('_quantizer')}"
        else:
            parent = model.get_submodule(parent_name) if parent_name else model
            kinds[name] = "BN output" if isinstance(parent, FixedPointBatchNorm2d) else "residual sum"
    return kinds


def plot_binary_points(path, calibrated: dict, learned: dict, kinds: dict, bits: int) -> None:
    """The binary point of every tensor at one word length: calibrated (PTQ, QFX's start) vs learned by QFX."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(calibrated)
    colours = {"weight": "tab:blue", "bias": "tab:cyan", "layer input": "tab:green", "BN scale": "tab:purple",
               "BN shift": "tab:pink", "BN output": "tab:orange", "residual sum": "tab:red"}
    fig, ax = plt.subplots(figsize=(10, 4.2))
    ax.scatter(range(len(names)), [calibrated[n] for n in names], s=70, facecolors="none", edgecolors="gray",
               linewidths=1.0, label="calibrated (PTQ = QFX start)")
    for kind, colour in colours.items():
        index = [i for i, n in enumerate(names) if kinds.get(n) == kind]
        if index:
            ax.scatter(index, [learned[names[i]] for i in index], s=14, color=colour, label=f"learned: {kind}", zorder=3)
    for i, n in enumerate(names):
        if learned[n] != calibrated[n]:
            ax.annotate("", (i, learned[n]), (i, calibrated[n]), arrowprops={"arrowstyle": "->", "color": "black", "lw": 0.8})
    moved = sum(calibrated[n] != learned[n] for n in names)
    ax.set(xlabel="tensor (model order)", ylabel="integer bits I of ap_fixed<W, I>",
           title=f"Binary points at W = {bits}: {moved} of {len(names)} moved during QFX training (arrows)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(ctx: ClaimContext) -> Measurement:
    from hfcifar.data import CifarTensorDataset, to_float_images
    from hfcifar.models import create_model
    from hfcifar.quantization import (
        QFXTrainer,
        QFXTrainingArguments,
        export_fixed_point,
        fixed_point_quantizers,
        post_training_quantization,
        save_fixed_point,
        set_binary_points_trainable,
        verify_export,
    )
    from hfcifar.training import CifarTrainer, CifarTrainingArguments, get_recipe

    train = CifarTensorDataset.from_hf(ctx.train_split, "train", progress=ctx.progress)
    held_out = CifarTensorDataset.from_hf(ctx.eval_split, "eval", progress=ctx.progress)
    # A smoke run (under half a minute left) skips the timing: one training step per model whatever the speed.
    budget = plan_float(ctx, len(train), measure_seconds_per_step(MODEL) if ctx.minutes_left() > 0.5 else None)
    smoke = budget["smoke"]
    if budget["eval_examples"] is not None:
        held_out = CifarTensorDataset(held_out.images[: budget["eval_examples"]], held_out.labels[: budget["eval_examples"]])
    recipe = {**get_recipe("quick"), "tta": False, "eval_strategy": "no", "save_strategy": "no", "logging_steps": 10,
              "per_device_train_batch_size": BATCH_SIZE, "disable_tqdm": not ctx.progress, "seed": ctx.seed}

    def fit(model, name: str, trainer_class, args_class, epochs: int, minutes: float, **settings) -> dict:
        steps = {"num_train_epochs": max(epochs, 1), "max_steps": 1 if smoke else -1, "time_budget_minutes": minutes}
        args = args_class(output_dir=str(ctx.output_dir / name), **{**recipe, **settings, **steps})
        trainer = trainer_class(model=model, args=args, train_dataset=train)
        started = time.monotonic()
        trainer.train()
        return {"epochs": trainer.state.epoch, "minutes": (time.monotonic() - started) / 60,
                "stopped_by_time_budget": trainer.stopped_by_time_budget}

    # 1. One float ResNet-20.
    torch.manual_seed(ctx.seed)
    float_model = create_model(MODEL)
    float_info = fit(float_model, "float", CifarTrainer, CifarTrainingArguments, budget["float_epochs"],
                     budget["stage_minutes"], **FLOAT_RECIPE)
    float_model.eval()
    float_correct = correct_predictions(float_model, held_out)
    n = float_correct.numel()
    float_accuracy = float(float_correct.float().mean())
    float_se = math.sqrt(max(float_accuracy * (1 - float_accuracy), 1e-12) / n)

    # Calibration images: training images without augmentation (never the held-out ones).
    generator = torch.Generator().manual_seed(ctx.seed)
    index = torch.randperm(len(train), generator=generator)[: budget["calibration_images"]]
    calibration_images = to_float_images(train.images[index])

    # 2. PTQ and QFX at each word length, from the same float weights.
    results, calibrated_points, learned_points, exports, qfx_info, kinds = {}, {}, {}, {}, {}, {}
    qfx_budget = None
    for position, bits in enumerate(BIT_WIDTHS):
        ptq = post_training_quantization(copy.deepcopy(float_model), bits, calibration_images, calibration=CALIBRATION)
        ptq_correct = correct_predictions(ptq, held_out)
        calibrated_points[bits] = {name: q.binary_point for name, q in fixed_point_quantizers(ptq).items()}

        qfx = set_binary_points_trainable(copy.deepcopy(ptq), True)
        if qfx_budget is None:
            if smoke:
                qfx_budget = {"qfx_epochs": 1, "stage_minutes": 0.05}
            else:
                images = to_float_images(train.images[:BATCH_SIZE])
                qfx_budget = plan_qfx(ctx, len(train), qat_seconds_per_step(qfx, images, train.labels[:BATCH_SIZE]))
        # A guard, should the machine slow down after planning: never more than this width's share of what is left
        # (the time-budget callback then fits the schedule, so a stopped run still ends with its decay done).
        share = max(0.05, (0.95 * ctx.minutes_left() - 0.25) / (len(BIT_WIDTHS) - position))
        torch.manual_seed(ctx.seed)
        qfx_info[bits] = fit(qfx, f"qfx-{bits}bit", QFXTrainer, QFXTrainingArguments, qfx_budget["qfx_epochs"],
                             min(qfx_budget["stage_minutes"], share), plot_curves=not smoke, **QFX_RECIPE)
        qfx.eval()
        qfx_correct = correct_predictions(qfx, held_out)
        learned_points[bits] = {name: q.binary_point for name, q in fixed_point_quantizers(qfx).items()}
        kinds = tensor_kinds(qfx)
        export = export_fixed_point(qfx)
        exports[bits] = verify_export(qfx, export, to_float_images(held_out.images[:64]))
        save_fixed_point(qfx, ctx.output_dir / f"qfx-{bits}bit")

        ptq_accuracy, qfx_accuracy = float(ptq_correct.float().mean()), float(qfx_correct.float().mean())
        results[bits] = {
            "ptq": ptq_accuracy, "qfx": qfx_accuracy,
            "ptq_se": math.sqrt(max(ptq_accuracy * (1 - ptq_accuracy), 1e-12) / n),
            "qfx_se": math.sqrt(max(qfx_accuracy * (1 - qfx_accuracy), 1e-12) / n),
            "margin": qfx_accuracy - ptq_accuracy,
            "margin_se": paired_standard_error(qfx_correct, ptq_correct),
            "qfx_only_right": int((qfx_correct & ~ptq_correct).sum()),
            "ptq_only_right": int((ptq_correct & ~qfx_correct).sum()),
        }

    # 3. Plots and verdict.
    plot_accuracy_vs_bits(ctx.output_dir / "accuracy_vs_bits.png", results, float_accuracy, float_se)
    lowest = min(BIT_WIDTHS)
    plot_binary_points(ctx.output_dir / "binary_points.png", calibrated_points[lowest], learned_points[lowest], kinds,
                       lowest)

    chance = 0.1 + 2 * math.sqrt(0.09 / n)  # the float model must beat chance by 2 s.e., else nothing is measured
    informative = float_accuracy > chance
    holds = {bits: r["margin"] >= -r["margin_se"] for bits, r in results.items()}
    passed = informative and all(holds.values())
    smallest = min(r["margin"] for r in results.values())
    measured = {
        "float_accuracy": float_accuracy,
        **{f"ptq_accuracy_{b}bit": r["ptq"] for b, r in results.items()},
        **{f"qfx_accuracy_{b}bit": r["qfx"] for b, r in results.items()},
        **{f"margin_{b}bit": r["margin"] for b, r in results.items()},
        **{f"margin_se_{b}bit": r["margin_se"] for b, r in results.items()},
        **{f"qfx_only_right_{b}bit": r["qfx_only_right"] for b, r in results.items()},
        **{f"ptq_only_right_{b}bit": r["ptq_only_right"] for b, r in results.items()},
        "min_accuracy_margin_qfx_minus_ptq": smallest,
        **{f"binary_points_moved_{b}bit": sum(calibrated_points[b][k] != learned_points[b][k] for k in learned_points[b])
           for b in BIT_WIDTHS},
        "num_quantized_tensors": len(learned_points[lowest]),
        **{f"export_exact_{b}bit": exports[b]["exact"] for b in BIT_WIDTHS},
        **{f"export_max_abs_logit_difference_{b}bit": exports[b]["max_abs_logit_difference"] for b in BIT_WIDTHS},
        "model": MODEL,
        "calibration": f"{CALIBRATION}, {len(calibration_images)} training images",
        "float_epochs": float_info["epochs"],
        "float_train_minutes": float_info["minutes"],
        "qfx_epochs": qfx_budget["qfx_epochs"],
        **{f"qfx_train_minutes_{b}bit": qfx_info[b]["minutes"] for b in BIT_WIDTHS},
        "stopped_by_time_budget": float_info["stopped_by_time_budget"] or any(i["stopped_by_time_budget"] for i in qfx_info.values()),
        "eval_examples": n,
    }
    detail = "; ".join(f"W = {b}: QFX {r['qfx']:.1%} vs PTQ {r['ptq']:.1%} (margin {r['margin']:+.1%} ± {r['margin_se']:.1%})"
                       for b, r in results.items())
    if not informative:
        reason = f"uninformative: the float model ({float_accuracy:.1%}) does not beat chance; {detail}"
    else:
        reason = (f"{detail} (PASS needs QFX ≥ PTQ − 1 paired s.e. at every W: "
                  f"{'met' if passed else 'not met at W = ' + ', '.join(str(b) for b, ok in holds.items() if not ok)})")
    return Measurement(value=smallest, measured=measured, passed=passed, reason=reason,
                       plots=["accuracy_vs_bits.png", "binary_points.png"], model_dir=f"qfx-{lowest}bit",
                       data_info={**ctx.data_info, "num_eval_examples": n})
