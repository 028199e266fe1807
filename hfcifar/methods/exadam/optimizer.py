"""EXAdam (Adly, 2024): Adam with cross-moment debiasing, gradient acceleration and a growing step size.

For step t (counted from 1), gradient g, decay rates β1, β2, stability constant ε and learning rate α (the paper's
notation; README maps each line to the paper's equations):

    m ← β1·m + (1−β1)·g                v ← β2·v + (1−β2)·g²                 (Adam's moments)
    d1 = 1 + β2ᵗ · v / (v + ε)          d2 = 1 + β1ᵗ · m² / (m² + ε)         (cross-moment factors)
    m̃ = d1 · m / (1−β1ᵗ)                ṽ = d2 · v / (1−β2ᵗ)                 (new debiasing terms)
    g̃ = d1 · g / (1−β1ᵗ)                                                     (gradient acceleration)
    αₜ = α · ln(√2 · √(t+1))  if growing_step, else α                         (dynamic step size, paper v1)
    θ ← θ − αₜ · (m̃ + g̃) / (√ṽ + ε)

Weight decay is decoupled (θ ← θ − α·λ·θ before the update), as the authors' implementation applies it; the
learning rate a scheduler sets is α, so a schedule multiplies the growth factor.
"""

from __future__ import annotations

import math

import torch


class EXAdam(torch.optim.Optimizer):
    """EXAdam as a `torch.optim.Optimizer` (state: `step`, `m`, `v` per parameter; saved by `state_dict`).

    Args:
        params: parameters or parameter groups.
        lr: α (default 1e-3).
        betas: (β1, β2) (default (0.9, 0.999)).
        eps: ε (default 1e-8).
        weight_decay: decoupled weight decay λ (default 0).
        growing_step: multiply α by ln(√(2(t+1))), the first version's dynamic step size (default True; the
            paper's 48.07%-faster figure is from that version). False gives the second version's update.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, growing_step: bool = True):
        if not (isinstance(lr, (int, float)) and lr >= 0 and math.isfinite(lr)):
            raise ValueError(f"EXAdam: lr must be a finite number ≥ 0; got {lr!r}.")
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"EXAdam: betas must be two numbers in [0, 1); got {betas!r}.")
        if not eps > 0:
            raise ValueError(f"EXAdam: eps must be > 0 (it keeps the cross-moment factors finite); got {eps!r}.")
        if not weight_decay >= 0:
            raise ValueError(f"EXAdam: weight_decay must be ≥ 0; got {weight_decay!r}.")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      growing_step=bool(growing_step)))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps, decay = group["lr"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if grad.is_sparse:
                    raise RuntimeError("EXAdam does not support sparse gradients; use dense parameters "
                                       "(nn.Embedding(sparse=False)).")
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["v"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                t, m, v = state["step"], state["m"], state["v"]
                if decay:
                    p.mul_(1 - lr * decay)
                m.lerp_(grad, 1 - beta1)
                v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                beta1_t, beta2_t = beta1 ** t, beta2 ** t
                d1 = v / (v + eps) * beta2_t + 1
                m_squared = m * m
                d2 = m_squared / (m_squared + eps) * beta1_t + 1
                v_tilde = v * d2 / (1 - beta2_t)
                numerator = (m + grad) * d1 / (1 - beta1_t)  # m̃ + g̃
                step_size = lr * math.log(math.sqrt(2 * (t + 1))) if group["growing_step"] else lr
                p.addcdiv_(numerator, v_tilde.sqrt_().add_(eps), value=-step_size)
        return loss
