"""`TrainingArguments` plus the CIFAR-specific knobs of `CifarTrainer`."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments


@dataclass
class CifarTrainingArguments(TrainingArguments):
    """[`~transformers.TrainingArguments`] with the batched-augmentation and evaluation options of CIFAR recipes.

    Every standard argument keeps its transformers meaning (`per_device_train_batch_size`, `learning_rate`,
    `optim`, `lr_scheduler_type`, `label_smoothing_factor`, …); the fields below are added.
    """

    crop_padding: int = field(default=4, metadata={"help": "Reflect-padding before the random crop (0 disables)."})
    flip: bool = field(default=True, metadata={"help": "Random horizontal flips during training."})
    cutout_size: int = field(default=0, metadata={"help": "Side of the Cutout square in pixels (0 disables)."})
    tta: bool = field(default=False, metadata={"help": "Average logits over the image and its mirror at evaluation."})
    channels_last: bool = field(default=True, metadata={"help": "Run conv nets in channels-last memory format."})
    time_budget_minutes: float | None = field(
        default=None, metadata={"help": "Stop cleanly (and save) once training has run this many minutes."}
    )
    fit_schedule_to_budget: bool = field(
        default=True,
        metadata={"help": "With a time budget, replay the learning-rate schedule faster so it completes within the budget."},
    )
    plot_curves: bool = field(default=True, metadata={"help": "Save training_curves.png in output_dir at the end."})
    # CIFAR tensors are not HF datasets with extra columns: keep every key the collator produces.
    remove_unused_columns: bool = field(default=False, metadata={"help": "See `TrainingArguments`."})
    # Batches are gathered from a tensor that already lives on the training device: nothing to pin.
    dataloader_pin_memory: bool = field(default=False, metadata={"help": "See `TrainingArguments`."})
    report_to: None | str | list[str] = field(default="none", metadata={"help": "See `TrainingArguments`."})

    def __post_init__(self):
        # Accelerate only forms a multi-process CPU group (gloo) when its state is built with `cpu=True`, which
        # TrainingArguments does for `use_cpu`. Without any accelerator that is the only sensible device anyway,
        # and it makes `accelerate launch --multi_gpu --num_processes N` / `torchrun` give N CPU processes.
        if not self.use_cpu and not torch.accelerator.is_available():
            self.use_cpu = True
        super().__post_init__()
