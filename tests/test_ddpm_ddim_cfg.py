"""Row 38 `ddpm-ddim-cfg`: the folder's re-exports, and the claim check's rules, planning and sampling helpers.

The end-to-end smoke run of the check is in tests/test_reproduce.py (parametrized over every claim check).
"""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

import hfcifar.diffusion as diffusion
from hfcifar.methods import ddpm_ddim_cfg
from hfcifar.methods.ddpm_ddim_cfg import claim
from hfcifar.reproduce import claim_check_slugs, load_claim_module


def test_the_folder_re_exports_the_family_base_and_registers_its_check():
    for name in ddpm_ddim_cfg.__all__:
        assert getattr(ddpm_ddim_cfg, name) is getattr(diffusion, name)
    assert "ddpm-ddim-cfg" in claim_check_slugs()
    module = load_claim_module("ddpm-ddim-cfg")
    assert module.CLAIM.metric == "cfg_class_agreement_gain" and module.CLAIM.budget_minutes == 15.0
    assert "2412.14422" in module.CLAIM.citation


def cfg(margin, standard_error):
    return {"margin": margin, "standard_error": standard_error}


@pytest.mark.parametrize(
    "speedup, fid_ddim, fid_ddpm, guidance, expected",
    [
        (20.0, 40.0, 40.0, cfg(0.10, 0.02), {"faster": True, "comparable": True, "guidance_helps": True}),
        (4.9, 40.0, 40.0, cfg(0.10, 0.02), {"faster": False, "comparable": True, "guidance_helps": True}),
        (20.0, 43.9, 40.0, cfg(0.10, 0.02), {"faster": True, "comparable": True, "guidance_helps": True}),
        (20.0, 44.1, 40.0, cfg(0.10, 0.02), {"faster": True, "comparable": False, "guidance_helps": True}),
        (20.0, 30.0, 40.0, cfg(0.01, 0.02), {"faster": True, "comparable": True, "guidance_helps": False}),
        (20.0, 30.0, 40.0, cfg(0.0, 0.0), {"faster": True, "comparable": True, "guidance_helps": False}),
        (20.0, 30.0, 40.0, cfg(-0.05, 0.01), {"faster": True, "comparable": True, "guidance_helps": False}),
    ],
)
def test_the_verdict_needs_all_three_rules(speedup, fid_ddim, fid_ddpm, guidance, expected):
    passed, checks = claim.decide(speedup, fid_ddim, fid_ddpm, guidance)
    assert checks == expected and passed == all(expected.values())


def test_ddpm_keeps_its_1000_steps_while_enough_images_fit_and_cuts_steps_otherwise():
    # 1 ms per image and step: 1 s per 1000-step image
    assert claim.plan_ddpm(305.0, 1e-3, max_samples=500) == (300, 1000)
    assert claim.plan_ddpm(1000.0, 1e-3, max_samples=200) == (200, 1000)
    assert claim.plan_ddpm(10.0, 1e-3, max_samples=200) == (50, 200)  # 50 images × 200 steps = 10 s
    assert claim.plan_ddpm(0.01, 1e-3, max_samples=200) == (50, 10)  # never below 10 steps
    assert claim.plan_ddpm(1.0, 1e-3, max_samples=20) == (20, 50)  # fewer images than the minimum available
    assert claim.plan_cfg_samples(1e9, 1e-3) == claim.MAX_CFG_SAMPLES
    assert claim.plan_cfg_samples(0.0, 1e-3) == 2 * claim.NUM_CLASSES
    assert claim.plan_cfg_samples(17.0, 1e-3) % claim.NUM_CLASSES == 0


def tiny_pipeline():
    torch.manual_seed(0)
    pipe = diffusion.CifarClassConditionalPipeline(diffusion.create_unet("ddpm-tiny-cfg"), DDPMScheduler())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_samplers_share_the_noise_and_labels_and_scale_one_is_the_conditional_model():
    pipe = tiny_pipeline()
    latents = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(6) % 10
    ddim = DDIMScheduler.from_config(pipe.scheduler.config)
    a, seconds = claim.sample(pipe, ddim, latents, labels, steps=3, batch_size=4)
    b, _ = claim.sample(pipe, ddim, latents, labels, steps=3, batch_size=4)
    assert a.dtype == torch.uint8 and a.shape == (6, 3, 32, 32) and seconds > 0
    assert torch.equal(a, b)  # η = 0: x_T and the labels determine the samples
    direct = pipe(class_labels=labels, latents=latents, num_inference_steps=3, output_type="pt").images
    assert torch.equal(a, direct.mul(255).round().to(torch.uint8))
    guided, _ = claim.sample(pipe, ddim, latents, labels, steps=3, guidance_scale=3.0, batch_size=4)
    assert not torch.equal(guided, a)
    ddpm = DDPMScheduler.from_config(pipe.scheduler.config)
    c, _ = claim.sample(pipe, ddpm, latents, labels, steps=4, seed=5)
    d, _ = claim.sample(pipe, ddpm, latents, labels, steps=4, seed=5)
    e, _ = claim.sample(pipe, ddpm, latents, labels, steps=4, seed=6)
    assert torch.equal(c, d) and not torch.equal(c, e)  # DDPM's ancestral noise comes from the seed
    # past its deadline the sampler stops after the first batch instead of overrunning the budget
    import time

    cut, _ = claim.sample(pipe, ddim, latents, labels, steps=3, batch_size=4, deadline=time.monotonic() - 1)
    assert torch.equal(cut, a[:4])


def test_judge_predictions_agree_for_uint8_and_float_images_and_grids_have_the_right_shape():
    weight = torch.randn(10, 3 * 32 * 32, generator=torch.Generator().manual_seed(0))

    def judge(pixel_values):
        return SimpleNamespace(logits=pixel_values.flatten(1) @ weight.T)

    images = torch.randint(0, 256, (7, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    as_uint8 = claim.judge_predictions(judge, images, batch_size=3)
    assert torch.equal(as_uint8, claim.judge_predictions(judge, images.float() / 255))
    assert as_uint8.shape == (7,)
    grid = claim.image_grid(images, cols=4, pad=2)
    assert grid.shape == (2 * 34 + 2, 4 * 34 + 2, 3) and grid.dtype == np.uint8
    assert (grid[2:34, 2:34] == images[0].permute(1, 2, 0).numpy()).all()


def test_the_fid_ratio_spread_is_zero_for_identical_sample_sets():
    features = np.random.default_rng(0).normal(size=(40, 4))
    mu, sigma = features.mean(0) + 1.0, np.cov(features, rowvar=False)
    reference = SimpleNamespace(mu=mu, sigma=sigma)
    assert claim.fid_ratio_spread(features, features, reference, rounds=10) == pytest.approx(0.0, abs=1e-9)
    other = features + np.random.default_rng(1).normal(size=features.shape)
    assert claim.fid_ratio_spread(other, features, reference, rounds=10) > 0
