"""Standard CIFAR training recipes as `CifarTrainingArguments` presets.

A recipe is a dict of argument values; `hfcifar train MODEL --recipe NAME` and `train_classifier(recipe=NAME)`
start from it and apply explicit flags on top.
"""

from __future__ import annotations

SGD_NESTEROV = {"optim": "sgd", "optim_args": "momentum=0.9,nesterov=True"}

RECIPES: dict[str, dict] = {
    # The quick CPU recipe of the default FastNet: triangular LR (linear warm-up then linear decay), label
    # smoothing, flip + 2-px translate, flip test-time augmentation. Sized for ~5 minutes on 2 CPU cores on the
    # 4,194 training images of cifar10-mini (README, "Measured"). On that data, many epochs of the 0.3M net beat
    # few epochs of a 4× wider one in the same minutes (72.3% after 60 epochs vs 64.6% after 20, same split).
    "quick": {
        **SGD_NESTEROV,
        "learning_rate": 0.05,
        "weight_decay": 5e-4,
        "lr_scheduler_type": "linear",
        "warmup_steps": 0.2,
        "label_smoothing_factor": 0.2,
        "num_train_epochs": 60,
        "per_device_train_batch_size": 128,
        "crop_padding": 2,
        "tta": True,
    },
    # The classic ResNet recipe (He et al. 2016 / kuangliu): SGD-Nesterov 0.1, wd 5e-4, cosine over 200 epochs.
    "sgd-cosine": {
        **SGD_NESTEROV,
        "learning_rate": 0.1,
        "weight_decay": 5e-4,
        "lr_scheduler_type": "cosine",
        "num_train_epochs": 200,
        "per_device_train_batch_size": 128,
        "crop_padding": 4,
    },
    # One-cycle style: 30% linear warm-up to the peak, linear decay, label smoothing 0.1, Cutout 16 (DeVries & Taylor).
    "one-cycle": {
        **SGD_NESTEROV,
        "learning_rate": 0.1,
        "weight_decay": 5e-4,
        "lr_scheduler_type": "linear",
        "warmup_steps": 0.3,
        "label_smoothing_factor": 0.1,
        "num_train_epochs": 30,
        "per_device_train_batch_size": 128,
        "crop_padding": 4,
        "cutout_size": 16,
    },
    # Denoising diffusion, Ho et al. (2020)'s CIFAR-10 settings (with `DiffusionTrainingArguments`): Adam 2e-4 with
    # 5000 warm-up steps, batch 128, gradient clipping 1, EMA 0.9999, 800k steps.
    "ddpm": {
        "optim": "adamw_torch",
        "learning_rate": 2e-4,
        "weight_decay": 0.0,
        "lr_scheduler_type": "constant_with_warmup",
        "warmup_steps": 5000,
        "max_steps": 800_000,
        "per_device_train_batch_size": 128,
        "ema_decay": 0.9999,
        "crop_padding": 0,
    },
    # Diffusion on a CPU in minutes: a higher peak learning rate with warm-up and cosine decay (so a time-budgeted
    # run ends annealed), a shorter EMA horizon to match the few hundred steps.
    "ddpm-quick": {
        "optim": "adamw_torch",
        "learning_rate": 1e-3,
        "weight_decay": 0.0,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 0.05,
        "num_train_epochs": 30,
        "per_device_train_batch_size": 64,
        "ema_decay": 0.995,
        "crop_padding": 0,
    },
}

DEFAULT_RECIPES = {"fastnet": "quick", "fastnet-tiny": "quick", "fastnet-wide": "quick",
                   "ddpm-cifar10": "ddpm", "ddpm-cifar10-cfg": "ddpm"}


def default_recipe(model_name: str) -> str:
    """The recipe a model trains with when none is named."""
    if model_name in DEFAULT_RECIPES:
        return DEFAULT_RECIPES[model_name]
    return "ddpm-quick" if model_name.startswith("ddpm-") else "sgd-cosine"


def get_recipe(name: str) -> dict:
    if name not in RECIPES:
        raise ValueError(f"Unknown recipe {name!r}. Available recipes: {', '.join(sorted(RECIPES))}.")
    return dict(RECIPES[name])
