"""Quantization-aware training through the one training loop: `QFXTrainer` is `CifarTrainer` with the learned binary
points in their own optimizer group.

QFX trains a fixed-point model end to end: rounding passes gradients straight through and every binary point is an
ordinary `nn.Parameter` (`modules.py`), so the standard optimizer step of `Trainer` updates weights and binary
points together. What must differ from float training is the optimizer's parameter groups:

- no weight decay on binary points (decaying one towards 0 pulls its tensor's format towards `ap_fixed<W, 0>` for no
  reason);
- their own learning rate. A binary point is a log2 quantity that only changes the format when it crosses a
  half-integer, and its gradient is of the size of a weight's: at a fine-tuning learning rate it would take
  thousands of steps to move one bit (measured: median |∂L/∂I| ≈ 6e-4 on a trained 4-bit ResNet-20).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..training.args import CifarTrainingArguments
from ..training.trainer import CifarTrainer
from .modules import binary_point_parameters, is_fixed_point_quantized


@dataclass
class QFXTrainingArguments(CifarTrainingArguments):
    """[`CifarTrainingArguments`] plus the learning rate of the binary points."""

    binary_point_learning_rate: float | None = field(
        default=None,
        metadata={"help": "Peak learning rate of the learned binary points (the schedule scales it like the weights'); "
                          "None: the weights' learning_rate."},
    )

    def __post_init__(self):
        if self.binary_point_learning_rate is not None and not self.binary_point_learning_rate >= 0:
            raise ValueError(f"binary_point_learning_rate must be ≥ 0 (or None for the weights' learning rate); got "
                             f"{self.binary_point_learning_rate}.")
        super().__post_init__()


class QFXTrainer(CifarTrainer):
    """[`CifarTrainer`] for models converted by `quantize_model`: weights and binary points train together.

    The binary points get their own parameter group: no weight decay, and `args.binary_point_learning_rate` when the
    arguments are [`QFXTrainingArguments`] (else the weights' learning rate). The learning-rate schedule scales both.

    Example:
        >>> model = quantize_model(create_model("resnet20"), bits=6, calibration_images=images)
        >>> args = QFXTrainingArguments("runs/qfx", num_train_epochs=5, learning_rate=0.005, binary_point_learning_rate=0.5)
        >>> QFXTrainer(model=model, args=args, train_dataset=data["train"]).train()
    """

    arguments_class = QFXTrainingArguments

    def __init__(self, model=None, *args, **kwargs):
        if model is not None and not is_fixed_point_quantized(model):
            raise ValueError("QFXTrainer trains a fixed-point model: convert it with hfcifar.quantization.quantize_model "
                             "(or post_training_quantization + set_binary_points_trainable) first.")
        super().__init__(model, *args, **kwargs)

    def get_decay_parameter_names(self, model) -> list[str]:
        binary_points = set(binary_point_parameters(model))
        return [name for name in super().get_decay_parameter_names(model) if name not in binary_points]

    def create_optimizer(self, model=None):
        optimizer = super().create_optimizer(model)
        opt_model = self.model if model is None else model
        names = set(binary_point_parameters(opt_model))
        points = [p for n, p in opt_model.named_parameters() if n in names and p.requires_grad]
        if not points or not hasattr(optimizer, "add_param_group"):
            return optimizer
        chosen = {id(p) for p in points}
        for group in optimizer.param_groups:
            group["params"] = [p for p in group["params"] if id(p) not in chosen]
        learning_rate = getattr(self.args, "binary_point_learning_rate", None)
        optimizer.add_param_group({"params": points, "weight_decay": 0.0,
                                   "lr": self.args.learning_rate if learning_rate is None else learning_rate})
        return optimizer


__all__ = ["QFXTrainer", "QFXTrainingArguments"]
