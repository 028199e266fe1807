"""Claim check (METHODS.md row 42): the alias-free UNet's denoiser has a lower rotational equivariance error than the
standard UNet's.

Anjum (2024) replaces the UNet's down/up-sampling by alias-free resampling (Config B) and reports better FID/KID
(CIFAR-10, B-0: FID 94.23 vs 98.77) and — qualitatively, in a figure, with no number — more consistent rotation of
samples under its rotation-controlled reverse process. This check measures the equivariance directly:

1. Two `ddpm-small` UNets (1.1M parameters) start from the *same* weights (the swap adds no parameters): the
   standard one and [`AliasFreeUNet2DModel`] (the paper's Config B-0 filter). Both train with hfcifar's
   `train_diffusion` (DDPM loss, EMA) on real CIFAR-10 for the same number of steps, seeds and batches; the
   steps come from a timed training step of both nets, (1 − EVAL_SHARE) of the budget.
2. On held-out images noised to x_t at several t, the rotational equivariance error of each denoiser ε(·, t):
   normalized MSE between ε(R_θ x_t) and R_θ ε(x_t) inside the central disc (StyleGAN3's EQ-R, also as PSNR),
   for θ ∈ ANGLES, averaged per image over t and θ; as many held-out images as the rest of the budget allows
   (from a forward pass timed after training).
3. PASS iff the alias-free UNet's mean error is lower than the standard UNet's by more than 2 paired standard
   errors (over images). The standard error covers the images, not the training run (one seed per model).

Measured (15 min, 2-core CPU shared with other jobs, seed 0): 0.0610 vs 0.0626, difference −0.0017 ± 0.0001 over
407 images (108 training steps each): PASS; seed 1 (43 steps): −0.0072 ± 0.0002. See README.md.

Also reported: the same weights with the resamplers swapped at inference (standard-trained weights in the
alias-free net and back; a paired comparison of the architecture alone), and rotation-controlled sampling
(`RotationControl`): how far a sample steered by θ is from the unsteered sample rotated by θ.
"""

from __future__ import annotations

import math
import time

import torch

from hfcifar.reproduce import Claim, ClaimContext, Measurement, paired_comparison

MODEL = "ddpm-small"
BATCH_SIZE = 64
TIMESTEPS = (50, 200, 400, 700)  # x_t from nearly clean to mostly noise (T = 1000, linear β)
ANGLES = (15.0, 30.0, 45.0, 60.0, 75.0, 90.0)
SAMPLE_ANGLES = (30.0, 60.0, 90.0)
SAMPLE_STEPS = 25  # DDIM steps of the rotation-controlled samples
SAMPLE_IMAGES = 16
EVAL_SHARE = 0.3  # of the budget for the equivariance measurements and sampling; the rest trains the two UNets
MAX_EVAL_IMAGES = 466

CLAIM = Claim(
    paper="Advancing Diffusion Models: Alias-Free Resampling and Enhanced Rotational Equivariance",
    claim=("alias-free up/down-sampling in the diffusion UNet gives a lower rotational equivariance error than the "
           "standard UNet (paper: qualitative only — rotation-controlled samples turn more consistently, Fig. "
           "'Assessing rotational equivariance'; CIFAR-10 FID 94.23 vs 98.77 for Config B-0 vs A). Measured: "
           "normalized equivariance error of the denoiser ε(x_t, t), alias-free minus standard (< 0 supports)"),
    paper_value=0.0,
    metric="equivariance_error_difference",
    comparison="<=",
    tolerance=0.0,
    budget_minutes=15.0,
    citation=("@misc{anjum2024advancing,\n  title={Advancing Diffusion Models: Alias-Free Resampling and Enhanced "
              "Rotational Equivariance},\n  author={Anjum, Md Fahim},\n  year={2024},\n  eprint={2411.09174},\n"
              "  archivePrefix={arXiv},\n  primaryClass={cs.CV}\n}"),
)


def seconds_per_diffusion_step(unet, batch_size: int = BATCH_SIZE, steps: int = 5) -> float:
    """Median seconds of one training step of `unet` on this machine now (a copy trains: `unet` is untouched)."""
    import copy

    model = copy.deepcopy(unet).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x, t = torch.randn(batch_size, 3, 32, 32), torch.randint(0, 1000, (batch_size,))
    times = []
    for _ in range(steps + 1):  # one warm-up
        start = time.perf_counter()
        optimizer.zero_grad()
        (model(x, t).sample - x).pow(2).mean().backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[steps // 2]


@torch.no_grad()
def seconds_per_forward(unet, batch_size: int = BATCH_SIZE, steps: int = 5) -> float:
    """Median seconds of one no-grad forward pass of `unet` over `batch_size` images."""
    x, t = torch.randn(batch_size, 3, 32, 32), torch.randint(0, 1000, (batch_size,))
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        unet.eval()(x, t)
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[steps // 2]


SMOKE_PLAN = {"smoke": True, "max_steps": 1, "train_minutes": 0.05, "eval_images": 8, "timesteps": (200,),
              "angles": (30.0, 90.0), "sample_angles": (90.0,), "sample_steps": 2, "sample_images": 2}


def plan_training(ctx: ClaimContext, step_seconds: float) -> dict:
    """Steps per UNet (the same for both), so that training takes `1 − EVAL_SHARE` of the budget."""
    overhead = 2.0  # minutes: data decoding, trainer setup, saving, the held-out losses of train_diffusion
    train_minutes = max(0.1, ((1 - EVAL_SHARE) * ctx.minutes_left() - overhead) / 2)
    return {"smoke": False, "max_steps": max(1, int(train_minutes * 60 / step_seconds)), "train_minutes": train_minutes,
            "timesteps": TIMESTEPS, "angles": ANGLES, "sample_angles": SAMPLE_ANGLES, "sample_steps": SAMPLE_STEPS,
            "sample_images": SAMPLE_IMAGES}


def plan_evaluation(ctx: ClaimContext, forward_seconds: float) -> int:
    """Held-out images for the equivariance measurement, sized to what is left of the budget after training."""
    per_image = forward_seconds / BATCH_SIZE
    sampling = 2 * (1 + len(SAMPLE_ANGLES)) * SAMPLE_STEPS * SAMPLE_IMAGES * per_image * 1.5
    # 4 evaluated nets (2 trained, 2 swapped), each |T|·(1 + |A|) passes over the images; ×1.3 for the rotations
    per_eval_image = 4 * len(TIMESTEPS) * (1 + len(ANGLES)) * per_image * 1.3
    seconds = 0.9 * ctx.minutes_left() * 60 - sampling - 20  # 20 s: plots, report
    return max(16, min(MAX_EVAL_IMAGES, int(seconds / per_eval_image)))


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


def plot_equivariance(path, angles, curves: dict, sampling: dict, sample_angles) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"standard": ("tab:gray", "-o"), "alias-free": ("tab:blue", "-o"),
              "standard weights, alias-free resampling": ("tab:cyan", "--s"),
              "alias-free weights, standard resampling": ("tab:orange", "--s")}
    for name, values in curves.items():
        colour, style = styles.get(name, ("black", "-"))
        left.plot(angles, values, style, color=colour, label=name, markersize=4)
    left.set(xlabel="rotation angle θ (degrees)",
             ylabel="normalized MSE  ‖ε(R x_t) − R ε(x_t)‖² / ‖R ε(x_t)‖²",
             title="Denoiser rotational equivariance error (held-out x_t, mean over t)")
    left.yaxis.label.set_size(8)
    left.grid(alpha=0.3)
    left.legend(fontsize=7)
    for name, errors in sampling.items():
        colour, style = styles.get(name, ("black", "-"))
        right.plot(list(sample_angles), [errors[a] for a in sample_angles], style, color=colour, label=name)
    right.set(xlabel="target rotation θ (degrees)", ylabel="normalized MSE vs. rotated unsteered sample",
              title="Rotation-controlled sampling (RotationControl, DDIM)")
    right.yaxis.label.set_size(8)
    right.grid(alpha=0.3)
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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


def run(ctx: ClaimContext) -> Measurement:
    from diffusers import UNet2DModel

    from hfcifar.data import CifarTensorDataset
    from hfcifar.diffusion import create_unet, train_diffusion

    from .modeling_alias_free_unet import AliasFreeUNet2DModel
    from .resampling import DEFAULT_FILTER, count_resamplers

    # 1. Same initial weights, two resampling schemes.
    torch.manual_seed(ctx.seed)
    standard = create_unet(MODEL)
    alias_free = AliasFreeUNet2DModel.from_unet(standard)
    smoke = ctx.minutes_left() < 0.5
    if smoke:
        budget = dict(SMOKE_PLAN)
    else:  # both nets timed, interleaved, so that a load spike on the machine does not decide the plan alone
        step_seconds = (seconds_per_diffusion_step(standard) + seconds_per_diffusion_step(alias_free)) / 2
        budget = plan_training(ctx, step_seconds)

    trained = {}
    summaries = {}
    for name, unet in (("standard", standard), ("alias-free", alias_free)):
        summaries[name] = train_diffusion(
            unet, dataset=ctx.dataset, eval_dataset=ctx.eval_dataset, output_dir=ctx.output_dir / name,
            recipe="ddpm-quick", max_steps=budget["max_steps"], batch_size=BATCH_SIZE, seed=ctx.seed, overwrite=True,
            # a guard should the machine slow down: the steps were planned to take train_minutes
            time_budget_minutes=max(0.05, 1.5 * budget["train_minutes"]), num_sample_images=0,
            disable_tqdm=not ctx.progress, logging_steps=10,
        )
        loader = AliasFreeUNet2DModel if name == "alias-free" else UNet2DModel
        trained[name] = loader.from_pretrained(ctx.output_dir / name, subfolder="unet").eval()  # the EMA weights
    assert count_resamplers(trained["alias-free"])["standard"] == 0

    # 2. Held-out noisy images; the equivariance error of each denoiser (and of the swapped twins).
    if not smoke:
        budget["eval_images"] = plan_evaluation(ctx, max(seconds_per_forward(unet) for unet in trained.values()))
    held_out = CifarTensorDataset.from_hf(ctx.eval_split, "eval", progress=ctx.progress)
    images = held_out.images[: budget["eval_images"]].float() / 127.5 - 1
    noisy = noisy_images(images, budget["timesteps"], ctx.seed)
    angles = budget["angles"]
    swapped_standard = AliasFreeUNet2DModel.from_unet(trained["standard"]).eval()
    swapped_alias_free = AliasFreeUNet2DModel.from_unet(trained["alias-free"], resampling="standard").eval()
    evaluated = {
        "standard": denoiser_equivariance(trained["standard"], noisy, angles),
        "alias-free": denoiser_equivariance(trained["alias-free"], noisy, angles),
        "standard weights, alias-free resampling": denoiser_equivariance(swapped_standard, noisy, angles),
        "alias-free weights, standard resampling": denoiser_equivariance(swapped_alias_free, noisy, angles),
    }
    main = paired_comparison(evaluated["alias-free"]["per_image"], evaluated["standard"]["per_image"])
    swap = paired_comparison(evaluated["standard weights, alias-free resampling"]["per_image"],
                             evaluated["standard"]["per_image"])
    swap_back = paired_comparison(evaluated["alias-free"]["per_image"],
                                  evaluated["alias-free weights, standard resampling"]["per_image"])

    # 3. Rotation-controlled sampling (the paper's modified reverse process).
    sampling, samples = {}, {}
    for name in ("standard", "alias-free"):
        sampling[name], samples[name] = rotation_control_consistency(
            trained[name], budget["sample_angles"], budget["sample_steps"], budget["sample_images"], ctx.seed)
    plot_equivariance(ctx.output_dir / "equivariance_vs_angle.png", list(angles),
                      {name: result["per_angle"] for name, result in evaluated.items()}, sampling,
                      budget["sample_angles"])
    save_sample_grid(ctx.output_dir / "rotation_controlled_samples.png", samples)

    margin, se = main["margin"], main["standard_error"]
    passed = margin + 2 * se < 0
    std_mean, af_mean = evaluated["standard"]["mean"], evaluated["alias-free"]["mean"]
    measured = {
        "equivariance_error_difference": margin,
        "equivariance_error_difference_se": se,
        "equivariance_error_standard": std_mean,
        "equivariance_error_alias_free": af_mean,
        "relative_reduction": 1 - af_mean / std_mean if std_mean > 0 else None,
        "images_alias_free_lower": int((evaluated["alias-free"]["per_image"]
                                        < evaluated["standard"]["per_image"]).sum()),
        "eq_r_psnr_db_standard": evaluated["standard"]["psnr"],
        "eq_r_psnr_db_alias_free": evaluated["alias-free"]["psnr"],
        **{f"error_standard_t{t}": v for t, v in evaluated["standard"]["per_t"].items()},
        **{f"error_alias_free_t{t}": v for t, v in evaluated["alias-free"]["per_t"].items()},
        **{f"error_standard_{a:g}deg": v for a, v in zip(angles, evaluated["standard"]["per_angle"])},
        **{f"error_alias_free_{a:g}deg": v for a, v in zip(angles, evaluated["alias-free"]["per_angle"])},
        "swap_standard_weights_difference": swap["margin"],
        "swap_standard_weights_difference_se": swap["standard_error"],
        "swap_back_alias_free_weights_difference": swap_back["margin"],
        "swap_back_alias_free_weights_difference_se": swap_back["standard_error"],
        **{f"rotation_control_error_standard_{a:g}deg": v for a, v in sampling["standard"].items()},
        **{f"rotation_control_error_alias_free_{a:g}deg": v for a, v in sampling["alias-free"].items()},
        "training_steps_standard": summaries["standard"]["global_step"],
        "training_steps_alias_free": summaries["alias-free"]["global_step"],
        "eval_loss_standard": summaries["standard"]["eval_loss"],
        "eval_loss_alias_free": summaries["alias-free"]["eval_loss"],
        "train_minutes_standard": summaries["standard"]["train_runtime_seconds"] / 60,
        "train_minutes_alias_free": summaries["alias-free"]["train_runtime_seconds"] / 60,
        "model": MODEL,
        "num_parameters": summaries["alias-free"]["num_parameters"],
        "filter": ", ".join(f"{k.removeprefix('filter_')}={v}" for k, v in DEFAULT_FILTER.items()),
        "timesteps": list(budget["timesteps"]),
        "angles_degrees": list(angles),
        "eval_images": len(images),
        "smoke": smoke,
    }
    reason = (f"alias-free {af_mean:.4f} vs standard {std_mean:.4f} normalized equivariance error of ε(x_t, t) "
              f"(difference {margin:+.4f} ± {se:.4f} paired s.e. over {len(images)} held-out images; PASS needs the "
              f"difference below −2 s.e.: {'met' if passed else 'not met'}); same weights swapped at inference: "
              f"{swap['margin']:+.4f} ± {swap['standard_error']:.4f}")
    if not math.isfinite(margin):
        passed = False
    return Measurement(value=margin, measured=measured, passed=passed, reason=reason,
                       plots=["equivariance_vs_angle.png", "rotation_controlled_samples.png"], model_dir="alias-free",
                       data_info={**ctx.data_info, "num_eval_examples": len(images)})
