"""`CRReLU`, Correction Regularized ReLU (Sun et al., 2024/2025): ReLU plus a learnable correction ε·x·exp(−x²/2).

This is the canonical definition; FastNet's modeling file carries a `# Copied from` copy so that a FastNet with
`hidden_act="crrelu"` travels as Hub remote code without hfcifar. The method folder provides it as the activation
`crrelu` (`hfcifar.models.ACTIVATIONS`, and through it transformers' `ACT2FN`, so `ViTConfig(hidden_act="crrelu")`
builds a ViT with CRReLU in every MLP).
"""

import math

import torch
from torch import nn


class CRReLU(nn.Module):
    r"""Correction Regularized ReLU: `CRReLU(x) = max(x, 0) + ε · x · exp(−x²/2)`, with ε a learnable scalar.

    The correction is the first-order term of the entropy-based activation function optimization (EAFO) applied to
    ReLU under a standard-Gaussian input: it moves the output distribution away from the maximum-entropy (worst)
    activation (see `hfcifar.methods.crrelu.eafo`). As in the paper, ε is one scalar per activation layer, initialized
    to 0.01 and trained with the network's weights; its sign and size are learned.

    Args:
        epsilon (`float`, *optional*, defaults to 0.01):
            Initial value of the learnable correction weight ε; any finite number (0 starts as a plain ReLU).

    Example:

    ```python
    >>> import torch
    >>> from hfcifar.methods.crrelu import CRReLU

    >>> act = CRReLU(epsilon=0.5)
    >>> act(torch.tensor([-1.0, 0.0, 1.0]))
    tensor([-0.3033,  0.0000,  1.3033], grad_fn=<AddBackward0>)
    ```
    """

    def __init__(self, epsilon: float = 0.01):
        super().__init__()
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not math.isfinite(epsilon):
            raise ValueError(f"CRReLU's initial epsilon must be a finite number (the paper starts at 0.01); "
                             f"got {epsilon!r}.")
        self.initial_epsilon = float(epsilon)
        self.epsilon = nn.Parameter(torch.tensor(self.initial_epsilon))

    @torch.no_grad()
    def reset_parameters(self) -> None:
        nn.init.constant_(self.epsilon, self.initial_epsilon)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        correction = hidden_states * torch.exp(-0.5 * hidden_states * hidden_states)
        return torch.relu(hidden_states) + self.epsilon.to(hidden_states.dtype) * correction

    def extra_repr(self) -> str:
        return f"initial_epsilon={self.initial_epsilon:g}"


def reset_crrelu(model: nn.Module) -> int:
    """Set the ε of every CRReLU in `model` back to its initial value (hfcifar's and FastNet's copy); returns how many.

    transformers 5 builds a model on the meta device and initializes each parameter missing from the checkpoint with
    the model class's `_init_weights`, which knows nothing of an activation added from outside. A checkpoint without ε
    — a GELU ViT loaded with `from_pretrained(..., hidden_act="crrelu")`, as when swapping the activation of a trained
    model before fine-tuning — therefore leaves ε as uninitialized memory (the load report lists it as MISSING). Call
    this right after such a load. (FastNet's `_init_weights` resets its CRReLUs itself; checkpoints saved with CRReLU
    carry ε and load exactly.)
    """
    count = 0
    for module in model.modules():
        if type(module).__name__ == "CRReLU" and hasattr(module, "reset_parameters"):
            module.reset_parameters()
            count += 1
    return count


__all__ = ["CRReLU", "reset_crrelu"]
