"""Claim check (row 1): defensive distillation thwarts FGSM, but CW-L2 still succeeds on the distilled model.

The row-1 report distils a ResNet-101 teacher into a ResNeXt-50 (32×4d) student on CIFAR-10 and finds that the
distilled student resists FGSM but remains susceptible to the Carlini–Wagner attack. It makes two claims, and both
are checked (`combine="all"`: the finding is the *contrast*, so each half must hold):

1. **FGSM success drops** (superiority of the reduction): FGSM (ε = 8/255) success rate on the undistilled model minus
   that on the distilled student, on the held-out images both classify correctly, is > 0. The report's abstract gives
   no number, and Papernot et al.'s own CIFAR-10 figure (87.89% → 5.11%) is for JSMA, not FGSM, so no paper value is
   attached. (v1's PASS line, "student ≤ ½ × undistilled", was this check's own bar, not a number of the paper.)
2. **CW-L2 still succeeds** (threshold): CW-L2's success rate on the student is > 90%. Carlini & Wagner (IEEE S&P 2017,
   Section VIII) report that their attacks succeed on 100% of the images against defensively distilled networks —
   the paper value 1.0; a bound of exactly 1 could never be passed by an interval, so the threshold is 0.9, fixed
   before the first v1 run and kept.

Per seed: three FastNets on the same training images, same recipe and epochs — an undistilled one (T = 1), a teacher
at T = 100, and a student trained on the teacher's soft labels at T = 100 and deployed at T = 1 (Papernot et al.'s
strongest temperature); the undistilled model and the student start from the same initial weights. The images both
classify correctly differ from seed to seed, so each seed's paired FGSM difference and CW success rate carry their
own standard error and the seeds are pooled (`pool_seeds`: seed spread + per-seed error).
"""

from __future__ import annotations

import copy
import math

import numpy as np

from hfcifar.reproduce import SUPERIORITY, THRESHOLD, Claim, ClaimContext, Hypothesis, Result, Scale, pool_seeds, proportion
from hfcifar.reproduce.statistics import paired_comparison
from . import METHOD

TEMPERATURE = 100.0
FGSM_EPS = 8 / 255
FGSM_CURVE = (1 / 255, 2 / 255, 4 / 255, 8 / 255, 16 / 255)
MIN_CW_SUCCESS = 0.9

CLAIM = Claim(
    paper=("Evaluating Adversarial Robustness: A Comparison Of FGSM, Carlini-Wagner Attacks, And The Role of "
           "Distillation as Defense Mechanism"),
    claim=(
        "Defensive distillation (ResNet-101 teacher → ResNeXt-50 32×4d student on CIFAR-10) thwarts FGSM, but the "
        "distilled student remains susceptible to CW (the report gives no number; Carlini & Wagner report 100% CW "
        "success against distilled networks). Checked as: FGSM (ε = 8/255) success drops from the undistilled model "
        "to the distilled student (T = 100, deployed at T = 1), AND CW-L2 succeeds on > 90% of the student's "
        "correctly classified held-out images."
    ),
    hypotheses=[
        Hypothesis("fgsm_success_reduction", SUPERIORITY,
                   "FGSM (ε = 8/255) success rate on the undistilled model − on the distilled student, on held-out "
                   "images both classify correctly, is > 0"),
        Hypothesis("cw_success_student", THRESHOLD,
                   "CW-L2 (untargeted, κ = 0, unbounded L2) succeeds on > 90% of the student's correctly classified "
                   "held-out images", threshold=MIN_CW_SUCCESS, paper_value=1.0),
    ],
    combine="all",
    scales={
        "smoke": Scale({"teacher_model": "fastnet", "student_model": "fastnet", "recipe": "quick", "epochs": 1,
                        "max_steps": 2, "eval_images": 64, "cw_images": 8, "cw_binary_search_steps": 1,
                        "cw_steps": 5}, seeds=1, minutes=0.5),
        "cpu": Scale({"teacher_model": "fastnet", "student_model": "fastnet", "recipe": "quick", "epochs": 10,
                      "eval_images": 466, "cw_images": 100, "cw_binary_search_steps": 5, "cw_steps": 100},
                     seeds=3, minutes=21,
                     description=(
                         "FastNet teacher/student/undistilled on cifar10-mini's 4,194 training images, 10 epochs "
                         "each, 3 seeds; timed with OMP_NUM_THREADS=1 on this machine: a training step 0.26 s (33 "
                         "an epoch; the student ×1.35 for the teacher's forward) → 3 seeds × 3.35 × 10 × 8.6 s ≈ "
                         "14.5 min of training, + CW (100 images × 5 × 100 Adam steps ≈ 2 min a seed) ≈ 21 min. "
                         "Fewer epochs than v1's 22 (and than the report's)")),
        "paper": Scale({"teacher_model": "resnet101", "student_model": "resnext50_32x4d", "recipe": "sgd-cosine",
                        "epochs": 200, "eval_images": 10000, "cw_images": 1000, "cw_binary_search_steps": 9,
                        "cw_steps": 1000}, seeds=3, minutes=3000, device="GPU",
                       description=("the report's ResNet-101 → ResNeXt-50 (32×4d) pair on full CIFAR-10 (the test "
                                    "split with --eval-dataset), 200 epochs each; CW with the paper's 9 binary-search "
                                    "steps; an estimate, never run here")),
    },
    min_seeds=3,
    # FGSM: a paired difference of success rates on ≥ 150 images has a standard error ≤ 0.08 per seed, small next to
    # the drop the report describes. CW: with ≥ 100 images per seed (300 over 3 seeds), a success rate of 97% or more
    # has an interval clear of 90%.
    minimums={"fgsm_images": 150, "cw_images": 100},
    citation=METHOD.citation,
)


def attack_success(model, attack, images, labels, batch_size: int = 256) -> np.ndarray:
    """Per image: does `attack`'s example change the model's (correct) prediction? (images in [0, 1])"""
    from hfcifar.attacks import correct_under_attack

    return (~correct_under_attack(model, lambda batch: attack, images, labels, batch_size)).cpu().numpy()


def success_reduction(undistilled: np.ndarray, student: np.ndarray) -> dict:
    """FGSM success on the undistilled model − on the student, paired per image, with its standard error; with fewer
    than two images nothing is known (an infinite standard error, which the verdict reads as INCONCLUSIVE)."""
    if len(undistilled) < 2:
        margin = float(np.mean(undistilled.astype(float) - student)) if len(undistilled) else 0.0
        return {"margin": margin, "standard_error": math.inf}
    return paired_comparison(undistilled, student)


def zero_gradient_fraction(model, images, labels) -> float:
    """Fraction of images whose input gradient of the cross-entropy is exactly zero (a saturated softmax at T = 1)."""
    from hfcifar.attacks import FGSM

    gradient = FGSM(model).input_gradient(images, labels)
    return float((gradient.flatten(1).abs().amax(dim=1) == 0).float().mean())


def median_logit_gap(model, images) -> float:
    """Median over images of (top logit − runner-up): ~T times larger after distillation (Papernot et al., Sec. V.B)."""
    import torch

    with torch.no_grad():
        top = model(images).logits.topk(2, dim=-1).values
    return float((top[:, 0] - top[:, 1]).median())


def run(ctx: ClaimContext) -> Result:
    from hfcifar.attacks import CW, FGSM
    from hfcifar.data import to_float_images
    from hfcifar.models import create_model
    from hfcifar.training import get_recipe

    from .trainer import DefensiveDistillationTrainer, DefensiveDistillationTrainingArguments

    work = ctx.work
    _, held_out = ctx.tensors()
    held_out = ctx.head(held_out, work["eval_images"])
    # the soft targets come from the teacher alone (no label smoothing); attacks see the bare model (no flip TTA)
    recipe = {**get_recipe(work["recipe"]), "label_smoothing_factor": 0.0, "tta": False}

    def fit(name, model, stage, temperature, seed, teacher=None):
        extra = {"teacher_model": teacher} if teacher is not None else {}
        return ctx.train(model, {**recipe, "stage": stage, "temperature": temperature}, name=name,
                         trainer_class=DefensiveDistillationTrainer, args_class=DefensiveDistillationTrainingArguments,
                         epochs=work["epochs"], max_steps=work.get("max_steps"), seed=seed,
                         save=name == f"student-seed{ctx.seeds[0]}", **extra).model.eval()

    cw_settings = {"binary_search_steps": work["cw_binary_search_steps"], "steps": work["cw_steps"], "kappa": 0.0}
    per_seed = []
    for seed in ctx.each_seed():
        initial = create_model(work["student_model"])  # the undistilled model and the student start alike
        undistilled = fit(f"undistilled-seed{seed}", copy.deepcopy(initial), "teacher", 1.0, seed)  # T = 1: plain
        teacher = fit(f"teacher-seed{seed}", create_model(work["teacher_model"]), "teacher", TEMPERATURE, seed)
        student = fit(f"student-seed{seed}", copy.deepcopy(initial), "student", TEMPERATURE, seed, teacher=teacher)

        correct = {name: ctx.correct(model, held_out) for name, model in
                   (("undistilled", undistilled), ("teacher", teacher), ("student", student))}
        both = correct["undistilled"] & correct["student"]
        images, labels = to_float_images(held_out.images[both]), held_out.labels[both]
        fgsm = {name: {eps: attack_success(model, FGSM(model, eps=eps), images, labels) for eps in FGSM_CURVE}
                for name, model in (("undistilled", undistilled), ("student", student))}
        n_cw = min(work["cw_images"], len(labels))
        cw = attack_success(student, CW(student, **cw_settings), images[:n_cw], labels[:n_cw], batch_size=128)
        per_seed.append({
            "seed": seed, "fgsm_images": int(len(labels)), "cw_images": n_cw,
            "fgsm": success_reduction(fgsm["undistilled"][FGSM_EPS], fgsm["student"][FGSM_EPS]),
            "cw_success": float(cw.mean()) if n_cw else float("nan"),
            # Agresti–Coull: a success rate of 100% on n images is not a certainty (the plain binomial SE is 0)
            "cw_standard_error": proportion(float(cw.sum()), n_cw).standard_error if n_cw else float("nan"),
            "curve": {name: [float(rates[eps].mean()) if len(labels) else float("nan") for eps in FGSM_CURVE]
                      for name, rates in fgsm.items()},
            "accuracy": {name: float(c.mean()) for name, c in correct.items()},
            "zero_gradient_fraction": {name: zero_gradient_fraction(m, images, labels) if len(labels) else float("nan")
                                       for name, m in (("undistilled", undistilled), ("student", student))},
            "median_logit_gap": {name: median_logit_gap(m, images) if len(labels) else float("nan")
                                 for name, m in (("undistilled", undistilled), ("student", student))},
        })

    fgsm_images = min(s["fgsm_images"] for s in per_seed)
    cw_images = min(s["cw_images"] for s in per_seed)
    measurements = {
        "fgsm_success_reduction": pool_seeds(
            [s["fgsm"]["margin"] for s in per_seed], [s["fgsm"]["standard_error"] for s in per_seed], fgsm_images,
            method="per seed: paired per-image difference on the images both models classify correctly; seeds "
                   "pooled (seed spread + per-seed standard error)")}
    if cw_images:
        measurements["cw_success_student"] = pool_seeds(
            [s["cw_success"] for s in per_seed], [s["cw_standard_error"] for s in per_seed], cw_images,
            method="per seed: Agresti–Coull standard error of the success rate; seeds pooled")

    with ctx.figure("fgsm_cw.png", 1, 2, figsize=(11, 4)) as (fig, (left, right)):
        labels = {"undistilled": "undistilled (T = 1)", "student": f"student (T = {TEMPERATURE:g}, deployed at T = 1)"}
        for name, colour in (("undistilled", "tab:blue"), ("student", "tab:green")):
            mean = np.nanmean([s["curve"][name] for s in per_seed], axis=0)
            left.plot([e * 255 for e in FGSM_CURVE], mean, "-o", color=colour, label=labels[name])
        left.axvline(FGSM_EPS * 255, color="gray", linestyle=":", linewidth=1)
        left.set(xlabel="FGSM ε (/255)", ylabel="success rate (mean over seeds)", ylim=(-0.02, 1.02),
                 title="FGSM on held-out images both models classify correctly")
        left.legend(fontsize=8)
        left.grid(alpha=0.3)
        for i, s in enumerate(per_seed):
            offset = (i - (len(per_seed) - 1) / 2) * 0.25
            values = [s["curve"]["undistilled"][FGSM_CURVE.index(FGSM_EPS)],
                      s["curve"]["student"][FGSM_CURVE.index(FGSM_EPS)], s["cw_success"]]
            right.bar([j + offset for j in range(3)], values, 0.25, label=f"seed {s['seed']}")
        right.set_xticks(range(3), ["FGSM\nundistilled", f"FGSM\nstudent (T={TEMPERATURE:g})", "CW-L2\nstudent"])
        right.axhline(MIN_CW_SUCCESS, color="tab:red", linestyle="--", linewidth=1, label=f"CW threshold {MIN_CW_SUCCESS:.0%}")
        right.set(ylabel="attack success rate", ylim=(0, 1.15), title=f"FGSM ε = {FGSM_EPS * 255:.0f}/255 vs CW-L2")
        right.legend(fontsize=8)

    details = {"temperature": TEMPERATURE, "epochs": work["epochs"], **{f"cw_{k}": v for k, v in cw_settings.items()}}
    for s in per_seed:
        tag = f"seed{s['seed']}"
        details[f"fgsm_images_{tag}"] = s["fgsm_images"]
        details[f"cw_images_{tag}"] = s["cw_images"]
        details[f"cw_success_student_{tag}"] = s["cw_success"]
        details[f"fgsm_success_reduction_{tag}"] = s["fgsm"]["margin"]
        details[f"fgsm_success_reduction_standard_error_{tag}"] = s["fgsm"]["standard_error"]
        for name, rates in s["curve"].items():
            details[f"fgsm_success_{name}_{tag}"] = dict(zip([f"eps{round(e * 255)}" for e in FGSM_CURVE], rates))
        for name, value in s["accuracy"].items():
            details[f"accuracy_{name}_{tag}"] = value
        for name in ("undistilled", "student"):
            details[f"zero_gradient_fraction_{name}_{tag}"] = s["zero_gradient_fraction"][name]
            details[f"median_logit_gap_{name}_{tag}"] = s["median_logit_gap"][name]
    return Result(measurements=measurements, details=details,
                  sizes={"fgsm_images": fgsm_images, "cw_images": cw_images},
                  model_dir=f"student-seed{ctx.seeds[0]}")
