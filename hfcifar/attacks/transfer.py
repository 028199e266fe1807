"""Transfer attacks: craft adversarial examples on a source model, measure them on a different target model."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from .base import Attack


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 256, non_finite_label: int | None = None) -> torch.Tensor:
    """The classes `model` predicts for `images` (in [0, 1]), in eval mode and in batches; the mode is restored.

    `non_finite_label` (e.g. -1) replaces the prediction wherever the logits are not all finite (fault injection
    counts an inf/NaN output as a failure rather than as whatever class `argmax` lands on)."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"predict needs a torch classifier (nn.Module returning logits); got {type(model).__name__}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1; got {batch_size}.")
    training = model.training
    model.eval()
    try:
        device = next(iter(model.parameters()), images).device
        predictions = []
        for start in range(0, images.shape[0], batch_size):
            output = model(images[start:start + batch_size].to(device))
            logits = output.logits if hasattr(output, "logits") else output
            if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
                raise ValueError(f"{type(model).__name__} is not a classifier: expected (batch, classes) logits, got "
                                 f"{type(output).__name__}.")
            labels = logits.argmax(dim=1)
            if non_finite_label is not None:
                labels = torch.where(torch.isfinite(logits).all(dim=1), labels, non_finite_label)
            predictions.append(labels.to(images.device))
    finally:
        model.train(training)
    return torch.cat(predictions) if predictions else torch.zeros(0, dtype=torch.long, device=images.device)


@dataclass(frozen=True)
class TransferResult:
    """What a transfer attack did to a target model (and, for comparison, to the source it was crafted on).

    Attributes:
        num_examples: images attacked.
        clean_accuracy: target accuracy on the clean images.
        robust_accuracy: target accuracy on the transferred adversarial images.
        success_rate: among the images the target classified correctly (and, when targeted, whose target class
            differs from the true class), the fraction the transferred examples fool: misclassified (untargeted) or
            classified as the target class (targeted). `nan` when there is no such image.
        source_success_rate: the same fraction on the source model (the white-box success the transfer starts from).
    """

    num_examples: int
    clean_accuracy: float
    robust_accuracy: float
    success_rate: float
    source_success_rate: float

    def to_dict(self) -> dict:
        return asdict(self)



def correct_under_attack(model: nn.Module, attack_for_batch, images: torch.Tensor, labels: torch.Tensor,
                         batch_size: int = 256, progress: bool = False) -> torch.Tensor:
    """Per image (bool): does `model` still predict the true label on the attack's example?

    `attack_for_batch(i)` returns the attack (any `(images, labels) -> adversarial images` callable) for batch `i`, so
    random starts can be seeded per batch and two models meet the same ones. Images in [0, 1], on any device: each
    batch moves to the model's device, the result comes back on `images`' device. `progress` shows a bar over the
    batches."""
    device = next(iter(model.parameters()), images).device
    correct = []
    starts = range(0, labels.shape[0], batch_size)
    for index, start in enumerate(tqdm(starts, desc="Attacking", unit="batch", disable=not progress or len(starts) < 2)):
        x, y = images[start:start + batch_size].to(device), labels[start:start + batch_size].to(device)
        adversarial = attack_for_batch(index)(x, y)
        correct.append((predict(model, adversarial, batch_size) == y).to(images.device))
    return torch.cat(correct) if correct else torch.zeros(0, dtype=torch.bool, device=images.device)

def success_rate(clean_predictions: torch.Tensor, adversarial_predictions: torch.Tensor, labels: torch.Tensor,
                 targets: torch.Tensor | None = None) -> float:
    """Attack success rate: the fraction of the correctly classified images that the attack fools.

    Untargeted (`targets=None`): fooled = misclassified. Targeted: fooled = classified as `targets`, counted over the
    correctly classified images whose target differs from their label. `nan` when no image qualifies.
    """
    eligible = clean_predictions == labels
    if targets is None:
        fooled = adversarial_predictions != labels
    else:
        eligible &= targets != labels
        fooled = adversarial_predictions == targets
    count = int(eligible.sum())
    return float((fooled & eligible).sum()) / count if count else float("nan")


class TransferAttack(Attack):
    r"""A black-box transfer attack: adversarial examples crafted white-box on a *source* model, used against a
    target model the attacker cannot query (Szegedy et al., "Intriguing properties of neural networks", 2014,
    Section 4.3; Papernot et al., "Transferability in Machine Learning", 2016).

    `attack(images, labels)` returns the examples `source_attack` crafts on its own model; they are meant for a
    different model. `attack.evaluate(target_model, images, labels)` crafts them in batches and measures the target
    (a [`TransferResult`]). Targeted mode is the source attack's: `set_targeted()` on either sets both.

    Args:
        source_attack (`Attack`): any hfcifar attack built on the source model, e.g. `PGD(source, eps=8/255)`.

    Example:
        >>> transfer = TransferAttack(PGD(public_model, eps=8 / 255, steps=10))
        >>> adversarial = transfer(images, labels)                  # crafted on public_model
        >>> transfer.evaluate(defended_model, images, labels).robust_accuracy
    """

    def __init__(self, source_attack: Attack):
        if not isinstance(source_attack, Attack):
            raise ValueError(f"TransferAttack needs an hfcifar Attack built on the source model (e.g. "
                             f"PGD(source_model, eps=8/255)); got {type(source_attack).__name__}.")
        super().__init__(source_attack.model, eps=source_attack.eps, seed=source_attack.seed)
        self.source_attack = source_attack
        self.norm = source_attack.norm
        self.targeted = source_attack.targeted

    @property
    def source_model(self) -> nn.Module:
        return self.source_attack.model

    def set_targeted(self, targeted: bool = True) -> "TransferAttack":
        self.source_attack.set_targeted(targeted)
        self.targeted = self.source_attack.targeted
        return self

    def settings(self) -> dict:
        return {"source_attack": type(self.source_attack).__name__, **self.source_attack.settings()}

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.source_attack(images, labels)

    def evaluate(self, target_model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                 targets: torch.Tensor | None = None, batch_size: int = 256, progress: bool = False) -> TransferResult:
        """Craft on the source model in batches of `batch_size`, then measure the target model.

        Args:
            target_model: the classifier under attack (never queried while crafting).
            images: `(N, C, H, W)` in [0, 1].
            labels: `(N,)` true classes.
            targets: `(N,)` target classes; required in targeted mode, refused otherwise.
            progress: a progress bar over the batches crafted on the source model.
        """
        if self.targeted != (targets is not None):
            raise ValueError("A targeted TransferAttack needs `targets` (the classes to reach) besides the true "
                             "`labels`; an untargeted one takes none." if self.targeted else
                             "`targets` were given to an untargeted TransferAttack; call set_targeted() first.")
        self.check_inputs(images, labels)
        goal = labels if targets is None else targets
        if goal.shape != labels.shape:
            raise ValueError(f"got {goal.shape[0]} targets for {labels.shape[0]} labels; pass one target per image.")
        starts = range(0, images.shape[0], batch_size)
        bar = tqdm(starts, desc="Crafting on the source model", unit="batch", disable=not progress or len(starts) < 2)
        adversarial = torch.cat([self(images[i:i + batch_size], goal[i:i + batch_size])
                                 for i in bar]) if images.shape[0] else images
        clean = predict(target_model, images, batch_size)
        fooled = predict(target_model, adversarial, batch_size)
        source_clean = predict(self.source_model, images, batch_size)
        source_fooled = predict(self.source_model, adversarial, batch_size)
        n = images.shape[0]
        return TransferResult(
            num_examples=n,
            clean_accuracy=float((clean == labels).float().mean()) if n else float("nan"),
            robust_accuracy=float((fooled == labels).float().mean()) if n else float("nan"),
            success_rate=success_rate(clean, fooled, labels, targets),
            source_success_rate=success_rate(source_clean, source_fooled, labels, targets),
        )
