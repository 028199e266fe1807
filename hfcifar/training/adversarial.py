"""Adversarial training (PGD-AT, Madry et al. 2018) as a `CifarTrainer` that overrides one hook.

`AdversarialTrainer.compute_loss` replaces each (augmented) batch by its adversarial examples under the attack of
`AdversarialTrainingArguments` — min_θ E[max_{‖δ‖≤ε} L(f_θ(x + δ), y)] — and otherwise is the CifarTrainer loss.
Method trainers of the robustness family (AT-LR, PubDef) subclass it and override `adversarial_examples` or the
loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..attacks import Attack, create_attack
from .args import CifarTrainingArguments
from .trainer import CifarTrainer


@dataclass
class AdversarialTrainingArguments(CifarTrainingArguments):
    """[`CifarTrainingArguments`] plus the attack that crafts the training examples."""

    attack: str = field(default="pgd", metadata={"help": "Attack crafting the training examples (hfcifar.attacks.ATTACKS)."})
    attack_eps: float = field(default=8 / 255, metadata={"help": "Perturbation budget ε (L∞ for pgd/fgsm, L2 for pgdl2)."})
    attack_alpha: float = field(default=2 / 255, metadata={"help": "Step size of iterative attacks."})
    attack_steps: int = field(default=7, metadata={"help": "Steps of iterative attacks."})

    def attack_settings(self) -> dict:
        settings = {"eps": self.attack_eps}
        if self.attack != "fgsm":
            settings.update(alpha=self.attack_alpha, steps=self.attack_steps)
        return settings


class AdversarialTrainer(CifarTrainer):
    """PGD adversarial training: the loss of every training batch is taken at its adversarial examples.

    Example:
        >>> args = AdversarialTrainingArguments("runs/at", attack="pgd", attack_eps=8 / 255, attack_steps=7)
        >>> AdversarialTrainer(model=model, args=args, train_dataset=data["train"]).train()
    """

    arguments_class = AdversarialTrainingArguments

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, AdversarialTrainingArguments):
            raise TypeError("AdversarialTrainer needs AdversarialTrainingArguments (it names the training attack).")

    def make_attack(self, model) -> Attack:
        # A fresh seed each step: different random starts, yet the whole run is reproducible under args.seed.
        seed = self.args.seed * 1_000_003 + self.state.global_step * self.args.world_size + self.args.process_index
        return create_attack(self.args.attack, model, seed=seed, **self.args.attack_settings())

    def adversarial_examples(self, model, pixel_values: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The inner maximization: the training attack's examples for this batch."""
        # The bare model, not the DDP wrapper: crafting needs no gradient synchronization across processes.
        return self.make_attack(self.accelerator.unwrap_model(model))(pixel_values, labels)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if model.training:  # evaluation measures clean accuracy; robust accuracy is `hfcifar.evaluation`'s job
            adversarial = self.adversarial_examples(model, inputs["pixel_values"], inputs["labels"])
            inputs = {**inputs, "pixel_values": adversarial}
        return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
