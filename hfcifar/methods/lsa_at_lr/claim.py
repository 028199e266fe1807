"""Claim check (row 14): AT-LR keeps more robust accuracy than its base adversarial training at larger perturbations.

Khalooei et al. (abstract): "Compared with the AT-LR and its corresponding base adversarial training, the
classification accuracy of more significant perturbations increased by 16.35%, 21.79%, and 10.73% on Moon, MNIST,
and CIFAR-10". The claim is an *improvement* at perturbations larger than the training one, so each larger ε is a
superiority hypothesis on the paired effect AT-LR − AT (robust accuracy, same held-out images, same seeds, same
initial weights), and the paper claims it at larger perturbations in general, not at one chosen ε: the two
larger ε measured here (12/255 and 16/255, training ε = 8/255) combine with `"all"` — both must pass. The paper's
+10.73 points is attached to the largest ε (16/255), where the abstract's "more significant perturbations" sits;
the abstract gives no number per ε, so 12/255 carries none.

The experiment, per scale's work:

1. Algorithm 2, once: a model trained normally (the first seed), PGD-10 (ε = 8/255) on `lsa_images` of its
   *training* images, LSA (Algorithm 1) on its activation layers; the cut-off η starts at 1 and is lowered in steps
   of 0.25 until the MVL list is not empty (the paper tunes η per network; the rule looks at LSA only, never at
   robust accuracy or held-out images). The MVL list is shared by all seeds: the claim compares AT-LR with AT given
   the list.
2. Per seed: PGD-AT and AT-LR from the same initial weights, same recipe (no label smoothing, no TTA), same epochs
   and training attack (PGD-L∞ ε = 8/255, `train_steps` steps, α = 2.5·ε/steps); AT-LR: γ = 1 on every MVL layer
   (fixed before the first run).
3. Per-image robust correctness of both under PGD-L∞ (10 steps, α = 2.5·ε/10, random start, the same attack seeds
   for both arms) at ε ∈ {8, 12, 16}/255, plus clean correctness, on the same held-out images; the effect's
   standard error comes from the [seeds, images] paired differences (image and seed-to-seed variation).
"""

from __future__ import annotations

import copy

import numpy as np

from hfcifar.reproduce import SUPERIORITY, Claim, ClaimContext, Hypothesis, Result, Scale, paired_difference, per_example_estimate
from . import METHOD

TRAIN_EPS = 8 / 255
EVAL_EPS = (8 / 255, 12 / 255, 16 / 255)
LARGER_EPS = tuple(eps for eps in EVAL_EPS if eps > TRAIN_EPS)
EVAL_STEPS = 10
GAMMA = 1.0


def _tag(eps: float) -> str:
    return f"eps{round(eps * 255)}"


CLAIM = Claim(
    paper="Layer-wise Regularized Adversarial Training using Layers Sustainability Analysis (LSA) framework",
    claim=(
        "Compared with its base adversarial training, AT-LR increases the accuracy under larger perturbations by "
        "10.73% on CIFAR-10. Checked as: AT-LR's PGD-10 robust accuracy minus PGD-AT's (same seeds, initial weights, "
        "recipe, epochs and training attack at ε = 8/255) is > 0 at every larger ε measured, 12/255 and 16/255."
    ),
    hypotheses=[
        Hypothesis("robust_accuracy_margin_eps16", SUPERIORITY,
                   "AT-LR − PGD-AT robust accuracy under PGD-10 at ε = 16/255 (twice the training ε) is > 0",
                   paper_value=0.1073),
        Hypothesis("robust_accuracy_margin_eps12", SUPERIORITY,
                   "AT-LR − PGD-AT robust accuracy under PGD-10 at ε = 12/255 is > 0"),
    ],
    combine="all",
    scales={
        "smoke": Scale({"model": "fastnet", "standard_epochs": 1, "adversarial_epochs": 1, "train_steps": 1,
                        "max_steps": 2, "lsa_images": 32, "eval_images": 64}, seeds=1, minutes=0.5),
        "cpu": Scale({"model": "fastnet", "standard_epochs": 5, "adversarial_epochs": 4, "train_steps": 3,
                      "lsa_images": 256, "eval_images": 466}, seeds=3, minutes=24,
                     description=(
                         "FastNet on cifar10-mini's 4,194 training images, 3 seeds; timed with OMP_NUM_THREADS=1 on "
                         "this machine: a PGD-AT step 1.27 s, an AT-LR step 1.95 s, a clean step 0.26 s (33 steps an "
                         "epoch) → 3 × 4 × (42 + 64) s of adversarial training + 45 s standard model + ~40 s PGD "
                         "evaluation per seed ≈ 24 min. Far fewer epochs than the paper: AT-LR vs AT at a short "
                         "schedule.")),
        "paper": Scale({"model": "resnet18", "recipe": "sgd-cosine", "standard_epochs": 100,
                        "adversarial_epochs": 100, "train_steps": 10, "lsa_images": 1000, "eval_images": 10000},
                       seeds=3, minutes=600, device="GPU",
                       description=("full CIFAR-10 (50,000 training images, the 10,000 test images with "
                                    "--eval-dataset), a ResNet-18, PGD-10 adversarial training for 100 epochs "
                                    "(Madry et al.'s setting); an estimate, never run here")),
    },
    min_seeds=3,
    minimums={"eval_images": 400},
    citation=METHOD.citation,
)


def robust_correct(model, dataset, eps: float, steps: int = EVAL_STEPS, batch_size: int = 256, seed: int = 0) -> np.ndarray:
    """Per-image correctness under PGD-L∞ (α = 2.5·ε/steps, random start; batch `i` seeded `seed + i`, so two models
    evaluated with the same `seed` meet the same random starts)."""
    from hfcifar.attacks import PGD, correct_under_attack
    from hfcifar.data import to_float_images

    def attack(batch: int):
        return PGD(model, eps=eps, alpha=2.5 * eps / steps, steps=steps, seed=seed + batch)

    return correct_under_attack(model, attack, to_float_images(dataset.images), dataset.labels, batch_size).cpu().numpy()


def find_most_vulnerable_layers(model, train, num_images: int, seed: int):
    """Algorithm 2 on a normally trained model: PGD-10 at the training ε on `num_images` training images, LSA, and η
    lowered from 1 by 0.25 until the MVL list is not empty."""
    import torch

    from hfcifar.attacks import PGD
    from hfcifar.data import to_float_images

    from .lsa import layer_sustainability_analysis, most_vulnerable_layers

    index = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:num_images]
    images, labels = to_float_images(train.images[index]), train.labels[index]
    attack = PGD(model, eps=TRAIN_EPS, alpha=2.5 * TRAIN_EPS / EVAL_STEPS, steps=EVAL_STEPS)
    lsa = layer_sustainability_analysis(model, images, labels, attack, eta=1.0)
    while not lsa.most_vulnerable_layers and lsa.eta > 0:  # Algorithm 2, step 3: tune the cut-off η
        lsa.eta -= 0.25
        lsa.most_vulnerable_layers = [lsa.layers[i] for i in most_vulnerable_layers(lsa.per_example, lsa.eta)]
    return lsa


def run(ctx: ClaimContext) -> Result:
    from hfcifar.models import create_model
    from hfcifar.training import AdversarialTrainer, AdversarialTrainingArguments, get_recipe

    from .trainer import ATLRTrainer, ATLRTrainingArguments
    from .lsa import draw_layer_sustainability

    work = ctx.work
    train, held_out = ctx.tensors()
    held_out = ctx.head(held_out, work["eval_images"])
    recipe = {**get_recipe(work.get("recipe", "quick")), "tta": False}
    max_steps = work.get("max_steps")

    # 1. Algorithm 2, once: a normally trained model and its MVL list.
    standard = ctx.train(create_model(work["model"]), recipe, name="standard", epochs=work["standard_epochs"],
                         max_steps=max_steps, seed=ctx.seed)
    lsa = find_most_vulnerable_layers(standard.model, train, work["lsa_images"], ctx.seed)

    # 2.–3. Per seed: PGD-AT and AT-LR from the same initial weights, then per-image clean and robust correctness.
    adversarial = {**recipe, "label_smoothing_factor": 0.0, "attack": "pgd", "attack_eps": TRAIN_EPS,
                   "attack_steps": work["train_steps"], "attack_alpha": 2.5 * TRAIN_EPS / work["train_steps"]}
    arms = ("at", "at_lr")
    correct = {(arm, eps): [] for arm in arms for eps in (0.0, *EVAL_EPS)}
    runs = []
    for seed in ctx.each_seed():
        initial = create_model(work["model"])
        at = ctx.train(copy.deepcopy(initial), adversarial, name=f"at-seed{seed}", trainer_class=AdversarialTrainer,
                       args_class=AdversarialTrainingArguments, epochs=work["adversarial_epochs"],
                       max_steps=max_steps, seed=seed)
        at_lr = ctx.train(copy.deepcopy(initial), {**adversarial, "most_vulnerable_layers": lsa.most_vulnerable_layers,
                                                   "layer_regularization_weight": GAMMA},
                          name=f"at_lr-seed{seed}", trainer_class=ATLRTrainer, args_class=ATLRTrainingArguments,
                          epochs=work["adversarial_epochs"], max_steps=max_steps, seed=seed,
                          save=seed == ctx.seeds[0])
        ctx.same_work([at, at_lr], f"arms of seed {seed}")
        runs += [at, at_lr]
        for arm, run_ in zip(arms, (at, at_lr)):
            model = run_.model.eval()
            correct[(arm, 0.0)].append(ctx.correct(model, held_out))
            for eps in EVAL_EPS:
                correct[(arm, eps)].append(robust_correct(model, held_out, eps))

    margins = {eps: paired_difference(correct[("at_lr", eps)], correct[("at", eps)]) for eps in (0.0, *EVAL_EPS)}
    accuracy = {key: per_example_estimate(value) for key, value in correct.items()}
    measurements = {f"robust_accuracy_margin_{_tag(eps)}": margins[eps] for eps in LARGER_EPS}

    with ctx.figure("robust_accuracy.png", 1, 2, figsize=(12, 4.2)) as (fig, (left, right)):
        xs = [0, *(round(eps * 255) for eps in EVAL_EPS)]
        for arm, label, style in (("at", "PGD-AT", "-o"), ("at_lr", f"AT-LR (γ = {GAMMA:g})", "-s")):
            means = [accuracy[(arm, eps)].estimate for eps in (0.0, *EVAL_EPS)]
            errors = [1.96 * accuracy[(arm, eps)].standard_error for eps in (0.0, *EVAL_EPS)]
            left.errorbar(xs, means, yerr=errors, fmt=style, capsize=3, label=label)
        left.axvline(TRAIN_EPS * 255, color="gray", linestyle=":", linewidth=1, label="training ε")
        left.set(xlabel="PGD-10 ε (/255); 0 = clean", ylabel="held-out accuracy (95% interval)",
                 title=f"AT-LR vs PGD-AT, {len(ctx.seeds)} seed(s)")
        left.grid(alpha=0.3)
        left.legend(fontsize=8)
        draw_layer_sustainability(right, lsa)

    details = {"most_vulnerable_layers": ", ".join(lsa.most_vulnerable_layers), "lsa_eta": lsa.eta,
               "lsa_mean_relative_error": lsa.mean, "lsa_std_relative_error": lsa.std, "gamma": GAMMA,
               **{f"lsa_relative_error[{name}]": float(v) for name, v in zip(lsa.layers, lsa.relative_errors)},
               "standard_epochs": standard.epochs, "adversarial_epochs": runs[0].epochs}
    for eps in (0.0, *EVAL_EPS):
        tag = "clean" if eps == 0 else _tag(eps)
        for arm in arms:
            details[f"accuracy_{arm}_{tag}"] = accuracy[(arm, eps)].estimate
            details[f"accuracy_{arm}_{tag}_per_seed"] = accuracy[(arm, eps)].per_seed
        details[f"margin_{tag}"] = margins[eps].estimate
        details[f"margin_{tag}_standard_error"] = margins[eps].standard_error
        details[f"margin_{tag}_per_seed"] = margins[eps].per_seed
    for run_ in runs:
        details[f"train_minutes[{run_.name}]"] = round(run_.seconds / 60, 3)
    notes = (f"MVL = {', '.join(lsa.most_vulnerable_layers) or 'none'} (η = {lsa.eta:g}), found once on the first "
             "seed's normally trained model and shared by every seed.")
    return Result(measurements=measurements, details=details, notes=notes,
                  sizes={"eval_images": len(held_out)},
                  model_dir=f"at_lr-seed{ctx.seeds[0]}")
