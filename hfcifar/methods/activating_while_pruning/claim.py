"""Claim check (row 41): iterative Global MP with AP is at least as accurate as without it at high sparsity.

Liu et al. report that AP improves the pruning methods it works with by 3–4% on CIFAR-10/100 (abstract; ResNet and VGG
with iterative pruning, 20% of the surviving weights per cycle, 2% of them chosen by AP). Scaled to a 2-core CPU, on
the 4,194 training images of cifar10-mini:

1. One dense FastNet with ReLU activations (`hidden_act="relu"`: the DNR is a ReLU quantity) trained with the quick
   recipe (no test-time augmentation); its weights at initialization are kept as AP's first `W_0`.
2. Two copies of it pruned iteratively for `CYCLES` cycles by Global MP — each cycle removes 20% of the surviving
   weights at its start (one-shot at step 0 of a `PruningTrainer`) and fine-tunes the same number of steps with the
   quick recipe's schedule restarted (learning-rate rewinding) — one plain, one with AP (`APTrainer`, 2 of the 20%
   chosen by AP from the negative weights that moved least during the previous cycle). Same seed, data order,
   augmentation and steps: the arms differ only in AP's tenth of each cycle's choices. 14 cycles end at
   1 − 0.8¹⁴ = 95.6% sparsity.
3. The dynamic DNR of every training batch (`DynamicDNRCallback`) in every cycle of both arms, and the held-out
   accuracy of both after every cycle (`Trainer.predict`, the same images).

PASS iff, at the final (highest) sparsity, AP's held-out accuracy ≥ the plain arm's minus one standard error of the
paired difference (per-image correctness of the two models on the same images). The value is the margin AP − plain;
the paper's is +0.03 (the lower end of its 3–4%).
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch

from hfcifar.reproduce import paired_standard_error
from hfcifar.reproduce import Claim, ClaimContext, Measurement
from hfcifar.reproduce import seconds_per_step as measure_seconds_per_step

CLAIM = Claim(
    paper="AP: Selective Activation for De-sparsifying Pruned Neural Networks",
    claim=(
        "AP works with existing pruning methods and improves their performance by 3%-4% on CIFAR-10/100. Measured on "
        "a ReLU FastNet pruned iteratively by Global MP (20% of the surviving weights per cycle, 2% of them chosen by "
        "AP) to 95.6% sparsity, with the same fine-tuning budget: held-out accuracy with AP ≥ without it, within one "
        "paired standard error; the value is the margin AP − plain at the final sparsity."
    ),
    paper_value=0.03,
    metric="accuracy_margin_at_final_sparsity",
    comparison=">=",
    tolerance=0.03,  # the single-number reading: a margin ≥ 0; the verdict allows one paired standard error below it
    budget_minutes=15.0,
    citation="""@article{liu2023ap,
  title   = {{AP}: Selective Activation for De-sparsifying Pruned Networks},
  author  = {Liu, Shiyu and Ghosh, Rohan and Tan, Dylan and Motani, Mehul},
  journal = {Transactions on Machine Learning Research},
  year    = {2023},
  url     = {https://arxiv.org/abs/2212.06145}
}""",
)

MODEL = "fastnet"
MODEL_OVERRIDES = {"hidden_act": "relu"}
PRUNE_PER_CYCLE = 0.2  # the paper's iterative rate: 20% of the surviving weights per cycle
AP_FRACTION = 0.1  # 2% of the 20% chosen by AP
CYCLES = 14  # 1 − 0.8¹⁴ = 95.6% sparsity
MAX_DENSE_EPOCHS = 15
MAX_CYCLE_EPOCHS = 4
BATCH_SIZE = 128
TRAINER_OVERHEAD = 1.15  # Trainer bookkeeping and the DNR hooks on top of a bare training step


def cycle_sparsity(cycle: int) -> float:
    """The absolute sparsity after `cycle` cycles of removing `PRUNE_PER_CYCLE` of the surviving weights."""
    return 1.0 - (1.0 - PRUNE_PER_CYCLE) ** cycle


def plan(ctx: ClaimContext, num_train: int, step_seconds: float | None) -> dict:
    """The dense model's epochs from a timed step: ~22% of the budget (at most 15 epochs, at least 1). The cycles
    are planned after it, from the speed it measured (`plan_cycle_steps`). `step_seconds=None` is a smoke run."""
    if step_seconds is None:
        return {"smoke": True, "dense_steps": 2, "cycles": 2, "eval_examples": 32}
    steps_per_epoch = math.ceil(num_train / BATCH_SIZE)
    epoch_seconds = steps_per_epoch * step_seconds * TRAINER_OVERHEAD
    epochs = min(max(int(0.22 * ctx.minutes_left() * 60 / epoch_seconds), 1), MAX_DENSE_EPOCHS)
    return {"smoke": False, "dense_steps": epochs * steps_per_epoch, "cycles": CYCLES, "eval_examples": None}


def plan_cycle_steps(ctx: ClaimContext, cycles_left: int, seconds_per_step: float, steps_per_epoch: int) -> int:
    """Fine-tuning steps of the next cycle (the same for both arms), re-planned before every cycle from the minutes
    left and the seconds per step measured so far (set-up and evaluation included): ~92% of what is left, spread
    over the cycles left; at least a quarter epoch, at most `MAX_CYCLE_EPOCHS`. Re-planning follows the machine's
    load while keeping the two arms paired: within a cycle they always train the same steps."""
    seconds = ctx.minutes_left() * 60
    steps = int(0.92 * seconds / (2 * cycles_left * seconds_per_step))
    return min(max(steps, max(steps_per_epoch // 4, 2)), MAX_CYCLE_EPOCHS * steps_per_epoch)



def per_image_correct(trainer, dataset) -> np.ndarray:
    """Whether the trainer's model classifies each image of `dataset` right (`Trainer.predict`, evaluation mode)."""
    prediction = trainer.predict(dataset)
    return np.argmax(prediction.predictions, axis=-1) == np.asarray(prediction.label_ids)


def plot_results(path, dense_history: list[dict], arms: dict, cycles: list[dict], dense_accuracy: float) -> None:
    """Three panels: the dynamic DNR over training, the mean dynamic DNR per cycle vs sparsity, and the held-out
    accuracy vs sparsity (± one standard error), each with and without AP."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"Global MP": "tab:blue", "Global MP + AP": "tab:red"}
    fig, (ax_dnr, ax_cycle, ax_acc) = plt.subplots(1, 3, figsize=(15, 4.4))
    if dense_history:
        ax_dnr.plot([h["step"] for h in dense_history], [h["dynamic_dnr"] for h in dense_history], color="gray",
                    label="dense training")
    for name, arm in arms.items():
        ax_dnr.plot([h["step"] for h in arm["history"]], [h["dynamic_dnr"] for h in arm["history"]], color=colors[name],
                    label=name, linewidth=1.2)
    for cycle in cycles:
        ax_dnr.axvline(cycle["first_step"], color="gray", linestyle=":", linewidth=0.6)
    ax_dnr.set(xlabel="training step (dense, then the pruning cycles; dotted: a cycle prunes 20%)",
               ylabel="dynamic DNR (dead ReLU outputs / all)", title="Dynamic dead neuron rate during training")
    ax_dnr.legend(fontsize=8)

    sparsities = [100 * c["sparsity"] for c in cycles]
    for name, arm in arms.items():
        ax_cycle.plot(sparsities, arm["cycle_dnr"], "-o", color=colors[name], label=name, markersize=4)
        accuracy = np.array(arm["accuracy"])
        error = np.array(arm["accuracy_se"])
        ax_acc.errorbar(sparsities, 100 * accuracy, yerr=100 * error, fmt="-o", color=colors[name], label=name,
                        markersize=4, capsize=2)
    ax_cycle.set(xlabel="sparsity (%)", ylabel="mean dynamic DNR of the cycle", title="Dynamic DNR vs sparsity")
    ax_cycle.legend(fontsize=8)
    ax_acc.axhline(100 * dense_accuracy, color="gray", linestyle="--", linewidth=1, label="dense model (before pruning)")
    ax_acc.set(xlabel="sparsity (%)", ylabel="held-out accuracy (%) ± 1 SE", title="Accuracy after each cycle")
    ax_acc.legend(fontsize=8)
    for ax in (ax_dnr, ax_cycle, ax_acc):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(ctx: ClaimContext) -> Measurement:
    from hfcifar.data import CifarTensorDataset
    from hfcifar.models import create_model
    from hfcifar.pruning import PruningTrainer, PruningTrainingArguments
    from hfcifar.training import CifarTrainer, CifarTrainingArguments, get_recipe

    from .ap import snapshot_weights
    from .dnr import DynamicDNRCallback
    from .trainer import APTrainer, APTrainingArguments

    train = CifarTensorDataset.from_hf(ctx.train_split, "train", progress=ctx.progress)
    held_out = CifarTensorDataset.from_hf(ctx.eval_split, "eval", progress=ctx.progress)
    # A smoke run (under half a minute left) skips the timing: 2 steps per trainer whatever the speed.
    budget = plan(ctx, len(train), measure_seconds_per_step(MODEL) if ctx.minutes_left() > 0.5 else None)
    n_eval = min(budget["eval_examples"] or len(held_out), len(held_out))
    evaluation = CifarTensorDataset(held_out.images[:n_eval], held_out.labels[:n_eval])
    steps_per_epoch = math.ceil(len(train) / BATCH_SIZE)
    recipe = {**get_recipe("quick"), "tta": False, "eval_strategy": "no", "save_strategy": "no", "plot_curves": False,
              "disable_tqdm": not ctx.progress, "seed": ctx.seed, "per_device_train_batch_size": BATCH_SIZE,
              "per_device_eval_batch_size": 512}
    recipe.pop("num_train_epochs")

    # 1. The dense model, and W_0 of AP's first cycle: its weights at initialization.
    torch.manual_seed(ctx.seed)
    dense = create_model(MODEL, **MODEL_OVERRIDES)
    initial_weights = snapshot_weights(dense)
    dense_dnr = DynamicDNRCallback()
    logging_steps = max(budget["dense_steps"] // 20, 1)
    dense_args = CifarTrainingArguments(output_dir=str(ctx.output_dir / "runs" / "dense"), max_steps=budget["dense_steps"],
                                        logging_steps=logging_steps, **recipe)
    started = time.monotonic()
    dense_trainer = CifarTrainer(model=dense, args=dense_args, train_dataset=train, callbacks=[dense_dnr])
    dense_trainer.train()
    dense_seconds = time.monotonic() - started
    dense_accuracy = float(per_image_correct(dense_trainer, evaluation).mean())
    step_seconds = dense_seconds / budget["dense_steps"] * 1.1  # + set-up and evaluation, until a cycle measures them
    cycles = budget["cycles"]

    # 2. Iterative Global MP, with and without AP, from the same dense weights.
    arms = {name: {"model": copy.deepcopy(dense), "history": [], "cycle_dnr": [], "accuracy": [], "accuracy_se": [],
                   "correct": None, "sparsity": [], "ap_pruned": 0}
            for name in ("Global MP", "Global MP + AP")}
    reference = initial_weights
    cycle_log, offset = [], budget["dense_steps"]
    for cycle in range(1, cycles + 1):
        sparsity = cycle_sparsity(cycle)
        cycle_steps = 2 if budget["smoke"] else plan_cycle_steps(ctx, cycles - cycle + 1, step_seconds, steps_per_epoch)
        guard_minutes = max(0.05, 3 * cycle_steps * step_seconds / 60)  # a guard only: 3× the planned time
        cycle_started = time.monotonic()
        cycle_log.append({"cycle": cycle, "sparsity": sparsity, "first_step": offset, "steps": cycle_steps})
        settings = {**recipe, "max_steps": cycle_steps, "logging_steps": max(cycle_steps // 4, 1),
                    "target_sparsity": sparsity, "pruning_method": "global", "pruning_schedule": "one-shot",
                    "pruning_start_step": 0, "time_budget_minutes": guard_minutes}
        for name, arm in arms.items():
            callback = DynamicDNRCallback()
            folder = str(ctx.output_dir / "runs" / f"{'ap' if 'AP' in name else 'plain'}-cycle{cycle}")
            if "AP" in name:
                trainer = APTrainer(model=arm["model"], args=APTrainingArguments(folder, ap_fraction=AP_FRACTION, **settings),
                                    train_dataset=train, callbacks=[callback], reference_weights=reference)
            else:
                trainer = PruningTrainer(model=arm["model"], args=PruningTrainingArguments(folder, **settings),
                                         train_dataset=train, callbacks=[callback])
            trainer.train()
            if "AP" in name:
                reference = trainer.reference_weights  # W_0 of this cycle: where its fine-tuning started
                arm["ap_pruned"] += sum(e.get("ap_pruned", 0) for e in trainer.pruning_history)
            arm["history"] += [{**h, "step": h["step"] + offset} for h in callback.history]
            arm["cycle_dnr"].append(callback.rate)
            arm["sparsity"].append(trainer.current_sparsity())
            # 3. Held-out accuracy after the cycle, per image (for the paired standard error).
            correct = per_image_correct(trainer, evaluation)
            arm["accuracy"].append(float(correct.mean()))
            arm["accuracy_se"].append(float(correct.std(ddof=1) / math.sqrt(len(correct))) if len(correct) > 1 else 0.0)
            arm["correct"] = correct
            arm["trainer"] = trainer
        offset += cycle_steps
        # the next cycle's plan uses this cycle's seconds per step, set-up and evaluation included
        step_seconds = (time.monotonic() - cycle_started) / (2 * cycle_steps)

    plain, ap = arms["Global MP"], arms["Global MP + AP"]
    for name, arm in arms.items():
        arm["trainer"].save_model(str(ctx.output_dir / ("ap" if "AP" in name else "global_mp")))  # plain sparse weights
    plot_results(ctx.output_dir / "ap.png", dense_dnr.history, arms, cycle_log, dense_accuracy)

    margin = ap["accuracy"][-1] - plain["accuracy"][-1]
    standard_error = paired_standard_error(ap["correct"], plain["correct"])
    passed = bool(margin >= -standard_error) if math.isfinite(standard_error) else bool(margin >= 0)
    final_sparsity = cycle_sparsity(cycles)
    measured = {
        "final_sparsity": final_sparsity,
        "sparsity_counted_global_mp": plain["sparsity"][-1],
        "sparsity_counted_ap": ap["sparsity"][-1],
        "accuracy_dense": dense_accuracy,
        "accuracy_global_mp": plain["accuracy"][-1],
        "accuracy_ap": ap["accuracy"][-1],
        "accuracy_margin_at_final_sparsity": margin,
        "paired_standard_error": standard_error,
        "images_only_ap_right": int((ap["correct"] & ~plain["correct"]).sum()),
        "images_only_global_mp_right": int((plain["correct"] & ~ap["correct"]).sum()),
        "dynamic_dnr_dense": dense_dnr.rate,
        "dynamic_dnr_last_cycle_global_mp": plain["cycle_dnr"][-1],
        "dynamic_dnr_last_cycle_ap": ap["cycle_dnr"][-1],
        "mean_margin_over_cycles": float(np.mean(np.array(ap["accuracy"]) - np.array(plain["accuracy"]))),
        **{f"accuracy_global_mp@{100 * c['sparsity']:.1f}%": a for c, a in zip(cycle_log, plain["accuracy"])},
        **{f"accuracy_ap@{100 * c['sparsity']:.1f}%": a for c, a in zip(cycle_log, ap["accuracy"])},
        **{f"dynamic_dnr_global_mp@{100 * c['sparsity']:.1f}%": d for c, d in zip(cycle_log, plain["cycle_dnr"])},
        **{f"dynamic_dnr_ap@{100 * c['sparsity']:.1f}%": d for c, d in zip(cycle_log, ap["cycle_dnr"])},
        "weights_chosen_by_ap": ap["ap_pruned"],
        "cycles": cycles,
        "prune_per_cycle": PRUNE_PER_CYCLE,
        "ap_fraction": AP_FRACTION,
        "dense_steps": budget["dense_steps"],
        "steps_per_cycle": ", ".join(str(c["steps"]) for c in cycle_log),
        "fine_tuning_epochs_per_arm": sum(c["steps"] for c in cycle_log) / steps_per_epoch,
        "dense_train_minutes": dense_seconds / 60,
        "eval_examples": n_eval,
    }
    reason = (f"at {100 * final_sparsity:.1f}% sparsity AP {ap['accuracy'][-1]:.1%} vs Global MP {plain['accuracy'][-1]:.1%} "
              f"(margin {margin:+.1%}, paired SE {standard_error:.1%}; PASS needs margin ≥ −1 SE: "
              f"{'met' if passed else 'not met'}); dynamic DNR in the last cycle {ap['cycle_dnr'][-1]:.3f} with AP vs "
              f"{plain['cycle_dnr'][-1]:.3f} without")
    return Measurement(value=margin, measured=measured, passed=passed, reason=reason, plots=["ap.png"], model_dir="ap",
                       data_info={**ctx.data_info, "num_eval_examples": n_eval})
