"""Gaussian data augmentation for the base classifiers of RS and DRS, as a `CifarTrainer` that overrides one hook.

Cohen et al. (2019, §4 "Training") train the base classifier f with Gaussian noise augmentation at the noise level
σ it will be smoothed with: each training image x is replaced by x + ε, ε ~ N(0, σ² I). For DRS (Xia et al., 2024,
§4.2) each base classifier f^l, f^r is trained the same way on its own noisy sub-image, interpolated back to
32 × 32. `GaussianNoiseTrainer.compute_loss` swaps every batch for `noisy_base_input(batch, σ, sub_image)`.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ...image_processing_cifar import CifarImageProcessor
from ...models import create_model
from ...training.args import CifarTrainingArguments
from ...training.recipes import get_recipe
from ...training.run import SUMMARY_FILE
from ...training.trainer import CifarTrainer
from hfcifar.certification import SUB_IMAGES, noisy_base_input


@dataclass
class GaussianNoiseTrainingArguments(CifarTrainingArguments):
    """[`CifarTrainingArguments`] plus the smoothing noise the base classifier is trained under."""

    noise_sigma: float = field(default=0.25, metadata={"help": "σ of the Gaussian noise added to every image (pixels in [0, 1])."})
    sub_image: str | None = field(
        default=None, metadata={"help": "None: the whole image (RS); 'l' or 'r': that DRS sub-image, interpolated to 32×32."}
    )

    def __post_init__(self):
        if not (self.noise_sigma > 0):
            raise ValueError(f"noise_sigma must be > 0 (the smoothing noise level, e.g. 0.25); got {self.noise_sigma!r}.")
        if self.sub_image not in (None, *SUB_IMAGES):
            raise ValueError(f"sub_image must be None (RS) or one of {SUB_IMAGES} (DRS); got {self.sub_image!r}.")
        if self.sub_image is not None and self.tta:
            # Mirroring a 32-pixel-wide image changes the parity of every column, so the mirror's sub-image l holds
            # the pixels of sub-image r: flip TTA would let a sub-image classifier see the other half of the image.
            raise ValueError("tta=True mirrors images, which swaps the two DRS sub-images; use tta=False with sub_image.")
        super().__post_init__()


class GaussianNoiseTrainer(CifarTrainer):
    """Gaussian data augmentation (Cohen et al., 2019, §4): the loss is taken at noisy inputs, in training and in
    evaluation (the reported accuracy is then the base classifier's accuracy under noise, the quantity smoothing
    turns into certificates).

    Example:
        >>> args = GaussianNoiseTrainingArguments("runs/noise", noise_sigma=0.25, sub_image="l")
        >>> GaussianNoiseTrainer(model=model, args=args, train_dataset=data["train"]).train()
    """

    arguments_class = GaussianNoiseTrainingArguments

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, GaussianNoiseTrainingArguments):
            raise TypeError("GaussianNoiseTrainer needs GaussianNoiseTrainingArguments (they name σ and the sub-image).")

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # The noise comes from torch's global generator, which Trainer seeds and checkpoints: a run is reproducible
        # and resumes with the same noise stream.
        noisy = noisy_base_input(inputs["pixel_values"], self.args.noise_sigma, self.args.sub_image)
        inputs = {**inputs, "pixel_values": noisy}
        return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)


def train_base_classifier(
    train_dataset,
    eval_dataset,
    output_dir: str | os.PathLike,
    sigma: float = 0.25,
    sub_image: str | None = None,
    model: str = "fastnet",
    epochs: float = 60,
    seed: int = 0,
    time_budget_minutes: float | None = None,
    data_info: dict | None = None,
    disable_tqdm: bool = True,
    **overrides,
) -> dict:
    """Train a base classifier with Gaussian noise augmentation (the quick recipe, without flip TTA) and save it.

    Args:
        train_dataset, eval_dataset: Hub-schema splits or `CifarTensorDataset`s.
        output_dir: the model folder (`from_pretrained`-loadable, with `train_summary.json`).
        sigma: the noise level σ, recorded in the saved config as `smoothing_sigma`.
        sub_image: `None` (RS) or `"l"`/`"r"` (a DRS sub-image), recorded as `drs_sub_image`.
        model: an hfcifar preset (default `fastnet`).
        epochs: training epochs (fractions allowed); the recipe's schedule spans them.
        time_budget_minutes: stop training cleanly after this long (a safety net; the schedule is set by `epochs`).
        data_info: where the data came from (`dataset`, `eval_split`, …), written into the summary.
        overrides: any other `GaussianNoiseTrainingArguments` field.

    Returns:
        The summary also written to `output_dir/train_summary.json`.
    """
    settings = get_recipe("quick")
    # Evaluated once, after training (accuracy under noise on the held-out split): evaluating every epoch would
    # add a noisy pass over the held-out images per epoch to a CPU budget shared by three base classifiers.
    settings.update(tta=False, num_train_epochs=epochs, per_device_eval_batch_size=512, eval_strategy="no",
                    save_strategy="no", logging_steps=10, disable_tqdm=disable_tqdm)
    settings.update(overrides)
    args = GaussianNoiseTrainingArguments(output_dir=str(output_dir), noise_sigma=sigma, sub_image=sub_image, seed=seed,
                                          time_budget_minutes=time_budget_minutes, **settings)
    net = create_model(model)
    # Saved in config.json: which noise (and which sub-image) the weights are meant to be smoothed with.
    net.config.smoothing_sigma = float(sigma)
    if sub_image is not None:
        net.config.drs_sub_image = sub_image
    trainer = GaussianNoiseTrainer(model=net, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
                                   processing_class=CifarImageProcessor())
    start = time.perf_counter()
    result = trainer.train()
    train_seconds = time.perf_counter() - start
    trainer.save_model(str(output_dir))
    metrics = trainer.evaluate()
    summary = {
        "model": model,
        "model_type": net.config.model_type,
        "num_parameters": sum(p.numel() for p in net.parameters()),
        "recipe": "quick + Gaussian noise augmentation (Cohen et al. 2019, §4)",
        "noise_sigma": float(sigma),
        "sub_image": sub_image,
        "validation_size": None,
        "split_seed": 0,
        **(data_info or {}),
        "num_train_examples": len(trainer.train_dataset),
        "num_eval_examples": metrics.get("eval_num_examples"),
        "eval_accuracy_under_noise": metrics.get("eval_accuracy"),
        "eval_loss": metrics.get("eval_loss"),
        "tta": False,
        "global_step": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "train_loss": result.training_loss,
        "train_runtime_seconds": train_seconds,
        "stopped_by_time_budget": trainer.stopped_by_time_budget,
        "seed": seed,
    }
    output_dir = Path(output_dir)
    tmp = output_dir / f".{SUMMARY_FILE}.tmp"
    tmp.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    os.replace(tmp, output_dir / SUMMARY_FILE)
    return summary


__all__ = ["GaussianNoiseTrainer", "GaussianNoiseTrainingArguments", "train_base_classifier"]
