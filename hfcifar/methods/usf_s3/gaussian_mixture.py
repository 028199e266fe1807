"""A diffusion "model" with an exact score: a Gaussian mixture fitted to CIFAR-10 pixels.

Under the VP forward process x_t = α_t x_0 + σ_t ε (α_t² = ᾱ_t, σ_t² = 1 − ᾱ_t), a data distribution
p_0 = Σ_k w_k N(μ_k, Σ_k) has the closed-form marginals p_t = Σ_k w_k N(α_t μ_k, α_t² Σ_k + σ_t² I), so the ideal
noise prediction ε*(x_t, t) = −σ_t ∇ log p_t(x_t) — what a perfectly trained ε-network outputs — is exact and cheap.
Its probability-flow ODE is then a known ODE, and a solver's error to a fine reference solution measures the solver
alone (the quantity USF/S³ optimizes, Liu et al. 2024, Section 4), free of network error.

Each component is a probabilistic PCA (Tipping & Bishop 1999): Σ_k = U_k diag(s_k) U_kᵀ + c_k I with U_k the top
`rank` principal directions of the component's pixels, s_k their variance above the floor and c_k the mean variance
of the discarded directions (the PPCA maximum-likelihood floor — a shrinkage that keeps Σ_k full rank). Every
α_t² Σ_k + σ_t² I then shares U_k's eigenvectors, so densities and scores need two (K × D × r) products per call and
no matrix inverse: the eigendecomposition is done once, at fitting time.
"""

from __future__ import annotations

import math

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.unets.unet_2d import UNet2DOutput
from diffusers.schedulers import DDPMScheduler


class GaussianMixtureDenoiser(ModelMixin, ConfigMixin):
    """Exact ε-prediction of a Gaussian mixture data distribution under VP diffusion, callable like a diffusers UNet.

    `model(x, t).sample` = ε*(x, t) = −σ_t ∇_x log p_t(x) for x (N×C×H×W, the model's [-1, 1] space) and integer (or
    fractional: ᾱ is interpolated in log space) diffusers timesteps `t`. Build it with [`fit`]; `save_pretrained` /
    `from_pretrained` round-trip it like any diffusers model.

    Args:
        num_components (`int`, defaults to 10): K, the number of mixture components.
        rank (`int`, defaults to 64): r, principal directions kept per component.
        sample_size (`int`, defaults to 32): image height and width.
        in_channels (`int`, defaults to 3): image channels (`out_channels` is the same).
        num_train_timesteps, beta_start, beta_end, beta_schedule: the VP noise schedule (diffusers' `DDPMScheduler`
            computes ᾱ_t from them), which must match the sampler's.
    """

    @register_to_config
    def __init__(
        self,
        num_components: int = 10,
        rank: int = 64,
        sample_size: int = 32,
        in_channels: int = 3,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.0001,
        beta_end: float = 0.02,
        beta_schedule: str = "linear",
    ):
        super().__init__()
        dim = in_channels * sample_size * sample_size
        if not 1 <= rank < dim:
            raise ValueError(f"rank must be in [1, {dim}); got {rank}.")
        self.register_buffer("log_weights", torch.full((num_components,), -math.log(num_components)))
        self.register_buffer("means", torch.zeros(num_components, dim))
        self.register_buffer("directions", torch.zeros(num_components, dim, rank))  # U_k, orthonormal columns
        self.register_buffer("excess_variances", torch.zeros(num_components, rank))  # s_k (≥ 0)
        self.register_buffer("floor_variances", torch.ones(num_components))  # c_k (> 0)
        ddpm = DDPMScheduler(num_train_timesteps=num_train_timesteps, beta_start=beta_start, beta_end=beta_end,
                             beta_schedule=beta_schedule)
        self.register_buffer("alphas_cumprod", ddpm.alphas_cumprod.to(torch.float64), persistent=False)

    @property
    def out_channels(self) -> int:
        return self.config.in_channels

    # ------------------------------------------------------------------ fitting

    @classmethod
    def fit(
        cls,
        images: torch.Tensor,
        labels: torch.Tensor | None = None,
        num_components: int = 10,
        rank: int = 64,
        method: str = "class",
        kmeans_iterations: int = 20,
        seed: int = 0,
        dtype: torch.dtype = torch.float64,
        **schedule,
    ) -> "GaussianMixtureDenoiser":
        """Fit the mixture to images (float in [-1, 1] or uint8 in [0, 255], N×C×H×W).

        `method="class"` makes one component per label (`labels` required; `num_components` is then the number of
        distinct labels); `method="kmeans"` clusters the pixels into `num_components` groups (k-means++ seeding,
        `kmeans_iterations` Lloyd steps). Each component: weight = its share of the images, mean, and the PPCA
        covariance of its images (rank ≤ its size − 1). `schedule` takes the noise-schedule config arguments.
        """
        if images.dtype == torch.uint8:
            images = images.to(torch.float64) / 127.5 - 1
        if images.ndim != 4:
            raise ValueError(f"images must be N×C×H×W; got shape {tuple(images.shape)}.")
        n, c, height, width = images.shape
        if height != width:
            raise ValueError(f"images must be square; got {height}×{width}.")
        flat = images.reshape(n, -1).to(torch.float64)
        if method == "class":
            if labels is None:
                raise ValueError("method='class' needs the images' labels.")
            classes = torch.unique(labels)
            assignment = torch.searchsorted(classes, labels)
            num_components = len(classes)
        elif method == "kmeans":
            assignment = _kmeans(flat, num_components, kmeans_iterations, seed)
        else:
            raise ValueError(f"Unknown method {method!r}; expected 'class' or 'kmeans'.")
        sizes = torch.bincount(assignment, minlength=num_components)
        if int(sizes.min()) < 2:
            raise ValueError(f"Every component needs at least 2 images; sizes {sizes.tolist()}.")
        rank = min(rank, int(sizes.min()) - 1)
        model = cls(num_components=num_components, rank=rank, sample_size=height, in_channels=c, **schedule)
        dim = flat.shape[1]
        for k in range(num_components):
            members = flat[assignment == k]
            mean = members.mean(0)
            centered = members - mean
            # Thin SVD of the centered images: eigenvectors/eigenvalues of the sample covariance, no D×D matrix.
            _, singular, vh = torch.linalg.svd(centered, full_matrices=False)
            eigenvalues = singular**2 / max(len(members) - 1, 1)
            total = float(eigenvalues.sum())
            top = eigenvalues[:rank]
            floor = max((total - float(top.sum())) / (dim - rank), 1e-8)  # PPCA ML noise floor
            model.means[k] = mean.to(model.means.dtype)
            model.directions[k] = vh[:rank].T.to(model.directions.dtype)
            model.excess_variances[k] = (top - floor).clamp_min(0).to(model.excess_variances.dtype)
            model.floor_variances[k] = floor
        model.log_weights.copy_(torch.log(sizes.to(torch.float64) / n))
        return torch.nn.Module.to(model, dtype)  # (ModelMixin.to warns about fp32-kept modules; there are none)

    # ------------------------------------------------------------------ the exact marginal and its score

    def alpha_cumprod_at(self, timestep: torch.Tensor | float | int, batch: int) -> torch.Tensor:
        """ᾱ at (possibly fractional) diffusers timesteps, one per sample (float64)."""
        t = torch.as_tensor(timestep, dtype=torch.float64, device=self.alphas_cumprod.device).reshape(-1)
        if t.numel() == 1:
            t = t.expand(batch)
        if t.numel() != batch:
            raise ValueError(f"Got {t.numel()} timesteps for a batch of {batch}.")
        last = len(self.alphas_cumprod) - 1
        if bool((t < 0).any()) or bool((t > last).any()):
            raise ValueError(f"Timesteps must lie in [0, {last}]; got {t.tolist()}.")
        low = t.floor().long().clamp(max=last)
        high = (low + 1).clamp(max=last)
        frac = t - low
        log_ac = torch.log(self.alphas_cumprod)
        return torch.exp((1 - frac) * log_ac[low] + frac * log_ac[high])

    def _layouts(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """[U_1 … U_K] as one (D, K·r) matrix, its transpose (K·r, D) and U_kᵀ μ_k — contiguous, cached until the
        buffers change (re-laying them out on every call would cost more than the products themselves)."""
        key = (self.directions.data_ptr(), self.directions._version, self.directions.dtype, self.means._version)
        if getattr(self, "_layout_key", None) != key:
            num_components, dim, rank = self.directions.shape
            down = self.directions.permute(1, 0, 2).reshape(dim, num_components * rank).contiguous()
            self._layout_cache = (down, down.T.contiguous(), torch.einsum("kd,kdr->kr", self.means, self.directions))
            self._layout_key = key
        return self._layout_cache

    def _terms(self, x: torch.Tensor, alpha_cumprod: torch.Tensor):
        """The pieces of every component's density at ᾱ, without forming any (n, K, D) tensor.

        With v_k = x − α μ_k, f_k = α² c_k + σ² and d_kj = α²(s_kj + c_k) + σ², the precision of component k is
        Σ_k,t^{-1} = I/f_k + U_k diag(1/d_k − 1/f_k) U_kᵀ, so ‖v_k‖², U_kᵀ v_k and Σ_k,t^{-1} v_k all follow from
        x·μ_k and U_kᵀ x (two matrix products). Returns (log N_k(x) per (n, k), 1/f_k, the (n, k, r) coefficients
        (1/d − 1/f)·U_kᵀ v_k, α).
        """
        dtype = self.means.dtype
        flat = x.reshape(x.shape[0], -1).to(dtype)
        num_components, dim, rank = self.directions.shape
        ac = alpha_cumprod.to(dtype).reshape(-1, 1)  # (n, 1)
        alpha, sigma2 = ac.sqrt(), 1 - ac
        floor = ac * self.floor_variances[None] + sigma2  # (n, k)
        spread = ac[..., None] * self.excess_variances[None] + floor[..., None]  # (n, k, r)
        # U_kᵀ v_k = U_kᵀ x − α U_kᵀ μ_k
        down, _, mean_projection = self._layouts()
        projection = (flat @ down).reshape(-1, num_components, rank) - alpha[..., None] * mean_projection[None]
        # ‖v_k‖² = ‖x‖² − 2α x·μ_k + α²‖μ_k‖²
        squared = (flat * flat).sum(-1, keepdim=True) - 2 * alpha * (flat @ self.means.T) \
            + ac * (self.means * self.means).sum(-1)[None]
        shrink = projection * (1 / spread - 1 / floor[..., None])
        mahalanobis = squared / floor + (projection * shrink).sum(-1)
        logdet = torch.log(spread).sum(-1) + (dim - rank) * torch.log(floor)
        log_density = -0.5 * (mahalanobis + logdet + dim * math.log(2 * math.pi))
        return log_density, 1 / floor, shrink, alpha

    def log_prob(self, x: torch.Tensor, alpha_cumprod: torch.Tensor | float) -> torch.Tensor:
        """log p_t(x) for the marginal at ᾱ = `alpha_cumprod` (scalar or one per sample)."""
        ac = torch.as_tensor(alpha_cumprod, dtype=torch.float64, device=x.device).reshape(-1).expand(x.shape[0])
        log_density = self._terms(x, ac)[0]
        return torch.logsumexp(self.log_weights + log_density, dim=-1)

    def score(self, x: torch.Tensor, alpha_cumprod: torch.Tensor | float) -> torch.Tensor:
        """∇_x log p_t(x) = −Σ_k γ_k(x) Σ_k,t^{-1}(x − α_t μ_k), γ_k the posterior component probabilities."""
        ac = torch.as_tensor(alpha_cumprod, dtype=torch.float64, device=x.device).reshape(-1).expand(x.shape[0])
        log_density, inverse_floor, shrink, alpha = self._terms(x, ac)
        responsibilities = torch.softmax(self.log_weights + log_density, dim=-1)  # (n, k)
        weighted = responsibilities * inverse_floor  # γ_k / f_k
        flat = x.reshape(x.shape[0], -1).to(self.means.dtype)
        num_components, dim, rank = self.directions.shape
        precision_residual = weighted.sum(-1, keepdim=True) * flat - alpha * (weighted @ self.means) + (
            (responsibilities[..., None] * shrink).reshape(-1, num_components * rank) @ self._layouts()[1])
        return -precision_residual.reshape(x.shape)

    def epsilon(self, x: torch.Tensor, alpha_cumprod: torch.Tensor | float) -> torch.Tensor:
        """ε*(x, t) = −σ_t ∇ log p_t(x), in x's dtype."""
        ac = torch.as_tensor(alpha_cumprod, dtype=torch.float64, device=x.device).reshape(-1).expand(x.shape[0])
        sigma = (1 - ac).sqrt().to(self.means.dtype).reshape(-1, *([1] * (x.ndim - 1)))
        return (-sigma * self.score(x, ac)).to(x.dtype)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor | float | int, return_dict: bool = True,
                **unused) -> UNet2DOutput | tuple:
        """ε*(sample, timestep): the drop-in for `UNet2DModel(sample, timestep).sample` (extra keyword arguments, e.g.
        `class_labels`, are ignored: the mixture is unconditional)."""
        expected = (self.config.in_channels, self.config.sample_size, self.config.sample_size)
        if sample.ndim != 4 or tuple(sample.shape[1:]) != expected:
            raise ValueError(f"sample must be N×{expected[0]}×{expected[1]}×{expected[2]}; got {tuple(sample.shape)}.")
        epsilon = self.epsilon(sample, self.alpha_cumprod_at(timestep, sample.shape[0]))
        return UNet2DOutput(sample=epsilon) if return_dict else (epsilon,)


def _kmeans(points: torch.Tensor, k: int, iterations: int, seed: int) -> torch.Tensor:
    """Lloyd's k-means with k-means++ seeding (deterministic for a seed); returns each point's cluster index."""
    generator = torch.Generator().manual_seed(seed)
    n = points.shape[0]
    if k > n:
        raise ValueError(f"k-means with {k} clusters needs at least {k} points; got {n}.")
    centers = [points[torch.randint(n, (1,), generator=generator)].squeeze(0)]
    distance = ((points - centers[0]) ** 2).sum(1)
    for _ in range(1, k):
        index = torch.multinomial(distance / distance.sum(), 1, generator=generator)
        centers.append(points[index].squeeze(0))
        distance = torch.minimum(distance, ((points - centers[-1]) ** 2).sum(1))
    centers = torch.stack(centers)
    for _ in range(iterations):
        assignment = torch.cdist(points, centers).argmin(1)
        for j in range(k):
            members = points[assignment == j]
            if len(members):
                centers[j] = members.mean(0)
    return torch.cdist(points, centers).argmin(1)


__all__ = ["GaussianMixtureDenoiser"]
