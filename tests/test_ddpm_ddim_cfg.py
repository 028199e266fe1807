"""Row 38 `ddpm-ddim-cfg`: the folder's re-exports, the claim's hypotheses and minimums, and its sampling and FID
helpers.

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
from hfcifar.reproduce import FAIL, INCONCLUSIVE, PASS, Measurement, claim_check_slugs, decide, load_claim_module


def test_the_folder_re_exports_the_family_base_and_registers_its_check():
    for name in ddpm_ddim_cfg.__all__:
        assert getattr(ddpm_ddim_cfg, name) is getattr(diffusion, name)
    assert "ddpm-ddim-cfg" in claim_check_slugs()
    module = load_claim_module("ddpm-ddim-cfg")
    assert module.CLAIM is claim.CLAIM and module.CLAIM.metric == "ddim_speedup"
    assert "2412.14422" in module.CLAIM.citation


def test_the_claim_declares_its_three_hypotheses_and_the_sub_rule_minimums():
    from hfcifar.reproduce import NON_INFERIORITY, SUPERIORITY, THRESHOLD

    kinds = {h.name: (h.kind, h.bound) for h in claim.CLAIM.hypotheses}
    assert kinds == {"ddim_speedup": (THRESHOLD, 5.0), "fid_ratio": (NON_INFERIORITY, pytest.approx(1.10)),
                     "cfg_agreement_gain": (SUPERIORITY, 0.0)}
    assert claim.CLAIM.combine == "all" and claim.CLAIM.min_seeds == 3
    assert claim.CLAIM.minimums["ddpm_steps"] == 1000 and claim.CLAIM.minimums["fid_samples"] > claim.FEATURE_DIM
    cpu = claim.CLAIM.scales["cpu"].work
    assert cpu["ddpm_steps"] == 1000 and claim.FEATURE_DIM < cpu["fid_samples"] <= cpu["cfg_samples"]


def measurements(speedup=(20.0, 1.0), ratio=(1.0, 0.02), gain=(0.08, 0.015)):
    return {"ddim_speedup": Measurement(*speedup, 150, 3), "fid_ratio": Measurement(*ratio, 150, 3),
            "cfg_agreement_gain": Measurement(*gain, 900, 3)}


@pytest.mark.parametrize(
    "changes, verdict",
    [
        ({}, PASS),
        ({"ratio": (1.05, 0.02)}, PASS),  # worse than parity, but established within the 10% margin
        ({"ratio": (1.08, 0.03)}, INCONCLUSIVE),  # the interval reaches past 1.10
        ({"ratio": (1.28, 0.04)}, FAIL),  # v1's first run: established worse than the margin
        ({"speedup": (4.0, 0.3)}, FAIL),
        ({"gain": (0.01, 0.015)}, INCONCLUSIVE),
    ],
)
def test_each_sub_claim_is_decided_from_its_own_interval(changes, verdict):
    sizes = dict(claim.CLAIM.minimums)
    assert decide(claim.CLAIM, measurements(**changes), sizes=sizes, seeds=3).verdict == verdict


@pytest.mark.parametrize("short", [{"ddpm_steps": 999}, {"fid_samples": 128, "fid_samples_over_feature_dim": 0}])
def test_a_cut_ddpm_or_a_rank_deficient_fid_is_inconclusive_even_when_the_numbers_pass(short):
    sizes = {**claim.CLAIM.minimums, **short}
    decision = decide(claim.CLAIM, measurements(), sizes=sizes, seeds=3)
    assert decision.verdict == INCONCLUSIVE and next(iter(short)) in decision.reason


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
    assert a.dtype == torch.uint8 and a.shape == (6, 3, 32, 32)
    assert len(seconds) == 2 and all(s > 0 for s in seconds)  # one time per image for each batch (4 + 2 images)
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
    assert len(pipe.scheduler.timesteps) == 4  # the sampler ran every step it was asked for


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


def test_the_fid_ratio_is_paired_and_its_bootstrap_error_vanishes_only_for_identical_sets():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(60, 4))
    features = rng.normal(size=(40, 4)) + 1.0
    ratio, se = claim.fid_ratio(features, features, reference, repeats=20)
    assert ratio == pytest.approx(1.0) and se == pytest.approx(0.0, abs=1e-12)  # paired: a resample moves both alike
    worse = features + 0.5  # a shifted copy: farther from the reference, the same sample for sample
    ratio, se = claim.fid_ratio(worse, features, reference, repeats=20)
    assert ratio == pytest.approx(claim.fid(worse, reference) / claim.fid(features, reference)) and ratio > 1
    assert 0 < se < ratio - 1  # the shift is clear of its own bootstrap noise
