"""`CifarTrainer`: the one training loop of hfcifar, a `transformers.Trainer` fed by the uint8 fast path.

Method trainers subclass it and override `compute_loss` or a hook; they never copy a loop.

Private `Trainer` methods overridden here (checked against transformers 5.25.0; `tests/test_trainer_hooks.py` pins
what each relies on and fails when transformers renames or re-signatures one): `_get_output_dir` and
`_save_checkpoint`, for atomic checkpoints — no public hook runs before a checkpoint's files are written in place
(`on_save` runs after). Everything else uses public API: `training_step`/`prediction_step` (the fast path), `train`
plus `on_train_begin` (restoring `load_checkpoint_extras` on resume).
"""

from __future__ import annotations

import os
import shutil

import datasets
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import EvalPrediction, Trainer, TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint, rotate_checkpoints

from ..data import BatchAugmentation, CifarTensorDataset, collate_batch, cutmix, mixup, to_float_images, tta_views
from .allocator import reuse_freed_memory
from .args import CifarTrainingArguments
from .callbacks import LookaheadCallback, TimeBudgetCallback, TrainingCurvesCallback
from .optimizers import is_registered_optimizer, registered_optimizer_cls_and_kwargs

STAGING_DIR = ".staging"


def accuracy_metrics(prediction: EvalPrediction) -> dict:
    """Top-1 accuracy and the number of examples it was measured on."""
    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    labels = np.asarray(prediction.label_ids)
    return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean()), "num_examples": int(labels.shape[0])}


def as_tensor_dataset(dataset, split: str, num_labels: int) -> CifarTensorDataset | None:
    """Decode a Hub-schema `datasets.Dataset` once; check labels fit the model's classes."""
    if dataset is None or isinstance(dataset, dict):
        return dataset
    if isinstance(dataset, datasets.Dataset):
        dataset = CifarTensorDataset.from_hf(dataset, split)
    if isinstance(dataset, CifarTensorDataset) and len(dataset):
        low, high = int(dataset.labels.min()), int(dataset.labels.max())
        if low < 0 or high >= num_labels:
            raise ValueError(
                f"The {split} labels lie in [{low}, {high}] but the model has {num_labels} classes "
                f"(labels must lie in [0, {num_labels - 1}])."
            )
    return dataset


LOOKAHEAD_FILE = "lookahead.safetensors"
# Keys a CutMix batch carries from `prepare_batch` to `compute_loss`.
MIXED_LABELS, MIX_WEIGHT = "cutmix_labels", "cutmix_weight"
#: Training images whose patches `whiten_stem` measures (the first ones: the same on every process).
WHITENING_IMAGES = 1024


def whiten_stem(model, train_dataset: CifarTensorDataset) -> None:
    """`args.whiten_stem`: the model's `init_stem_whitening(images)` on the first training images, before the
    optimizer exists (so a frozen stem is left out of it)."""
    init = getattr(model, "init_stem_whitening", None)
    if init is None:
        raise ValueError(f"whiten_stem needs a model with `init_stem_whitening(images)` (FastNet has one); "
                         f"{type(model).__name__} has none. Drop --whiten_stem.")
    images = train_dataset.images[:WHITENING_IMAGES]
    init(to_float_images(images.to(next(model.parameters()).device)))


class _ResumeExtrasCallback(TrainerCallback):
    """Hands the checkpoint `train(resume_from_checkpoint=…)` resumes from to `CifarTrainer.load_checkpoint_extras`,
    once the model is loaded, prepared and on its device, before any other callback of the trainer starts."""

    def __init__(self, trainer: "CifarTrainer"):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        if self.trainer.resumed_from is not None:
            self.trainer.load_checkpoint_extras(self.trainer.resumed_from)


class CifarTrainer(Trainer):
    """A [`~transformers.Trainer`] for CIFAR classifiers.

    - `train_dataset`/`eval_dataset` may be Hub-schema `datasets.Dataset`s (`img`, `label`): they are decoded
      once into a uint8 tensor ([`CifarTensorDataset`]) that serves whole batches, and on an accelerator the
      tensors live on the device.
    - Batches arrive as uint8; augmentation (random crop, flip, cutout) runs on the whole batch on the training
      device in `training_step` (`prepare_batch`), so subclasses overriding `compute_loss` receive float images in
      [0, 1]; `prediction_step` converts without augmenting.
    - `args.tta` averages logits over each image and its mirror at evaluation.
    - Checkpoints are written to a staging folder and renamed into place, so a crash never leaves a partial
      `checkpoint-N` for `resume_from_checkpoint` to pick up. Subclasses add the files resuming needs (masks, EMA
      weights) with `save_checkpoint_extras`/`load_checkpoint_extras`.
    - `args.time_budget_minutes` stops training cleanly on every rank and saves.
    """

    arguments_class = CifarTrainingArguments  # what `hfcifar train --trainer NAME` parses (hfcifar.training.TRAINERS)

    def __init__(self, model=None, args: CifarTrainingArguments | None = None, train_dataset=None, eval_dataset=None, **kwargs):
        if args is None:
            args = CifarTrainingArguments(output_dir="hfcifar_trainer")
        if not isinstance(args, CifarTrainingArguments):
            raise TypeError("CifarTrainer needs CifarTrainingArguments (a TrainingArguments subclass).")
        num_labels = self.label_count(model)
        train_dataset = as_tensor_dataset(train_dataset, "train", num_labels)
        if isinstance(eval_dataset, dict):
            eval_dataset = {k: as_tensor_dataset(v, k, num_labels) for k, v in eval_dataset.items()}
        else:
            eval_dataset = as_tensor_dataset(eval_dataset, "eval", num_labels)
        kwargs.setdefault("data_collator", collate_batch)
        kwargs.setdefault("compute_metrics", accuracy_metrics)
        callbacks = [_ResumeExtrasCallback(self), *(kwargs.pop("callbacks", None) or [])]
        callbacks.append(TrainingCurvesCallback())
        if args.time_budget_minutes:
            callbacks.append(TimeBudgetCallback(args.time_budget_minutes, device=args.device, fit_schedule=args.fit_schedule_to_budget))
        self.lookahead = None
        if args.lookahead_decay:
            self.lookahead = LookaheadCallback(args.lookahead_decay, args.lookahead_every, self._planned_last_step)
            callbacks.append(self.lookahead)
        if args.whiten_stem and train_dataset is not None:
            whiten_stem(model, train_dataset)
        super().__init__(model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset, callbacks=callbacks, **kwargs)
        # On a CPU, keep freed activation memory for the next step (see hfcifar.training.allocator).
        self.cpu_memory_reuse = bool(args.reuse_cpu_memory and args.device.type == "cpu" and reuse_freed_memory())
        self.augmentation = BatchAugmentation(
            crop_padding=args.crop_padding, flip=args.flip, cutout_size=args.cutout_size,
            cutout_fill=tuple(getattr(model.config, "mean", (0.5, 0.5, 0.5))),
        )
        if args.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self._keep_data_on_device()
        self._staging = False
        self.resumed_from: str | None = None

    @staticmethod
    def get_optimizer_cls_and_kwargs(args, model=None):
        """Transformers' optimizers, plus those of `OPTIMIZERS` (`--optim exadam`), built by the same
        `create_optimizer` (weight-decay groups, checkpointed state)."""
        if is_registered_optimizer(args.optim):
            return registered_optimizer_cls_and_kwargs(args)
        return Trainer.get_optimizer_cls_and_kwargs(args, model)

    def _planned_last_step(self, state) -> int:
        fitted = self.time_budget.fitted_end_step if self.time_budget is not None else None
        return fitted or state.max_steps

    @staticmethod
    def label_count(model) -> int:
        """The number of classes the data's labels must fit (the classifier's `num_labels`)."""
        return model.config.num_labels

    def _keep_data_on_device(self) -> None:
        # airbench-style: on an accelerator the whole uint8 dataset lives on the device (batches are gathered there).
        if self.args.device.type == "cpu":
            return
        for dataset in [self.train_dataset, *(self.eval_dataset.values() if isinstance(self.eval_dataset, dict) else [self.eval_dataset])]:
            if isinstance(dataset, CifarTensorDataset):
                dataset.to(self.args.device)

    # -- the fast path ------------------------------------------------------------------------------------
    def prepare_batch(self, inputs: dict, augment: bool) -> dict:
        """The batch on the training device with float [0, 1] `pixel_values`: uint8 images are augmented on the
        device when `augment` (training) and only converted otherwise (evaluation); float images pass unchanged."""
        inputs = {k: v.to(self.args.device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
        pixels = inputs.get("pixel_values")
        if isinstance(pixels, torch.Tensor) and pixels.dtype == torch.uint8:
            pixels = self.augmentation(pixels) if augment else to_float_images(pixels)
            if augment and self.args.cutmix_probability and "labels" in inputs and \
                    torch.rand(()) < self.args.cutmix_probability:
                pixels, inputs[MIXED_LABELS], inputs[MIX_WEIGHT] = cutmix(pixels, inputs["labels"], self.args.cutmix_alpha)
            elif augment and self.args.mixup_alpha and "labels" in inputs:
                pixels, inputs[MIXED_LABELS], inputs[MIX_WEIGHT] = mixup(pixels, inputs["labels"], self.args.mixup_alpha)
            if self.args.channels_last:
                pixels = pixels.contiguous(memory_format=torch.channels_last)
            inputs["pixel_values"] = pixels
        return inputs

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The model's loss; for a CutMix or MixUp batch the cross-entropy of both label sets weighted by the mix (with
        the arguments' label smoothing). A method trainer overriding this sees mixed batches only if it enables them."""
        if MIXED_LABELS not in inputs:
            return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        inputs = dict(inputs)
        labels, mixed, weight = inputs.pop("labels"), inputs.pop(MIXED_LABELS), inputs.pop(MIX_WEIGHT)
        outputs = model(**inputs)
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        smoothing = self.args.label_smoothing_factor
        loss = weight * F.cross_entropy(logits, labels, label_smoothing=smoothing) + \
            (1 - weight) * F.cross_entropy(logits, mixed, label_smoothing=smoothing)
        return (loss, outputs) if return_outputs else loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        return super().training_step(model, self.prepare_batch(inputs, augment=True), num_items_in_batch)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self.prepare_batch(inputs, augment=False)
        loss, logits, labels = super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)
        if self.args.tta and logits is not None:
            views = tta_views(inputs["pixel_values"], self.args.tta_translate)  # the first is the image itself
            total = logits * views[0][1]
            for view, weight in views[1:]:
                if self.args.channels_last:
                    view = view.contiguous(memory_format=torch.channels_last)
                _, view_logits, _ = super().prediction_step(model, {**inputs, "pixel_values": view},
                                                            prediction_loss_only, ignore_keys)
                total = total + weight * view_logits
            logits = total / sum(weight for _, weight in views)
        return loss, logits, labels

    # -- atomic checkpoints -------------------------------------------------------------------------------
    # Private hooks (transformers 5.25.0, pinned by tests/test_trainer_hooks.py): `Trainer._save_checkpoint(model,
    # trial)` writes every file of `checkpoint-{global_step}` under `self._get_output_dir(trial)`; pointing that at
    # `.staging/` while it runs and renaming afterwards is what makes a checkpoint appear whole or not at all.
    def _get_output_dir(self, trial) -> str:
        run_dir = super()._get_output_dir(trial)
        return os.path.join(run_dir, STAGING_DIR) if self._staging else run_dir

    def _save_checkpoint(self, model, trial) -> None:
        run_dir = super()._get_output_dir(trial)
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        self._staging = True
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._staging = False
        staged, final = os.path.join(run_dir, STAGING_DIR, name), os.path.join(run_dir, name)
        if self.args.should_save:
            self.save_checkpoint_extras(staged)
        self.accelerator.wait_for_everyone()  # every rank has written its RNG state into the staged folder
        if self.args.should_save:
            if os.path.isdir(final):
                shutil.rmtree(final)
            os.replace(staged, final)
            shutil.rmtree(os.path.join(run_dir, STAGING_DIR), ignore_errors=True)
            if self.state.best_model_checkpoint and STAGING_DIR in self.state.best_model_checkpoint:
                self.state.best_model_checkpoint = self.state.best_model_checkpoint.replace(f"{os.sep}{STAGING_DIR}", "")
            rotate_checkpoints(
                output_dir=run_dir,
                save_total_limit=self.args.save_total_limit,
                best_model_checkpoint=self.state.best_model_checkpoint,
                use_mtime=True,
            )
        self.accelerator.wait_for_everyone()

    @property
    def saving_checkpoint(self) -> bool:
        """Whether a `checkpoint-N` is being written (not the final save)."""
        return self._staging

    def save_checkpoint_extras(self, checkpoint_dir: str) -> None:
        """Write what resuming needs beyond the Trainer's files (masks, EMA weights) into `checkpoint_dir`, the staged
        `checkpoint-N` folder: called on the saving process(es) after the Trainer wrote its files and before the folder
        is renamed into place, so the extras land atomically with the weights. The plain trainer writes Lookahead's
        slow weights when it uses Lookahead; a subclass calls `super().save_checkpoint_extras(checkpoint_dir)`."""
        if self.lookahead is not None and self.lookahead.slow is not None:
            save_file({k: v.contiguous().cpu() for k, v in self.lookahead.slow.items()},
                      os.path.join(checkpoint_dir, LOOKAHEAD_FILE))

    def load_checkpoint_extras(self, checkpoint_dir: str) -> None:
        """Restore what `save_checkpoint_extras` wrote, on every process, when `train(resume_from_checkpoint=…)`
        resumes from `checkpoint_dir`: called at the start of training, after the Trainer loaded the weights, optimizer
        and scheduler and moved the model to its device (modify parameters in place: the optimizer holds them)."""
        path = os.path.join(checkpoint_dir, LOOKAHEAD_FILE)
        if self.lookahead is not None and os.path.isfile(path):
            self.lookahead.slow = {k: v.to(self.args.device) for k, v in load_file(path).items()}

    def train(self, resume_from_checkpoint: str | bool | None = None, trial=None, ignore_keys_for_eval=None, **kwargs):
        # `resume_from_checkpoint=True` means the newest checkpoint, as in `Trainer.train`; `resumed_from` keeps the
        # folder for `load_checkpoint_extras` (a callback cannot see the argument).
        if isinstance(resume_from_checkpoint, os.PathLike):
            resume_from_checkpoint = os.fspath(resume_from_checkpoint)
        if resume_from_checkpoint is True:
            resume_from_checkpoint = get_last_checkpoint(self.args.output_dir) or True  # None: Trainer raises
        self.resumed_from = resume_from_checkpoint if isinstance(resume_from_checkpoint, str) else None
        return super().train(resume_from_checkpoint=resume_from_checkpoint, trial=trial,
                             ignore_keys_for_eval=ignore_keys_for_eval, **kwargs)

    def method_summary(self) -> dict:
        """What a method trainer adds to `train_summary.json` (`train_classifier` merges it in). A `card_rows` entry,
        a list of `[label, text]` pairs, becomes rows of the model card's training table. The plain trainer adds
        nothing."""
        return {}

    @property
    def time_budget(self) -> TimeBudgetCallback | None:
        return next((c for c in self.callback_handler.callbacks if isinstance(c, TimeBudgetCallback)), None)

    @property
    def stopped_by_time_budget(self) -> bool:
        return self.time_budget is not None and self.time_budget.stopped_early
