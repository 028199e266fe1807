"""EAFO (entropy-based activation function optimization): the derivation behind CRReLU, as numerical helpers.

The paper models an activation's input as X ~ N(0, 1) and judges an activation f by the differential entropy of its
output Y = f(X). For f strictly increasing with inverse g = f⁻¹ the output density is q(y) = p(g(y)) g'(y), so

    H[f] = −∫ q log q dy = H[X] + E[log f'(X)]                                  (`output_entropy`)

Seen as a functional of the inverse, H[g] = −∫ p(g) g' log(p(g) g') dy, whose Euler–Lagrange derivative is

    δH/δg (y) = p'(g) g' + p(g) g'' / g'                                         (`entropy_gradient`)

It vanishes exactly when p(g(y)) g'(y) is constant, i.e. when Y is uniform: with the output bounded to [a, b] that is
the maximum-entropy, *worst* activation with boundary conditions (WAFBC), f(x) = a + (b − a) Φ(x)
(`worst_activation`). EAFO improves an activation by the first-order (Taylor) term of H: a step g ← g − η δH/δg lowers
H by η ∫ (δH/δg)² dy, moving away from the worst activation. Mapped back to f (δf(x) = −δg(f(x)) f'(x)), the step is

    f ← f + η c,   c(x) = (δH/δg)(f(x)) · f'(x)                                  (`eafo_correction`)

For ReLU's invertible branch (the identity, x > 0) g' = 1 and g'' = 0, so c(x) = p'(x) = −x exp(−x²/2)/√(2π): the
correction term of CRReLU, ReLU(x) + ε x exp(−x²/2), where the paper makes ε a learnable scalar. Under the Gaussian
model the entropy-lowering direction is ε < 0 (dH/dε = E[(1 − X²) exp(−X²/2)] = 1/(2√2) at ε = 0); the paper starts ε
at +0.01 and lets training choose its sign and size.

All helpers work in float64 on a fixed grid (trapezoidal rule) and take the activation as a torch callable.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

Function = Callable[[torch.Tensor], torch.Tensor]
LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def standard_normal_density(x: torch.Tensor) -> torch.Tensor:
    """p(x) = exp(−x²/2)/√(2π), the input model of the paper."""
    return torch.exp(-0.5 * x * x - LOG_SQRT_2PI)


def _derivatives(function: Function, points: torch.Tensor, order: int) -> list[torch.Tensor]:
    """[f(x), f'(x), …] up to `order` at `points` by autograd (f is applied elementwise). When `points` carries a graph
    (it is itself a function of some x), the results stay differentiable through it, so corrections compose."""
    x = points if points.requires_grad else points.detach().clone().requires_grad_(True)
    values = [function(x)]
    if values[0].shape != x.shape:
        raise ValueError(f"The activation must act elementwise (output shape {tuple(x.shape)}); "
                         f"got {tuple(values[0].shape)}.")
    for _ in range(order):
        if not values[-1].requires_grad:  # constant in x (e.g. the derivative of a linear function)
            values.append(torch.zeros_like(x))
            continue
        (derivative,) = torch.autograd.grad(values[-1].sum(), x, create_graph=True, allow_unused=True)
        values.append(torch.zeros_like(x) if derivative is None else derivative)
    if points.requires_grad:
        return values
    return [v.detach() for v in values]


def _grid(bound: float, points: int) -> torch.Tensor:
    if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not math.isfinite(bound) or bound <= 0:
        raise ValueError(f"bound must be a positive finite number (the grid is [−bound, bound]); got {bound!r}.")
    if isinstance(points, bool) or not isinstance(points, int) or points < 101:
        raise ValueError(f"points must be an integer ≥ 101 (the trapezoidal grid); got {points!r}.")
    return torch.linspace(-bound, bound, points, dtype=torch.float64)


def output_entropy(activation: Function, bound: float = 8.0, points: int = 20001) -> float:
    """The differential entropy (nats) of f(X) for X ~ N(0, 1): H[X] + E[log f'(X)], integrated on [−bound, bound].

    Args:
        activation: a strictly increasing elementwise torch function (or module) on the grid.
        bound: half-width of the integration grid (N(0, 1) mass outside ±8 is below 1e-14).
        points: grid points of the trapezoidal rule.

    Raises:
        ValueError: if f' ≤ 0 somewhere on the grid — the entropy formula needs an invertible activation (use its
            invertible branch: for ReLU, the identity of x > 0).
    """
    x = _grid(bound, points)
    _, slope = _derivatives(activation, x, 1)
    if not torch.isfinite(slope).all() or (slope <= 0).any():
        where = x[~(slope > 0)][0].item() if (~(slope > 0)).any() else float("nan")
        raise ValueError(f"output_entropy needs a strictly increasing activation (f' > 0 on [−{bound:g}, {bound:g}]); "
                         f"f' is not positive at x = {where:.4g}. Pass its invertible branch (for ReLU: the identity, "
                         f"its x > 0 part).")
    density = standard_normal_density(x)
    input_entropy = 0.5 * math.log(2 * math.pi * math.e)
    return input_entropy + float(torch.trapezoid(density * torch.log(slope), x))


def entropy_gradient(inverse: Function, y: torch.Tensor) -> torch.Tensor:
    """δH/δg at `y`: the functional derivative of the output entropy with respect to the inverse activation g = f⁻¹,
    p'(g) g' + p(g) g''/g' for the standard-normal input density p (p'(x) = −x p(x)).

    Args:
        inverse: g, strictly increasing and twice differentiable at `y` (elementwise torch function).
        y: output values where the derivative is wanted.
    """
    y = torch.as_tensor(y, dtype=torch.float64)
    g, g1, g2 = _derivatives(inverse, y, 2)
    if (g1 <= 0).any():
        raise ValueError("entropy_gradient needs a strictly increasing inverse (g' > 0 at every y).")
    p = standard_normal_density(g)
    return -g * p * g1 + p * g2 / g1


def eafo_correction(activation: Function, inverse: Function) -> Function:
    """The EAFO correction c of `activation`: f + η c (η > 0 small) lowers the output entropy, to first order by
    η ∫ (δH/δg)² dy. c(x) = (δH/δg)(f(x)) · f'(x).

    For the identity (ReLU's x > 0 branch) this is −x exp(−x²/2)/√(2π): CRReLU's correction term.

    Args:
        activation: f, strictly increasing (elementwise torch function).
        inverse: its inverse g = f⁻¹.
    """

    def correction(x: torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.float64)
        f, slope = _derivatives(activation, x, 1)
        return entropy_gradient(inverse, f) * slope  # differentiable in x when x carries a graph

    return correction


def worst_activation(low: float = 0.0, high: float = 1.0) -> Function:
    """The worst activation with boundary conditions (WAFBC) for outputs in (low, high): f(x) = low + (high − low) Φ(x),
    whose output is uniform, the maximum entropy log(high − low) (its `entropy_gradient` is 0 everywhere)."""
    for name, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number; got {value!r}.")
    if not high > low:
        raise ValueError(f"The output range needs low < high; got low={low!r}, high={high!r}.")

    def wafbc(x: torch.Tensor) -> torch.Tensor:
        return low + (high - low) * torch.special.ndtr(x)

    return wafbc


__all__ = ["eafo_correction", "entropy_gradient", "output_entropy", "standard_normal_density", "worst_activation"]
