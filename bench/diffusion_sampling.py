"""DDIM sampling: hfcifar's pipeline vs a bare loop of UNet calls + scheduler steps, same model, same noise.

    python bench/diffusion_sampling.py                         # ddpm-small (1.1M), batch 64, 50 DDIM steps
    python bench/diffusion_sampling.py --model ddpm-small-cfg --guidance-scale 3
    python bench/diffusion_sampling.py --quick                 # seconds: ddpm-tiny, batch 4, 5 steps

Prints seconds per batch of each (median over `--rounds`, the two alternating with the order swapped every round),
`overhead ratio pipeline/bare = X` (target ≤ 1.05: the pipeline's progress bar, argument checks and scheduler
plumbing cost nothing measurable next to the UNet), the wall time per function evaluation (NFE: one UNet call on
the batch; CFG with w ≠ 1 batches the conditional and unconditional branches into one call of twice the batch), and
`max |pipeline − bare|`, which must be 0: both run the same computation from the same x_T.

# Measured (2-core CPU, quiet, 2 threads): ddpm-small batch 64, DDIM-50: pipeline 14.53 s, bare 14.00 s per batch,
# ratio 1.038, 4.5 ms per image per NFE; ddpm-small-cfg with w = 3: ratio 1.029, 11.8 ms per image per NFE.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from diffusers import DDIMScheduler

from hfcifar.diffusion import CifarClassConditionalPipeline, CifarDDPMPipeline, create_unet


def bare_ddim(unet, scheduler, x_T, steps, class_labels=None, guidance_scale=1.0):
    """The loop as one writes it without a pipeline (diffusers' DDIM, Song et al. 2021 Eq. 12 with η = 0)."""
    scheduler.set_timesteps(steps)
    x = x_T
    with torch.no_grad():
        for t in scheduler.timesteps:
            if class_labels is None:
                eps = unet(x, t).sample
            elif guidance_scale == 1.0:
                eps = unet(x, t, class_labels=class_labels).sample
            else:
                null = torch.full_like(class_labels, unet.config.num_class_embeds - 1)
                cond, uncond = unet(torch.cat([x, x]), t, class_labels=torch.cat([class_labels, null])).sample.chunk(2)
                eps = uncond + guidance_scale * (cond - uncond)
            x = scheduler.step(eps, t, x).prev_sample
    return (x / 2 + 0.5).clamp(0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ddpm-small", help="UNet preset (random init: speed does not depend on weights)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps")
    parser.add_argument("--guidance-scale", type=float, default=1.0, help="class-conditional presets (-cfg) only")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="seconds: ddpm-tiny, batch 4, 5 steps, 2 rounds")
    args = parser.parse_args()
    if args.quick:
        args.model, args.batch_size, args.steps, args.rounds = "ddpm-tiny", 4, 5, 2
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    unet = create_unet(args.model).eval()
    conditional = unet.config.num_class_embeds is not None
    labels = torch.arange(args.batch_size) % 10 if conditional else None
    if conditional:
        pipe = CifarClassConditionalPipeline(unet, DDIMScheduler())
        run_pipe = lambda x: pipe(class_labels=labels, latents=x, guidance_scale=args.guidance_scale,
                                  num_inference_steps=args.steps, output_type="pt").images
    else:
        pipe = CifarDDPMPipeline(unet, DDIMScheduler())
        run_pipe = lambda x: pipe(batch_size=args.batch_size, latents=x, num_inference_steps=args.steps, output_type="pt").images
    pipe.set_progress_bar_config(disable=True)  # a bar per round would interleave with the printed figures
    reference_scheduler = DDIMScheduler()
    run_bare = lambda x: bare_ddim(unet, reference_scheduler, x, args.steps, labels, args.guidance_scale)

    x_T = torch.randn(args.batch_size, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    a, b = run_pipe(x_T), run_bare(x_T)  # warm-up, and the two must agree
    difference = (a - b).abs().max().item()
    times = {"pipeline": [], "bare": []}
    for round_index in range(args.rounds):
        order = [("pipeline", run_pipe), ("bare", run_bare)]
        for name, fn in order if round_index % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            fn(x_T)
            times[name].append(time.perf_counter() - start)
    pipeline_s, bare_s = statistics.median(times["pipeline"]), statistics.median(times["bare"])
    nfe = args.steps
    cfg = conditional and args.guidance_scale != 1.0
    print(f"{args.model} ({sum(p.numel() for p in unet.parameters()) / 1e6:.2f}M) · batch {args.batch_size} · DDIM "
          f"{args.steps} steps{' · CFG w=%g (batched 2× calls)' % args.guidance_scale if cfg else ''} · "
          f"{torch.get_num_threads()} threads · {args.rounds} rounds (medians)")
    print(f"pipeline: {pipeline_s:.3f} s/batch · bare loop: {bare_s:.3f} s/batch")
    print(f"overhead ratio pipeline/bare = {pipeline_s / bare_s:.3f} (target ≤ 1.05)")
    print(f"wall time per NFE = {pipeline_s / nfe * 1000:.1f} ms (batch {args.batch_size}) = "
          f"{pipeline_s / nfe / args.batch_size * 1000:.2f} ms per image per NFE")
    print(f"max |pipeline − bare| = {difference:.2e}")


if __name__ == "__main__":
    main()
