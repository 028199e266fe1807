"""Claim check (row 5): a network with FT-ClipAct's clipped activations keeps more accuracy under weight faults.

Hoang et al. report that clipped activations with systematically chosen thresholds improve the classification accuracy
of VGG-16 on CIFAR-10 by 68.92% on average at a fault rate of 1e-5 (random bit flips in the fp32 weights), compared
with the same network without mitigation. Scaled to a 2-core CPU, on cifar10-mini:

1. Train one FastNet with ReLU activations (the quick recipe, without flip TTA) on the training images minus 512
   held back as the paper's *validation* data.
2. FT-ClipAct's threshold selection on those 512 validation images (`select_clipping_thresholds`): profile ACT_max of
   the 7 ReLU layers, then per layer an interval search maximizing the area under accuracy vs fault rate at
   1e-5, 1e-4, 1e-3 (fp32 bit flips in the conv/linear weights, the same seeded draws for every candidate).
3. On the held-out images: accuracy of the unclipped and the clipped network under fp32 weight bit flips at 1e-5,
   1e-4 and 1e-3, over the same seeded fault draws for both (seeds disjoint from the selection's), so every draw
   gives a paired difference.

PASS iff at every rate the clipped network's mean accuracy is ≥ the unclipped one's within the noise (mean paired
difference ≥ −2 standard errors, and at least −1 image), and at some rate it is higher beyond the noise (> 2 standard
errors): two networks tied at chance everywhere say nothing about clipping. The value is the mean paired accuracy gain
at 1e-5; the paper's is +0.6892 (read as percentage points of accuracy).
"""

from __future__ import annotations

import math
import time

import torch

from hfcifar.reproduce import Claim, ClaimContext, Measurement
from hfcifar.reproduce import seconds_per_step as measure_seconds_per_step

CLAIM = Claim(
    paper="FT-ClipAct: Resilience Analysis of Deep Neural Networks and Improving their Fault Tolerance using Clipped "
          "Activation",
    claim=(
        "Clipped activations with systematically chosen per-layer thresholds offer on average 68.92% improvement in "
        "the classification accuracy of VGG-16 on CIFAR-10 at a 1e-5 fault rate, compared with the network without "
        "fault mitigation. Measured on a FastNet with ReLUs under random fp32 bit flips in its weights: the clipped "
        "network's accuracy is ≥ the unclipped one's at fault rates 1e-5, 1e-4 and 1e-3 (within 2 standard errors "
        "of the paired draws) and higher beyond the noise at one of them at least; the value is the mean gain at 1e-5."
    ),
    paper_value=0.6892,
    metric="fault_accuracy_gain_at_1e-5",
    comparison=">=",
    tolerance=0.6892,  # PASS threshold: a gain ≥ 0 (the compound rule above decides the verdict)
    budget_minutes=15.0,
    citation="""@inproceedings{hoang2020ftclipact,
  title     = {{FT-ClipAct}: Resilience Analysis of Deep Neural Networks and Improving their Fault Tolerance using
               Clipped Activation},
  author    = {Hoang, Le-Ha and Hanif, Muhammad Abdullah and Shafique, Muhammad},
  booktitle = {Design, Automation \\& Test in Europe Conference \\& Exhibition (DATE)},
  pages     = {1241--1246},
  year      = {2020},
  url       = {https://arxiv.org/abs/1912.00941}
}""",
)

MODEL = "fastnet"
MODEL_OVERRIDES = {"hidden_act": "relu"}  # FT-ClipAct clips ReLUs; the default FastNet uses GELU
FAULT_RATES = (1e-5, 1e-4, 1e-3)
REPRESENTATION = "fp32"
VALIDATION_IMAGES = 512
MAX_EPOCHS = 60  # the quick recipe's length
MAX_EVAL_DRAWS = 30
MIN_EVAL_DRAWS = 5
SELECTION_SEED_OFFSET = 10_000  # selection draws use seeds far from the evaluation's: no fault pattern is shared
#: Interval-search settings tried from the most to the least thorough, (draws per rate, max iterations N).
SELECTION_SETTINGS = ((4, 4), (3, 4), (2, 4), (2, 3), (1, 3), (1, 2))
MIN_ITERATIONS = 2
TOLERANCE = 0.005


def plan_training(ctx: ClaimContext, num_train: int, step_seconds: float | None, batch_size: int = 128) -> dict:
    """Training epochs from a timed step (Trainer overhead ×1.15): at most 40% of the budget, at most 60 epochs.

    `step_seconds=None` is a smoke run (a budget of seconds): 2 training steps, a handful of images and draws.
    """
    if step_seconds is None:
        return {"smoke": True, "epochs": 1, "stage_minutes": 0.05}
    epoch_seconds = math.ceil(num_train / batch_size) * step_seconds * 1.15
    epochs = min(max(int(0.4 * ctx.minutes_left() * 60 / epoch_seconds), 1), MAX_EPOCHS)
    return {"smoke": False, "epochs": epochs, "stage_minutes": max(0.05, 1.5 * epochs * epoch_seconds / 60)}


def selection_cost(num_layers: int, draws: int, iterations: int, num_images: int, image_seconds: float) -> float:
    """Worst-case seconds of the interval search: per layer 3 candidates, then 2 new per iteration; each candidate
    runs every rate × draw plus a fault-free pass, and each layer one profiling pass."""
    candidates = 3 + 2 * (iterations - 1)
    passes = num_layers * (candidates * (len(FAULT_RATES) * draws + 1) + 1)
    return passes * num_images * image_seconds


def plan_faults(ctx: ClaimContext, image_seconds: float, num_layers: int, num_validation: int, num_eval: int) -> dict:
    """Evaluation draws and interval-search settings from the measured seconds of one image's forward pass.

    The evaluation (both networks, every rate) takes up to 20% of what is left (5 to 30 draws); the search the most
    thorough setting whose worst case fits 80% of the rest; a deadline stops it at 90% of the rest regardless.
    """
    seconds = ctx.minutes_left() * 60
    per_draw = 2 * len(FAULT_RATES) * num_eval * image_seconds
    eval_draws = min(max(int(0.2 * seconds / per_draw), MIN_EVAL_DRAWS), MAX_EVAL_DRAWS)
    rest = max(seconds - eval_draws * per_draw - 4 * num_eval * image_seconds, 0.0)
    draws, iterations = SELECTION_SETTINGS[-1]
    for draws, iterations in SELECTION_SETTINGS:
        if selection_cost(num_layers, draws, iterations, num_validation, image_seconds) <= 0.8 * rest:
            break
    return {"eval_draws": eval_draws, "selection_draws": draws, "max_iterations": iterations,
            "selection_seconds": 0.9 * rest}


def paired_gain(clipped, unclipped) -> dict:
    """Mean, standard error and spread of the per-draw accuracy differences clipped − unclipped (same faults)."""
    differences = [c - u for c, u in zip(clipped.accuracies, unclipped.accuracies)]
    n = len(differences)
    mean = sum(differences) / n
    std = math.sqrt(sum((d - mean) ** 2 for d in differences) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "standard_error": std / math.sqrt(n), "std": std, "min": min(differences),
            "max": max(differences)}


def plot_fault_accuracy(path, curves: dict, fault_free: dict, gains: dict, title: str) -> None:
    """Accuracy vs fault rate (log x) for both networks: mean ± std band, every draw as a dot, fault-free as a line;
    under each rate, the mean number of bits flipped per draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"unclipped (ReLU)": "tab:red", "FT-ClipAct (clipped)": "tab:blue"}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (name, curve), shift in zip(curves.items(), (0.94, 1.06)):
        rates = list(curve)
        means = [curve[r].mean for r in rates]
        stds = [curve[r].std for r in rates]
        color = colors.get(name)
        ax.plot(rates, means, "-o", color=color, label=f"{name}: mean of {len(curve[rates[0]].accuracies)} draws")
        ax.fill_between(rates, [max(m - s, 0.0) for m, s in zip(means, stds)],
                        [min(m + s, 1.0) for m, s in zip(means, stds)], color=color, alpha=0.15)
        for rate in rates:
            draws = curve[rate].accuracies
            ax.scatter([rate * shift] * len(draws), draws, s=8, color=color, alpha=0.35, linewidths=0)
        ax.axhline(fault_free[name], color=color, linestyle=":", linewidth=1,
                   label=f"{name}, no faults: {fault_free[name]:.1%}")
    for rate, gain in gains.items():
        top = max(curves[n][rate].mean for n in curves)
        ax.annotate(f"{gain['mean'] * 100:+.1f} pts", (rate, top), textcoords="offset points", xytext=(0, 8),
                    ha="center", fontsize=9, fontweight="bold")
    ax.axhline(0.1, color="gray", linestyle="--", linewidth=0.8, label="chance (10%)")
    ax.set_xscale("log")
    ax.set_xlim(min(FAULT_RATES) / 2.5, max(FAULT_RATES) * 2.5)
    first = next(iter(curves.values()))
    ax.set_xticks(list(first), [f"{rate:.0e}\n≈{sum(p.num_flips) / len(p.num_flips):,.0f} bits flipped"
                                for rate, p in first.items()], fontsize=8)
    ax.minorticks_off()
    ax.set_ylim(0, 1)
    ax.set(xlabel="fault rate (probability that each stored fp32 weight bit flips)",
           ylabel="held-out accuracy (inf/NaN logits count as wrong)", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7.5, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(ctx: ClaimContext) -> Measurement:
    from hfcifar.data import CifarTensorDataset, to_float_images
    from hfcifar.faults import fault_accuracy_curve, predict_labels
    from hfcifar.models import create_model
    from hfcifar.training import CifarTrainer, CifarTrainingArguments, get_recipe

    from .clipping import activation_layers, clip_activations
    from .selection import plot_thresholds, select_clipping_thresholds

    data = CifarTensorDataset.from_hf(ctx.train_split, "train", progress=ctx.progress)
    held_out = CifarTensorDataset.from_hf(ctx.eval_split, "eval", progress=ctx.progress)
    # A smoke run (under half a minute left) skips the timing: it trains 2 steps whatever the speed.
    budget = plan_training(ctx, len(data), measure_seconds_per_step(MODEL) if ctx.minutes_left() > 0.5 else None)
    smoke = budget["smoke"]

    # The paper selects thresholds on validation data: hold some training images back from training for it.
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(ctx.seed))
    num_validation = 32 if smoke else min(VALIDATION_IMAGES, len(data) // 5)
    validation = CifarTensorDataset(data.images[order[:num_validation]], data.labels[order[:num_validation]])
    train = CifarTensorDataset(data.images[order[num_validation:]], data.labels[order[num_validation:]])

    # 1. One ReLU FastNet, the quick recipe without flip TTA (faults are judged on single forward passes).
    torch.manual_seed(ctx.seed)
    model = create_model(MODEL, **MODEL_OVERRIDES)
    recipe = {**get_recipe("quick"), "tta": False, "eval_strategy": "no", "save_strategy": "no", "logging_steps": 10,
              "disable_tqdm": not ctx.progress, "seed": ctx.seed, "num_train_epochs": budget["epochs"],
              "max_steps": 2 if smoke else -1, "time_budget_minutes": budget["stage_minutes"]}
    args = CifarTrainingArguments(output_dir=str(ctx.output_dir / "model"), **recipe)
    trainer = CifarTrainer(model=model, args=args, train_dataset=train)
    started = time.monotonic()
    trainer.train()
    train_minutes = (time.monotonic() - started) / 60
    model = model.eval()
    trainer.save_model(str(ctx.output_dir / "model"))

    validation_images, validation_labels = to_float_images(validation.images), validation.labels
    num_eval = 64 if smoke else len(held_out)
    eval_images, eval_labels = to_float_images(held_out.images[:num_eval]), held_out.labels[:num_eval]
    layers = activation_layers(model)
    if smoke:
        faults = {"eval_draws": 2, "selection_draws": 1, "max_iterations": 1, "selection_seconds": 1.0}
        image_seconds = None
    else:
        predict_labels(model, validation_images[:64])  # warm-up
        started = time.perf_counter()
        predict_labels(model, validation_images)
        image_seconds = (time.perf_counter() - started) / len(validation_images)
        faults = plan_faults(ctx, image_seconds, len(layers), len(validation_images), num_eval)

    # 2. FT-ClipAct's threshold selection on the validation images.
    selection = select_clipping_thresholds(
        model, validation_images, validation_labels, fault_rates=FAULT_RATES, representation=REPRESENTATION,
        num_draws=faults["selection_draws"], seed=ctx.seed + SELECTION_SEED_OFFSET,
        max_iterations=faults["max_iterations"], min_iterations=min(MIN_ITERATIONS, faults["max_iterations"]),
        tolerance=TOLERANCE, deadline=time.monotonic() + faults["selection_seconds"],
        progress=print if ctx.progress else None)
    clipped = clip_activations(model, selection.thresholds)
    clipped.save_pretrained(str(ctx.output_dir / "clipped"))  # thresholds travel in config.clipped_activations
    plot_thresholds(selection, ctx.output_dir / "thresholds.png")

    # 3. Both networks under the same seeded fault draws on the held-out images.
    settings = {"representation": REPRESENTATION, "num_draws": faults["eval_draws"], "seed": ctx.seed}
    names = ("unclipped (ReLU)", "FT-ClipAct (clipped)")
    curves = {names[0]: fault_accuracy_curve(model, eval_images, eval_labels, FAULT_RATES, **settings),
              names[1]: fault_accuracy_curve(clipped, eval_images, eval_labels, FAULT_RATES, **settings)}
    fault_free = {name: next(iter(curve.values())).fault_free_accuracy for name, curve in curves.items()}
    gains = {rate: paired_gain(curves[names[1]][rate], curves[names[0]][rate]) for rate in FAULT_RATES}

    one_image = 1 / num_eval
    not_worse = {rate: g["mean"] >= -max(2 * g["standard_error"], one_image) for rate, g in gains.items()}
    better = {rate: g["mean"] > max(2 * g["standard_error"], 0.0) for rate, g in gains.items()}
    passed = all(not_worse.values()) and any(better.values())
    title = (f"FT-ClipAct vs ReLU: FastNet under fp32 weight bit flips\n"
             f"{num_eval} held-out images, {faults['eval_draws']} paired fault draws per rate")
    plot_fault_accuracy(ctx.output_dir / "fault_accuracy.png", curves, fault_free, gains, title)

    def tag(rate: float) -> str:
        return f"{rate:.0e}"

    measured = {
        **{f"fault_accuracy_unclipped_{tag(r)}": curves[names[0]][r].mean for r in FAULT_RATES},
        **{f"fault_accuracy_clipped_{tag(r)}": curves[names[1]][r].mean for r in FAULT_RATES},
        **{f"fault_accuracy_std_unclipped_{tag(r)}": curves[names[0]][r].std for r in FAULT_RATES},
        **{f"fault_accuracy_std_clipped_{tag(r)}": curves[names[1]][r].std for r in FAULT_RATES},
        **{f"gain_{tag(r)}": gains[r]["mean"] for r in FAULT_RATES},
        **{f"gain_standard_error_{tag(r)}": gains[r]["standard_error"] for r in FAULT_RATES},
        "fault_accuracy_gain_at_1e-5": gains[1e-5]["mean"],
        "fault_free_accuracy_unclipped": fault_free[names[0]],
        "fault_free_accuracy_clipped": fault_free[names[1]],
        **{f"mean_flipped_bits_{tag(r)}": sum(curves[names[0]][r].num_flips) / faults["eval_draws"] for r in FAULT_RATES},
        # inf/NaN logits count as misclassified: this is why a collapsed network can sit below chance (10%)
        **{f"non_finite_output_fraction_{key}_{tag(r)}": sum(curves[name][r].non_finite) / faults["eval_draws"]
           for name, key in zip(names, ("unclipped", "clipped")) for r in FAULT_RATES},
        "eval_draws": faults["eval_draws"],
        "eval_examples": num_eval,
        **{f"threshold[{name}]": value for name, value in selection.thresholds.items()},
        **{f"activation_max[{name}]": selection.activation_max[name] for name in selection.thresholds},
        "selection_auc_at_act_max": selection.start_auc,
        "selection_auc_chosen": selection.final_auc,
        "selection_draws": faults["selection_draws"],
        "selection_max_iterations": faults["max_iterations"],
        "selection_candidates_evaluated": len(selection.candidates),
        "selection_layers_searched": len(selection.searched_layers),
        "selection_stopped_by_time_limit": selection.stopped_by_time_limit,
        "validation_images": len(validation_images),
        "train_images": len(train),
        "epochs": trainer.state.epoch,
        "train_minutes": train_minutes,
        "stopped_by_time_budget": trainer.stopped_by_time_budget,
        "seconds_per_image_forward": image_seconds,
    }
    detail = "; ".join(
        f"{tag(r)}: clipped {curves[names[1]][r].mean:.1%} vs unclipped {curves[names[0]][r].mean:.1%} "
        f"(gain {gains[r]['mean'] * 100:+.1f} ± {gains[r]['standard_error'] * 100:.1f} pts)" for r in FAULT_RATES)
    reason = (f"{detail} (PASS needs gain ≥ −2 SE at every rate and > 2 SE at one: "
              f"{'met' if passed else 'not met'}); fault-free {fault_free[names[1]]:.1%} clipped vs "
              f"{fault_free[names[0]]:.1%} unclipped")
    return Measurement(value=gains[1e-5]["mean"], measured=measured, passed=passed, reason=reason,
                       plots=["fault_accuracy.png", "thresholds.png"], model_dir="clipped",
                       data_info={**ctx.data_info, "num_train_examples": len(train), "num_eval_examples": num_eval})
