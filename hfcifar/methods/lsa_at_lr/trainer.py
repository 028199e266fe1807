"""AT-LR: adversarial training with a layer-wise regularization of the Most Vulnerable Layers (Algorithm 3).

Khalooei et al. (2022), Section 4: with x̂ = argmax_{Z ∈ B(x, ε)} J(θ, Z, y) (the base adversarial training's attack),

    min_θ E_{(x, y)} [ J(θ, x̂, y) + LR(θ, x, x̂, y) ],    LR(θ, x, x̂, y) = Σ_{l ∈ MVL} γ_l · CM(φ_l(x), φ_l(x̂)),

where CM is LSA's relative error and MVL the list found by LSA on a normally trained model (Algorithm 2).
`ATLRTrainer` is `AdversarialTrainer` (PGD-AT) plus the LR term: with γ = 0 it trains exactly the same weights.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
from torch import nn

from ...training.adversarial import AdversarialTrainer, AdversarialTrainingArguments
from .lsa import LayerRepresentations, relative_error


@dataclass
class ATLRTrainingArguments(AdversarialTrainingArguments):
    """[`AdversarialTrainingArguments`] plus the MVL list and the weight γ of the layer-wise regularization."""

    most_vulnerable_layers: list[str] = field(
        default_factory=list,
        metadata={"help": "The MVL list: module names (model.named_modules()) from layer_sustainability_analysis."},
    )
    layer_regularization_weight: float = field(
        default=1.0, metadata={"help": "γ_l of the LR term, the same for every layer of the MVL list (≥ 0)."}
    )

    def __post_init__(self):
        if not (self.layer_regularization_weight >= 0):
            raise ValueError(f"layer_regularization_weight (γ) must be ≥ 0; got {self.layer_regularization_weight}.")
        if isinstance(self.most_vulnerable_layers, str):
            self.most_vulnerable_layers = [self.most_vulnerable_layers]
        self.most_vulnerable_layers = list(self.most_vulnerable_layers)
        super().__post_init__()


@contextlib.contextmanager
def frozen_batch_norm_statistics(model: nn.Module):
    """Run forward passes in training mode without moving any batch norm's running statistics.

    AT-LR's extra clean pass only supplies the reference representations φ_l(x); were it to update the running
    mean/variance, the evaluated model would differ from plain AT by more than the LR term. Momentum 0 keeps the
    running statistics (`running ← (1 − 0)·running + 0·batch`); the batch counter is restored afterwards.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    saved = [(m.momentum, m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None) for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, tracked) in zip(norms, saved):
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)


class ATLRTrainer(AdversarialTrainer):
    """Layer-wise regularized adversarial training (AT-LR, Algorithm 3) on top of PGD-AT.

    Each training step: x̂ ← the training attack on (x, y) (step 4); one forward pass of x for φ_l(x) (batch norm
    statistics untouched) and one of x̂ for the logits and φ_l(x̂); loss `J(θ, x̂, y) + γ Σ_{l∈MVL} mean_batch
    CM(φ_l(x), φ_l(x̂))` (step 5). Gradients flow through both representations, as LR depends on θ through both.
    Evaluation measures the clean loss and accuracy, as `AdversarialTrainer` does.

    Example:
        >>> lsa = layer_sustainability_analysis(standard_model, images, labels, PGD(standard_model, eps=8 / 255))
        >>> args = ATLRTrainingArguments("runs/at-lr", attack_eps=8 / 255, attack_steps=3,
        ...                              most_vulnerable_layers=lsa.most_vulnerable_layers, layer_regularization_weight=1.0)
        >>> ATLRTrainer(model=model, args=args, train_dataset=data["train"]).train()
    """

    arguments_class = ATLRTrainingArguments

    # compute_loss returns a batch mean (not a sum over `num_items_in_batch`): let Trainer scale it for accumulation.
    loss_is_scaled_for_ga = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, ATLRTrainingArguments):
            raise TypeError("ATLRTrainer needs ATLRTrainingArguments (the MVL list and γ).")
        layers = self.args.most_vulnerable_layers
        modules = dict(self.model.named_modules())
        missing = [name for name in layers if name not in modules]
        if missing:
            raise ValueError(f"most_vulnerable_layers names modules the model does not have: {missing}. Use the names "
                             "`layer_sustainability_analysis(...).most_vulnerable_layers` returns for this architecture.")

    def layer_regularization(self, clean: dict, adversarial: dict) -> torch.Tensor:
        """LR(θ, x, x̂, y) = Σ_{l∈MVL} γ_l · CM(φ_l(x), φ_l(x̂)), CM averaged over the batch, γ_l = γ for every l."""
        terms = [relative_error(clean[name], adversarial[name]).mean() for name in self.args.most_vulnerable_layers]
        return self.args.layer_regularization_weight * torch.stack(terms).sum()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        layers = self.args.most_vulnerable_layers
        if not model.training or not layers:
            return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        pixel_values, labels = inputs["pixel_values"], inputs["labels"]
        adversarial = self.adversarial_examples(model, pixel_values, labels)  # Algorithm 3, step 4
        bare = self.accelerator.unwrap_model(model)
        with LayerRepresentations(bare, layers) as probe:
            with frozen_batch_norm_statistics(bare):
                bare(pixel_values=pixel_values)
            clean = probe.pop()
            outputs = model(pixel_values=adversarial)
            perturbed = probe.pop()
        # J(θ, x̂, y): the cross-entropy of plain AT (with the recipe's label smoothing, as Trainer applies it there).
        loss = nn.functional.cross_entropy(outputs.logits, labels, label_smoothing=self.args.label_smoothing_factor)
        regularization = self.layer_regularization(clean, perturbed)
        self._last_regularization = regularization.detach()  # logged next to the loss (no sync here)
        loss = loss + regularization  # Algorithm 3, step 5
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict, *args, **kwargs) -> None:
        value = getattr(self, "_last_regularization", None)
        if value is not None and "loss" in logs:
            logs["layer_regularization"] = round(float(value), 4)
        super().log(logs, *args, **kwargs)


__all__ = ["ATLRTrainer", "ATLRTrainingArguments", "frozen_batch_norm_statistics"]
