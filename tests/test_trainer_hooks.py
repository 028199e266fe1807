"""What hfcifar's trainers rely on in `transformers.Trainer` (checked against transformers 5.25.0).

Private methods still overridden, and why no public hook does the job:
- `CifarTrainer._get_output_dir` + `_save_checkpoint` (atomic checkpoints): `Trainer._save_checkpoint(model, trial)`
  writes every file of `checkpoint-{global_step}` under `_get_output_dir(trial)`; `on_save` runs only after the
  files are in place, so staging and renaming cannot be done from a callback.
- `PruningTrainer._save(output_dir, state_dict)` (plain weights in every folder): `save_model` hands each folder,
  final save and checkpoint alike, to `_save`; no public hook sees the state dict before it is written.
- `DiffusionTrainer.save_model(output_dir, _internal_call)`: a public method, but `_internal_call=True` is how
  `_save_checkpoint` tells a checkpoint's save from the final one.

Public API the rest relies on: `training_step`/`prediction_step` receive the collated batch (the uint8 fast path);
`on_train_begin` runs after `train(resume_from_checkpoint=…)` loaded the checkpoint's weights and built the optimizer
(`load_checkpoint_extras` restores masks and EMA weights there, in place).

Each test below fails when transformers renames or re-signatures one of these, or stops behaving as described:
then adapt `hfcifar/training/trainer.py` (and the overrides named above) and the version in these comments.
"""

import inspect
import os

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from hfcifar.data import CifarTensorDataset, collate_batch
from hfcifar.models import create_model
from hfcifar.training import CifarTrainer, CifarTrainingArguments
from hfcifar.training.trainer import STAGING_DIR


def parameters(function) -> list[tuple[str, object]]:
    return [(p.name, p.default) for p in inspect.signature(function).parameters.values()]


E = inspect.Parameter.empty


def test_the_private_hooks_keep_their_names_and_signatures():
    assert parameters(Trainer._get_output_dir) == [("self", E), ("trial", E)]
    assert parameters(Trainer._save_checkpoint) == [("self", E), ("model", E), ("trial", E)]
    assert parameters(Trainer._save) == [("self", E), ("output_dir", None), ("state_dict", None)]
    assert parameters(Trainer.save_model) == [("self", E), ("output_dir", None), ("_internal_call", False)]


def test_the_public_hooks_keep_their_signatures():
    assert parameters(Trainer.training_step) == [("self", E), ("model", E), ("inputs", E), ("num_items_in_batch", None)]
    assert parameters(Trainer.prediction_step) == [("self", E), ("model", E), ("inputs", E), ("prediction_loss_only", E),
                                                   ("ignore_keys", None)]
    assert [name for name, _ in parameters(Trainer.train)][:4] == ["self", "resume_from_checkpoint", "trial",
                                                                   "ignore_keys_for_eval"]
    assert parameters(TrainerCallback.on_train_begin)[:4] == [("self", E), ("args", E), ("state", E), ("control", E)]


class Tiny(nn.Module):
    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.linear = nn.Linear(4, 2)

    def forward(self, x, labels=None):
        logits = self.linear(x)
        return {"loss": F.cross_entropy(logits, labels), "logits": logits}


def tiny_data(n: int = 8) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    return [{"x": torch.randn(4, generator=generator), "labels": i % 2} for i in range(n)]


def tiny_args(output_dir, **kwargs) -> TrainingArguments:
    settings = dict(max_steps=2, per_device_train_batch_size=4, per_device_eval_batch_size=4, save_strategy="steps",
                    save_steps=2, logging_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True)
    return TrainingArguments(output_dir=str(output_dir), **{**settings, **kwargs})


def test_save_checkpoint_writes_every_file_under_get_output_dir_before_on_save(tmp_path):
    # what CifarTrainer's staging relies on, measured on the plain Trainer
    events = []

    class Probe(Trainer):
        def _get_output_dir(self, trial):
            return str(tmp_path / "elsewhere")

        def _save_checkpoint(self, model, trial):
            events.append(("save_checkpoint", self.state.global_step, model is self.model_wrapped or model is self.model))
            super()._save_checkpoint(model, trial)

        def _save(self, output_dir=None, state_dict=None):
            events.append(("save", output_dir))
            super()._save(output_dir, state_dict)

    class OnSave(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            events.append(("on_save", sorted(os.listdir(tmp_path / "elsewhere" / f"{PREFIX_CHECKPOINT_DIR}-2"))))

    trainer = Probe(model=Tiny(), args=tiny_args(tmp_path / "run"), train_dataset=tiny_data(), callbacks=[OnSave()])
    trainer.train()
    checkpoint = str(tmp_path / "elsewhere" / f"{PREFIX_CHECKPOINT_DIR}-2")
    assert events[0] == ("save_checkpoint", 2, True)
    assert events[1] == ("save", checkpoint)  # save_model → _save(the checkpoint folder)
    assert events[2][0] == "on_save"  # after every file is written in place
    assert {"trainer_state.json", "optimizer.pt", "scheduler.pt", "rng_state.pth"} <= set(events[2][1])
    assert not (tmp_path / "run").exists() or not any(p.startswith(PREFIX_CHECKPOINT_DIR) for p in os.listdir(tmp_path / "run"))
    trainer.save_model(str(tmp_path / "final"))
    assert events[-1] == ("save", str(tmp_path / "final"))  # the final save also goes through _save


def test_training_and_prediction_steps_receive_the_collated_batch(tmp_path):
    seen = {}

    class Probe(Trainer):
        def training_step(self, model, inputs, num_items_in_batch=None):
            seen.setdefault("train", inputs)
            prepared = {**inputs, "pixel_values": inputs["pixel_values"].float() / 255}
            seen.setdefault("prepared", prepared["pixel_values"])
            return super().training_step(model, prepared, num_items_in_batch)

        def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
            seen.setdefault("eval", inputs)
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            seen.setdefault("loss", inputs)
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    class UInt8Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(3 * 32 * 32, 10)

        def forward(self, pixel_values, labels=None):
            pixels = pixel_values.float() / 255 if pixel_values.dtype == torch.uint8 else pixel_values
            logits = self.linear(pixels.flatten(1))
            return {"loss": F.cross_entropy(logits, labels), "logits": logits}

    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    data = CifarTensorDataset(images, torch.arange(8))
    trainer = Probe(model=UInt8Model(), args=tiny_args(tmp_path, max_steps=1, save_strategy="no", per_device_train_batch_size=8,
                                                        per_device_eval_batch_size=8, remove_unused_columns=False),
                    train_dataset=data, eval_dataset=data, data_collator=collate_batch)
    trainer.train()
    trainer.evaluate()
    for key in ("train", "eval"):  # collate_batch's output, uint8 images, before any preparation
        assert seen[key]["pixel_values"].dtype == torch.uint8 and seen[key]["pixel_values"].shape == (8, 3, 32, 32)
    # what training_step passes on reaches compute_loss as it is (`_prepare_inputs` leaves tensors on the device alone)
    assert seen["loss"]["pixel_values"] is seen["prepared"]


def test_on_train_begin_sees_the_resumed_weights_and_the_optimizer_holds_the_parameters(tmp_path):
    Trainer(model=Tiny(seed=0), args=tiny_args(tmp_path), train_dataset=tiny_data()).train()
    checkpoint = str(tmp_path / f"{PREFIX_CHECKPOINT_DIR}-2")
    expected = load_file(os.path.join(checkpoint, "model.safetensors"))["linear.weight"]
    seen = {}

    class Look(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
            seen["weight"] = model.linear.weight.detach().clone()
            seen["step"] = state.global_step
            seen["optimizer_holds_parameters"] = {id(p) for group in optimizer.param_groups for p in group["params"]} == \
                {id(p) for p in model.parameters()}

    resumed = Trainer(model=Tiny(seed=5), args=tiny_args(tmp_path, max_steps=3), train_dataset=tiny_data(), callbacks=[Look()])
    resumed.train(resume_from_checkpoint=checkpoint)
    assert seen["step"] == 2 and torch.equal(seen["weight"], expected) and seen["optimizer_holds_parameters"]


def test_checkpoint_extras_are_staged_and_restored_on_resume(tmp_path):
    calls = []

    class Extras(CifarTrainer):
        def save_checkpoint_extras(self, checkpoint_dir):
            calls.append(("save", checkpoint_dir))
            with open(os.path.join(checkpoint_dir, "extra.txt"), "w") as f:
                f.write(str(self.state.global_step))

        def load_checkpoint_extras(self, checkpoint_dir):
            with open(os.path.join(checkpoint_dir, "extra.txt")) as f:
                calls.append(("load", checkpoint_dir, f.read(), self.state.global_step))

    data = CifarTensorDataset(torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8), torch.arange(8))

    def trainer(max_steps):
        args = CifarTrainingArguments(output_dir=str(tmp_path), max_steps=max_steps, per_device_train_batch_size=8,
                                      save_strategy="steps", save_steps=2, disable_tqdm=True, channels_last=False)
        return Extras(model=create_model("fastnet-tiny"), args=args, train_dataset=data)

    trainer(2).train()
    assert calls == [("save", str(tmp_path / STAGING_DIR / "checkpoint-2"))]  # written before the rename
    assert (tmp_path / "checkpoint-2" / "extra.txt").read_text() == "2" and not (tmp_path / STAGING_DIR).exists()
    resumed = trainer(4)
    resumed.train(resume_from_checkpoint=True)  # the newest checkpoint, resolved as Trainer does
    assert resumed.resumed_from == str(tmp_path / "checkpoint-2")
    assert calls[1] == ("load", str(tmp_path / "checkpoint-2"), "2", 2)
    assert [c[0] for c in calls] == ["save", "load", "save"]  # checkpoint-4 staged the same way
    trainer(6).train(resume_from_checkpoint=tmp_path / "checkpoint-4")  # a Path works too
    assert calls[3] == ("load", str(tmp_path / "checkpoint-4"), "4", 4)
