"""Alias-free resampling for diffusion UNets (Anjum 2024): parameter-free layers, the AliasFreeUNet2DModel round trip,
the alias-free rotation and equivariance error, and rotation-controlled sampling."""

import inspect
import json

import pytest
import torch
from diffusers import DDIMScheduler, UNet2DModel
from diffusers.models.downsampling import Downsample2D
from diffusers.models.upsampling import Upsample2D

from hfcifar.diffusion import CifarDDPMPipeline, create_unet, unet_config
from hfcifar.methods.alias_free_diffusion import (
    AliasFreeDownsample2D,
    AliasFreeUNet2DModel,
    AliasFreeUpsample2D,
    RotationControl,
    count_resamplers,
    disc_lowpass,
    kaiser_lowpass_filter,
    rotate,
    rotational_equivariance_error,
    swap_resampling,
)

TINY = unet_config("ddpm-tiny")


def band_limited_pattern(n=4, size=32, low=0.1, high=0.4, seed=0):
    """Random images whose spectrum fills the ring low < |f| < high (cycles per pixel)."""
    generator = torch.Generator().manual_seed(seed)
    spectrum = torch.randn(n, 1, size, size, dtype=torch.complex64, generator=generator)
    fy, fx = torch.fft.fftfreq(size)[:, None], torch.fft.fftfreq(size)[None, :]
    ring = (fy**2 + fx**2 > low**2) & (fy**2 + fx**2 < high**2)
    return torch.fft.ifft2(spectrum * ring).real * 10


# -- filters and layers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("filter_type", ["jinc", "sinc"])
@pytest.mark.parametrize("taps", [3, 7])
def test_lowpass_filter_is_a_symmetric_unit_gain_low_pass(filter_type, taps):
    kernel = kaiser_lowpass_filter(taps, 0.25, kaiser_beta=None, half_width=0.1, filter_type=filter_type).double()
    assert kernel.shape == (taps, taps)
    assert kernel.sum().item() == pytest.approx(1.0)
    assert torch.allclose(kernel, kernel.flip(0)) and torch.allclose(kernel, kernel.T)
    # |H| at the highest frequency (0.5 cycles per pixel) is well below the DC gain
    response = torch.fft.fft2(torch.nn.functional.pad(kernel, (0, 64 - taps, 0, 64 - taps))).abs()
    assert response[32, 32] < 0.35 and response[0, 32] < 0.35


def test_lowpass_filter_rejects_bad_settings():
    with pytest.raises(ValueError, match="odd"):
        kaiser_lowpass_filter(4)
    with pytest.raises(ValueError, match="either"):
        kaiser_lowpass_filter(5, kaiser_beta=2.0, half_width=0.1)
    with pytest.raises(ValueError, match="filter_type"):
        kaiser_lowpass_filter(5, filter_type="box")


@pytest.mark.parametrize("size", [8, 7])
@pytest.mark.parametrize("kwargs", [dict(use_conv=True, padding=1), dict(use_conv=True, padding=0),
                                    dict(use_conv=False, padding=1, name="op")])
def test_downsample_has_the_standard_parameters_and_output_shape(kwargs, size):
    torch.manual_seed(0)
    standard = Downsample2D(4, out_channels=4 if not kwargs["use_conv"] else 6, **kwargs)
    alias_free = AliasFreeDownsample2D(4, out_channels=standard.out_channels, **kwargs)
    assert alias_free.state_dict().keys() == standard.state_dict().keys()
    alias_free.load_state_dict(standard.state_dict(), strict=True)
    x = torch.randn(2, 4, size, size)
    assert alias_free(x).shape == standard(x).shape


def test_downsample_with_a_one_tap_filter_is_the_standard_layer():
    # conv(stride 2) = decimate(conv): with the identity filter nothing else changes
    torch.manual_seed(0)
    standard = Downsample2D(3, use_conv=True, out_channels=5, padding=1)
    alias_free = AliasFreeDownsample2D(3, use_conv=True, out_channels=5, padding=1, filter_taps=1)
    alias_free.load_state_dict(standard.state_dict())
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(alias_free(x), standard(x))


@pytest.mark.parametrize("use_conv", [True, False])
def test_upsample_has_the_standard_parameters_and_output_shape(use_conv):
    torch.manual_seed(0)
    standard = Upsample2D(4, use_conv=use_conv)
    alias_free = AliasFreeUpsample2D(4, use_conv=use_conv)
    assert alias_free.state_dict().keys() == standard.state_dict().keys()
    alias_free.load_state_dict(standard.state_dict(), strict=True)
    x = torch.randn(2, 4, 5, 6)
    assert alias_free(x).shape == standard(x).shape == (2, 4, 10, 12)
    for size in [(9, 11), (11, 13)]:
        assert alias_free(x, output_size=size).shape == standard(x, output_size=size).shape


def test_upsample_keeps_the_mean_and_a_long_filter_keeps_a_constant_image_constant():
    # gain 4 restores the mean that the interleaved zeros dilute (over whole 2×2 periods, away from the border)
    ones = torch.ones(1, 1, 12, 12)
    paper = AliasFreeUpsample2D(1)(ones)[..., 4:-4, 4:-4]
    assert paper.mean().item() == pytest.approx(1.0, abs=1e-5)
    assert paper.max() - paper.min() > 0.5  # the 3-tap filter's ripple: DC's images at f = ½ are not removed
    long = AliasFreeUpsample2D(1, filter_taps=11, filter_type="sinc", filter_kaiser_beta=None, filter_half_width=0.1)
    torch.testing.assert_close(long(ones)[..., 6:-6, 6:-6], torch.ones(1, 1, 12, 12), atol=1e-2, rtol=0)


def test_transposed_conv_upsamplers_are_refused():
    with pytest.raises(ValueError, match="transpose"):
        AliasFreeUpsample2D(4, use_conv_transpose=True)
    with pytest.raises(ValueError, match="transpose"):
        swap_resampling(torch.nn.Sequential(Upsample2D(4, use_conv_transpose=True)))


def test_alias_free_resampling_is_closer_to_rotation_equivariant():
    """down → up of a band-limited pattern: filtering before decimation and after zero insertion removes the
    aliases that tie the standard layers' output to the pixel grid."""
    x = band_limited_pattern()
    standard = torch.nn.Sequential(Downsample2D(1, use_conv=False, padding=1, name="op"), Upsample2D(1))
    alias_free = swap_resampling(torch.nn.Sequential(Downsample2D(1, use_conv=False, padding=1, name="op"),
                                                     Upsample2D(1)))
    assert count_resamplers(alias_free) == {"standard": 0, "alias_free": 2}
    errors = {name: rotational_equivariance_error(net, x, angles=(20.0, 45.0)).mean_nmse
              for name, net in (("standard", standard), ("alias_free", alias_free))}
    assert errors["alias_free"] < 0.5 * errors["standard"]


# -- the UNet --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("resample_type", ["conv", "resnet"])
def test_swap_is_parameter_free_and_a_standard_state_dict_loads_strictly(resample_type):
    torch.manual_seed(0)
    config = {**TINY, "downsample_type": resample_type, "upsample_type": resample_type}
    standard = UNet2DModel(**config)
    alias_free = AliasFreeUNet2DModel(**config)
    assert count_resamplers(alias_free)["standard"] == 0 and count_resamplers(alias_free)["alias_free"] > 0
    assert list(alias_free.state_dict()) == list(standard.state_dict())
    assert sum(p.numel() for p in alias_free.parameters()) == sum(p.numel() for p in standard.parameters())
    alias_free.load_state_dict(standard.state_dict(), strict=True)
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([10, 700])
    with torch.no_grad():
        out, reference = alias_free(x, t).sample, standard(x, t).sample
    assert out.shape == reference.shape and not torch.allclose(out, reference)
    swapped = swap_resampling(standard)  # in place, same parameters
    with torch.no_grad():
        torch.testing.assert_close(swapped(x, t).sample, out)


def test_alias_free_unet_accepts_every_unet2dmodel_argument():
    ours = inspect.signature(AliasFreeUNet2DModel.__init__).parameters
    theirs = inspect.signature(UNet2DModel.__init__).parameters
    for name, parameter in theirs.items():
        assert name in ours and ours[name].default == parameter.default, name


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = AliasFreeUNet2DModel(**TINY, filter_taps=5, filter_type="sinc", filter_half_width=0.08).eval()
    assert model.config.filter_kaiser_beta is None  # the transition band replaces the default β
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["_class_name"] == "AliasFreeUNet2DModel" and config["resampling"] == "alias_free"
    assert (config["filter_taps"], config["filter_type"], config["filter_half_width"]) == (5, "sinc", 0.08)
    loaded = AliasFreeUNet2DModel.from_pretrained(tmp_path).eval()
    assert loaded.filter_settings == model.filter_settings and loaded.config.resampling == "alias_free"
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([3, 400])
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, t).sample, model(x, t).sample, rtol=0, atol=0)
    filters = [m.lowpass_filter for m in loaded.modules() if isinstance(m, AliasFreeDownsample2D)]
    torch.testing.assert_close(filters[0], kaiser_lowpass_filter(5, 0.25, None, 0.08, "sinc"))


def test_pipeline_folder_round_trip(tmp_path):
    torch.manual_seed(0)
    unet = AliasFreeUNet2DModel.from_unet(create_unet("ddpm-tiny"))
    pipe = CifarDDPMPipeline(unet=unet, scheduler=DDIMScheduler(num_train_timesteps=1000))
    pipe.set_progress_bar_config(disable=True)
    pipe.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "model_index.json").read_text())["unet"][1] == "AliasFreeUNet2DModel"
    loaded = CifarDDPMPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert isinstance(loaded.unet, AliasFreeUNet2DModel) and count_resamplers(loaded.unet)["standard"] == 0
    kwargs = dict(batch_size=2, num_inference_steps=2, output_type="pt")
    torch.testing.assert_close(loaded(generator=torch.manual_seed(0), **kwargs).images,
                               pipe(generator=torch.manual_seed(0), **kwargs).images)


def test_from_unet_copies_the_weights_and_resampling_standard_is_the_plain_unet():
    torch.manual_seed(0)
    standard = create_unet("ddpm-tiny").eval()
    alias_free = AliasFreeUNet2DModel.from_unet(standard)
    plain = AliasFreeUNet2DModel.from_unet(alias_free, resampling="standard").eval()
    assert count_resamplers(plain) == count_resamplers(standard)
    x, t = torch.randn(1, 3, 32, 32), torch.tensor([100])
    with torch.no_grad():
        torch.testing.assert_close(plain(x, t).sample, standard(x, t).sample)


# -- rotation and equivariance ----------------------------------------------------------------------------------


def test_rotate_by_90_degrees_matches_rot90_on_a_band_limited_image():
    x = disc_lowpass(torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    torch.testing.assert_close(rotate(x, 90.0), torch.rot90(x, 1, dims=(-2, -1)), atol=1e-4, rtol=0)
    torch.testing.assert_close(rotate(x, -90.0), torch.rot90(x, -1, dims=(-2, -1)), atol=1e-4, rtol=0)
    torch.testing.assert_close(rotate(x, 0.0), x, atol=1e-5, rtol=0)  # the band-limit projection is idempotent


def test_rotate_turns_counter_clockwise_and_keeps_an_isotropic_blob():
    ys, xs = torch.meshgrid(torch.arange(32.0) - 15.5, torch.arange(32.0) - 15.5, indexing="ij")
    centred = torch.exp(-(xs**2 + ys**2) / 8)
    torch.testing.assert_close(rotate(centred, 33.0), centred, atol=1e-3, rtol=0)
    right = torch.exp(-((xs - 8) ** 2 + ys**2) / 8)  # a blob right of the centre…
    turned = rotate(right, 30.0)
    row, col = divmod(int(turned.argmax()), 32)
    # …moves up (y points down) by 8 sin 30° = 4 pixels and left by 8 (1 − cos 30°) ≈ 1
    assert (row, col) in {(11, 22), (11, 23), (12, 22), (12, 23)}


def test_equivariance_error_is_zero_for_equivariant_maps_and_at_zero_degrees():
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    identity = rotational_equivariance_error(lambda z: z, x, angles=(0.0, 17.0, 45.0, 90.0))
    assert max(identity.nmse_per_angle) < 1e-10
    torch.manual_seed(0)
    unet = create_unet("ddpm-tiny").eval()
    result = rotational_equivariance_error(lambda z: unet(z, 50).sample, x, angles=(0.0, 30.0))
    assert result.nmse_per_angle[0] < 1e-10 < result.nmse_per_angle[1]
    assert result.nmse.shape == result.mse.shape == (2, 3) and result.psnr > 0


# -- rotation-controlled sampling --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_pipe():
    torch.manual_seed(0)
    pipe = CifarDDPMPipeline(unet=AliasFreeUNet2DModel.from_unet(create_unet("ddpm-tiny")).eval(),
                             scheduler=DDIMScheduler(num_train_timesteps=1000))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_rotation_control_with_angle_zero_is_the_identity_on_samples(tiny_pipe):
    latents = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    kwargs = dict(batch_size=2, num_inference_steps=3, output_type="pt")
    plain = tiny_pipe(latents=latents.clone(), **kwargs).images
    controlled = tiny_pipe(latents=latents.clone(), callback_on_step_end=RotationControl(0.0), **kwargs).images
    turned = tiny_pipe(latents=latents.clone(), callback_on_step_end=RotationControl(45.0), **kwargs).images
    torch.testing.assert_close(controlled, plain, rtol=0, atol=0)
    assert not torch.allclose(turned, plain, atol=1e-3)


def test_rotation_control_spreads_the_angle_over_the_rotating_steps(tiny_pipe):
    tiny_pipe.scheduler.set_timesteps(4)
    x = disc_lowpass(torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2)))
    every_step = RotationControl(60.0)
    assert every_step.rotating_steps(4) == 4
    torch.testing.assert_close(every_step(tiny_pipe, 0, 999, {"latents": x})["latents"], rotate(x, 15.0))
    half = RotationControl(60.0, cutoff_step_ratio=0.5)
    assert half.rotating_steps(4) == 2
    torch.testing.assert_close(half(tiny_pipe, 1, 500, {"latents": x})["latents"], rotate(x, 30.0))
    assert half(tiny_pipe, 2, 250, {"latents": x})["latents"] is x
    first = RotationControl(90.0, cutoff_step_index=1)
    torch.testing.assert_close(first(tiny_pipe, 0, 999, {"latents": x})["latents"],
                               torch.rot90(x, 1, dims=(-2, -1)), atol=1e-4, rtol=0)
