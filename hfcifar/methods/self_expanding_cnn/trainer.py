"""`SelfExpandingTrainer`: `CifarTrainer` that grows its network when the natural expansion score says so.

Every `expansion_check_steps` optimizer steps a callback scores the network and one candidate block per stage
(`expansion.natural_expansion_scores`), and when the best candidate's ratio η_candidate/η_current exceeds
`expansion_threshold` (τ) the network gets that block, in place:

- the model object stays the same (`add_block` appends an identity block and records it in `config.depths`), so the
  Trainer's loop, its callbacks and the accelerator keep a valid reference; the new parameters are on the model's
  device, dtype and memory format;
- the optimizer is rebuilt by the Trainer's own `create_optimizer` (its weight-decay groups, in the order a fresh
  optimizer of the grown network has, so a saved optimizer state resumes by position), existing parameters keep their
  optimizer state (momentum, Adam moments, step: they are the same tensors), new ones start fresh, and the learning
  rate schedule continues (the scheduler is pointed at the new optimizer, the groups keep their current rates);
- under DDP the model is wrapped anew by the accelerator (a DDP wrapper registers its parameters once); the loop's
  own reference to the old wrapper is bypassed by `training_step`, which always runs through `self.model_wrapped`;
- every process takes the decision of process 0 (broadcast), and the new block's weights are process 0's (DDP
  broadcasts them when it wraps), so all processes grow identically;
- before growing, the network is saved at its current size to `output_dir/sizes/checkpoint-size-K` (K = its number of
  blocks; `from_pretrained`-loadable; written to a staging folder and renamed), and the final size at the end.

Resuming from a `checkpoint-N` written after an expansion grows the model to the checkpoint's `depths` (its
`config.json`) before the Trainer loads weights and optimizer; the expansion history is a checkpoint extra.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import TrainerCallback
from transformers.trainer_utils import get_last_checkpoint

from hfcifar.training import CifarTrainer, CifarTrainingArguments

from .expansion import ESTIMATORS, ExpansionScores, grow, growth_plan, natural_expansion_scores

SIZES_DIR = "sizes"
SIZE_PREFIX = "checkpoint-size"
STATE_FILE = "expansion_state.json"
#: Config fields a checkpoint must share with the model it resumes into (only `depths` may differ).
SHAPE_FIELDS = ("num_channels", "image_size", "stem_width", "hidden_sizes")


@dataclass
class SelfExpandingTrainingArguments(CifarTrainingArguments):
    """[`CifarTrainingArguments`] plus when, where and how far the network may grow.

    The paper checks every epoch, uses τ = 2, waits 10 epochs after an expansion and caps each block at N = 10
    layers; its λ_n is not given.
    """

    expansion_threshold: float = field(
        default=2.0,
        metadata={"help": "τ: grow when the best candidate's natural expansion score, relative to the current "
                          "network's (η_candidate / η_current, after the parameter penalty), exceeds this (> 1; the "
                          "paper's 2)."},
    )
    expansion_check_steps: int = field(
        default=100, metadata={"help": "Optimizer steps between two expansion checks (the paper: one epoch)."})
    expansion_cooldown_steps: int = field(
        default=0, metadata={"help": "Steps after an expansion during which no check runs (the paper: 10 epochs)."})
    max_blocks_per_stage: int = field(
        default=4, metadata={"help": "A stage stops growing at this many blocks (the paper's capacity N)."})
    max_expansions: int | None = field(
        default=None, metadata={"help": "Stop growing after this many expansions (default: no limit but the stages')."})
    fisher_batches: int = field(
        default=8, metadata={"help": "Mini-batches whose gradients estimate g and the diagonal empirical Fisher (≥ 2)."})
    fisher_batch_size: int = field(default=64, metadata={"help": "Training images per Fisher mini-batch."})
    fisher_damping: float = field(
        default=1e-4,
        metadata={"help": "Tikhonov damping of the diagonal Fisher, relative to its mean over the existing parameters."},
    )
    expansion_score_regularization: float = field(
        default=0.0,
        metadata={"help": "λ_n of the paper's Eq. 3: scores are multiplied by exp(−λ_n Δp²), Δp the parameters a "
                          "candidate adds (0: no penalty)."},
    )
    expansion_score_estimator: str = field(
        default="empirical",
        metadata={"help": "How the squared gradient enters η: 'empirical' (the paper: the squared mean of the Fisher "
                          "batches' gradients) or 'debiased' (minus its sampling variance, so that noise does not score "
                          "in proportion to the number of parameters)."},
    )
    save_size_checkpoints: bool = field(
        default=True,
        metadata={"help": "Save the network at every size it reaches to output_dir/sizes/checkpoint-size-K."},
    )

    def __post_init__(self):
        super().__post_init__()
        if not self.expansion_threshold > 1:
            raise ValueError(f"expansion_threshold must be > 1 (a new block never lowers the score, so τ ≤ 1 would grow "
                             f"at every check); got {self.expansion_threshold}. The paper uses 2.")
        for name in ("expansion_check_steps", "max_blocks_per_stage", "fisher_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be an integer ≥ 1; got {getattr(self, name)}.")
        if self.fisher_batches < 2:
            raise ValueError(f"fisher_batches must be ≥ 2 (with one batch every parameter with a gradient scores "
                             f"exactly 1); got {self.fisher_batches}.")
        if self.expansion_cooldown_steps < 0 or (self.max_expansions is not None and self.max_expansions < 0):
            raise ValueError("expansion_cooldown_steps and max_expansions must be ≥ 0; got "
                             f"{self.expansion_cooldown_steps} and {self.max_expansions}.")
        if self.expansion_score_estimator not in ESTIMATORS:
            raise ValueError(f"expansion_score_estimator must be one of {', '.join(map(repr, ESTIMATORS))}; got "
                             f"{self.expansion_score_estimator!r}.")
        if not self.fisher_damping > 0 or self.expansion_score_regularization < 0:
            raise ValueError(f"fisher_damping must be > 0 and expansion_score_regularization ≥ 0; got "
                             f"{self.fisher_damping} and {self.expansion_score_regularization}.")


class ExpansionCallback(TrainerCallback):
    """Runs the expansion check after every `expansion_check_steps`-th optimizer step (not after the last one), and
    keeps the per-size timing; saves the final size at the end."""

    def __init__(self, trainer: "SelfExpandingTrainer"):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        self.trainer._open_size_segment()

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % args.expansion_check_steps == 0 and state.global_step < state.max_steps:
            self.trainer.maybe_expand()

    def on_train_end(self, args, state, control, **kwargs):
        self.trainer._close_size_segment()
        if args.save_size_checkpoints:
            self.trainer.save_size_checkpoint()
        self.trainer._record_depths_of_every_process()


class SelfExpandingTrainer(CifarTrainer):
    """Train a network that grows during training (Self Expanding CNNs, Appolinary et al. 2024), e.g.
    `SelfExpandingTrainer(hfcifar.create_model("preact-resnet8"), SelfExpandingTrainingArguments(...), train_dataset=…)`.

    The model must have `add_block(stage)` and `config.depths` (the zoo's `preact_resnet` has both). After training,
    `trainer.expansions` lists every expansion (step, stage, scores, depths), `trainer.score_history` every check, and
    `trainer.size_checkpoints` the folders saved at each size.
    """

    arguments_class = SelfExpandingTrainingArguments

    def __init__(self, model=None, args: SelfExpandingTrainingArguments | None = None, **kwargs):
        config = getattr(model, "config", None)
        if not callable(getattr(model, "add_block", None)) or not isinstance(getattr(config, "depths", None), list):
            raise ValueError(
                f"SelfExpandingTrainer grows networks through `add_block(stage)` and `config.depths`; "
                f"{type(model).__name__} has {'no add_block' if not callable(getattr(model, 'add_block', None)) else 'no config.depths list'}. "
                "Start from an expandable preset, e.g. hfcifar.create_model('preact-resnet8') "
                "(`hfcifar train preact-resnet8 --trainer self-expanding`)."
            )
        if args is None:
            args = SelfExpandingTrainingArguments(output_dir="hfcifar_trainer")
        if not isinstance(args, SelfExpandingTrainingArguments):
            raise TypeError(f"SelfExpandingTrainer needs SelfExpandingTrainingArguments; got {type(args).__name__}.")
        optimizers = kwargs.get("optimizers")
        if optimizers and any(o is not None for o in optimizers):
            raise ValueError("SelfExpandingTrainer rebuilds the optimizer at every expansion with `create_optimizer`; "
                             "choose it with the arguments (optim, optim_args, learning_rate, …) or "
                             "`optimizer_cls_and_kwargs` instead of passing `optimizers`.")
        callbacks = list(kwargs.pop("callbacks", None) or [])
        callbacks.append(ExpansionCallback(self))
        self.initial_depths = list(config.depths)
        self.expansions: list[dict] = []
        self.score_history: list[dict] = []
        self.size_checkpoints: list[str] = []
        self.size_segments: list[dict] = []
        self.scoring_seconds = 0.0
        self.depths_per_process: list[list[int]] | None = None
        self.last_scores: ExpansionScores | None = None
        self._segment_start: tuple[float, int] | None = None
        super().__init__(model=model, args=args, callbacks=callbacks, **kwargs)
        if self.is_deepspeed_enabled or self.is_fsdp_enabled:
            raise ValueError("SelfExpandingTrainer supports one process and DDP; DeepSpeed and FSDP shard the "
                             "parameters, which a growing network cannot re-shard mid-training.")

    # -- the loop -------------------------------------------------------------------------------------------------
    def training_step(self, model, inputs, num_items_in_batch=None):
        # `Trainer._inner_training_loop` keeps the model it prepared at the start in a local variable; after an
        # expansion under DDP the model has a new wrapper, `self.model_wrapped` (around the same module), so the step
        # runs through it. On one process the two are the same object.
        return super().training_step(self.model_wrapped, inputs, num_items_in_batch)

    @property
    def depths(self) -> list[int]:
        return list(self.model.config.depths)

    @property
    def num_blocks(self) -> int:
        return sum(self.model.config.depths)

    def eligible_stages(self) -> list[int]:
        """Stages that may still grow (below `max_blocks_per_stage`), none once `max_expansions` is reached."""
        if self.args.max_expansions is not None and len(self.expansions) >= self.args.max_expansions:
            return []
        return [stage for stage, depth in enumerate(self.depths) if depth < self.args.max_blocks_per_stage]

    # -- the natural expansion score ------------------------------------------------------------------------------
    def fisher_batches(self) -> list[dict]:
        """`fisher_batches` batches of `fisher_batch_size` training images (no augmentation), drawn with a generator
        seeded by the run's seed and the step: the same images on every process and on a resumed run."""
        dataset = self.train_dataset
        count, size = self.args.fisher_batches, self.args.fisher_batch_size
        generator = torch.Generator().manual_seed(self.args.seed * 1_000_003 + self.state.global_step)
        if len(dataset) >= count * size:
            order = torch.randperm(len(dataset), generator=generator)
        else:
            order = torch.randint(len(dataset), (count * size,), generator=generator)
        batches = []
        for k in range(count):
            indices = order[k * size:(k + 1) * size].tolist()
            items = dataset.__getitems__(indices) if hasattr(dataset, "__getitems__") else [dataset[i] for i in indices]
            batches.append(self.prepare_batch(self.data_collator(items), augment=False))
        return batches

    def _fisher_loss(self, model, batch: dict) -> torch.Tensor:
        return self.compute_loss(model, batch)

    def expansion_scores(self, stages: list[int] | None = None) -> ExpansionScores:
        """The natural expansion scores of the network and of one new block per stage (eligible stages by default)."""
        stages = self.eligible_stages() if stages is None else stages
        return natural_expansion_scores(self.model, self.fisher_batches(), self._fisher_loss, stages,
                                        damping=self.args.fisher_damping,
                                        regularization=self.args.expansion_score_regularization,
                                        estimator=self.args.expansion_score_estimator)

    def _agree(self, stage: int | None) -> int | None:
        """Process 0's decision, on every process."""
        if self.accelerator.num_processes <= 1:
            return stage
        from accelerate.utils import broadcast_object_list

        decision = [stage]
        broadcast_object_list(decision, from_process=0)
        return decision[0]

    def maybe_expand(self) -> int | None:
        """One expansion check (the paper's Section 3.1): score, decide on process 0, grow. Returns the grown stage."""
        step = self.state.global_step
        last = self.expansions[-1]["step"] if self.expansions else None
        if last is not None and step - last < self.args.expansion_cooldown_steps:
            return None
        stages = self.eligible_stages()
        if not stages:
            return None
        started = time.monotonic()
        scores = self.expansion_scores(stages)
        self.scoring_seconds += time.monotonic() - started
        self.last_scores = scores
        stage = self._agree(scores.decide(self.args.expansion_threshold))
        self.score_history.append({"step": step, "depths": self.depths, **scores.as_dict(),
                                   "grown_stage": stage})
        self.log({"natural_expansion_score": scores.current, "expansion_ratio": scores.best_ratio,
                  "num_blocks": float(self.num_blocks)})
        if stage is None:
            return None
        if self.args.save_size_checkpoints:
            self.save_size_checkpoint()
        self._close_size_segment()
        before = self.depths
        self.expand(stage, scores.blocks.get(stage))
        self.expansions.append({"step": step, "stage": stage, "depths_before": before, "depths_after": self.depths,
                                "ratio": scores.ratios[stage], "score": scores.current,
                                "increase": scores.increases[stage], "new_parameters": scores.new_parameters[stage]})
        self._open_size_segment()
        return stage

    # -- growing ---------------------------------------------------------------------------------------------------
    def expand(self, stage: int, block_state: dict | None = None) -> None:
        """Add one identity block to `stage` and rebuild what holds the old parameter list: the optimizer and, under
        DDP, the model's wrapper. Outputs are unchanged; every process must call it at the same step."""
        block = grow(self.model, stage, block_state)
        if self.args.channels_last:
            block.to(memory_format=torch.channels_last)
        if self.optimizer is not None:
            self._rebuild_optimizer()
        self._rewrap_model()
        self.callback_handler.model = self.model

    def _rebuild_optimizer(self) -> None:
        old = self.optimizer
        old_inner = getattr(old, "optimizer", old)
        self.optimizer = None
        self.create_optimizer()
        new_inner = self.optimizer
        if len(new_inner.param_groups) != len(old_inner.param_groups):
            raise RuntimeError(f"The rebuilt optimizer has {len(new_inner.param_groups)} parameter groups, the old one "
                               f"{len(old_inner.param_groups)}: cannot carry the learning rates over.")
        # Existing parameters are the same tensors: their state (momentum, Adam moments, step) carries over as is;
        # new parameters have none and start fresh. The groups keep the current learning rate and the scheduler's
        # bookkeeping (`initial_lr`), so the schedule continues where it was.
        for param, state in old_inner.state.items():
            new_inner.state[param] = state
        for new_group, old_group in zip(new_inner.param_groups, old_inner.param_groups):
            new_group.update({key: value for key, value in old_group.items() if key != "params"})
        from accelerate.optimizer import AcceleratedOptimizer

        self.optimizer = self.accelerator.prepare_optimizer(new_inner) if isinstance(old, AcceleratedOptimizer) else new_inner
        if self.lr_scheduler is not None:
            self.lr_scheduler.optimizer = self.optimizer
        self.callback_handler.optimizer = self.optimizer

    def _rewrap_model(self) -> None:
        wrapped = self.model_wrapped
        if wrapped is self.model or isinstance(wrapped, torch.nn.DataParallel):
            return  # no wrapper, or one that reads the module's parameters at every forward
        if not isinstance(wrapped, torch.nn.parallel.DistributedDataParallel):
            raise RuntimeError(f"Cannot re-wrap a {type(wrapped).__name__} after an expansion (one process or DDP only).")
        if hasattr(self.model, "_original_forward"):
            # mixed precision: the accelerator wraps `forward` again when it prepares the model
            self.model.forward = self.model._original_forward
        # A new DDP wrapper registers the grown parameter list (and broadcasts process 0's weights, the new block's
        # included); the old one is no longer run forward, so its reducer stays idle.
        self.model_wrapped = self.accelerator.prepare_model(self.model)

    # -- checkpoints at each size -----------------------------------------------------------------------------------
    def size_checkpoint_dir(self, num_blocks: int | None = None) -> Path:
        return Path(self.args.output_dir) / SIZES_DIR / f"{SIZE_PREFIX}-{self.num_blocks if num_blocks is None else num_blocks}"

    def save_size_checkpoint(self) -> str:
        """Save the network at its current size to `output_dir/sizes/checkpoint-size-K` (staged, then renamed)."""
        folder = self.size_checkpoint_dir()
        if self.args.should_save:
            staging = folder.with_name(f".{folder.name}.staging")
            shutil.rmtree(staging, ignore_errors=True)
            self.model.save_pretrained(staging)
            if self.processing_class is not None and hasattr(self.processing_class, "save_pretrained"):
                self.processing_class.save_pretrained(staging)
            (staging / "size.json").write_text(json.dumps(
                {"num_blocks": self.num_blocks, "depths": self.depths, "global_step": self.state.global_step,
                 "num_parameters": sum(p.numel() for p in self.model.parameters())}, indent=2) + "\n")
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(staging, folder)
        self.accelerator.wait_for_everyone()
        if str(folder) not in self.size_checkpoints:
            self.size_checkpoints.append(str(folder))
        return str(folder)

    # -- timing ---------------------------------------------------------------------------------------------------
    def _open_size_segment(self) -> None:
        self._segment_start = (time.monotonic(), self.state.global_step, self.scoring_seconds)

    def _close_size_segment(self) -> None:
        """Record the steps and seconds spent at the current size (`scoring_seconds`: the part spent scoring)."""
        if self._segment_start is None:
            return
        started, step, scoring = self._segment_start
        self._segment_start = None
        if self.state.global_step > step:
            self.size_segments.append({"depths": self.depths, "num_blocks": self.num_blocks,
                                       "num_parameters": sum(p.numel() for p in self.model.parameters()),
                                       "steps": self.state.global_step - step,
                                       "seconds": time.monotonic() - started,
                                       "scoring_seconds": self.scoring_seconds - scoring})

    def _record_depths_of_every_process(self) -> None:
        if self.accelerator.num_processes > 1:
            from accelerate.utils import gather_object

            self.depths_per_process = gather_object([self.depths])
        else:
            self.depths_per_process = [self.depths]

    # -- resuming -------------------------------------------------------------------------------------------------
    def train(self, resume_from_checkpoint: str | bool | None = None, trial=None, ignore_keys_for_eval=None, **kwargs):
        checkpoint = resume_from_checkpoint
        if isinstance(checkpoint, os.PathLike):
            checkpoint = os.fspath(checkpoint)
        if checkpoint is True:
            checkpoint = get_last_checkpoint(self.args.output_dir)
        if isinstance(checkpoint, str):
            self.grow_to_checkpoint(checkpoint)
        return super().train(resume_from_checkpoint=resume_from_checkpoint, trial=trial,
                             ignore_keys_for_eval=ignore_keys_for_eval, **kwargs)

    def grow_to_checkpoint(self, checkpoint: str) -> None:
        """Grow the model to the size saved in `checkpoint/config.json` (before the Trainer loads its weights)."""
        path = Path(checkpoint) / "config.json"
        if not path.is_file():
            raise ValueError(f"Cannot resume a self-expanding run from {checkpoint}: it has no config.json to read the "
                             "network's size from. Resume from a checkpoint-N folder this trainer wrote.")
        saved = json.loads(path.read_text())
        config = self.model.config
        different = [name for name in SHAPE_FIELDS if name in saved and saved[name] != getattr(config, name, None)]
        if different or len(saved.get("depths", [])) != len(config.depths):
            raise ValueError(
                f"{checkpoint} holds a network with {', '.join(f'{n}={saved.get(n)}' for n in SHAPE_FIELDS + ('depths',))}"
                f", which the model being trained ({', '.join(f'{n}={getattr(config, n)}' for n in SHAPE_FIELDS + ('depths',))}) "
                "cannot grow into. Resume with the model the run started from (the same preset and overrides).")
        try:
            plan = growth_plan(config.depths, saved["depths"])
        except ValueError as error:
            raise ValueError(f"Cannot resume from {checkpoint}: {error} Start from the run's initial model.") from error
        for stage in plan:
            block = grow(self.model, stage)
            if self.args.channels_last:
                block.to(memory_format=torch.channels_last)

    def save_checkpoint_extras(self, checkpoint_dir: str) -> None:
        super().save_checkpoint_extras(checkpoint_dir)
        state = {"initial_depths": self.initial_depths, "expansions": self.expansions,
                 "score_history": self.score_history, "size_checkpoints": self.size_checkpoints,
                 "size_segments": self.size_segments, "scoring_seconds": self.scoring_seconds}
        Path(checkpoint_dir, STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")

    def load_checkpoint_extras(self, checkpoint_dir: str) -> None:
        super().load_checkpoint_extras(checkpoint_dir)
        path = Path(checkpoint_dir, STATE_FILE)
        if path.is_file():
            state = json.loads(path.read_text())
            self.initial_depths = state["initial_depths"]
            self.expansions = state["expansions"]
            self.score_history = state["score_history"]
            self.size_checkpoints = state["size_checkpoints"]
            self.size_segments = state["size_segments"]
            self.scoring_seconds = state["scoring_seconds"]

    # -- summary --------------------------------------------------------------------------------------------------
    def method_summary(self) -> dict:
        grown = " → ".join(str(e["depths_after"]) for e in self.expansions)
        text = (f"grown from {self.initial_depths} blocks per stage to {self.depths} in {len(self.expansions)} "
                f"expansion(s) (natural expansion score, τ = {self.args.expansion_threshold:g}, a check every "
                f"{self.args.expansion_check_steps} steps)" + (f": {self.initial_depths} → {grown}" if grown else ""))
        return {
            "self_expansion": {
                "initial_depths": self.initial_depths, "final_depths": self.depths,
                "expansions": self.expansions, "size_checkpoints": self.size_checkpoints,
                "size_segments": self.size_segments, "scoring_seconds": self.scoring_seconds,
                "checks": len(self.score_history), "depths_per_process": self.depths_per_process,
            },
            "card_rows": [["Self-expansion", text]],
        }


__all__ = ["ExpansionCallback", "SelfExpandingTrainer", "SelfExpandingTrainingArguments"]
