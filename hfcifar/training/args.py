"""`TrainingArguments` plus the CIFAR-specific knobs of `CifarTrainer`."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments

from .optimizers import (OPTIMIZERS, is_registered_optimizer, is_transformers_optimizer,
                         registered_optimizer_cls_and_kwargs)
from .precision import fast_bf16


@dataclass
class CifarTrainingArguments(TrainingArguments):
    """[`~transformers.TrainingArguments`] with the batched-augmentation and evaluation options of CIFAR recipes.

    Every standard argument keeps its transformers meaning (`per_device_train_batch_size`, `learning_rate`,
    `optim`, `lr_scheduler_type`, `label_smoothing_factor`, …); the fields below are added.
    """

    # `optim` as a plain string, so that `hfcifar train --optim exadam` parses: transformers declares it as its
    # `OptimizerNames` enum (argparse choices); a name of `hfcifar.training.OPTIMIZERS` is accepted too.
    optim: str = field(
        default=TrainingArguments.__dataclass_fields__["optim"].default,
        metadata={"help": "The optimizer: one of transformers' `OptimizerNames` (adamw_torch, sgd, …) or of "
                          "`hfcifar.training.OPTIMIZERS` (exadam)."},
    )
    crop_padding: int = field(default=4, metadata={"help": "Reflect-padding before the random crop (0 disables)."})
    flip: bool = field(default=True, metadata={"help": "Random horizontal flips during training."})
    cutout_size: int = field(default=0, metadata={"help": "Side of the Cutout square in pixels (0 disables)."})
    cutmix_probability: float = field(
        default=0.0,
        metadata={"help": "Probability that a training batch gets CutMix (Yun et al., 2019): a random box of every image "
                          "from another image of the batch, labels mixed by area. 0 disables."},
    )
    cutmix_alpha: float = field(default=1.0, metadata={"help": "CutMix's Beta(α, α) of the kept area."})
    mixup_alpha: float = field(
        default=0.0,
        metadata={"help": "MixUp (Zhang et al., 2018) on every training batch without CutMix: images blended with "
                          "another image of the batch, λ ~ Beta(α, α), labels mixed by λ. 0 disables."},
    )
    tta: bool = field(default=False, metadata={"help": "Average logits over the image and its mirror at evaluation."})
    tta_translate: int = field(
        default=0,
        metadata={"help": "With tta, also average over each view shifted by ±N pixels diagonally (reflect-padded; "
                          "weights 1/2 unshifted, 1/4 each shift, as airbench's level-2 TTA). 0 disables."},
    )
    lookahead_decay: float = field(
        default=0.0,
        metadata={"help": "Lookahead (airbench): every `lookahead_every` steps the slow weights move toward the fast "
                          "ones with decay d = lookahead_decay · progress³ and the fast weights restart from them; the "
                          "last step copies the slow weights into the model. 0 disables."},
    )
    lookahead_every: int = field(default=5, metadata={"help": "Optimizer steps between Lookahead synchronizations."})
    whiten_stem: bool = field(
        default=False,
        metadata={"help": "Initialize the model's first convolution as a whitening of the training images' patches "
                          "and freeze it (airbench); the model must define `init_stem_whitening(images)` (FastNet)."},
    )
    channels_last: bool = field(default=True, metadata={"help": "Run conv nets in channels-last memory format."})
    time_budget_minutes: float | None = field(
        default=None, metadata={"help": "Stop cleanly (and save) once training has run this many minutes."}
    )
    fit_schedule_to_budget: bool = field(
        default=True,
        metadata={"help": "With a time budget, replay the learning-rate schedule faster so it completes within the budget."},
    )
    plot_curves: bool = field(default=True, metadata={"help": "Save training_curves.png in output_dir at the end."})
    auto_bf16: bool = field(
        default=False,
        metadata={"help": "Turn on bf16 mixed precision (`bf16`) where it is fast: a CUDA GPU with bf16, or a CPU with "
                          "bf16 matrix units (AMX or AVX512-BF16; 2.5–3× faster FastNet steps on such a CPU). Elsewhere "
                          "training stays in fp32. The run's `bf16` says what was used."},
    )
    reuse_cpu_memory: bool = field(
        default=True,
        metadata={"help": "Training on a CPU under Linux (glibc): raise malloc's mmap and trim thresholds once per "
                          "process, so freed activation buffers are reused instead of returned to the OS and faulted "
                          "in again every step (FastNet steps ~15% faster here; hfcifar.training.allocator). It is a "
                          "process-wide allocator setting; False leaves malloc alone."},
    )
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
        if self.auto_bf16 and not (self.bf16 or self.fp16):
            self.bf16 = fast_bf16(cpu=self.use_cpu)
        if not 0 <= self.cutmix_probability <= 1 or self.cutmix_alpha <= 0:
            raise ValueError(f"cutmix_probability must be in [0, 1] and cutmix_alpha > 0; got {self.cutmix_probability} "
                             f"and {self.cutmix_alpha}.")
        if self.mixup_alpha < 0:
            raise ValueError(f"mixup_alpha must be ≥ 0 (0 disables MixUp); got {self.mixup_alpha}.")
        if self.tta_translate < 0:
            raise ValueError(f"tta_translate must be a number of pixels ≥ 0; got {self.tta_translate}.")
        if not 0 <= self.lookahead_decay < 1:
            raise ValueError(f"lookahead_decay must be in [0, 1) (0 disables Lookahead); got {self.lookahead_decay}.")
        if self.lookahead_every < 1:
            raise ValueError(f"lookahead_every must be ≥ 1; got {self.lookahead_every}.")
        # An optimizer of `OPTIMIZERS` (hfcifar.training.optimizers) is not one of transformers' `OptimizerNames`,
        # which `TrainingArguments.__post_init__` insists on: let it through as a plain string (the trainer builds it).
        registered = self.optim if is_registered_optimizer(self.optim) else None
        if not registered and not is_transformers_optimizer(self.optim):
            raise ValueError(f"Unknown optimizer {self.optim!r}: use one of transformers' OptimizerNames "
                             f"(adamw_torch, sgd, adafactor, …) or of hfcifar's OPTIMIZERS ({', '.join(OPTIMIZERS.names())}).")
        if registered:
            self.optim = "adamw_torch"
        super().__post_init__()
        if registered:
            self.optim = registered
            registered_optimizer_cls_and_kwargs(self)  # optim_args checked now, not at the first step
