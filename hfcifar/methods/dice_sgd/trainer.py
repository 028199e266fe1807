"""`DPTrainer`: differentially private training inside `CifarTrainer` — DP-SGD-GC or DiceSGD — with Opacus.

The Trainer's loop is unchanged; four hooks make it private:

- `get_train_dataloader`: Poisson sampling (`PoissonBatchSampler`), which the accountant's sampled Gaussian mechanism
  assumes (expected batch `per_device_train_batch_size` × processes, rate q = that / training images);
- the model carries Opacus' per-sample-gradient hooks (`GradSampleHooks`), so every backward pass leaves each
  example's gradient in `p.grad_sample`; `training_step` drops the non-private batch gradient `p.grad` right after;
- `create_optimizer` wraps the recipe's optimizer in Opacus' `DPOptimizer` (DP-SGD-GC; `DistributedDPOptimizer` under
  several processes) or in `DiceSGDOptimizer` (`error_feedback=True`), with σ from Opacus' RDP accountant for the
  budget (ε, δ), q and the planned steps; the accountant counts every noisy step;
- `save_checkpoint_extras`/`load_checkpoint_extras` keep the accountant's history and DiceSGD's error state in each
  checkpoint, so a resumed run continues the same privacy ledger and the same algorithm.

`method_summary()` puts the spent ε (the accountant's, after training) and (δ, σ, C1, C2, steps, q) into
`train_summary.json` and a row of the model card.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

import torch
from safetensors.torch import load_file, save_file

from hfcifar.training import CifarTrainer, CifarTrainingArguments

from .privacy import (PoissonBatchSampler, PoissonDataLoader, check_budget, check_clip_norm, check_private_model,
                      noise_multiplier_for, require_opacus)

DP_STATE_FILE = "dp_state.json"
ERROR_STATE_FILE = "dice_error.safetensors"


@dataclass
class DPTrainingArguments(CifarTrainingArguments):
    """[`CifarTrainingArguments`] with a privacy budget and DP-SGD's clipping norms.

    `per_device_train_batch_size` is the *expected* batch per process under Poisson sampling; `max_grad_norm` is
    re-purposed, as in Opacus, as the per-sample clipping norm C1 (the Trainer's own clipping of the batch gradient
    does not apply: the private gradient is formed from clipped per-sample gradients).
    """

    target_epsilon: float = field(
        default=8.0, metadata={"help": "The privacy budget ε the planned steps may spend (with target_delta)."})
    target_delta: float = field(
        default=1e-5, metadata={"help": "δ of the (ε, δ) guarantee; keep it below 1/(number of training images)."})
    max_grad_norm: float = field(
        default=1.0, metadata={"help": "C1: every example's gradient is clipped to this L2 norm before the noise "
                                       "(Opacus' max_grad_norm)."})
    error_feedback: bool = field(
        default=False, metadata={"help": "DiceSGD (Zhang et al., ICLR 2024): feed the clipping error back, clipped "
                                         "to max_error_norm. False: DP-SGD with gradient clipping (DP-SGD-GC)."})
    max_error_norm: float | None = field(
        default=None, metadata={"help": "C2: clipping norm of DiceSGD's fed-back error (default: max_grad_norm; the "
                                        "paper takes C2 ≥ C1). The noise then scales with C1 + C2."})
    secure_mode: bool = field(
        default=False, metadata={"help": "Opacus' secure noise (robust to floating-point attacks; slower)."})
    # Opacus' per-sample convolution gradients are checked in the contiguous layout.
    channels_last: bool = field(default=False, metadata={"help": "See `CifarTrainingArguments`."})

    def __post_init__(self):
        check_budget(self.target_epsilon, self.target_delta)
        check_clip_norm("max_grad_norm", self.max_grad_norm, "DP-SGD's per-sample clipping norm C1")
        if self.max_error_norm is None:
            self.max_error_norm = self.max_grad_norm
        check_clip_norm("max_error_norm", self.max_error_norm, "DiceSGD's clipping norm C2 of the fed-back error")
        if self.gradient_accumulation_steps != 1:
            raise ValueError("DP training steps once per Poisson batch: gradient_accumulation_steps must be 1 (raise "
                             "the expected batch, per_device_train_batch_size, instead).")
        mixing = [name for name, on in (("cutmix_probability", self.cutmix_probability),
                                        ("mixup_alpha", self.mixup_alpha), ("whiten_stem", self.whiten_stem)) if on]
        if mixing:
            raise ValueError(f"{', '.join(mixing)} cannot be used with DP training: CutMix/MixUp put one image into "
                             "other images' gradients and the whitened stem is computed from training images without "
                             "noise, so per-sample clipping would no longer bound an image's influence. Set them off.")
        super().__post_init__()


class DPTrainer(CifarTrainer):
    """Train a classifier with (ε, δ)-differential privacy: DP-SGD-GC, or DiceSGD when `args.error_feedback`.

    Args:
        model: a classifier without BatchNorm (Opacus' `ModuleValidator` must accept it; e.g. `convnet`).
        args ([`DPTrainingArguments`]): the budget (`target_epsilon`, `target_delta`), C1 (`max_grad_norm`), the
            variant (`error_feedback`) and C2 (`max_error_norm`), plus every `CifarTrainingArguments` field.
        kwargs: as [`CifarTrainer`].

    After `train()`, `epsilon` is the accountant's spent ε and `privacy_summary()` holds every number of the
    guarantee. Example (`hfcifar train convnet --trainer dp --target_epsilon 8 --max_grad_norm 0.1` on the CLI):

    ```python
    >>> from hfcifar import create_model
    >>> from hfcifar.methods.dice_sgd import DPTrainer, DPTrainingArguments
    >>> args = DPTrainingArguments("runs/dp", target_epsilon=8, max_grad_norm=0.1, error_feedback=True,
    ...                            per_device_train_batch_size=128, num_train_epochs=10, learning_rate=5.0)
    >>> trainer = DPTrainer(create_model("convnet"), args, train_dataset=train_split)  # doctest: +SKIP
    ```
    """

    arguments_class = DPTrainingArguments

    def __init__(self, model=None, args: DPTrainingArguments | None = None, **kwargs):
        require_opacus()
        from opacus.accountants import RDPAccountant
        from opacus.grad_sample import GradSampleHooks

        if args is None:
            args = self.arguments_class(output_dir="hfcifar_trainer")
        if not isinstance(args, DPTrainingArguments):
            raise TypeError(f"{type(self).__name__} needs DPTrainingArguments (with the privacy budget); got "
                            f"{type(args).__name__}.")
        if model is None:
            raise ValueError(f"{type(self).__name__} needs a model to train.")
        check_private_model(model)
        super().__init__(model=model, args=args, **kwargs)
        # Per-sample gradients through Opacus' hooks on the model itself (no wrapper: save_pretrained, the state dict
        # and the Trainer see the plain model). The model's loss is a mean over the batch, which Opacus undoes.
        self.grad_sample_hooks = GradSampleHooks(self.model, loss_reduction="mean")
        self.accountant = RDPAccountant()
        self.noise_multiplier: float | None = None
        self.planned_steps: int | None = None
        #: per-sample gradients seen on this process and how many were longer than C1 (`clipped_fraction`)
        self.clip_statistics = {"examples": 0, "clipped": 0}

    # -- the privacy settings -------------------------------------------------------------------------------
    @property
    def algorithm(self) -> str:
        return "DiceSGD" if self.args.error_feedback else "DP-SGD-GC"

    @property
    def expected_batch_size(self) -> int:
        """B: the expected global batch (per-process expected batch × processes)."""
        return self.args.per_device_train_batch_size * self.args.world_size

    @property
    def sample_rate(self) -> float:
        """q: the probability that a training image is in a step's batch."""
        if self.train_dataset is None:
            raise ValueError("DP training needs a train_dataset (the sampling rate is batch / training images).")
        rate = self.expected_batch_size / len(self.train_dataset)
        if not 0 < rate <= 1:
            raise ValueError(f"The expected batch ({self.expected_batch_size}) exceeds the {len(self.train_dataset)} "
                             "training images: lower per_device_train_batch_size.")
        return rate

    @property
    def clipped_fraction(self) -> float:
        """The fraction of this process's per-sample gradients that C1 clipped so far (not private: diagnostics)."""
        return self.clip_statistics["clipped"] / max(1, self.clip_statistics["examples"])

    @property
    def epsilon(self) -> float:
        """The ε spent so far, from the accountant (0 before the first step)."""
        return float(self.accountant.get_epsilon(delta=self.args.target_delta))

    # -- Poisson sampling -----------------------------------------------------------------------------------
    def get_train_dataloader(self):
        """Poisson batches (not shuffled fixed-size ones): what the accountant's sampled Gaussian mechanism assumes.
        Each process samples its own shard at rate q, so the batches are not passed through Accelerate's sharding."""
        sampler = PoissonBatchSampler(len(self.train_dataset), self.sample_rate, seed=self.args.seed,
                                      rank=self.args.process_index, world_size=self.args.world_size)
        return PoissonDataLoader(self.train_dataset, batch_sampler=sampler, collate_fn=self.data_collator,
                                 num_workers=0)

    # -- the private optimizer ------------------------------------------------------------------------------
    def create_optimizer(self, model=None):
        """The recipe's optimizer, wrapped in the DP step: σ is computed here, when the planned steps are known."""
        super().create_optimizer(model)
        from opacus.optimizers import DPOptimizer

        if not isinstance(self.optimizer, DPOptimizer):
            self.optimizer = self.make_private(self.optimizer)
        return self.optimizer

    def make_private(self, optimizer: torch.optim.Optimizer):
        """Wrap `optimizer`: σ for (ε, δ) at rate q over the planned steps; the accountant counts every update."""
        from opacus.optimizers import DistributedDPOptimizer, DPOptimizer

        from .optimizer import DiceSGDOptimizer

        steps = int(self.state.max_steps) if self.state.max_steps and self.state.max_steps > 0 else None
        if steps is None:
            raise ValueError("DP training accounts for a planned number of steps: set num_train_epochs or max_steps.")
        rate = self.sample_rate
        self.planned_steps = steps
        self.noise_multiplier = noise_multiplier_for(self.args.target_epsilon, self.args.target_delta, rate, steps)
        common = dict(noise_multiplier=self.noise_multiplier, max_grad_norm=self.args.max_grad_norm,
                      secure_mode=self.args.secure_mode)
        if self.args.error_feedback:
            private = DiceSGDOptimizer(optimizer, max_error_norm=self.args.max_error_norm,
                                       expected_batch_size=self.expected_batch_size, **common)
        elif self.args.world_size > 1:
            # sums are reduced over the processes after rank 0 alone added the noise; each divides by its share
            private = DistributedDPOptimizer(optimizer, expected_batch_size=self.args.per_device_train_batch_size,
                                             **common)
        else:
            private = DPOptimizer(optimizer, expected_batch_size=self.expected_batch_size, **common)
        private.attach_step_hook(self.accountant.get_optimizer_hook_fn(sample_rate=rate))
        return private

    # -- one step -------------------------------------------------------------------------------------------
    def training_step(self, model, inputs, num_items_in_batch=None):
        for p in self.model.parameters():  # the previous step's per-sample gradients (the Trainer never clears them)
            p.grad_sample = None
            p.summed_grad = None
        loss = super().training_step(model, inputs, num_items_in_batch)
        squares = 0.0
        for name, p in self.model.named_parameters():
            # the batch gradient of plain backprop is not private: drop it so that nothing (the Trainer's clipping,
            # its grad-norm log) reads it; the DP optimizer writes the private gradient into .grad
            p.grad = None
            if isinstance(p.grad_sample, torch.Tensor) and not bool(torch.isfinite(p.grad_sample).all()):
                # clipping a NaN/inf gradient gives NaN weights, silently: stop instead (the step is not applied)
                raise FloatingPointError(
                    f"DP training met a non-finite per-sample gradient of {name} at step {self.state.global_step + 1}"
                    ": the model or its inputs diverged. Lower learning_rate, check the inputs and the initial "
                    "weights, or train in fp32 (no bf16/fp16); the step was not applied.")
            if isinstance(p.grad_sample, torch.Tensor):
                squares = squares + p.grad_sample.detach().reshape(len(p.grad_sample), -1).square().sum(1)
        if isinstance(squares, torch.Tensor):
            # a diagnostic of the training data, not private: kept on the trainer, never in the summary or the card
            self.clip_statistics["examples"] += len(squares)
            self.clip_statistics["clipped"] += int((squares.sqrt() > self.args.max_grad_norm).sum())
        return loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:  # training entries: the budget spent so far
            logs["epsilon"] = round(self.epsilon, 4)
            logs.pop("grad_norm", None)  # the Trainer's norm of the dropped batch gradient: always 0, meaningless
        super().log(logs, start_time)

    # -- what resuming needs --------------------------------------------------------------------------------
    def privacy_state(self) -> dict:
        return {"algorithm": self.algorithm, "noise_multiplier": self.noise_multiplier,
                "sample_rate": self.sample_rate, "planned_steps": self.planned_steps,
                "max_grad_norm": self.args.max_grad_norm,
                "max_error_norm": self.args.max_error_norm if self.args.error_feedback else None,
                "accountant": {"mechanism": self.accountant.mechanism(),
                               "history": [list(entry) for entry in self.accountant.history]}}

    def save_checkpoint_extras(self, checkpoint_dir: str) -> None:
        super().save_checkpoint_extras(checkpoint_dir)
        with open(os.path.join(checkpoint_dir, DP_STATE_FILE), "w") as handle:
            json.dump(self.privacy_state(), handle, indent=2)
        dice = self._dice_optimizer()
        if dice is not None:
            save_file(dice.error_state(), os.path.join(checkpoint_dir, ERROR_STATE_FILE))

    def load_checkpoint_extras(self, checkpoint_dir: str) -> None:
        super().load_checkpoint_extras(checkpoint_dir)
        path = os.path.join(checkpoint_dir, DP_STATE_FILE)
        if not os.path.isfile(path):
            raise ValueError(f"{checkpoint_dir} has no {DP_STATE_FILE}: it was not written by a DP run, so its privacy "
                             "ledger is unknown. Resume only DP runs with the DP trainer.")
        with open(path) as handle:
            saved = json.load(handle)
        mine = self.privacy_state()
        for key in ("algorithm", "noise_multiplier", "sample_rate", "max_grad_norm", "max_error_norm"):
            same = saved[key] == mine[key] if not isinstance(mine[key], float) else \
                math.isclose(saved[key], mine[key], rel_tol=1e-12)
            if not same:
                raise ValueError(f"{checkpoint_dir} was trained with {key} = {saved[key]}, this run has {mine[key]}: "
                                 "resume with the arguments (budget, batch, steps, clipping norms, variant) of the "
                                 "interrupted run.")
        self.accountant.history = [tuple(entry) for entry in saved["accountant"]["history"]]
        dice = self._dice_optimizer()
        if dice is not None:
            dice.load_error_state(load_file(os.path.join(checkpoint_dir, ERROR_STATE_FILE)))

    def _dice_optimizer(self):
        from .optimizer import DiceSGDOptimizer

        optimizer = getattr(self.optimizer, "optimizer", self.optimizer)  # Accelerate's wrapper
        return optimizer if isinstance(optimizer, DiceSGDOptimizer) else None

    # -- what the run reports -------------------------------------------------------------------------------
    def privacy_summary(self) -> dict:
        """The guarantee and every number needed to recompute it (`train_summary.json`'s `differential_privacy`)."""
        from opacus import __version__ as opacus_version

        steps = sum(entry[2] for entry in self.accountant.history)
        c1, c2 = self.args.max_grad_norm, self.args.max_error_norm if self.args.error_feedback else 0.0
        sigma = self.noise_multiplier
        return {
            "algorithm": self.algorithm,
            "epsilon": self.epsilon,
            "delta": self.args.target_delta,
            "target_epsilon": self.args.target_epsilon,
            "noise_multiplier": sigma,
            "noise_std_on_summed_gradient": None if sigma is None else sigma * (c1 + c2),
            "sample_rate": self.sample_rate,
            "expected_batch_size": self.expected_batch_size,
            "steps": steps,
            "planned_steps": self.planned_steps,
            "max_grad_norm": c1,
            "max_error_norm": self.args.max_error_norm if self.args.error_feedback else None,
            "sampling": "Poisson",
            "accountant": f"RDP (Opacus {opacus_version})",
            # DiceSGD's error state is not released but depends on past batches; the RDP accountant of the sampled
            # Gaussian mechanism is applied at sensitivity C1 + C2 (the authors' calibration; see the README)
            "guarantee": "DP-SGD (sampled Gaussian mechanism)" if not self.args.error_feedback else
                         "nominal: sampled Gaussian mechanism at sensitivity C1 + C2 (authors' calibration)",
        }

    def method_summary(self) -> dict:
        dp = self.privacy_summary()
        if dp["noise_multiplier"] is None:  # never trained: nothing spent, nothing to show
            return {"differential_privacy": dp}
        clip = f"C1 = {dp['max_grad_norm']:g}" + (f", C2 = {dp['max_error_norm']:g}" if dp["max_error_norm"] else "")
        row = (f"{dp['algorithm']}: (ε = {dp['epsilon']:.3g}, δ = {dp['delta']:g}) by Opacus' RDP accountant — "
               f"σ = {dp['noise_multiplier']:.4g}, {clip}, Poisson rate q = {dp['sample_rate']:.4g}, {dp['steps']} "
               "steps" + ("; ε is nominal for DiceSGD's error feedback (see the method README)"
                          if self.args.error_feedback else ""))
        return {"differential_privacy": dp, "card_rows": [["Differential privacy", row]]}


@dataclass
class DiceSGDTrainingArguments(DPTrainingArguments):
    """[`DPTrainingArguments`] with `error_feedback` on by default (`hfcifar train … --trainer dice-sgd`)."""

    error_feedback: bool = field(default=True,
                                 metadata=DPTrainingArguments.__dataclass_fields__["error_feedback"].metadata)


class DiceSGDTrainer(DPTrainer):
    """[`DPTrainer`] whose arguments default to DiceSGD (`error_feedback=True`): `--trainer dice-sgd`."""

    arguments_class = DiceSGDTrainingArguments


__all__ = ["DPTrainer", "DPTrainingArguments", "DiceSGDTrainer", "DiceSGDTrainingArguments"]
