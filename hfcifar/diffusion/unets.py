"""Named CIFAR-10 UNets: diffusers `UNet2DModel` configurations, from the DDPM paper's net to CPU-sized ones.

A preset is only a set of `UNet2DModel` arguments (the model class is diffusers' own, so every diffusers tool —
schedulers, pipelines, `from_pretrained`, LoRA — applies unchanged). A `-cfg` suffix makes the preset
class-conditional for classifier-free guidance: a class embedding table with one extra row, the *null class*
(index `num_classes`), which training substitutes for the true label with probability `label_dropout` and sampling
uses for the unconditional branch (Ho & Salimans, "Classifier-Free Diffusion Guidance", 2022, Alg. 1–2).
"""

from __future__ import annotations

from diffusers import UNet2DModel

from ..registry import Registry

NUM_CLASSES = 10

_ARCHITECTURES: dict[str, dict] = {
    # Ho, Jain & Abbeel (2020)'s CIFAR-10 net, the architecture of `google/ddpm-cifar10-32` (35.7M parameters):
    # four resolutions 32→4, two residual blocks each, self-attention at 16×16 only.
    "ddpm-cifar10": dict(
        block_out_channels=(128, 256, 256, 256),
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        layers_per_block=2,
        downsample_padding=0,
        flip_sin_to_cos=False,
        freq_shift=1,
        norm_eps=1e-6,
        attention_head_dim=None,
        dropout=0.1,
    ),
    # CPU-sized (1.1M parameters): three resolutions 32/16/8, one residual block each, attention at 16×16.
    "ddpm-small": dict(
        block_out_channels=(32, 64, 64),
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        layers_per_block=1,
        norm_num_groups=8,
        attention_head_dim=None,
    ),
    # Tests and smoke runs (41k parameters): two resolutions, no attention.
    "ddpm-tiny": dict(
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        layers_per_block=1,
        norm_num_groups=4,
        add_attention=False,
    ),
}
CONDITIONAL_SUFFIX = "-cfg"

#: Named UNets → `UNet2DModel` arguments: each architecture above, and its class-conditional `-cfg` variant (one more
#: class embedding row: the null class of classifier-free guidance).
UNET_PRESETS: Registry[dict] = Registry("diffusion UNet")
for _name, _arguments in _ARCHITECTURES.items():
    UNET_PRESETS.register(_name, dict(sample_size=32, in_channels=3, out_channels=3, **_arguments))
    UNET_PRESETS.register(_name + CONDITIONAL_SUFFIX, dict(sample_size=32, in_channels=3, out_channels=3,
                                                            num_class_embeds=NUM_CLASSES + 1, **_arguments))


def list_unets() -> list[str]:
    """Every named UNet: the unconditional presets and their class-conditional `-cfg` variants."""
    return UNET_PRESETS.names()


def is_unet_preset(name: str) -> bool:
    return isinstance(name, str) and name in UNET_PRESETS


def unet_config(name: str, **overrides) -> dict:
    """The `UNet2DModel` arguments of a named preset (with `overrides` applied)."""
    return {**UNET_PRESETS.get(name), **overrides}


def create_unet(name: str = "ddpm-small", **overrides) -> UNet2DModel:
    """A randomly initialized diffusers `UNet2DModel` of a named preset.

    Examples:

    ```python
    >>> from hfcifar.diffusion import create_unet
    >>> unet = create_unet("ddpm-small-cfg")  # class-conditional, null class 10
    >>> unet.config.num_class_embeds
    11
    ```
    """
    return UNet2DModel(**unet_config(name, **overrides))


def null_class(unet) -> int | None:
    """The null-class index of a class-conditional UNet (the last embedding row), or None if unconditional."""
    rows = getattr(unet.config, "num_class_embeds", None)
    return None if rows is None else int(rows) - 1
