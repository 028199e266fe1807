"""Defensive distillation (Papernot et al., 2016) as a `CifarTrainer` that overrides one hook.

"Distillation as a Defense to Adversarial Perturbations against Deep Neural Networks" (Papernot, McDaniel, Wu, Jha &
Swami, IEEE S&P 2016, https://arxiv.org/abs/1511.04508), Section IV, in three steps:

1. train the *teacher* F on the hard labels with a softmax at temperature T:
   `F_i(X) = exp(z_i(X)/T) / Σ_j exp(z_j(X)/T)` (Eq. 3);
2. train the *student* F^d, same task, on the teacher's soft labels `F(X)` computed at the same T, with the
   cross-entropy `−Σ_i F_i(X) · log F^d_i(X)` where `F^d` is also a softmax at T;
3. deploy the student at T = 1: its logits are divided by nothing at test time, so they are ~T times larger than those of
   a model trained at T = 1, the softmax saturates, and the input gradients that FGSM/JSMA follow vanish
   (Section V.B, "the impact on the adversarial gradients").

The temperature lives only in the loss: the saved model returns its raw logits, which *is* the model at T = 1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ...models import create_model
from ...training import CifarTrainer, CifarTrainingArguments, get_recipe

STAGES = ("teacher", "student")

#: Ready-made settings (a teacher → student pair, the temperature and the recipe both stages train with).
PRESETS: dict[str, dict] = {
    # The row-1 report's CIFAR-10 setting: a ResNet-101 teacher distilled into a ResNeXt-50 (32×4d) student, with
    # the classic ResNet recipe. T = 100 is the temperature of Papernot et al.'s strongest defense (Section V).
    # Sized for GPUs (two 200-epoch trainings of 42M/23M-parameter nets).
    "paper": {"teacher": "resnet101", "student": "resnext50_32x4d", "temperature": 100.0, "recipe": "sgd-cosine",
              "label_smoothing_factor": 0.0},
    # The claim check's CPU setting: the 0.3M FastNet as teacher and student, its quick recipe without label
    # smoothing (soft targets must come from the teacher alone) and without flip TTA (attacks see the bare model).
    "cpu": {"teacher": "fastnet", "student": "fastnet", "temperature": 100.0, "recipe": "quick",
            "label_smoothing_factor": 0.0, "tta": False, "num_train_epochs": 30},
}


def soft_cross_entropy(student_logits: torch.Tensor, soft_labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """The distillation loss of Papernot et al. (Section IV): `−Σ_i F_i(X) · log softmax(z^d(X)/T)_i`, batch mean.

    `soft_labels` are the teacher's probabilities `F(X) = softmax(z(X)/T)` (rows summing to 1). It differs from
    `KL(F(X) ‖ F^d(X))` by the teacher's entropy only, a constant for the student, so both give the same gradients.
    (Hinton et al.'s knowledge distillation multiplies by T²; Papernot et al. do not.)
    """
    log_probs = nn.functional.log_softmax(student_logits / temperature, dim=-1)
    return -(soft_labels * log_probs).sum(dim=-1).mean()


def soft_labels(teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """The teacher's soft labels `F(X) = softmax(z(X)/T)` (Eq. 3), which carry the class similarities the student learns."""
    return nn.functional.softmax(teacher_logits / temperature, dim=-1)


@dataclass
class DefensiveDistillationTrainingArguments(CifarTrainingArguments):
    """[`CifarTrainingArguments`] plus the distillation temperature and the stage being trained."""

    temperature: float = field(default=100.0, metadata={"help": "Softmax temperature T of both training stages (Eq. 3)."})
    stage: str = field(default="teacher", metadata={"help": "`teacher` (hard labels at T) or `student` (teacher's soft labels at T).",
                                                     "choices": list(STAGES)})
    temperature_reparametrization: bool = field(
        default=True,
        metadata={"help": "Train the output layer as W = T·W′ (init ×T, learning rate ×T², weight decay ÷T²) so that "
                          "training at T is as fast as at T = 1 (see `DefensiveDistillationTrainer`); False is plain "
                          "SGD on W, as in the paper."},
    )

    def __post_init__(self):
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}; got {self.stage!r}.")
        if not (self.temperature > 0):
            raise ValueError(f"temperature must be > 0 (T = 1 is ordinary training); got {self.temperature}.")
        super().__post_init__()


def output_layer(model: nn.Module) -> nn.Linear:
    """The layer producing the logits: the last `nn.Linear` with `config.num_labels` outputs (`classifier` in hfcifar)."""
    num_labels = getattr(getattr(model, "config", None), "num_labels", None)
    heads = [m for m in model.modules() if isinstance(m, nn.Linear) and (num_labels is None or m.out_features == num_labels)]
    if not heads:
        raise ValueError(f"{type(model).__name__} has no nn.Linear output layer with {num_labels} outputs; pass "
                         "temperature_reparametrization=False to train it with plain SGD.")
    return heads[-1]


class DefensiveDistillationTrainer(CifarTrainer):
    """Train the teacher or the student of defensive distillation; the saved model is deployed at T = 1.

    Args:
        teacher_model (`PreTrainedModel`, *optional*): the trained teacher; required for `stage="student"`, refused
            for `stage="teacher"`. It is frozen and kept in eval mode; it labels every augmented training batch, so the
            student sees the teacher's soft labels of exactly the images it trains on.

    At evaluation (`model.training` is False) the loss is the ordinary cross-entropy at T = 1 — the deployed model.

    Why the output layer is reparametrized (`args.temperature_reparametrization`, on by default): in a network whose
    scale is set by batch norm and a linear output layer W (every hfcifar net), the loss at T depends on W only
    through W/T. Writing W = T·W′, the loss at T of (W, θ) *is* the loss at T = 1 of (W′, θ): same minimizers, and
    the body θ gets the gradients of ordinary training — but W receives 1/T of W′'s gradient and must travel T times as
    far, so plain SGD needs ~T² times as many steps (measured: FastNet trained at T = 100 with the quick recipe stays
    near chance, 18% accuracy after 8 epochs, loss ≈ 2.2; at T = 1 it reaches 50%). Initializing W at T times its
    usual initialization and giving it T² times the learning rate and 1/T² the weight decay makes SGD on (W, θ) at T
    move (W′, θ) exactly as SGD at T = 1 would (`tests/test_defensive_distillation.py` checks it). The objective, its
    minimizers and what the paper's defense rests on — a deployed model (T = 1) with ~T times larger logits, whose
    softmax saturates (Section V.B) — are unchanged; only the optimizer reaches them in CPU time.

    Example:
        >>> args = DefensiveDistillationTrainingArguments("runs/teacher", stage="teacher", temperature=100)
        >>> DefensiveDistillationTrainer(model=teacher, args=args, train_dataset=data["train"]).train()
        >>> args = DefensiveDistillationTrainingArguments("runs/student", stage="student", temperature=100)
        >>> DefensiveDistillationTrainer(model=student, args=args, teacher_model=teacher, train_dataset=data["train"]).train()
    """

    arguments_class = DefensiveDistillationTrainingArguments

    # compute_loss returns a batch mean (not a sum over `num_items_in_batch`): let Trainer scale it for accumulation.
    loss_is_scaled_for_ga = False

    def __init__(self, model=None, args: DefensiveDistillationTrainingArguments | None = None, teacher_model=None, **kwargs):
        if not isinstance(args, DefensiveDistillationTrainingArguments):
            raise TypeError("DefensiveDistillationTrainer needs DefensiveDistillationTrainingArguments (temperature, stage).")
        if args.stage == "student" and teacher_model is None:
            raise ValueError("stage='student' distills a trained teacher: pass teacher_model=<the teacher trained at the same T>.")
        if args.stage == "teacher" and teacher_model is not None:
            raise ValueError("stage='teacher' trains on hard labels; teacher_model is only for stage='student'.")
        super().__init__(model=model, args=args, **kwargs)
        self._output_layer_scaled = False
        self.teacher_model = teacher_model
        if teacher_model is not None:
            teacher_model.to(self.args.device).eval().requires_grad_(False)

    def train(self, resume_from_checkpoint=None, **kwargs):
        # W = T·W′ starts from T × the usual initialization (W′ from it); a resumed run already has its W.
        if self.args.temperature_reparametrization and not resume_from_checkpoint and not self._output_layer_scaled:
            with torch.no_grad():
                for parameter in output_layer(self.model).parameters():
                    parameter.mul_(self.args.temperature)
            self._output_layer_scaled = True
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

    def create_optimizer(self, model=None):
        optimizer = super().create_optimizer(model)
        factor = self.args.temperature**2
        if not self.args.temperature_reparametrization or factor == 1.0:
            return optimizer
        if any(group.get("output_layer") for group in optimizer.param_groups):
            return optimizer  # already split (a second `train()` reuses the optimizer): never scale twice
        head = {id(p) for p in output_layer(self.model).parameters()}
        groups = list(optimizer.param_groups)
        optimizer.param_groups.clear()
        for group in groups:  # split each group (decay / no decay) into body and output-layer parameters
            settings = {k: v for k, v in group.items() if k != "params"}
            body = [p for p in group["params"] if id(p) not in head]
            out = [p for p in group["params"] if id(p) in head]
            if body:
                optimizer.add_param_group({**settings, "params": body})
            if out:
                optimizer.add_param_group({**settings, "params": out, "lr": settings["lr"] * factor, "output_layer": True,
                                           "weight_decay": settings.get("weight_decay", 0.0) / factor})
        return optimizer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not model.training:  # the deployed model: raw logits, i.e. the softmax at T = 1
            return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        pixel_values, labels = inputs["pixel_values"], inputs["labels"]
        outputs = model(pixel_values=pixel_values)
        temperature = self.args.temperature
        if self.args.stage == "teacher":
            # Eq. 3 + cross-entropy on the hard labels: the softmax sees z/T.
            loss = nn.functional.cross_entropy(outputs.logits / temperature, labels,
                                               label_smoothing=self.args.label_smoothing_factor)
        else:
            with torch.no_grad():
                targets = soft_labels(self.teacher_model(pixel_values=pixel_values).logits, temperature)
            loss = soft_cross_entropy(outputs.logits, targets, temperature)
        return (loss, outputs) if return_outputs else loss


def distillation_arguments(output_dir: str | os.PathLike, stage: str, preset: str = "cpu", **overrides) -> DefensiveDistillationTrainingArguments:
    """The training arguments of one stage of a preset: its recipe, then the preset's settings, then `overrides`."""
    if preset not in PRESETS:
        raise ValueError(f"Unknown defensive-distillation preset {preset!r}; available: {', '.join(PRESETS)}.")
    settings = {k: v for k, v in PRESETS[preset].items() if k not in ("teacher", "student", "recipe")}
    arguments = {**get_recipe(PRESETS[preset]["recipe"]), **settings, "eval_strategy": "no", "save_strategy": "no",
                 "logging_steps": 10, **overrides}
    return DefensiveDistillationTrainingArguments(output_dir=str(output_dir), stage=stage, **arguments)


def train_defensive_distillation(
    train_dataset,
    output_dir: str | os.PathLike,
    preset: str = "cpu",
    eval_dataset=None,
    teacher=None,
    student=None,
    **overrides,
) -> dict:
    """Steps 1–3 of Section IV: train the teacher at T, the student on its soft labels at T, save both (deployed at T = 1).

    Args:
        train_dataset: Hub-schema split or `CifarTensorDataset`.
        output_dir: `teacher/` and `student/` are saved here (`from_pretrained`-loadable).
        preset: a name from `PRESETS` (models, temperature, recipe).
        teacher, student: model instances to use instead of the preset's (e.g. tiny ones in tests).
        overrides: any `DefensiveDistillationTrainingArguments` field for both stages (`temperature`, `num_train_epochs`, …).

    Returns:
        `{"teacher": model, "student": model, "teacher_metrics": {...}, "student_metrics": {...}}` (metrics of
        `trainer.train()`, plus `eval_accuracy` when `eval_dataset` is given).
    """
    from ...image_processing_cifar import CifarImageProcessor

    if preset not in PRESETS:
        raise ValueError(f"Unknown defensive-distillation preset {preset!r}; available: {', '.join(PRESETS)}.")
    output_dir = Path(output_dir)
    models = {"teacher": teacher, "student": student}
    results: dict = {}
    for stage in STAGES:
        model = models[stage] if models[stage] is not None else create_model(PRESETS[preset][stage])
        args = distillation_arguments(output_dir / stage, stage, preset, **overrides)
        trainer = DefensiveDistillationTrainer(
            model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
            teacher_model=results.get("teacher") if stage == "student" else None, processing_class=CifarImageProcessor(),
        )
        metrics = dict(trainer.train().metrics)
        if eval_dataset is not None:
            metrics["eval_accuracy"] = trainer.evaluate()["eval_accuracy"]
        trainer.save_model(str(output_dir / stage))
        results[stage], results[f"{stage}_metrics"] = trainer.model.eval(), metrics
        train_dataset = trainer.train_dataset  # decoded once; the student reuses the tensors
        eval_dataset = trainer.eval_dataset
    return results


__all__ = [
    "PRESETS",
    "STAGES",
    "DefensiveDistillationTrainer",
    "DefensiveDistillationTrainingArguments",
    "distillation_arguments",
    "output_layer",
    "soft_cross_entropy",
    "soft_labels",
    "train_defensive_distillation",
]
