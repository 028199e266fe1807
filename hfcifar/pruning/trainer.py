"""`PruningTrainer`: a `CifarTrainer` that prunes on a schedule and fine-tunes, and saves plain sparse weights.

    args = PruningTrainingArguments("runs/r20-gmp90", target_sparsity=0.9, pruning_method="global",
                                    pruning_schedule="gradual", pruning_end_step=400, pruning_frequency=50)
    trainer = PruningTrainer(model=dense_model, args=args, train_dataset=data["train"])
    trainer.train()              # prunes at the schedule's steps (a Trainer callback), fine-tunes in between
    trainer.save_model("out")   # plain weights, zeros where pruned: loads with AutoModel...from_pretrained

How it works, and why:

- **Masks are `torch.nn.utils.prune`'s** (`hfcifar.pruning.masks`): `weight_orig` (the trained parameter), a
  `weight_mask` buffer, and a forward pre-hook computing `weight`. The trainer puts an all-ones mask on every
  prunable layer when it is built, so the model has the same parameters in the same order before and after any
  pruning event — the optimizer built at the start of `train()` (and the one restored by `resume_from_checkpoint`)
  keeps pointing at the right tensors, and gradients never reach pruned weights (∂L/∂w_orig = ∂L/∂w · mask).
- **Pruning happens in `on_step_begin`** (`PruningCallback`), at the steps of a `PruningSchedule` (one-shot or Zhu &
  Gupta's gradual cubic schedule): `prune_to(s)` → `compute_pruning_masks(s)` (a method of `PRUNING_METHODS` by name)
  → `apply_masks`. No loop over batches is written here.
- **Saving** always writes plain weights (`weight = weight_orig · mask`), so the final folder *and* every
  `checkpoint-N` load with plain `from_pretrained`. Checkpoints also hold `pruning_masks.safetensors`, the exact
  masks, which `resume_from_checkpoint` re-applies; loading plain weights into the masked model (resume, best-model
  reload, `load_state_dict`) takes `mask = (weight != 0)` first.
- **Calibration data** for mask functions that need it (RD's output-distortion curves): every mask function is
  called with `trainer=self`, and with `calibration_images`/`calibration_labels` (float [0, 1] images of the training
  split) when `pruning_calibration_examples > 0`. Mask functions must accept (and may ignore) extra options.

Subclasses (Activating-while-Pruning, RD) override `compute_pruning_masks`, `pruning_options` or `prune_to`
(call `super()`), or add a callback; they never copy the loop.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
from dataclasses import dataclass, field

import safetensors.torch
import torch
from torch import nn
from transformers import TrainerCallback

from ..data import CifarTensorDataset, to_float_images
from ..training.args import CifarTrainingArguments
from ..training.trainer import CifarTrainer
from .masks import apply_masks, check_sparsity, prunable_layers, sparsity_report
from .registry import get_pruning_method
from .schedules import SCHEDULES, PruningSchedule

logger = logging.getLogger(__name__)

MASKS_FILE = "pruning_masks.safetensors"
STATE_FILE = "pruning_state.safetensors"  # a subclass's own tensors (`checkpoint_tensors`)
PRUNING_TARGETS = ("params", "flops")


@dataclass
class PruningTrainingArguments(CifarTrainingArguments):
    """[`CifarTrainingArguments`] plus when, how much and how to prune.

    Sparsities are absolute: the fraction of all prunable weights (every `nn.Conv2d`/`nn.Linear` weight) that are
    zero after pruning. Steps are optimizer steps (`state.global_step`); pruning happens at the start of a step.
    """

    target_sparsity: float = field(
        default=0.9, metadata={"help": "Final sparsity s_f in [0, 1): 0.9 zeroes 90% of the prunable weights."}
    )
    pruning_method: str = field(
        default="global",
        metadata={"help": "A name of hfcifar.pruning.PRUNING_METHODS: 'global' (Global MP), 'uniform' (layer-wise MP), "
                          "or one a method registers."},
    )
    pruning_schedule: str = field(
        default="one-shot",
        metadata={"help": "'one-shot' (prune once at pruning_start_step, then fine-tune) or 'gradual' (Zhu & Gupta's "
                          "cubic schedule)."},
    )
    pruning_start_step: int = field(default=0, metadata={"help": "t_0: the optimizer step of the (first) pruning event."})
    pruning_end_step: int | None = field(
        default=None,
        metadata={"help": "Gradual only: t_0 + nΔt, the step of the last event (default: half of the training steps)."},
    )
    pruning_frequency: int = field(
        default=100, metadata={"help": "Gradual only: Δt, optimizer steps between pruning events."}
    )
    initial_sparsity: float = field(
        default=0.0,
        metadata={"help": "Gradual only: s_i, the target of the first event (the sparsity of an already pruned model)."},
    )
    min_keep_fraction: float = field(
        default=0.0,
        metadata={"help": "Global MP's Minimum Threshold: every layer keeps at least this fraction of its weights "
                          "(prevents layer collapse; 0 = vanilla Global MP)."},
    )
    pruning_target: str = field(
        default="params",
        metadata={"help": "Global MP: 'params' (the sparsity counts weights) or 'flops' (the sparsity is the fraction of "
                          "multiply-accumulates removed)."},
    )
    pruning_calibration_examples: int = field(
        default=0,
        metadata={"help": "Pass this many training images to the mask function as calibration_images/"
                          "calibration_labels (0: none)."},
    )
    pruning_options: dict | str | None = field(
        default=None,
        metadata={"help": "Extra keyword options for the mask function (a dict, or a JSON object on the command line)."},
    )

    def __post_init__(self):
        check_sparsity(self.target_sparsity, "target_sparsity")
        check_sparsity(self.initial_sparsity, "initial_sparsity")
        if self.pruning_schedule not in SCHEDULES:
            raise ValueError(f"pruning_schedule must be one of {SCHEDULES}; got {self.pruning_schedule!r}.")
        if self.pruning_target not in PRUNING_TARGETS:
            raise ValueError(f"pruning_target must be one of {PRUNING_TARGETS}; got {self.pruning_target!r}.")
        if not 0 <= self.min_keep_fraction <= 1 - self.target_sparsity:
            raise ValueError(f"min_keep_fraction must lie in [0, 1 - target_sparsity] = [0, {1 - self.target_sparsity:.4g}] "
                             f"(a layer cannot keep more than the network does); got {self.min_keep_fraction!r}.")
        for name in ("pruning_start_step", "pruning_frequency", "pruning_calibration_examples"):
            value = getattr(self, name)
            low = 1 if name == "pruning_frequency" else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer ≥ {low}; got {value!r}.")
        if self.pruning_end_step is not None and (not isinstance(self.pruning_end_step, int) or self.pruning_end_step <= self.pruning_start_step):
            raise ValueError(f"pruning_end_step must be an integer > pruning_start_step = {self.pruning_start_step}; "
                             f"got {self.pruning_end_step!r}.")
        if self.pruning_schedule == "gradual" and self.initial_sparsity > self.target_sparsity:
            raise ValueError(f"initial_sparsity={self.initial_sparsity} exceeds target_sparsity={self.target_sparsity}.")
        if isinstance(self.pruning_options, str):
            try:
                self.pruning_options = json.loads(self.pruning_options)
            except json.JSONDecodeError as error:
                raise ValueError(f"pruning_options must be a JSON object, e.g. '{{\"key\": 1}}'; got {self.pruning_options!r} "
                                 f"({error}).") from None
        if self.pruning_options is not None and not isinstance(self.pruning_options, dict):
            raise ValueError(f"pruning_options must be a dict of keyword options; got {type(self.pruning_options).__name__}.")
        super().__post_init__()

    def make_schedule(self, max_steps: int) -> PruningSchedule:
        """The `PruningSchedule` of these arguments for a run of `max_steps` optimizer steps."""
        if self.pruning_schedule == "one-shot":
            return PruningSchedule(self.target_sparsity, kind="one-shot", start_step=self.pruning_start_step)
        end = self.pruning_end_step if self.pruning_end_step is not None else max(max_steps // 2, self.pruning_start_step + 1)
        return PruningSchedule(self.target_sparsity, kind="gradual", start_step=self.pruning_start_step, end_step=end,
                               frequency=self.pruning_frequency, initial_sparsity=self.initial_sparsity)


def plain_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`{…weight_orig, …weight_mask}` pairs folded into `{…weight: weight_orig · mask}`: the state dict of the
    same model without the pruning reparametrization (what `from_pretrained` expects)."""
    plain = dict(state_dict)
    for key in [k for k in state_dict if k.endswith("weight_orig")]:
        prefix = key[: -len("weight_orig")]
        mask = plain.pop(f"{prefix}weight_mask", None)
        weight = plain.pop(key)
        plain[f"{prefix}weight"] = weight * mask if mask is not None else weight
    return plain


def _accept_plain_weight(module: nn.Module, state_dict: dict, prefix: str, *args) -> None:
    """`load_state_dict` pre-hook of a masked layer: a plain `weight` (a saved pruned model, a dense checkpoint)
    becomes `weight_orig` and its zeros the mask, so loading never silently drops the weights."""
    if f"{prefix}weight" in state_dict and f"{prefix}weight_orig" not in state_dict and hasattr(module, "weight_mask"):
        weight = state_dict.pop(f"{prefix}weight")
        state_dict[f"{prefix}weight_orig"] = weight
        state_dict[f"{prefix}weight_mask"] = (weight != 0).to(weight.dtype)


class PruningCallback(TrainerCallback):
    """Runs the trainer's pruning schedule: builds it at the start of training, prunes at its steps."""

    def __init__(self, trainer: "PruningTrainer"):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        self.trainer.start_pruning_schedule(state.max_steps)

    def on_step_begin(self, args, state, control, **kwargs):
        self.trainer.prune_on_schedule(state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        schedule = self.trainer.pruning_schedule
        if schedule is not None and state.global_step <= schedule.last_step:
            logger.warning(f"Training stopped at step {state.global_step}, before the last pruning event (step "
                           f"{schedule.last_step}): the model is at sparsity {self.trainer.current_sparsity():.4f}, not "
                           f"the target {schedule.final_sparsity}.")


class PruningTrainer(CifarTrainer):
    """A [`CifarTrainer`] that prunes the model on a schedule while it trains (fine-tuning in between and after).

    Args: those of [`CifarTrainer`], with `args` a [`PruningTrainingArguments`].

    Attributes:
        pruning_schedule: the `PruningSchedule` of the current `train()` (None before training).
        pruning_history: one `{"step", "target_sparsity", "sparsity"}` per pruning event (`sparsity` counted).
    """

    arguments_class = PruningTrainingArguments

    def __init__(self, model=None, args: PruningTrainingArguments | None = None, train_dataset=None, eval_dataset=None, **kwargs):
        if args is None:
            args = PruningTrainingArguments(output_dir="hfcifar_trainer")
        if not isinstance(args, PruningTrainingArguments):
            raise TypeError("PruningTrainer needs PruningTrainingArguments (a CifarTrainingArguments subclass).")
        if model is None:
            raise ValueError("PruningTrainer needs the model to prune (model=...).")
        self._check_method(args)
        self._mask_every_layer(model)
        callbacks = list(kwargs.pop("callbacks", None) or [])
        callbacks.append(PruningCallback(self))
        super().__init__(model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset, callbacks=callbacks, **kwargs)
        self.pruning_schedule: PruningSchedule | None = None
        self.pruning_history: list[dict] = []
        self._calibration = None

    # -- set-up -----------------------------------------------------------------------------------------------
    @staticmethod
    def _check_method(args: PruningTrainingArguments) -> None:
        accepted = inspect.signature(get_pruning_method(args.pruning_method)).parameters
        for option, default in (("min_keep_fraction", 0.0), ("target", "params")):
            value = args.min_keep_fraction if option == "min_keep_fraction" else args.pruning_target
            if value != default and option not in accepted:
                raise ValueError(f"The pruning method {args.pruning_method!r} takes no {option} (set to {value!r}); it is an "
                                 "option of Global MP ('global'): drop it or choose that method.")

    @staticmethod
    def _mask_every_layer(model: nn.Module) -> None:
        """An all-ones mask on every prunable layer not masked yet, and a load hook accepting plain weights.

        From here on every prunable layer has `weight_orig` in the same place of `named_parameters()`, pruned or not:
        the Trainer's optimizer and its saved state stay aligned with the parameters across pruning events and resumes.
        """
        layers = prunable_layers(model)
        apply_masks(model, {name: torch.ones_like(layer.weight) for name, layer in layers.items() if not hasattr(layer, "weight_mask")})
        for layer in layers.values():
            if not getattr(layer, "_hfcifar_accepts_plain_weight", False):
                layer.register_load_state_dict_pre_hook(_accept_plain_weight)
                layer._hfcifar_accepts_plain_weight = True

    # -- the public pruning API ---------------------------------------------------------------------------
    def sparsity_report(self) -> dict:
        """Zeros counted in the model's prunable weights (`hfcifar.pruning.sparsity_report`)."""
        return sparsity_report(self.model)

    def current_sparsity(self) -> float:
        return self.sparsity_report()["sparsity"]

    def pruning_options(self) -> dict:
        """The keyword options of the mask function: Global MP's minimum and target when set, `pruning_options`,
        `trainer=self`, and calibration images when `pruning_calibration_examples > 0`."""
        args = self.args
        options = {}
        if args.min_keep_fraction:
            options["min_keep_fraction"] = args.min_keep_fraction
        if args.pruning_target != "params":
            options["target"] = args.pruning_target
        options.update(args.pruning_options or {})
        options["trainer"] = self
        if args.pruning_calibration_examples:
            options["calibration_images"], options["calibration_labels"] = self.calibration_batch(args.pruning_calibration_examples)
        return options

    def calibration_batch(self, num_examples: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`num_examples` training images (float [0, 1], N×3×32×32, on the model's device) and their labels, drawn
        once with `args.seed` and reused at every pruning event (the same calibration set throughout)."""
        if not isinstance(self.train_dataset, CifarTensorDataset) or len(self.train_dataset) == 0:
            raise ValueError("Calibration images come from the training split: give the trainer a train_dataset.")
        if num_examples < 1:
            raise ValueError(f"num_examples must be ≥ 1; got {num_examples}.")
        if self._calibration is None or self._calibration[0].shape[0] != min(num_examples, len(self.train_dataset)):
            generator = torch.Generator().manual_seed(self.args.seed)
            index = torch.randperm(len(self.train_dataset), generator=generator)[:num_examples]
            device = next(self.model.parameters()).device
            images = to_float_images(self.train_dataset.images[index.to(self.train_dataset.images.device)]).to(device)
            self._calibration = (images, self.train_dataset.labels[index.to(self.train_dataset.labels.device)].to(device))
        return self._calibration

    def compute_pruning_masks(self, sparsity: float) -> dict[str, torch.Tensor]:
        """`{layer name: mask}` at absolute `sparsity` from `args.pruning_method` (override to change the selection)."""
        from .registry import compute_masks

        # Mask functions see contiguous weights (a channels-last 4-D tensor cannot be `.view(-1)`-ed, and a mask must
        # not depend on the memory format); the training format (CifarTrainer's channels-last) comes back after.
        self.model.to(memory_format=torch.contiguous_format)
        try:
            masks = compute_masks(self.args.pruning_method, self.model, sparsity, **self.pruning_options())
        finally:
            if self.args.channels_last:
                self.model.to(memory_format=torch.channels_last)
        return {name: mask.contiguous() for name, mask in masks.items()}

    def prune_to(self, sparsity: float) -> dict:
        """Prune the model to absolute `sparsity` now (masks replace the previous ones) and return the counted
        `sparsity_report`. A lower sparsity than the current one lets pruned weights grow back from zero."""
        sparsity = check_sparsity(sparsity)
        masks = self.compute_pruning_masks(sparsity)
        with torch.no_grad():
            apply_masks(self.model, masks)
        report = self.sparsity_report()
        self.pruning_history.append({"step": self.state.global_step, "target_sparsity": sparsity, "sparsity": report["sparsity"]})
        return report

    # -- the schedule (called by PruningCallback) -------------------------------------------------------
    def start_pruning_schedule(self, max_steps: int) -> PruningSchedule:
        schedule = self.args.make_schedule(max_steps)
        if schedule.last_step >= max_steps:
            raise ValueError(f"The pruning schedule's last event is at step {schedule.last_step} but training runs "
                             f"{max_steps} steps (0…{max_steps - 1}): lower pruning_start_step/pruning_end_step or train longer.")
        self.pruning_schedule = schedule
        return schedule

    def prune_on_schedule(self, step: int) -> None:
        schedule = self.pruning_schedule
        if schedule is None or not schedule.is_pruning_step(step):
            return
        target = schedule.target_at_event(step)
        if target == 0:  # nothing to prune yet (a gradual schedule's first event when s_i = 0)
            return
        report = self.prune_to(target)
        self.log({"target_sparsity": target, "sparsity": report["sparsity"]})

    def log(self, logs: dict, start_time: float | None = None) -> None:
        if "loss" in logs and "sparsity" not in logs:  # the training log: add the sparsity the model has now
            logs = {**logs, "sparsity": self.current_sparsity()}
        super().log(logs, start_time)

    def pruning_summary(self) -> dict:
        """What a run summary or card needs: the method, schedule, counted sparsity and the pruning events."""
        report = self.sparsity_report()
        args = self.args
        return {
            "pruning_method": args.pruning_method,
            "pruning_schedule": args.pruning_schedule,
            "target_sparsity": args.target_sparsity,
            "min_keep_fraction": args.min_keep_fraction,
            "pruning_target": args.pruning_target,
            "sparsity": report["sparsity"],
            "num_zeros": report["num_zeros"],
            "num_weights": report["num_weights"],
            "collapsed_layers": [name for name, s in report["per_layer"].items() if s == 1.0],
            "pruning_history": list(self.pruning_history),
        }

    def method_summary(self) -> dict:
        summary = self.pruning_summary()
        text = f"{summary['pruning_method']} to {summary['sparsity']:.1%} sparsity ({summary['pruning_schedule']})"
        if summary["min_keep_fraction"]:
            text += f", every layer keeps ≥ {summary['min_keep_fraction']:.2%}"
        return {"pruning": summary, "card_rows": [["Pruning", text]]}

    # -- saving and resuming ------------------------------------------------------------------------------
    # Private hook (transformers 5.25.0, pinned by tests/test_trainer_hooks.py): `Trainer.save_model` hands every
    # folder it writes (final save and `checkpoint-N`) to `_save(output_dir, state_dict)`, the one place a state dict
    # can be swapped; no public hook sees the weights before they are written.
    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        # Every folder this trainer writes holds plain weights: `from_pretrained` works on the final save, on a
        # `checkpoint-N`, and on what `push_to_hub` uploads.
        model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        super()._save(output_dir, state_dict=plain_state_dict(state_dict if state_dict is not None else model.state_dict()))

    def save_checkpoint_extras(self, checkpoint_dir: str) -> None:
        # the exact masks, for `resume_from_checkpoint` (zeros alone would also mark an unpruned weight that is 0)
        super().save_checkpoint_extras(checkpoint_dir)
        model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        masks = {name: layer.weight_mask.detach().to("cpu", torch.bool).contiguous()
                 for name, layer in prunable_layers(model).items() if hasattr(layer, "weight_mask")}
        safetensors.torch.save_file(masks, os.path.join(checkpoint_dir, MASKS_FILE))
        extra = {name: tensor.detach().to("cpu").contiguous() for name, tensor in self.checkpoint_tensors().items()}
        if extra:
            safetensors.torch.save_file(extra, os.path.join(checkpoint_dir, STATE_FILE))

    def checkpoint_tensors(self) -> dict[str, torch.Tensor]:
        """Tensors a subclass needs back after `resume_from_checkpoint` (e.g. AP's reference weights W_0); saved in
        each checkpoint as `pruning_state.safetensors` and handed to `load_checkpoint_tensors`."""
        return {}

    def load_checkpoint_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what `checkpoint_tensors` saved (tensors arrive on the CPU)."""

    def load_checkpoint_extras(self, checkpoint_dir: str) -> None:
        # The checkpoint's plain weights loaded with masks `weight != 0` (`_accept_plain_weight`); the exact masks
        # replace them in place (the optimizer already holds `weight_orig`, which must stay the same parameter).
        super().load_checkpoint_extras(checkpoint_dir)
        masks_file = os.path.join(checkpoint_dir, MASKS_FILE)
        if os.path.isfile(masks_file):
            layers = prunable_layers(self.accelerator.unwrap_model(self.model, keep_torch_compile=False))
            with torch.no_grad():
                for name, mask in safetensors.torch.load_file(masks_file).items():
                    layer = layers.get(name)
                    if layer is None or not hasattr(layer, "weight_mask"):
                        raise ValueError(f"The checkpoint {checkpoint_dir} has a mask for {name!r}, which is not a "
                                         "masked layer of this model: resume with the model the checkpoint was saved from.")
                    layer.weight_mask.copy_(mask)
                    layer.weight = layer.weight_orig * layer.weight_mask  # what the pruning hook computes each forward
        state_file = os.path.join(checkpoint_dir, STATE_FILE)
        if os.path.isfile(state_file):
            self.load_checkpoint_tensors(safetensors.torch.load_file(state_file))


__all__ = ["MASKS_FILE", "STATE_FILE", "PruningCallback", "PruningTrainer", "PruningTrainingArguments", "plain_state_dict"]
