"""Claim check (METHODS.md row 42): the alias-free UNet's denoiser has a lower rotational equivariance error than the
standard UNet's.

Anjum (2024) replaces the UNet's down/up-sampling by alias-free resampling (Config B) and reports better FID/KID
(CIFAR-10, B-0: FID 94.23 vs 98.77) and — qualitatively, in a figure, with no number — more consistent rotation of
samples under its rotation-controlled reverse process. This check measures the equivariance directly:

1. Per seed, two `ddpm-small` UNets (1.1M parameters) start from the *same* weights (the swap adds no parameters):
   the standard one and [`AliasFreeUNet2DModel`] (the paper's Config B-0 filter). Both train with `ctx.train`
   (`DiffusionTrainer`, recipe `ddpm-quick`: DDPM loss, EMA) on real CIFAR-10 for the same fixed number of steps,
   with the same seed and batches (`ctx.same_work`).
2. On held-out images noised to x_t at several t (the same images and noise for every seed), the rotational
   equivariance error of each EMA denoiser ε(·, t): normalized MSE between ε(R_θ x_t) and R_θ ε(x_t) inside the
   central disc (StyleGAN3's EQ-R, also as PSNR), for each θ, averaged per image over t and θ.
3. One hypothesis, superiority: alias-free − standard, paired per image, stacked over seeds ([seeds, images]), is
   below 0. Its SE (`paired_difference`) covers the images and the seed-to-seed spread of training — v1's covered
   the images only. The paper gives no number for this quantity (`paper_value=None`).

Also reported (first seed; not part of the verdict): the same weights with the resamplers swapped at inference
(standard-trained weights in the alias-free net and back: the architecture alone), and rotation-controlled sampling
(`RotationControl`): how far a sample steered by θ is from the unsteered sample rotated by θ.
"""

from __future__ import annotations

import numpy as np
import torch

from hfcifar.reproduce import (SUPERIORITY, Claim, ClaimContext, Hypothesis, Result, Scale, paired_comparison,
                               paired_difference)
from . import METHOD

BATCH_SIZE = 64

CLAIM = Claim(
    paper="Advancing Diffusion Models: Alias-Free Resampling and Enhanced Rotational Equivariance",
    claim=("Alias-free up/down-sampling in the diffusion UNet gives a lower rotational equivariance error than the "
           "standard UNet (paper: qualitative only — rotation-controlled samples turn more consistently, Fig. "
           "'Assessing rotational equivariance'; CIFAR-10 FID 94.23 vs 98.77 for Config B-0 vs A). Measured: the "
           "normalized equivariance error of the trained denoiser ε(x_t, t) on held-out images, alias-free minus "
           "standard, trained from the same weights for the same steps."),
    hypotheses=[
        Hypothesis("equivariance_error_difference", SUPERIORITY,
                   "the alias-free UNet's denoiser has a lower normalized rotational equivariance error than the "
                   "standard UNet's (paired per held-out image, over training seeds): difference < 0",
                   higher_is_better=False, null=0.0, paper_value=None),
    ],
    scales={
        "smoke": Scale({"model": "ddpm-tiny", "max_steps": 1, "eval_images": 8, "timesteps": [200],
                        "angles": [30.0, 90.0], "sample_angles": [90.0], "sample_steps": 2, "sample_images": 2},
                       seeds=1, minutes=0.3),
        "cpu": Scale({"model": "ddpm-small", "max_steps": 100, "eval_images": 128, "timesteps": [50, 200, 400, 700],
                      "angles": [15.0, 30.0, 45.0, 60.0, 75.0, 90.0], "sample_angles": [30.0, 60.0, 90.0],
                      "sample_steps": 25, "sample_images": 16}, seeds=3, minutes=22,
                     description="ddpm-small (1.1M parameters), 100 steps of batch 64 per UNet and seed (v1's 108 "
                                 "steps took ~3 min per UNet at ~1.7 s/step with one full core), 128 held-out images "
                                 "× 4 t × 6 θ; 3 seeds × (2 × 2.8 min training + ~1 min evaluation) + ~2 min "
                                 "(decoding, swapped twins and rotation-controlled sampling on the first seed)"),
        "paper": Scale({"model": "ddpm-cifar10", "max_steps": 10_000, "eval_images": 1000,
                        "timesteps": [50, 200, 400, 700], "angles": [15.0, 30.0, 45.0, 60.0, 75.0, 90.0],
                        "sample_angles": [30.0, 60.0, 90.0], "sample_steps": 50, "sample_images": 64}, seeds=3,
                       minutes=120, device="GPU",
                       description="the DDPM CIFAR-10 UNet (35.7M parameters) on all 50,000 training images, 10k "
                                   "steps per UNet and seed, 1,000 held-out images (an estimate, not run)"),
    },
    min_seeds=3,
    minimums={"eval_images": 100},
    citation=("@misc{anjum2024advancing,\n  title={Advancing Diffusion Models: Alias-Free Resampling and Enhanced "
              "Rotational Equivariance},\n  author={Anjum, Md Fahim},\n  year={2024},\n  eprint={2411.09174},\n"
              "  archivePrefix={arXiv},\n  primaryClass={cs.CV}\n}"),
)


def noisy_images(images: torch.Tensor, timesteps, seed: int) -> dict[int, torch.Tensor]:
    """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε for each t (DDPM's forward process: linear β, T = 1000; fixed noise)."""
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(seed))
    return {t: scheduler.add_noise(images, noise, torch.full((len(images),), t)) for t in timesteps}


def denoiser_equivariance(unet, noisy: dict[int, torch.Tensor], angles) -> dict:
    """Per-image normalized error averaged over t and θ, plus the per-t and per-θ means and the EQ-R PSNR."""
    from .equivariance import rotational_equivariance_error

    unet.eval()
    results = {t: rotational_equivariance_error(lambda x, t=t: unet(x, t).sample, x_t, angles, batch_size=BATCH_SIZE)
               for t, x_t in noisy.items()}
    per_image = torch.stack([r.nmse_per_image for r in results.values()]).mean(dim=0)
    per_angle = torch.stack([r.nmse.mean(dim=1) for r in results.values()]).mean(dim=0)
    mse = torch.stack([r.mse for r in results.values()]).mean()
    return {"per_image": per_image, "mean": float(per_image.mean()), "per_angle": [float(v) for v in per_angle],
            "per_t": {t: r.mean_nmse for t, r in results.items()}, "psnr": float(10 * torch.log10(4.0 / mse)),
            "psnr_per_t": {t: r.psnr for t, r in results.items()}}


@torch.no_grad()
def rotation_control_consistency(unet, angles, steps: int, num_images: int, seed: int) -> tuple[dict, dict]:
    """Rotation-controlled DDIM sampling: normalized distance between the sample steered by θ and the unsteered
    sample rotated by θ (same x_T), inside the central disc. Returns (per-angle errors, the samples)."""
    from diffusers import DDIMScheduler

    from hfcifar.diffusion import CifarDDPMPipeline

    from .equivariance import RotationControl, circular_mask, rotate

    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear")
    pipe = CifarDDPMPipeline(unet=unet.eval(), scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    latents = torch.randn(num_images, 3, 32, 32, generator=torch.Generator().manual_seed(seed))

    def sample(angle: float) -> torch.Tensor:
        images = pipe(batch_size=num_images, num_inference_steps=steps, latents=latents.clone(), output_type="pt",
                      callback_on_step_end=RotationControl(angle)).images
        return images * 2 - 1

    samples = {0.0: sample(0.0)}
    mask = circular_mask(32, 32, 0.85)
    errors = {}
    for angle in angles:
        samples[angle] = sample(angle)
        reference = rotate(samples[0.0], angle)
        errors[angle] = float((((samples[angle] - reference) ** 2 * mask).sum() / ((reference**2 * mask).sum())))
    return errors, samples


def plot_equivariance(ctx: ClaimContext, angles, curves: dict, sampling: dict, sample_angles) -> None:
    styles = {"standard": ("tab:gray", "-o"), "alias-free": ("tab:blue", "-o"),
              "standard weights, alias-free resampling": ("tab:cyan", "--s"),
              "alias-free weights, standard resampling": ("tab:orange", "--s")}
    with ctx.figure("equivariance_vs_angle.png", 1, 2, figsize=(11, 4.2)) as (fig, (left, right)):
        for name, values in curves.items():
            colour, style = styles.get(name, ("black", "-"))
            left.plot(angles, values, style, color=colour, label=name, markersize=4)
        left.set(xlabel="rotation angle θ (degrees)",
                 ylabel="normalized MSE  ‖ε(R x_t) − R ε(x_t)‖² / ‖R ε(x_t)‖²",
                 title="Denoiser rotational equivariance error (held-out x_t)")
        left.yaxis.label.set_size(8)
        left.grid(alpha=0.3)
        left.legend(fontsize=7)
        for name, errors in sampling.items():
            colour, style = styles.get(name, ("black", "-"))
            right.plot(list(sample_angles), [errors[a] for a in sample_angles], style, color=colour, label=name)
        right.set(xlabel="target rotation θ (degrees)", ylabel="normalized MSE vs. rotated unsteered sample",
                  title="Rotation-controlled sampling (first seed)")
        right.yaxis.label.set_size(8)
        right.grid(alpha=0.3)
        right.legend(fontsize=7)


def save_sample_grid(path, samples: dict[str, dict]) -> None:
    """Rows: model × image; columns: θ = 0 and the steered angles."""
    from diffusers.utils import make_image_grid
    from PIL import Image

    tiles = []
    for per_angle in samples.values():
        angles = list(per_angle)
        for i in range(min(4, len(per_angle[0.0]))):
            for angle in angles:
                pixels = ((per_angle[angle][i].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
                tiles.append(Image.fromarray(pixels).resize((64, 64), Image.NEAREST))
    cols = len(next(iter(samples.values())))
    make_image_grid(tiles, rows=len(tiles) // cols, cols=cols).save(path)


def run(ctx: ClaimContext) -> Result:
    from hfcifar.diffusion import DiffusionTrainer, DiffusionTrainingArguments, create_unet
    from hfcifar.training.recipes import get_recipe

    from .modeling_alias_free_unet import AliasFreeUNet2DModel
    from .modeling_alias_free_unet import DEFAULT_FILTER, count_resamplers

    work = ctx.work
    train, held_out = ctx.tensors()
    held_out = ctx.head(held_out, work["eval_images"])
    images = held_out.images.float() / 127.5 - 1
    noisy = noisy_images(images, work["timesteps"], ctx.seed)  # the same x_t for every seed and model
    angles = work["angles"]
    recipe = {**get_recipe("ddpm-quick"), "num_sample_images": 0, "per_device_train_batch_size": BATCH_SIZE}

    per_image = {"standard": [], "alias-free": []}  # [seeds][images]
    per_angle = {"standard": [], "alias-free": []}
    details, first, steps = {}, {}, []
    for seed in ctx.each_seed():
        # 1. Same initial weights, two resampling schemes, the same steps and batches.
        standard = create_unet(work["model"])
        alias_free = AliasFreeUNet2DModel.from_unet(standard)
        runs = {name: ctx.train(unet, recipe, name=f"seed-{seed}-{name}", trainer_class=DiffusionTrainer,
                                args_class=DiffusionTrainingArguments, max_steps=work["max_steps"], seed=seed,
                                eval_dataset=held_out, save=(name == "alias-free" and seed == ctx.seed))
                for name, unet in (("standard", standard), ("alias-free", alias_free))}
        ctx.same_work(list(runs.values()))
        steps += [run.steps for run in runs.values()]
        trained = {name: run.trainer.ema_unet() for name, run in runs.items()}  # the released (EMA) weights
        ctx.require(count_resamplers(trained["alias-free"])["standard"] == 0,
                    "the alias-free UNet still holds standard resamplers")

        # 2. The equivariance error of each denoiser on the held-out x_t.
        evaluated = {name: denoiser_equivariance(unet, noisy, angles) for name, unet in trained.items()}
        for name, result in evaluated.items():
            per_image[name].append(result["per_image"].numpy())
            per_angle[name].append(result["per_angle"])
        pair = paired_comparison(evaluated["alias-free"]["per_image"], evaluated["standard"]["per_image"])
        losses = {name: run.trainer.evaluate()["eval_loss"] for name, run in runs.items()}
        details.update({
            f"seed_{seed}_error_standard": evaluated["standard"]["mean"],
            f"seed_{seed}_error_alias_free": evaluated["alias-free"]["mean"],
            f"seed_{seed}_difference": pair["margin"],
            f"seed_{seed}_difference_se_over_images": pair["standard_error"],
            # paired_comparison counts a − b > 0 as "a only right"; for an error, lower is better: b_only_right
            f"seed_{seed}_images_alias_free_lower": pair["b_only_right"],
            f"seed_{seed}_eq_r_psnr_db_standard": evaluated["standard"]["psnr"],
            f"seed_{seed}_eq_r_psnr_db_alias_free": evaluated["alias-free"]["psnr"],
            f"seed_{seed}_eval_loss_standard": losses["standard"],
            f"seed_{seed}_eval_loss_alias_free": losses["alias-free"],
            f"seed_{seed}_training_steps": runs["standard"].steps,
            **{f"seed_{seed}_error_{n.replace('-', '_')}_t{t}": v for n, r in evaluated.items()
               for t, v in r["per_t"].items()},
        })
        if seed == ctx.seed:
            first = {"trained": trained, "evaluated": evaluated}

    # 3. Side analyses on the first seed: the resamplers swapped at inference, rotation-controlled sampling.
    trained, evaluated = first["trained"], dict(first["evaluated"])
    swapped = {"standard weights, alias-free resampling": AliasFreeUNet2DModel.from_unet(trained["standard"]),
               "alias-free weights, standard resampling": AliasFreeUNet2DModel.from_unet(trained["alias-free"],
                                                                                         resampling="standard")}
    evaluated.update({name: denoiser_equivariance(unet.eval(), noisy, angles) for name, unet in swapped.items()})
    swap = paired_comparison(evaluated["standard weights, alias-free resampling"]["per_image"],
                             evaluated["standard"]["per_image"])
    swap_back = paired_comparison(evaluated["alias-free"]["per_image"],
                                  evaluated["alias-free weights, standard resampling"]["per_image"])
    sampling, samples = {}, {}
    for name in ("standard", "alias-free"):
        sampling[name], samples[name] = rotation_control_consistency(
            trained[name], work["sample_angles"], work["sample_steps"], work["sample_images"], ctx.seed)
    curves = {name: np.mean(per_angle[name], axis=0).tolist() for name in per_angle}
    curves.update({name: evaluated[name]["per_angle"] for name in swapped})
    plot_equivariance(ctx, list(angles), curves, sampling, work["sample_angles"])
    save_sample_grid(ctx.output_dir / "rotation_controlled_samples.png", samples)

    difference = paired_difference(np.stack(per_image["alias-free"]), np.stack(per_image["standard"]))
    standard_mean = float(np.mean(per_image["standard"]))
    alias_free_mean = float(np.mean(per_image["alias-free"]))
    details.update({
        "equivariance_error_standard": standard_mean,
        "equivariance_error_alias_free": alias_free_mean,
        "relative_reduction": 1 - alias_free_mean / standard_mean if standard_mean > 0 else None,
        **{f"error_standard_{a:g}deg": v for a, v in zip(angles, curves["standard"])},
        **{f"error_alias_free_{a:g}deg": v for a, v in zip(angles, curves["alias-free"])},
        "first_seed_swap_standard_weights_difference": swap["margin"],
        "first_seed_swap_standard_weights_difference_se": swap["standard_error"],
        "first_seed_swap_back_alias_free_weights_difference": swap_back["margin"],
        "first_seed_swap_back_alias_free_weights_difference_se": swap_back["standard_error"],
        **{f"first_seed_rotation_control_error_standard_{a:g}deg": v for a, v in sampling["standard"].items()},
        **{f"first_seed_rotation_control_error_alias_free_{a:g}deg": v for a, v in sampling["alias-free"].items()},
        "model": work["model"],
        "num_parameters": sum(p.numel() for p in trained["alias-free"].parameters()),
        "filter": ", ".join(f"{k.removeprefix('filter_')}={v}" for k, v in DEFAULT_FILTER.items()),
        "timesteps": list(work["timesteps"]),
        "angles_degrees": list(angles),
    })
    return Result(measurements={"equivariance_error_difference": difference}, details=details,
                  sizes={"eval_images": len(held_out), "training_steps": min(steps)},
                  notes=("Errors are the normalized MSE between ε(R_θ x_t) and R_θ ε(x_t) inside 0.85 of the inscribed "
                         "disc, per image averaged over t and θ, of the EMA weights. The swapped-resampler and "
                         "rotation-controlled numbers are from the first seed and are not part of the verdict."),
                  plots=["rotation_controlled_samples.png"], model_dir=f"seed-{ctx.seed}-alias-free")
