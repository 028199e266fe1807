"""`DiceSGDOptimizer`: Opacus' `DPOptimizer` with DiceSGD's clipped error feedback (Zhang et al., ICLR 2024, Alg. 1).

DP-SGD-GC (Abadi et al., 2016) clips every per-sample gradient to C1 and adds Gaussian noise; the clipped part of
each gradient is lost, a bias that does not vanish. DiceSGD keeps what clipping removed in an error state e and feeds
it back, itself clipped to C2:

    v_t     = (1/B) Σ_i clip(g_i, C1) + clip(e_t, C2)
    x_{t+1} = x_t − η (v_t + w_t),           w_t ~ N(0, (σ (C1 + C2) / B)² I)
    e_{t+1} = e_t + (1/B) Σ_i g_i − v_t      (e_0 = 0)

with clip(u, C) = min(1, C / ‖u‖) u over the whole parameter vector and B the expected batch (Poisson sampling). The
per-sample gradients g_i come from Opacus' hooks (`p.grad_sample`); the step hands `v_t + w_t` to the wrapped
optimizer as the gradient, so momentum, weight decay and the learning-rate schedule apply to it as to any gradient.
"""

from __future__ import annotations

import torch

from .privacy import require_opacus

require_opacus()
from opacus.optimizers import DPOptimizer  # noqa: E402  (after the check that names the install command)
from opacus.optimizers.optimizer import _generate_noise, _mark_as_processed  # noqa: E402


def _world() -> tuple[int, int]:
    """`(rank, world_size)` of the default process group (`(0, 1)` without one)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class DiceSGDOptimizer(DPOptimizer):
    """DiceSGD's step (Algorithm 1 of the paper) around any `torch.optim.Optimizer`.

    Args:
        optimizer (`torch.optim.Optimizer`): the optimizer that applies the private gradient (SGD in the paper).
        noise_multiplier (`float`): σ, the accountant's noise multiplier; the noise added to the summed update has
            standard deviation σ·(C1 + C2) (see the package README, "Privacy accounting").
        max_grad_norm (`float`): C1, the per-sample clipping norm.
        max_error_norm (`float`): C2, the clipping norm of the fed-back error (the paper takes C2 ≥ C1).
        expected_batch_size (`int`): B, the expected *global* batch (sampling rate × training images); sums are
            divided by it, as Opacus does under Poisson sampling.
        generator (`torch.Generator`, *optional*): source of the noise (default: torch's global generator).
        secure_mode (`bool`, *optional*, defaults to `False`): Opacus' noise robust to floating-point attacks.

    Under several processes (a `torch.distributed` group), each process holds its share of the batch: the clipped
    sums and the full sums are all-reduced, the noise is drawn on process 0 only and added once to the global sum,
    and every process then applies the same update and keeps the same error state.

    Example:

    ```python
    >>> import torch
    >>> from opacus.grad_sample import GradSampleHooks
    >>> from hfcifar.methods.dice_sgd.optimizer import DiceSGDOptimizer
    >>> model = torch.nn.Linear(3, 2)
    >>> hooks = GradSampleHooks(model, loss_reduction="mean")
    >>> optimizer = DiceSGDOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), noise_multiplier=1.0,
    ...                              max_grad_norm=1.0, max_error_norm=1.0, expected_batch_size=4)
    >>> model(torch.randn(4, 3)).square().mean().backward()
    >>> optimizer.step()
    >>> optimizer.error_norm >= 0
    True
    ```
    """

    def __init__(self, optimizer: torch.optim.Optimizer, *, noise_multiplier: float, max_grad_norm: float,
                 max_error_norm: float, expected_batch_size: int, generator=None, secure_mode: bool = False):
        super().__init__(optimizer, noise_multiplier=noise_multiplier, max_grad_norm=max_grad_norm,
                         expected_batch_size=expected_batch_size, loss_reduction="mean", generator=generator,
                         secure_mode=secure_mode)
        self.max_error_norm = float(max_error_norm)
        self.rank, self.world_size = _world()
        self.error = [torch.zeros_like(p, memory_format=torch.contiguous_format) for p in self.params]
        self.error_norm = 0.0  # ‖e_t‖ before the last step's feedback (a diagnostic)

    @property
    def noise_std(self) -> float:
        """Standard deviation of the noise on the summed update: σ·(C1 + C2)."""
        return self.noise_multiplier * (self.max_grad_norm + self.max_error_norm)

    def pre_step(self, closure=None) -> bool:
        """Clip, feed the error back, add noise, update e; leave `v_t + w_t` in `p.grad` for the wrapped step."""
        if self.grad_samples is None or len(self.grad_samples) == 0:
            return True
        if self._check_skip_next_step():
            raise ValueError("DiceSGD steps on every Poisson batch; virtual steps (BatchMemoryManager) are not "
                             "supported: lower the batch size instead.")
        # Σ_i g_i from the per-sample gradients (the parameters' .grad is the non-private batch gradient, unused)
        full_sums = [self._get_flat_grad_sample(p).sum(0).to(p.dtype) for p in self.params]
        self.clip_and_accumulate()  # Opacus: p.summed_grad = Σ_i clip(g_i, C1)
        clipped_sums = [p.summed_grad.view_as(p) for p in self.params]
        noise = [_generate_noise(std=self.noise_std, reference=p, generator=self.generator,
                                 secure_mode=self.secure_mode) if self.rank == 0 else torch.zeros_like(p)
                 for p in self.params]
        if self.world_size > 1:
            clipped_sums, full_sums, noise = self._all_reduce(clipped_sums, full_sums, noise)

        batch = float(self.expected_batch_size)
        self.error_norm = float(torch.sqrt(sum(e.double().square().sum() for e in self.error)))
        feedback = min(1.0, self.max_error_norm / (self.error_norm + 1e-6))  # clip(e_t, C2) = feedback · e_t
        for p, e, clipped, full, w in zip(self.params, self.error, clipped_sums, full_sums, noise):
            v = clipped / batch + feedback * e
            p.grad = (v + w / batch).view_as(p)
            e.add_(full / batch - v)  # e_{t+1} = e_t + (1/B) Σ g_i − v_t
            _mark_as_processed(p.summed_grad)
        if self.step_hook:
            self.step_hook(self)
        self._is_last_step_skipped = False
        return True

    def _all_reduce(self, *groups: list) -> list:
        """Sum each list of tensors over the processes with one all-reduce of their concatenation."""
        flat = torch.cat([t.reshape(-1) for group in groups for t in group])
        torch.distributed.all_reduce(flat, op=torch.distributed.ReduceOp.SUM)
        out, offset = [], 0
        for group in groups:
            reduced = []
            for t in group:
                reduced.append(flat[offset:offset + t.numel()].view_as(t))
                offset += t.numel()
            out.append(reduced)
        return out

    def error_state(self) -> dict:
        """The error state e_t by parameter index (what a checkpoint must hold to resume exactly)."""
        return {f"error.{i}": e.detach().cpu().contiguous() for i, e in enumerate(self.error)}

    def load_error_state(self, tensors: dict) -> None:
        """Restore `error_state()` in place."""
        if len(tensors) != len(self.error):
            raise ValueError(f"The checkpoint holds {len(tensors)} error tensors; this model has {len(self.error)} "
                             "trainable parameters. Resume with the model the checkpoint was trained with.")
        for i, e in enumerate(self.error):
            e.copy_(tensors[f"error.{i}"].to(e.device, e.dtype))


__all__ = ["DiceSGDOptimizer"]
