"""Claim check `pubdef`: under transfer attacks from public models, PubDef keeps more accuracy than white-box
adversarial training and than no defense, at almost no cost in clean accuracy.

The paper (abstract): "our defense, PubDef, outperforms the state-of-the-art white-box adversarial training by a
large margin with almost no loss in the normal accuracy. For instance, on ImageNet, our defense achieves 62%
accuracy under the strongest transfer attack vs only 36% of the best adversarially trained model. Its accuracy when
not under attack is only 2% lower than that of an undefended model (78% vs 80%)"; on CIFAR-10 its tables give ~89%
vs ~69% under the strongest transfer attack, and 96.1% vs 96.3% clean. Three comparisons are claimed, and all three
are checked (`combine="all"`: the paper's point is the combination, robustness without the clean-accuracy cost):

1. worst-case transfer accuracy PubDef − PGD-AT > 0 (superiority; paper, CIFAR-10: +0.20);
2. worst-case transfer accuracy PubDef − undefended > 0 (superiority; the paper's tables list the undefended model
   under the same attacks, and a defense that does not beat no defense defends nothing; no abstract number);
3. clean accuracy PubDef − undefended ≥ −δ with δ = 0.02 (non-inferiority: "only 2% lower" is the largest loss the
   paper's abstract presents as "almost no loss"; paper, CIFAR-10: −0.002).

"Worst case" is the paper's metric: the minimum over (source, attack) pairs of the accuracy under that pair. It is not
a per-image mean, so each seed's worst-case difference gets a paired bootstrap standard error over images (both
targets resampled together); the seeds are pooled with `pool_seeds`.

Per scale's work:

1. three "public" source models, trained once (they are given to attacker and defender alike, not part of the
   method's training randomness): two FastNets PubDef trains against and one FastNet variant (ReLU, wider stem, own
   seed) that it never sees;
2. per seed, three targets from the same initial weights, same recipe and epochs: undefended, PGD-AT
   (`AdversarialTrainer`) and PubDef (`PubDefTrainer`, PGD transfer examples from the two public training sources);
3. on the same held-out images, transfer attacks crafted on every source (PGD and FGSM — also an algorithm PubDef
   never trained on), each target's per-image clean and transfer correctness.
"""

from __future__ import annotations

import copy

import numpy as np

from hfcifar.reproduce import (NON_INFERIORITY, SUPERIORITY, Claim, ClaimContext, Hypothesis, Result, Scale,
                               bootstrap_standard_error, paired_difference, per_example_estimate, pool_seeds)
from . import METHOD

EPS = 8 / 255
TRAIN_ATTACK_STEPS = 3
#: What the check trains and attacks with, at every scale (the scale's work sets epochs and sizes).
SETTINGS = {
    # The public models the attacker (and the defender) can download. `pubdef_trains_on` marks the subset PubDef
    # trains against; the other one is a held-out public model, as in the paper's evaluation on unseen sources.
    "sources": {
        "fastnet-s1": {"preset": "fastnet", "config": {}, "seed": 1, "pubdef_trains_on": True},
        "fastnet-tiny-s2": {"preset": "fastnet-tiny", "config": {}, "seed": 2, "pubdef_trains_on": True},
        "fastnet-relu-s3": {"preset": "fastnet", "config": {"hidden_act": "relu", "stem_width": 32}, "seed": 3,
                            "pubdef_trains_on": False},
    },
    # PGD-AT: white-box PGD-L∞ on the target; PubDef: the same PGD run on the public sources (transfer examples).
    # 3 steps of 2.5·ε/3 (the usual α = 2.5·ε/steps) keep both at ~3× the cost of a normal epoch.
    "train_attack": {"eps": EPS, "alpha": 2.5 * EPS / TRAIN_ATTACK_STEPS, "steps": TRAIN_ATTACK_STEPS},
    "pubdef": {"transfer_attacks": ["pgd"], "pair_selection": "random", "clean_weight": 0.5},
    # The evaluation attacks, run on every source: the training attack with more steps, and FGSM (never trained on).
    "eval_attacks": {"pgd": {"eps": EPS, "alpha": 2 / 255, "steps": 10}, "fgsm": {"eps": EPS}},
}
TARGETS = ("undefended", "pgd-at", "pubdef")
BOOTSTRAP_REPEATS = 200
CLEAN_MARGIN = 0.02

CLAIM = Claim(
    paper="PubDef: Defending Against Transfer Attacks From Public Models",
    claim=(
        "Under transfer attacks from public models, PubDef outperforms white-box adversarial training by a large "
        "margin with almost no loss in clean accuracy (ImageNet: 62% under the strongest transfer attack vs 36% for "
        "the best adversarially trained model; 78% clean vs 80% undefended; CIFAR-10: ~89% vs ~69%, 96.1% vs 96.3% "
        "clean). Checked on FastNets: PubDef's worst-case accuracy over 6 transfer attacks (3 public sources, one "
        "never seen in training, × PGD/FGSM) is above PGD-AT's and above the undefended net's, and its clean accuracy "
        "is at most 2 points below the undefended net's."
    ),
    hypotheses=[
        Hypothesis("worst_case_margin_vs_pgd_at", SUPERIORITY,
                   "worst-case transfer accuracy of PubDef − of PGD-AT is > 0", paper_value=0.20),
        Hypothesis("worst_case_margin_vs_undefended", SUPERIORITY,
                   "worst-case transfer accuracy of PubDef − of the undefended net is > 0"),
        Hypothesis("clean_accuracy_margin_vs_undefended", NON_INFERIORITY,
                   "clean accuracy of PubDef − of the undefended net is > −0.02", margin=CLEAN_MARGIN,
                   margin_reason=("the abstract's own example of 'almost no loss in the normal accuracy' is 'only 2% "
                                  "lower than an undefended model (78% vs 80%)': a larger loss is more than the "
                                  "paper calls almost none"),
                   paper_value=-0.002),
    ],
    combine="all",
    scales={
        "smoke": Scale({"target": "fastnet", "source_epochs": 1, "target_epochs": 1, "max_steps": 2,
                        "train_images": 256, "eval_images": 32}, seeds=1, minutes=0.5),
        "cpu": Scale({"target": "fastnet", "source_epochs": 10, "target_epochs": 4, "eval_images": 466},
                     seeds=3, minutes=23,
                     description=(
                         "cifar10-mini's 4,194 training images; sources 10 epochs once, targets 4 epochs per seed, 3 "
                         "seeds. Timed with OMP_NUM_THREADS=1 on this machine: a FastNet step 0.26 s, a PGD-AT step "
                         "1.27 s (33 steps an epoch; PubDef ≈ 1.07× PGD-AT, v1's measured ratio) → sources 3 min, "
                         "targets 3 × 4 × (8.6 + 42 + 45) s ≈ 19 min, crafting and scoring ~1 min ≈ 23 min. v1 trained "
                         "20 target epochs with one seed; here 4 with three")),
        "paper": Scale({"target": "resnet18", "recipe": "sgd-cosine", "source_epochs": 200, "target_epochs": 200,
                        "eval_images": 10000}, seeds=3, minutes=2400, device="GPU",
                       description=("full CIFAR-10 (the test split with --eval-dataset), 200 epochs as the paper's "
                                    "CIFAR models; a ResNet-18 target and the three FastNet sources above (the paper "
                                    "uses 24 public models and 11 attacks); an estimate, never run here")),
    },
    min_seeds=3,
    minimums={"eval_images": 400},
    citation=METHOD.citation,
)


def worst_case_accuracy(correct: np.ndarray) -> float:
    """The paper's metric from per-pair, per-image correctness `[pairs, images]`: min over pairs of the accuracy."""
    return float(np.asarray(correct, dtype=float).mean(axis=1).min())


def worst_case_margin(correct_a: np.ndarray, correct_b: np.ndarray, repeats: int = BOOTSTRAP_REPEATS,
                      seed: int = 0) -> tuple[float, float]:
    """`worst_case_accuracy(a) − worst_case_accuracy(b)` on the same images, and its bootstrap standard error: the
    images are resampled together for both (paired), `repeats` times with a fixed seed."""
    stacked = np.stack([np.asarray(correct_a, dtype=float).T, np.asarray(correct_b, dtype=float).T], axis=1)

    def statistic(sample):  # sample: [images, 2, pairs]
        return sample[:, 0].mean(axis=0).min() - sample[:, 1].mean(axis=0).min()

    return float(statistic(stacked)), bootstrap_standard_error(statistic, [stacked], repeats=repeats, seed=seed)


def run(ctx: ClaimContext) -> Result:
    from hfcifar.models import create_model
    from hfcifar.attacks import predict
    from hfcifar.data import to_float_images
    from hfcifar.training import AdversarialTrainer, AdversarialTrainingArguments, get_recipe

    from .trainer import PubDefTrainer, PubDefTrainingArguments
    from .transfer import craft_transfer_examples, load_source_models

    work = ctx.work
    train, held_out = ctx.tensors()
    train = ctx.head(train, work.get("train_images"))
    held_out = ctx.head(held_out, work["eval_images"])
    # every accuracy here is measured without test-time augmentation, clean and transfer alike
    recipe = {**get_recipe(work.get("recipe", "quick")), "tta": False}
    max_steps = work.get("max_steps")

    # 1. The public sources, once.
    sources = {}
    for name, spec in SETTINGS["sources"].items():
        model = _seeded(spec["seed"], lambda: create_model(spec["preset"], **spec["config"]))
        sources[name] = ctx.train(model, recipe, name=f"sources/{name}", epochs=work["source_epochs"],
                                  max_steps=max_steps, seed=spec["seed"], train_dataset=train).model.eval()
    public = {name: sources[name] for name, spec in SETTINGS["sources"].items() if spec["pubdef_trains_on"]}

    # The threat model: every source × every attack, crafted once on the source and shown to every target.
    images, labels = to_float_images(held_out.images), held_out.labels
    examples = craft_transfer_examples(load_source_models(sources), SETTINGS["eval_attacks"], images, labels,
                                       seed=ctx.seed)
    pairs = [pair.name for pair in examples]
    seen = {pair.name for pair in examples
            if pair.source in public and pair.attack in SETTINGS["pubdef"]["transfer_attacks"]}

    # 2.–3. Per seed: three targets from the same initial weights; per-image clean and transfer correctness.
    attack = SETTINGS["train_attack"]
    settings = {
        "undefended": ({}, {}),
        "pgd-at": ({"trainer_class": AdversarialTrainer, "args_class": AdversarialTrainingArguments},
                   {"attack": "pgd", "attack_eps": attack["eps"], "attack_alpha": attack["alpha"],
                    "attack_steps": attack["steps"]}),
        "pubdef": ({"trainer_class": PubDefTrainer, "args_class": PubDefTrainingArguments, "source_models": public},
                   {"attack_eps": attack["eps"], "attack_alpha": attack["alpha"], "attack_steps": attack["steps"],
                    **SETTINGS["pubdef"]}),
    }
    clean = {t: [] for t in TARGETS}
    transfer = {t: [] for t in TARGETS}  # per seed: [pairs, images]
    for seed in ctx.each_seed():
        initial = create_model(work["target"])
        runs = []
        for target in TARGETS:
            classes, extra = settings[target]
            run_ = ctx.train(copy.deepcopy(initial), {**recipe, **extra}, name=f"{target}-seed{seed}",
                             epochs=work["target_epochs"], max_steps=max_steps, seed=seed, train_dataset=train,
                             save=target == "pubdef" and seed == ctx.seeds[0], **classes)
            model = run_.model.eval()
            runs.append(run_)
            clean[target].append(ctx.correct(model, held_out))
            transfer[target].append(np.stack([(predict(model, adversarial).cpu() == labels).numpy()
                                              for adversarial in examples.values()]))
        ctx.same_work(runs, f"targets of seed {seed}")

    margins = {}
    for other in ("pgd-at", "undefended"):
        per_seed = [worst_case_margin(transfer["pubdef"][i], transfer[other][i], seed=seed)
                    for i, seed in enumerate(ctx.seeds)]
        margins[other] = pool_seeds([m for m, _ in per_seed], [se for _, se in per_seed], n_images=len(held_out),
                                    method="per seed: paired bootstrap over images of the worst-case difference "
                                           f"({BOOTSTRAP_REPEATS} resamples); seeds pooled")
    measurements = {
        "worst_case_margin_vs_pgd_at": margins["pgd-at"],
        "worst_case_margin_vs_undefended": margins["undefended"],
        "clean_accuracy_margin_vs_undefended": paired_difference(clean["pubdef"], clean["undefended"]),
    }

    worst = {t: [worst_case_accuracy(c) for c in transfer[t]] for t in TARGETS}
    per_pair = {t: np.mean([c.mean(axis=1) for c in transfer[t]], axis=0) for t in TARGETS}
    clean_accuracy = {t: per_example_estimate(clean[t]) for t in TARGETS}
    with ctx.figure("transfer_accuracy.png", figsize=(max(8.0, 1.25 * (len(pairs) + 2) + 2), 4.4)) as (fig, ax):
        groups = ["clean"] + [p if p in seen else f"{p}\n(held out)" for p in pairs] + ["worst case"]
        colours = {"undefended": "tab:gray", "pgd-at": "tab:blue", "pubdef": "tab:green"}
        width = 0.8 / len(TARGETS)
        for t, target in enumerate(TARGETS):
            values = [clean_accuracy[target].estimate, *per_pair[target], float(np.mean(worst[target]))]
            xs = [g + (t - (len(TARGETS) - 1) / 2) * width for g in range(len(groups))]
            ax.bar(xs, values, width, label=target, color=colours[target])
            for x, v in zip(xs, values):
                ax.text(x, v + 0.01, f"{100 * v:.0f}", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(groups)), groups, fontsize=8)
        ax.set(ylabel=f"held-out accuracy (mean of {len(ctx.seeds)} seed(s))", ylim=(0, 1),
               title="Transfer attacks from public FastNets (ε = 8/255): clean, per (source/attack) pair, worst case")
        ax.axvline(len(groups) - 1.5, color="black", linewidth=0.8, linestyle=":")
        ax.legend(ncol=3, fontsize=8, loc="upper right")
        ax.grid(axis="y", alpha=0.3)

    details = {"pubdef_training_pairs": ", ".join(sorted(seen)), "held_out_pairs": ", ".join(sorted(set(pairs) - seen))}
    for target in TARGETS:
        details[f"{target}_clean_accuracy"] = clean_accuracy[target].estimate
        details[f"{target}_clean_accuracy_per_seed"] = clean_accuracy[target].per_seed
        details[f"{target}_worst_case_transfer_accuracy"] = float(np.mean(worst[target]))
        details[f"{target}_worst_case_transfer_accuracy_per_seed"] = worst[target]
        details[f"{target}_worst_case_pair_per_seed"] = [pairs[int(np.argmin(c.mean(axis=1)))] for c in transfer[target]]
        for pair, value in zip(pairs, per_pair[target]):
            details[f"{target}_transfer_accuracy[{pair}]"] = float(value)
    for run_ in ctx.training_runs:
        details[f"train_minutes[{run_.name}]"] = round(run_.seconds / 60, 3)
    return Result(measurements=measurements, details=details, sizes={"eval_images": len(held_out)},
                  model_dir=f"pubdef-seed{ctx.seeds[0]}")


def _seeded(seed: int, make):
    """`make()` with Python, numpy and torch seeded (a source's initial weights depend only on its own seed)."""
    from transformers import set_seed

    set_seed(seed)
    return make()
