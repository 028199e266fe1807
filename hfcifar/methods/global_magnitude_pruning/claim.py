"""Claim check (row 28): Global MP ≥ uniform layer-wise MP at 90% and 98% sparsity; the Minimum Threshold avoids
layer collapse; the masks are exactly `torch.nn.utils.prune.global_unstructured`'s.

Gupta et al. (2022) find that vanilla Global Magnitude Pruning — one magnitude threshold for the whole network —
beats far more complex pruning methods at every sparsity on CIFAR-10 (WRN-28-8, ResNet-32), and that layer collapse
at high sparsity is fixed by keeping a minimum of weights in every layer (MT). Scaled to a 2-core CPU, on the
training images of cifar10-mini:

1. Train a dense ResNet-32 (the paper's CIFAR-10 ResNet) with SGD on 40% of the budget (the learning-rate schedule
   fitted into that time).
2. From the dense weights, compute the one-shot masks at 90% and 98% sparsity (all Conv2d/Linear weights, first and
   last layer included, as in the official code): Global MP (vanilla), Global MP + MT (every layer keeps ≥ 1% of
   its weights) and uniform layer-wise MP (every layer loses the same fraction). Check Global MP's masks against
   `torch.nn.utils.prune.global_unstructured` on a copy; count collapsed layers and the FLOPs each set removes; measure
   each set's accuracy without fine-tuning.
3. Fine-tune the Global MP of record and uniform MP at each sparsity with `PruningTrainer`, pruning gradually from the
   dense weights (Zhu & Gupta's cubic schedule over the first half of the steps, 8 events) and training on at the
   target — the same steps, recipe, schedule and seed for both (steps sized from the rest of the budget at the dense
   run's measured epoch time).
4. Accuracy of every model on the same held-out images; a paired standard error for each difference.

The Global MP of record at a sparsity is vanilla Global MP, or Global MP + MT where vanilla collapses a layer (the
paper's rule, "MT when needed"); the rule looks at the masks only, never at accuracy. PASS iff at both sparsities its
fine-tuned accuracy is ≥ uniform MP's minus one paired standard error (measured on the same images), with either
model above chance (a tie of two collapsed networks says nothing), AND MT leaves no collapsed layer, AND Global MP's
masks equal `global_unstructured`'s, AND every fine-tuned model's counted sparsity is its target. The value is the
smaller of the two margins (Global MP − uniform MP).
"""

from __future__ import annotations

import copy
import math
import time

import torch

from hfcifar.reproduce import Claim, ClaimContext, Measurement

CLAIM = Claim(
    paper="Is Complexity Required for Neural Network Pruning? A Case Study on Global Magnitude Pruning",
    claim=(
        "Vanilla Global MP performs better than the other pruning methods at all sparsity ratios on CIFAR-10, and "
        "layer collapse at high sparsity is fixed by a Minimum Threshold of weights per layer. Measured on a ResNet-32: "
        "at 90% and 98% sparsity, Global MP (with MT where vanilla collapses a layer) fine-tuned reaches ≥ the accuracy "
        "of uniform layer-wise MP fine-tuned the same way (within one paired standard error); MT leaves no collapsed "
        "layer; the masks equal torch.nn.utils.prune.global_unstructured's. The value is the smaller accuracy margin."
    ),
    paper_value=0.0,
    metric="accuracy_margin_global_minus_uniform",
    comparison=">=",
    tolerance=0.0,  # the run's own tolerance is one paired standard error, measured (see `reason`)
    budget_minutes=15.0,
    citation="""@article{gupta2022globalmp,
  title   = {Is Complexity Required for Neural Network Pruning? A Case Study on Global Magnitude Pruning},
  author  = {Gupta, Manas and Camci, Efe and Keneta, Vishandi Rudy and Vaidyanathan, Abhishek and Kanodia, Ritwik
             and Foo, Chuan-Sheng and Wu, Min and Lin, Jie},
  journal = {arXiv preprint arXiv:2209.14624},
  year    = {2022},
  url     = {https://arxiv.org/abs/2209.14624}
}""",
)

MODEL = "resnet32"
SPARSITIES = (0.90, 0.98)
MIN_KEEP_FRACTION = 0.01  # MT: every layer keeps ≥ 1% of its weights (must stay ≤ 1 − 0.98)
BATCH_SIZE = 128
MAX_DENSE_EPOCHS = 40
MAX_FINE_TUNE_EPOCHS = 12
#: Gradual pruning while fine-tuning (Zhu & Gupta's cubic schedule): over the first half of the steps, in 8 events.
PRUNING_SPAN = 0.5
PRUNING_EVENTS = 8
#: Dense training: SGD-Nesterov, linear warm-up (20%) then linear decay, label smoothing, crop + flip.
TRAINING = {
    "optim": "sgd",
    "optim_args": "momentum=0.9,nesterov=True",
    "learning_rate": 0.1,
    "weight_decay": 5e-4,
    "lr_scheduler_type": "linear",
    "warmup_steps": 0.2,
    "label_smoothing_factor": 0.1,
    "per_device_train_batch_size": BATCH_SIZE,
    "crop_padding": 4,
    "tta": False,
}
#: Fine-tuning: the same recipe at half the peak learning rate, decaying linearly from the start.
FINE_TUNING = {**TRAINING, "learning_rate": 0.05, "warmup_steps": 0}
#: The extra cost of the mask hooks (weight = weight_orig · mask at every forward) while fine-tuning.
MASK_OVERHEAD = 1.1


def evaluation_seconds(num_eval: int, epoch_seconds: float, num_train: int, predictions: int) -> float:
    """`predictions` forward passes over the held-out images (a forward pass ≈ a third of a training step)."""
    return predictions * num_eval / num_train * epoch_seconds / 3


def plan(ctx: ClaimContext) -> dict:
    """The dense model's share of the budget: 40% of what is left after a 45 s margin (evaluations, saving).

    Dense training runs on a time budget (`time_budget_minutes`, with the learning-rate schedule fitted into it by
    `TimeBudgetCallback`), so no step needs timing here; fine-tuning is planned afterwards from the epoch time the
    dense run measured. Under half a minute left is a smoke run (a budget of seconds): a few steps each, a few images.
    """
    if ctx.minutes_left() <= 0.5:
        return {"smoke": True, "dense_minutes": 0.05, "eval_examples": 32}
    return {"smoke": False, "dense_minutes": max(0.4 * (ctx.minutes_left() - 0.75), 0.1), "eval_examples": None}


def plan_fine_tuning(ctx: ClaimContext, epoch_seconds: float, runs: int, num_train: int, num_eval: int) -> dict:
    """Fine-tuning epochs (the same for every run, in tenths, at least half an epoch) from what is left, at the epoch
    time the dense model measured (plus the mask hooks' overhead), after the evaluations (one per run, six of the
    one-shot masks) and a 20 s margin."""
    left = ctx.minutes_left() * 60 - evaluation_seconds(num_eval, epoch_seconds, num_train, runs + 6) - 20
    epochs = min(max(math.floor(10 * left / (runs * epoch_seconds * MASK_OVERHEAD)) / 10, 0.5), MAX_FINE_TUNE_EPOCHS)
    return {"fine_tune_epochs": epochs, "stage_minutes": max(0.05, 2 * epochs * epoch_seconds * MASK_OVERHEAD / 60)}


def masks_equal_global_unstructured(model, masks: dict, sparsity: float) -> bool:
    """Whether `masks` are exactly what `torch.nn.utils.prune.global_unstructured` (L1) prunes on a copy of `model`."""
    from torch.nn.utils import prune

    from hfcifar.pruning import prunable_layers

    reference = copy.deepcopy(model)
    layers = prunable_layers(reference)
    prune.global_unstructured([(m, "weight") for m in layers.values()], pruning_method=prune.L1Unstructured, amount=sparsity)
    return all(torch.equal(masks[name], layer.weight_mask) for name, layer in layers.items())


def plot_accuracy_vs_sparsity(path, dense: float, curves: dict, num_eval: int) -> None:
    """Held-out accuracy against the fraction of weights kept (log scale), per method: gradual pruning + fine-tuning
    (solid, ±1 binomial standard error) and the one-shot masks of the dense model without fine-tuning (dotted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"Global MP": ("tab:blue", "o"), "Global MP + MT": ("tab:green", "D"), "Uniform MP": ("tab:red", "s")}
    fig, ax = plt.subplots(figsize=(9.5, 4.6))
    se = lambda p: math.sqrt(max(p * (1 - p), 1e-12) / num_eval)
    for offset, (name, points) in zip((0.94, 1.0, 1.06), curves.items()):
        colour, marker = styles.get(name, ("tab:gray", "x"))
        # a small shift of each method along x keeps the error bars apart
        tuned = [(1.0, dense)] + [(1 - s, v["fine_tuned"]) for s, v in points.items() if v["fine_tuned"] is not None]
        raw = [(1.0, dense)] + [(1 - s, v["pruned"]) for s, v in points.items()]
        if len(tuned) > 1:
            ax.errorbar([k * offset for k, _ in tuned], [p for _, p in tuned], yerr=[se(p) for _, p in tuned],
                        color=colour, marker=marker, capsize=3, label=f"{name}, gradual pruning + fine-tuning")
        ax.plot([k * offset for k, _ in raw], [p for _, p in raw], color=colour, marker=marker, linestyle=":", alpha=0.6,
                label=f"{name}, one-shot, no fine-tuning")
        for s, v in points.items():
            if v["collapsed"]:
                ax.annotate(f"{v['collapsed']} layer(s) collapsed", ((1 - s) * offset, v["pruned"]),
                            textcoords="offset points", xytext=(-95, -16), fontsize=7, color=colour)
    ax.axhline(0.1, color="gray", linewidth=0.8, linestyle="--", label="chance")
    ax.set_xscale("log")
    ax.invert_xaxis()
    ticks = [1.0] + [1 - s for s in SPARSITIES]
    ax.set_xticks(ticks, ["dense"] + [f"{s:.0%}" for s in SPARSITIES])
    ax.set(xlabel="sparsity (log scale of the weights kept)", ylabel=f"held-out accuracy ({num_eval} images)",
           title=f"Global vs uniform magnitude pruning ({MODEL}, CIFAR-10)", ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_layer_sparsity(path, per_layer: dict, sparsity: float) -> None:
    """The fraction of each layer's weights each mask set keeps at one sparsity (log scale, so 2% and 0.1% differ):
    where one global threshold puts the zeros, the MT floor, and collapsed layers (nothing kept) marked at the bottom."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(next(iter(per_layer.values())))
    floor = 3e-4
    fig, ax = plt.subplots(figsize=(max(8, 0.3 * len(names)), 4.4))
    styles = {"Global MP": ("tab:blue", "o"), "Global MP + MT": ("tab:green", "D"), "Uniform MP": ("tab:red", "s")}
    for method, values in per_layer.items():
        colour, marker = styles.get(method, ("tab:gray", "x"))
        kept = [1 - values[n] for n in names]
        ax.plot(range(len(names)), [max(k, floor) for k in kept], color=colour, marker=marker, markersize=4,
                linewidth=1, label=f"{method}")
        dead = [i for i, k in enumerate(kept) if k == 0]
        if dead:
            ax.scatter(dead, [floor] * len(dead), s=120, marker="x", color=colour, linewidths=2.5, zorder=5,
                       label=f"{method}: collapsed layer (0 weights kept)")
    ax.axhline(1 - sparsity, color="gray", linestyle=":", linewidth=1, label=f"network average ({1 - sparsity:.0%} kept)")
    ax.axhline(MIN_KEEP_FRACTION, color="tab:green", linestyle="--", linewidth=0.8, label=f"MT floor ({MIN_KEEP_FRACTION:.0%})")
    ax.set_yscale("log")
    ax.set_ylim(floor / 1.5, 1.2)
    ax.set_xticks(range(len(names)), [n.split(".", 1)[-1] if n.count(".") > 1 else n for n in names], rotation=90, fontsize=6)
    ax.set(ylabel="fraction of the layer's weights kept", title=f"Per-layer weights kept at {sparsity:.0%} sparsity ({MODEL})")
    ax.grid(alpha=0.3, which="both", axis="y")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(ctx: ClaimContext) -> Measurement:
    from hfcifar.attacks.transfer import predict
    from hfcifar.data import CifarTensorDataset, to_float_images
    from hfcifar.models import create_model
    from hfcifar.pruning import (
        PruningTrainer,
        PruningTrainingArguments,
        apply_masks,
        global_magnitude_masks,
        uniform_magnitude_masks,
    )
    from hfcifar.reproduce import paired_standard_error
    from hfcifar.training import CifarTrainer, CifarTrainingArguments

    from .layer_collapse import collapsed_layers, flops_sparsity, layer_sparsities

    train = CifarTensorDataset.from_hf(ctx.train_split, "train", progress=ctx.progress)
    held_out = CifarTensorDataset.from_hf(ctx.eval_split, "eval", progress=ctx.progress)
    budget = plan(ctx)
    n = min(budget["eval_examples"] or len(held_out), len(held_out))
    images, labels = to_float_images(held_out.images[:n]), held_out.labels[:n]
    common = {"save_strategy": "no", "eval_strategy": "no", "logging_steps": 10, "disable_tqdm": not ctx.progress,
              "seed": ctx.seed, "plot_curves": False, **({"per_device_train_batch_size": 16} if budget["smoke"] else {})}

    def correct(model) -> torch.Tensor:
        return (predict(model, images, batch_size=512).cpu() == labels).float()

    # 1. The dense network.
    torch.manual_seed(ctx.seed)
    dense = create_model(MODEL)
    steps = {"num_train_epochs": MAX_DENSE_EPOCHS, "max_steps": 2 if budget["smoke"] else -1}
    args = CifarTrainingArguments(output_dir=str(ctx.output_dir / "dense"), time_budget_minutes=budget["dense_minutes"],
                                  **{**TRAINING, **common, **steps})
    started = time.monotonic()
    trainer = CifarTrainer(model=dense, args=args, train_dataset=train)
    trainer.train()
    dense_minutes = (time.monotonic() - started) / 60
    dense_epochs = trainer.state.epoch
    # masks are computed on contiguous weights (hfcifar.pruning.masks' per-layer top-k reshapes with .view)
    dense = dense.eval().to(memory_format=torch.contiguous_format)
    dense_correct = correct(dense)
    epoch_seconds = dense_minutes * 60 / max(dense_epochs, 1e-9)

    # 2. The one-shot mask sets at the targets, from the same dense weights: compared with torch, checked for collapse.
    methods = {"Global MP": lambda s: global_magnitude_masks(dense, s),
               "Global MP + MT": lambda s: global_magnitude_masks(dense, s, min_keep_fraction=MIN_KEEP_FRACTION),
               "Uniform MP": lambda s: uniform_magnitude_masks(dense, s)}
    trainer_settings = {"Global MP": {"pruning_method": "global"},
                        "Global MP + MT": {"pruning_method": "global", "min_keep_fraction": MIN_KEEP_FRACTION},
                        "Uniform MP": {"pruning_method": "uniform"}}
    masks = {(name, s): fn(s) for s in SPARSITIES for name, fn in methods.items()}
    equal_to_torch = {s: masks_equal_global_unstructured(dense, masks[("Global MP", s)], s) for s in SPARSITIES}
    # The Global MP of record: vanilla, or + MT where vanilla collapses a layer (the paper's "MT when needed"; the
    # rule reads the masks, never an accuracy). Only the methods compared are fine-tuned.
    of_record = {s: "Global MP + MT" if collapsed_layers(masks[("Global MP", s)]) else "Global MP" for s in SPARSITIES}
    runs = [(name, s) for s in SPARSITIES for name in (of_record[s], "Uniform MP")]
    steps_per_epoch = math.ceil(len(train) / (16 if budget["smoke"] else BATCH_SIZE))
    if budget["smoke"]:
        fine_tuning = {"fine_tune_epochs": 2 / steps_per_epoch, "stage_minutes": 0.05}
    else:
        fine_tuning = plan_fine_tuning(ctx, epoch_seconds, len(runs), len(train), n)
    total_steps = max(2, round(fine_tuning["fine_tune_epochs"] * steps_per_epoch))
    end_step = max(1, int(PRUNING_SPAN * total_steps))
    schedule = {"pruning_schedule": "gradual", "pruning_start_step": 0, "pruning_end_step": end_step,
                "pruning_frequency": max(1, end_step // PRUNING_EVENTS), "max_steps": total_steps}

    # 3. Fine-tune: prune gradually (Zhu & Gupta) from the dense weights to the target, then train on at the target.
    results = {}
    for name, s in runs:
        folder = f"{name.lower().replace(' + ', '_').replace(' ', '_')}_{round(100 * s)}"
        args = PruningTrainingArguments(output_dir=str(ctx.output_dir / folder), target_sparsity=s,
                                        time_budget_minutes=fine_tuning["stage_minutes"],
                                        **{**FINE_TUNING, **common, **schedule, **trainer_settings[name]})
        model = copy.deepcopy(dense).train()
        tuner = PruningTrainer(model=model, args=args, train_dataset=train)
        started = time.monotonic()
        tuner.train()
        summary = tuner.pruning_summary()
        results[(name, s)] = {"after": correct(model.eval()), "sparsity": summary["sparsity"],
                              "collapsed_after": summary["collapsed_layers"], "events": len(summary["pruning_history"]),
                              "minutes": (time.monotonic() - started) / 60,
                              "stopped_by_time_budget": tuner.stopped_by_time_budget}
        if (name, s) == (of_record[SPARSITIES[0]], SPARSITIES[0]):
            tuner.save_model(str(ctx.output_dir / folder))  # plain sparse weights: loads with from_pretrained
            model_dir = folder

    # 4. The comparison at each sparsity.
    measured = {"model": MODEL, "dense_accuracy": float(dense_correct.mean()), "dense_epochs": dense_epochs,
                "dense_minutes": dense_minutes, "dense_stopped_by_time_budget": trainer.stopped_by_time_budget,
                "fine_tune_epochs": round(total_steps / steps_per_epoch, 3), "fine_tune_steps": total_steps,
                "pruning_steps": f"0…{end_step} every {schedule['pruning_frequency']}",
                "min_keep_fraction": MIN_KEEP_FRACTION, "eval_examples": n}
    curves = {name: {} for name in methods}
    verdicts, margins, details = [], {}, []
    chance = 1 / dense.config.num_labels
    for s in SPARSITIES:
        tag = round(100 * s)
        for name in methods:
            key = name.lower().replace(" + ", "_").replace(" ", "_")
            collapsed = collapsed_layers(masks[(name, s)])
            pruned = float(correct(apply_masks(copy.deepcopy(dense), masks[(name, s)])).mean())
            result = results.get((name, s))
            curves[name][s] = {"pruned": pruned, "fine_tuned": float(result["after"].mean()) if result else None,
                               "collapsed": len(collapsed)}
            measured.update({
                f"accuracy_one_shot_no_fine_tuning_{key}_{tag}": pruned,
                f"flops_removed_{key}_{tag}": flops_sparsity(dense, masks[(name, s)]),
                f"collapsed_layers_one_shot_{key}_{tag}": ", ".join(collapsed) or "none",
                f"max_layer_sparsity_one_shot_{key}_{tag}": max(layer_sparsities(masks[(name, s)]).values()),
            })
            if result:
                measured.update({f"accuracy_{key}_{tag}": float(result["after"].mean()),
                                 f"sparsity_counted_{key}_{tag}": result["sparsity"],
                                 f"collapsed_layers_fine_tuned_{key}_{tag}": ", ".join(result["collapsed_after"]) or "none",
                                 f"fine_tune_minutes_{key}_{tag}": result["minutes"]})
        a, b = results[(of_record[s], s)]["after"], results[("Uniform MP", s)]["after"]
        margin, se = float(a.mean() - b.mean()), paired_standard_error(a, b)
        informative = max(float(a.mean()), float(b.mean())) > chance + 3 * math.sqrt(chance * (1 - chance) / n)
        margins[s] = margin
        measured.update({f"global_mp_of_record_{tag}": of_record[s], f"margin_global_minus_uniform_{tag}": margin,
                         f"paired_standard_error_{tag}": se, f"above_chance_{tag}": informative})
        verdicts.append(informative and margin >= -se)
        details.append(f"{tag}%: {of_record[s]} {float(a.mean()):.1%} vs uniform {float(b.mean()):.1%} "
                       f"(margin {margin:+.1%}, paired SE {se:.1%}{'' if informative else ', both at chance'})")
    mt_no_collapse = all(not collapsed_layers(masks[("Global MP + MT", s)]) for s in SPARSITIES) and all(
        not r["collapsed_after"] for (name, _), r in results.items() if name == "Global MP + MT")
    sparsity_ok = all(abs(r["sparsity"] - s) < 1e-3 for (name, s), r in results.items())
    measured.update({f"masks_equal_global_unstructured_{round(100 * s)}": equal_to_torch[s] for s in SPARSITIES})
    measured.update({"mt_leaves_no_collapsed_layer": mt_no_collapse, "counted_sparsity_equals_target": sparsity_ok,
                     "stopped_by_time_budget": any(r["stopped_by_time_budget"] for r in results.values())})
    passed = all(verdicts) and mt_no_collapse and all(equal_to_torch.values()) and sparsity_ok

    plot_accuracy_vs_sparsity(ctx.output_dir / "accuracy_vs_sparsity.png", measured["dense_accuracy"], curves, n)
    plot_layer_sparsity(ctx.output_dir / "layer_sparsity.png",
                        {name: layer_sparsities(masks[(name, SPARSITIES[-1])]) for name in methods}, SPARSITIES[-1])
    reason = ("; ".join(details) + f"; PASS needs margin ≥ −1 paired SE at both, above chance: "
              f"{'met' if all(verdicts) else 'not met'}; MT collapse-free: {mt_no_collapse}; masks = global_unstructured: "
              f"{all(equal_to_torch.values())}; counted sparsity = target: {sparsity_ok}")
    return Measurement(value=min(margins.values()), measured=measured, passed=passed, reason=reason,
                       plots=["accuracy_vs_sparsity.png", "layer_sparsity.png"], model_dir=model_dir,
                       data_info={**ctx.data_info, "num_eval_examples": n})
