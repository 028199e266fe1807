"""`DiffusionTrainer`: denoising-diffusion training as a `CifarTrainer` subclass (one loop for every method).

What the Trainer gives for free stays the Trainer's: the optimizer and learning-rate schedule, gradient clipping and
accumulation, `accelerate launch` data parallelism, atomic checkpoints and `resume_from_checkpoint`, time budgets,
logging and training curves, and the uint8 fast path (batches decoded once, flipped on the device). What is new:

- `compute_loss` is the DDPM objective (Ho et al. 2020, Alg. 1): x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε for a uniform t and
  the simple loss ‖target − model(x_t, t)‖², the target being ε, v or x_0 as the noise scheduler's `prediction_type`
  says; class-conditional UNets see the null class with probability `label_dropout` (classifier-free guidance,
  Ho & Salimans 2022, Alg. 1); with a VAE, x_0 is the scaled latent (latent diffusion, Rombach et al. 2022).
- EMA weights (diffusers' `EMAModel`), updated after every optimizer step, saved beside each checkpoint and restored
  on resume; the released pipeline carries the EMA weights, as DDPM's evaluation does.
- Sample grids from the EMA model every `sample_every_steps` and at the end (`samples/step-N.png`).
- Evaluation: the same loss on held-out images with fixed noise and timesteps (comparable across evaluations).
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field

import safetensors.torch
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, SchedulerMixin
from diffusers.training_utils import EMAModel
from diffusers.utils import make_image_grid
from transformers import TrainerCallback

from ..training.args import CifarTrainingArguments
from ..training.trainer import CifarTrainer
from .pipelines import CifarClassConditionalPipeline, CifarDDPMPipeline, CifarLatentDiffusionPipeline
from .unets import NUM_CLASSES

EMA_FILE = "ema.safetensors"
EMA_STATE_FILE = "ema_state.json"
SAMPLES_DIR = "samples"

# The noise (β) schedules diffusers' DDPMScheduler implements, by the names papers use.
NOISE_SCHEDULES = {
    "linear": "linear",  # Ho et al. 2020: β from 1e-4 to 0.02
    "cosine": "squaredcos_cap_v2",  # Nichol & Dhariwal 2021
    "scaled-linear": "scaled_linear",  # latent diffusion's √β-linear
    "sigmoid": "sigmoid",  # Jabri et al. / GeoDiff
}
PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


def make_noise_scheduler(noise_schedule: str = "linear", prediction_type: str = "epsilon",
                         num_train_timesteps: int = 1000) -> DDPMScheduler:
    """The forward process as a diffusers `DDPMScheduler` (which also samples, ancestrally, in 1000 steps)."""
    if noise_schedule not in NOISE_SCHEDULES:
        raise ValueError(f"Unknown noise_schedule {noise_schedule!r}; choose one of {', '.join(NOISE_SCHEDULES)}.")
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"Unknown prediction_type {prediction_type!r}; choose one of {', '.join(PREDICTION_TYPES)}.")
    return DDPMScheduler(num_train_timesteps=num_train_timesteps, beta_schedule=NOISE_SCHEDULES[noise_schedule],
                         prediction_type=prediction_type)


@dataclass
class DiffusionTrainingArguments(CifarTrainingArguments):
    """[`CifarTrainingArguments`] for denoising diffusion models. Augmentation defaults to flips only (DDPM's)."""

    noise_schedule: str = field(default="linear", metadata={"help": f"β schedule: {', '.join(NOISE_SCHEDULES)}."})
    prediction_type: str = field(default="epsilon", metadata={"help": "What the UNet predicts: epsilon, v_prediction or sample."})
    num_train_timesteps: int = field(default=1000, metadata={"help": "Diffusion steps T of the forward process."})
    label_dropout: float = field(default=0.1, metadata={"help": "Class-conditional UNets: probability of training on the null class (classifier-free guidance)."})
    ema_decay: float = field(default=0.999, metadata={"help": "EMA decay of the released weights (0 disables EMA)."})
    ema_warmup: bool = field(default=True, metadata={"help": "Use EMAModel's warm-up (decay grows with steps), which short runs need."})
    sample_every_steps: int = field(default=0, metadata={"help": "Save a sample grid every N steps (0: only at the end)."})
    num_sample_images: int = field(default=20, metadata={"help": "Images in each sample grid."})
    sample_inference_steps: int = field(default=50, metadata={"help": "DDIM steps for the sample grids."})
    sample_guidance_scale: float = field(default=2.0, metadata={"help": "Guidance scale of the grids (class-conditional UNets)."})
    crop_padding: int = field(default=0, metadata={"help": "Random-crop padding (0: none, as in DDPM)."})
    channels_last: bool = field(default=False, metadata={"help": "Channels-last memory format (off: GroupNorm UNets gain nothing on CPU)."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping (DDPM: 1.0)."})

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 <= self.label_dropout < 1.0:
            raise ValueError(f"label_dropout must lie in [0, 1); got {self.label_dropout}.")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1) (0 disables EMA); got {self.ema_decay}.")
        make_noise_scheduler(self.noise_schedule, self.prediction_type, self.num_train_timesteps)  # validates both
        if self.tta:
            raise ValueError("tta (flip test-time augmentation) is for classifiers; diffusion training has no logits to average.")


class _DiffusionCallback(TrainerCallback):
    """EMA update after every optimizer step; sample grids at intervals and at the end."""

    def __init__(self, trainer: "DiffusionTrainer"):
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):
        if self.trainer.ema is not None:
            self.trainer.ema.step(self.trainer.unet.parameters())
        if args.sample_every_steps and state.global_step % args.sample_every_steps == 0:
            self.trainer.save_sample_grid()

    def on_train_end(self, args, state, control, **kwargs):
        self.trainer.save_sample_grid()


class DiffusionTrainer(CifarTrainer):
    """A [`CifarTrainer`] that trains a diffusers UNet with the denoising objective.

    Args:
        model ([`UNet2DModel`]): the denoiser (class-conditional when `num_class_embeds` is set; the last class is
            the null class).
        args ([`DiffusionTrainingArguments`]).
        train_dataset, eval_dataset: Hub-schema splits or `CifarTensorDataset`s, as for `CifarTrainer`.
        noise_scheduler ([`SchedulerMixin`], *optional*): the forward process (`add_noise`); defaults to
            `make_noise_scheduler(args.noise_schedule, args.prediction_type, args.num_train_timesteps)`.
        vae ([`AutoencoderKL`], *optional*): train in its latent space (frozen).
    """

    arguments_class = DiffusionTrainingArguments

    def __init__(self, model=None, args: DiffusionTrainingArguments | None = None, train_dataset=None, eval_dataset=None,
                 noise_scheduler: SchedulerMixin | None = None, vae=None, **kwargs):
        if args is None:
            args = DiffusionTrainingArguments(output_dir="hfcifar_diffusion")
        if not isinstance(args, DiffusionTrainingArguments):
            raise TypeError("DiffusionTrainer needs DiffusionTrainingArguments.")
        kwargs.setdefault("compute_metrics", None)
        self.noise_scheduler = noise_scheduler or make_noise_scheduler(args.noise_schedule, args.prediction_type,
                                                                       args.num_train_timesteps)
        self.vae = vae.requires_grad_(False).eval() if vae is not None else None
        super().__init__(model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset, **kwargs)
        if self.vae is not None:
            self.vae.to(self.args.device)
        rows = getattr(model.config, "num_class_embeds", None)
        self.null_class = None if rows is None else int(rows) - 1
        self.ema = None
        if args.ema_decay > 0:
            self.ema = EMAModel(model.parameters(), decay=args.ema_decay, use_ema_warmup=args.ema_warmup,
                                model_cls=type(model), model_config=model.config)
            self.ema.to(self.args.device)
        self.add_callback(_DiffusionCallback(self))

    @staticmethod
    def label_count(model) -> int:
        return NUM_CLASSES

    @property
    def unet(self):
        return self.accelerator.unwrap_model(self.model, keep_torch_compile=False)

    # -- the objective --------------------------------------------------------------------------------------
    def diffusion_loss(self, model, pixel_values: torch.Tensor, labels: torch.Tensor | None,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """The simple loss ‖target − model(x_t, t, c)‖² (DDPM Eq. 14) for images in [0, 1]."""
        x0 = pixel_values * 2 - 1
        if self.vae is not None:
            with torch.no_grad():
                x0 = self.vae.encode(x0).latent_dist.sample(generator) * self.vae.config.scaling_factor
        n = x0.shape[0]
        noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        timesteps = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (n,), generator=generator,
                                  device=x0.device)
        noisy = self.noise_scheduler.add_noise(x0, noise, timesteps)
        prediction_type = self.noise_scheduler.config.prediction_type
        if prediction_type == "epsilon":
            target = noise
        elif prediction_type == "v_prediction":
            target = self.noise_scheduler.get_velocity(x0, noise, timesteps)
        else:
            target = x0
        class_labels = None
        if self.null_class is not None:
            if labels is None:
                raise ValueError("A class-conditional UNet needs `labels` in the batch.")
            drop = torch.rand(n, generator=generator, device=x0.device) < self.args.label_dropout
            class_labels = torch.where(drop, torch.full_like(labels, self.null_class), labels)
        prediction = model(noisy, timesteps, class_labels=class_labels).sample
        return F.mse_loss(prediction.float(), target.float())

    def evaluation_loop(self, *args, **kwargs):
        self._eval_batch_index = 0
        return super().evaluation_loop(*args, **kwargs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = self.diffusion_loss(model, inputs["pixel_values"], inputs.get("labels"))
        return (loss, None) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        # Fixed noise and timesteps per evaluation batch, so evaluation losses compare across steps and runs.
        inputs = self.prepare_batch(inputs, augment=False)
        generator = torch.Generator(device=inputs["pixel_values"].device)
        generator.manual_seed(self.args.seed + self._eval_batch_index)
        self._eval_batch_index += 1
        with torch.no_grad():
            loss = self.diffusion_loss(model, inputs["pixel_values"], inputs.get("labels"), generator)
        return loss.detach(), None, None

    # -- sampling and saving --------------------------------------------------------------------------------
    def ema_unet(self):
        """A copy of the UNet carrying the EMA weights (the UNet itself when EMA is off)."""
        unet = copy.deepcopy(self.unet)
        if self.ema is not None:
            self.ema.copy_to(unet.parameters())
        return unet.eval()

    @property
    def pipeline_class(self) -> type:
        """The pipeline that samples this model: latent (with a VAE), class-conditional, or unconditional."""
        if self.vae is not None:
            return CifarLatentDiffusionPipeline
        return CifarClassConditionalPipeline if self.null_class is not None else CifarDDPMPipeline

    def pipeline(self, ema: bool = True):
        """The sampling pipeline of the current model (EMA weights by default) with the training noise schedule."""
        components = {"unet": self.ema_unet() if ema else self.unet,
                      "scheduler": DDPMScheduler.from_config(self.noise_scheduler.config)}
        if self.vae is not None:
            components["vae"] = self.vae
        return self.pipeline_class(**components)

    def save_sample_grid(self) -> str | None:
        """Sample `num_sample_images` with DDIM from the EMA model (fixed seed) into `samples/step-N.png`."""
        if not self.is_world_process_zero() or self.args.num_sample_images <= 0:
            return None
        pipe = self.pipeline()
        pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        n = self.args.num_sample_images
        kwargs = dict(batch_size=n, num_inference_steps=self.args.sample_inference_steps,
                      generator=torch.Generator(self.args.device).manual_seed(self.args.seed), output_type="pil")
        if self.null_class is not None:
            kwargs["guidance_scale"] = self.args.sample_guidance_scale
        images = pipe(**kwargs).images
        cols = 10 if n % 10 == 0 else n
        path = os.path.join(self.args.output_dir, SAMPLES_DIR, f"step-{self.state.global_step}.png")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        make_image_grid(images, rows=n // cols, cols=cols).save(path)
        return path

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False):
        """Checkpoints keep the Trainer's format (resumable); the final save writes a `DiffusionPipeline` folder
        (`model_index.json`, `unet/` with the EMA weights, `scheduler/`), loadable with `from_pretrained`."""
        if _internal_call:
            return super().save_model(output_dir, _internal_call=True)
        output_dir = output_dir or self.args.output_dir
        if self.is_world_process_zero():
            self.pipeline().save_pretrained(output_dir)
            with open(os.path.join(output_dir, "training_args.json"), "w") as f:
                f.write(self.args.to_json_string())
        self.accelerator.wait_for_everyone()

    def save_checkpoint_extras(self, checkpoint_dir: str) -> None:
        # the EMA weights and step, inside the staged checkpoint folder, so they land atomically with the weights
        super().save_checkpoint_extras(checkpoint_dir)
        if self.ema is None:
            return
        names = [name for name, _ in self.unet.named_parameters()]
        shadow = {name: p.detach().to("cpu").contiguous() for name, p in zip(names, self.ema.shadow_params)}
        safetensors.torch.save_file(shadow, os.path.join(checkpoint_dir, EMA_FILE))
        with open(os.path.join(checkpoint_dir, EMA_STATE_FILE), "w") as f:
            json.dump({"optimization_step": self.ema.optimization_step, "decay": self.ema.decay}, f)

    def load_checkpoint_extras(self, checkpoint_dir: str) -> None:
        super().load_checkpoint_extras(checkpoint_dir)
        ema_file = os.path.join(checkpoint_dir, EMA_FILE)
        if self.ema is None or not os.path.isfile(ema_file):
            return
        shadow = safetensors.torch.load_file(ema_file)
        names = [name for name, _ in self.unet.named_parameters()]
        with torch.no_grad():
            for name, p in zip(names, self.ema.shadow_params):
                p.copy_(shadow[name].to(p.device))
        with open(os.path.join(checkpoint_dir, EMA_STATE_FILE)) as f:
            self.ema.optimization_step = json.load(f)["optimization_step"]

    def method_summary(self) -> dict:
        config = self.noise_scheduler.config
        summary = {
            "diffusion": {
                "noise_schedule": self.args.noise_schedule,
                "prediction_type": config.prediction_type,
                "num_train_timesteps": config.num_train_timesteps,
                "class_conditional": self.null_class is not None,
                "label_dropout": self.args.label_dropout if self.null_class is not None else None,
                "ema_decay": self.args.ema_decay,
                "latent": self.vae is not None,
            }
        }
        rows = [["Objective", f"DDPM simple loss, {config.prediction_type} prediction, {self.args.noise_schedule} "
                              f"β schedule, T = {config.num_train_timesteps}"]]
        if self.null_class is not None:
            rows.append(["Conditioning", f"class labels, null class {self.null_class} with label dropout "
                                         f"{self.args.label_dropout} (classifier-free guidance)"])
        if self.ema is not None:
            rows.append(["Released weights", f"EMA, decay {self.args.ema_decay}"])
        summary["card_rows"] = rows
        return summary
