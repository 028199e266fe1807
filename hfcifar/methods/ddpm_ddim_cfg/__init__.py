"""Row 38, `ddpm-ddim-cfg`: DDPM and DDIM sampling, classifier-free guidance, latent diffusion and noise schedules.

Shah, Gromis & Pinto, "Enhancing Diffusion Models for High-Quality Image Generation" (2024,
https://arxiv.org/abs/2412.14422): a report that implements DDPM (Ho et al. 2020), DDIM (Song et al. 2021),
classifier-free guidance (Ho & Salimans 2022), latent diffusion with a VAE (Rombach et al. 2022) and alternative noise
schedules, and finds that "DDIM + CFG achieves faster inference and superior image quality".

Everything the report builds is the diffusion family's base, so it lives once in `hfcifar.diffusion` and is
re-exported here:

- `CifarDDPMPipeline` / `CifarClassConditionalPipeline` / `CifarLatentDiffusionPipeline`: the reverse process with any
  diffusers scheduler — `DDPMScheduler` is DDPM's ancestral sampler (Alg. 2), `DDIMScheduler` with η = 0 the DDIM
  update (Song et al., Eq. 12); the class-conditional pipeline's `model_prediction` is classifier-free guidance
  (Ho & Salimans, Eq. 6); the latent pipeline decodes an `AutoencoderKL`'s latents.
- `create_unet("ddpm-small-cfg")`: a class-conditional `UNet2DModel` whose last class row is the null class.
- `DiffusionTrainer` / `train_diffusion`: the DDPM objective (Alg. 1) with label dropout (CFG training), EMA and the
  noise schedules of `make_noise_scheduler` ("linear", "cosine", "scaled-linear", "sigmoid").

This folder holds what is specific to the paper: `claim.py`, the claim check (`hfcifar reproduce ddpm-ddim-cfg`).
"""

from hfcifar.methods.base import Method, lazy_exports

METHOD = Method(
    number=38,
    slug="ddpm-ddim-cfg",
    title="Enhancing Diffusion Models for High-Quality Image Generation",
    ship="DDPM/DDIM pipelines, class-conditional UNet with classifier-free guidance, latent variant with a VAE, noise schedules",
    claim="DDIM is faster at comparable quality proxy; CFG raises class agreement of samples",
    family="generative",
    citation="""@article{shah2024enhancing,
  title   = {Enhancing Diffusion Models for High-Quality Image Generation},
  author  = {Shah, Jaineet and Gromis, Michael and Pinto, Rickston},
  journal = {arXiv preprint arXiv:2412.14422},
  year    = {2024},
  url     = {https://arxiv.org/abs/2412.14422}
}""",
)

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "...diffusion": [
            "NOISE_SCHEDULES",
            "CifarClassConditionalPipeline",
            "CifarDDPMPipeline",
            "CifarLatentDiffusionPipeline",
            "ClassConditionalPipelineOutput",
            "DiffusionTrainer",
            "DiffusionTrainingArguments",
            "create_unet",
            "make_noise_scheduler",
            "null_class",
            "train_diffusion",
        ],
    },
)
