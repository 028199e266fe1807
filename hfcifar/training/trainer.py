"""`CifarTrainer`: the one training loop of hfcifar, a `transformers.Trainer` fed by the uint8 fast path.

Method trainers subclass it and override `compute_loss` or a hook; they never copy a loop.
"""

from __future__ import annotations

import os
import shutil

import datasets
import numpy as np
import torch
from transformers import EvalPrediction, Trainer
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, rotate_checkpoints

from ..data import BatchAugmentation, CifarTensorDataset, collate_batch, to_float_images
from .args import CifarTrainingArguments
from .callbacks import TimeBudgetCallback, TrainingCurvesCallback

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


class CifarTrainer(Trainer):
    """A [`~transformers.Trainer`] for CIFAR classifiers.

    - `train_dataset`/`eval_dataset` may be Hub-schema `datasets.Dataset`s (`img`, `label`): they are decoded
      once into a uint8 tensor ([`CifarTensorDataset`]) that serves whole batches, and on an accelerator the
      tensors live on the device.
    - Batches arrive as uint8; augmentation (random crop, flip, cutout) runs on the whole batch on the training
      device in `_prepare_inputs`, so subclasses overriding `compute_loss` receive float images in [0, 1].
    - `args.tta` averages logits over each image and its mirror at evaluation.
    - Checkpoints are written to a staging folder and renamed into place, so a crash never leaves a partial
      `checkpoint-N` for `resume_from_checkpoint` to pick up.
    - `args.time_budget_minutes` stops training cleanly on every rank and saves.
    """

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
        callbacks = list(kwargs.pop("callbacks", None) or [])
        callbacks.append(TrainingCurvesCallback())
        if args.time_budget_minutes:
            callbacks.append(TimeBudgetCallback(args.time_budget_minutes, device=args.device, fit_schedule=args.fit_schedule_to_budget))
        super().__init__(model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset, callbacks=callbacks, **kwargs)
        self.augmentation = BatchAugmentation(
            crop_padding=args.crop_padding, flip=args.flip, cutout_size=args.cutout_size,
            cutout_fill=tuple(getattr(model.config, "mean", (0.5, 0.5, 0.5))),
        )
        if args.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self._keep_data_on_device()
        self._staging = False

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
    def _prepare_inputs(self, inputs: dict) -> dict:
        inputs = super()._prepare_inputs(inputs)
        pixels = inputs.get("pixel_values")
        if isinstance(pixels, torch.Tensor) and pixels.dtype == torch.uint8:
            pixels = self.augmentation(pixels) if self.model.training else to_float_images(pixels)
            if self.args.channels_last:
                pixels = pixels.contiguous(memory_format=torch.channels_last)
            inputs["pixel_values"] = pixels
        return inputs

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        loss, logits, labels = super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)
        if self.args.tta and logits is not None:
            mirrored = {**inputs, "pixel_values": inputs["pixel_values"].flip(-1)}
            _, mirrored_logits, _ = super().prediction_step(model, mirrored, prediction_loss_only, ignore_keys)
            logits = (logits + mirrored_logits) / 2
        return loss, logits, labels

    # -- atomic checkpoints -------------------------------------------------------------------------------
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
        self.accelerator.wait_for_everyone()  # every rank has written its RNG state into the staged folder
        if self.args.should_save:
            staged, final = os.path.join(run_dir, STAGING_DIR, name), os.path.join(run_dir, name)
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
        """Whether a `checkpoint-N` is being written (not the final save): a subclass's `_save` adds the files resuming
        needs (masks, EMA weights) then, and they land atomically with the checkpoint's weights."""
        return self._staging

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
