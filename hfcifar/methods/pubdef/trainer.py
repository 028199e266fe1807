"""PubDef training (Sitawarin et al., "PubDef: Defending Against Transfer Attacks From Public Models", ICLR 2024)
as a `CifarTrainer` that overrides one hook, `compute_loss`.

The game (the paper's game-theoretic section). The transfer attacker's pure strategies are the pairs
(s, a) ∈ S × A of a public source model and an attack algorithm; it plays x̃ₛₐ = a(s, x, y), crafted on s only.
The defender picks weights θ. A defender that knows the attacker's mixed strategy π over pairs minimizes the
expected loss Σ π_sa · E[ℓ(f_θ(x̃ₛₐ), y)]; one that does not know π guards against the attacker's best response,
min_θ max_π of the same sum. PubDef approximates that equilibrium by training on transfer examples of a small,
diverse subset of the pairs, keeping a clean-loss term so that accuracy without attack stays near the
undefended model's:

    L(θ) = c · E[ℓ(f_θ(x), y)] + (1 − c) · Σ_{(s,a)} w_sa · E[ℓ(f_θ(x̃ₛₐ), y)],

and the defender's choice of the weights w (which pairs to train on at each step) is `pair_selection`:

- `"random"` — each example is paired with one (s, a) drawn uniformly: an unbiased sample of the uniform
  mixture, at the cost of crafting one transfer example per image (the official code's `--data-load-mode mix`,
  which its example scripts train with, clean and transfer losses weighted 1 : 1);
- `"all"` — every pair for every example, w_sa = 1 / |S × A| (the official `stack` mode);
- `"top-k"` — for every example, the k pairs with the highest loss: the attacker's per-example best response,
  i.e. the inner max of min_θ E[max_sa ℓ] for k = 1 (the official `--worst-k-transfer-loss`);
- `"dynamic"` — w_sa ∝ a moving average of the pair's loss: the pairs the attacker currently wins with get the
  weight (the official `weighted-exp` loss).

Source models stay frozen (eval mode, no gradients): only the target is trained. Transfer examples are crafted
on the fly on each (augmented) batch instead of once on disk as in the official code, so every epoch sees fresh
random starts and augmentations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from transformers.modeling_outputs import ImageClassifierOutput

from ...training.args import CifarTrainingArguments
from ...training.trainer import CifarTrainer
from .transfer import check_attack_names, create_transfer_attack, load_source_models, transfer_pairs

PAIR_SELECTIONS = ("random", "all", "top-k", "dynamic")


@dataclass
class PubDefTrainingArguments(CifarTrainingArguments):
    """[`CifarTrainingArguments`] plus the public source models, the transfer attacks and PubDef's loss weighting.

    Source model *instances* go to `PubDefTrainer(source_models=...)`; `source_models` here takes folders or Hub
    ids (arguments must stay serializable).
    """

    source_models: list[str] | None = field(
        default=None, metadata={"help": "Folders / Hub ids of the public source models to craft transfer attacks on."}
    )
    transfer_attacks: list[str] = field(
        default_factory=lambda: ["pgd"], metadata={"help": "Attacks run on each source (hfcifar.attacks.ATTACKS)."}
    )
    attack_eps: float = field(default=8 / 255, metadata={"help": "Perturbation budget ε of the transfer attacks."})
    attack_alpha: float = field(default=2 / 255, metadata={"help": "Step size of iterative transfer attacks."})
    attack_steps: int = field(default=10, metadata={"help": "Steps of iterative transfer attacks."})
    pair_selection: str = field(
        default="random", metadata={"help": f"How the (source, attack) pairs are weighted each step: {PAIR_SELECTIONS}."}
    )
    clean_weight: float = field(default=0.5, metadata={"help": "Weight c of the clean loss; 1 − c goes to the transfer losses."})
    top_k: int = field(default=1, metadata={"help": "Pairs per example for pair_selection='top-k'."})
    dynamic_weight_smoothing: float = field(
        default=0.1,
        metadata={"help": "pair_selection='dynamic': weight of the current losses in the moving average (0, 1]."},
    )

    def __post_init__(self):
        self.transfer_attacks = check_attack_names(self.transfer_attacks)
        if self.pair_selection not in PAIR_SELECTIONS:
            raise ValueError(f"pair_selection must be one of {PAIR_SELECTIONS}; got {self.pair_selection!r}.")
        if not 0 <= self.clean_weight < 1:
            raise ValueError(f"clean_weight must lie in [0, 1) (1 would ignore the transfer examples); got {self.clean_weight}.")
        if self.top_k < 1:
            raise ValueError(f"top_k must be ≥ 1; got {self.top_k}.")
        if not 0 < self.dynamic_weight_smoothing <= 1:
            raise ValueError(f"dynamic_weight_smoothing must lie in (0, 1]; got {self.dynamic_weight_smoothing}.")
        if self.attack_eps < 0 or self.attack_alpha < 0 or self.attack_steps < 0:
            raise ValueError(
                f"attack_eps, attack_alpha and attack_steps must be ≥ 0; got {self.attack_eps}, {self.attack_alpha}, "
                f"{self.attack_steps}."
            )
        super().__post_init__()

    def attack_settings(self) -> dict:
        """Settings every transfer attack takes what it accepts from (FGSM: ε only)."""
        return {"eps": self.attack_eps, "alpha": self.attack_alpha, "steps": self.attack_steps}


def pubdef_loss(
    clean_losses: torch.Tensor,
    transfer_losses: torch.Tensor,
    crafted: torch.Tensor,
    pair_selection: str = "random",
    clean_weight: float = 0.5,
    top_k: int = 1,
    pair_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """L(θ) = c · mean ℓ_clean + (1 − c) · (the transfer term chosen by `pair_selection`); see the module docstring.

    Args:
        clean_losses: `(N,)` per-example loss on the clean images.
        transfer_losses: `(N, P)` per-example loss on each pair's transfer example (ignored where not `crafted`).
        crafted: `(N, P)` bool, which pairs were crafted for which example (one per row for `"random"`).
        pair_selection: `"random"` (mean over examples of the loss of each example's own pair), `"all"` (uniform
            mean over pairs), `"top-k"` (mean of each example's `top_k` highest pair losses) or `"dynamic"`
            (Σ_p w_p · mean loss of pair p, with `pair_weights` w summing to 1).
    """
    if pair_selection == "random":
        if not bool((crafted.sum(1) == 1).all()):
            raise ValueError("pair_selection='random' pairs every example with exactly one (source, attack) pair.")
        transfer_term = torch.where(crafted, transfer_losses, 0.0).sum(1).mean()
    else:
        if not bool(crafted.all()):
            raise ValueError(f"pair_selection={pair_selection!r} needs the transfer examples of every pair.")
        if pair_selection == "all":
            transfer_term = transfer_losses.mean()
        elif pair_selection == "top-k":
            transfer_term = transfer_losses.topk(min(top_k, transfer_losses.shape[1]), dim=1).values.mean()
        elif pair_selection == "dynamic":
            if pair_weights is None:
                raise ValueError("pair_selection='dynamic' needs pair_weights.")
            transfer_term = (transfer_losses.mean(0) * pair_weights).sum()
        else:
            raise ValueError(f"pair_selection must be one of {PAIR_SELECTIONS}; got {pair_selection!r}.")
    return clean_weight * clean_losses.mean() + (1 - clean_weight) * transfer_term


class PubDefTrainer(CifarTrainer):
    """PubDef: train the target on clean images and on transfer attacks crafted on frozen public source models.

    Args:
        source_models: the public source models — `{name: model or folder}`, or a list of models / folders / Hub
            ids; defaults to `args.source_models`. They are frozen (eval mode, `requires_grad=False`) and moved to
            the training device. The pairs trained on are every source × every attack of `args.transfer_attacks`.
        Everything else as [`CifarTrainer`].

    Example:
        >>> args = PubDefTrainingArguments("runs/pubdef", transfer_attacks=["pgd"], attack_steps=10)
        >>> trainer = PubDefTrainer(model=create_model("fastnet"), args=args, train_dataset=data["train"],
        ...                         source_models={"resnet18": "runs/r18", "vgg": "runs/vgg"})
        >>> trainer.train()
    """

    arguments_class = PubDefTrainingArguments

    def __init__(self, model=None, args: PubDefTrainingArguments | None = None, train_dataset=None, eval_dataset=None,
                 source_models=None, **kwargs):
        if args is None:
            args = PubDefTrainingArguments(output_dir="hfcifar_pubdef")
        if not isinstance(args, PubDefTrainingArguments):
            raise TypeError("PubDefTrainer needs PubDefTrainingArguments (they name the transfer attacks and the loss).")
        # Checked before the (slower) dataset decoding of CifarTrainer.__init__, so bad input fails at once.
        sources = load_source_models(source_models if source_models is not None else args.source_models, device=args.device)
        if any(source is model for source in sources.values()):
            raise ValueError("A source model is the target itself: PubDef trains against *transfer* attacks from other models.")
        num_labels = getattr(getattr(model, "config", None), "num_labels", None)
        for name, source in sources.items():
            source_labels = getattr(getattr(source, "config", None), "num_labels", num_labels)
            if source_labels != num_labels:
                raise ValueError(f"Source model {name!r} has {source_labels} classes but the target has {num_labels}.")
        super().__init__(model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset, **kwargs)
        if args.channels_last:
            for source in sources.values():
                source.to(memory_format=torch.channels_last)
        self.source_models = sources
        self.transfer_pairs = transfer_pairs(list(sources), args.transfer_attacks)
        if args.pair_selection == "top-k" and args.top_k > len(self.transfer_pairs):
            raise ValueError(f"top_k={args.top_k} but there are only {len(self.transfer_pairs)} (source, attack) pairs.")
        # compute_loss returns a per-batch mean: the Trainer divides it by the gradient-accumulation steps.
        self.loss_is_scaled_for_ga = False
        num_pairs = len(self.transfer_pairs)
        # "dynamic": moving average of each pair's loss, starting uniform (every pair equally likely to be played).
        self.pair_loss_average = torch.full((num_pairs,), 1.0 / num_pairs)
        self._pair_log = {"sum": torch.zeros(num_pairs), "count": torch.zeros(num_pairs), "clean": 0.0, "steps": 0}
        self.last_selection: torch.Tensor | None = None

    # -- the defender's choice of pairs ----------------------------------------------------------------------
    def step_seed(self) -> int:
        # Fresh randomness each step and process, yet the whole run is reproducible under args.seed.
        return self.args.seed * 1_000_003 + (self.state.global_step * self.args.world_size + self.args.process_index) * 1009

    def select_pairs(self, batch_size: int, device: torch.device) -> torch.Tensor:
        """`(N, P)` bool: which (source, attack) pairs to craft for which example this step."""
        num_pairs = len(self.transfer_pairs)
        if self.args.pair_selection == "random":
            generator = torch.Generator().manual_seed(self.step_seed())
            choice = torch.randint(num_pairs, (batch_size,), generator=generator)
            return F.one_hot(choice, num_pairs).bool().to(device)
        return torch.ones(batch_size, num_pairs, dtype=torch.bool, device=device)

    def transfer_examples(self, pixel_values: torch.Tensor, labels: torch.Tensor, crafted: torch.Tensor) -> list:
        """For each pair p, `(rows, x̃)`: the transfer examples of the rows `crafted[:, p]`, crafted on p's source."""
        examples = []
        for p, pair in enumerate(self.transfer_pairs):
            rows = crafted[:, p].nonzero().squeeze(1)
            if rows.numel() == 0:
                examples.append((rows, pixel_values[:0]))
                continue
            attack = create_transfer_attack(pair.attack, self.source_models[pair.source], self.args.attack_settings(),
                                            seed=self.step_seed() + p + 1)
            examples.append((rows, attack(pixel_values[rows], labels[rows])))
        return examples

    def update_pair_weights(self, pair_mean_losses: torch.Tensor) -> torch.Tensor:
        """"dynamic": m ← (1 − γ) m + γ L̄ (current mean loss of each pair), w = m / Σ m."""
        gamma = self.args.dynamic_weight_smoothing
        self.pair_loss_average = (1 - gamma) * self.pair_loss_average + gamma * pair_mean_losses.detach().float().cpu()
        return (self.pair_loss_average / self.pair_loss_average.sum()).to(pair_mean_losses.device)

    # -- the loss --------------------------------------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not model.training:  # evaluation measures clean accuracy; transfer accuracy is evaluate_transfer_attacks'
            return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        images, labels = inputs["pixel_values"], inputs["labels"]
        n, num_pairs = labels.shape[0], len(self.transfer_pairs)
        crafted = self.select_pairs(n, labels.device)
        examples = self.transfer_examples(images, labels, crafted)
        rows = [r for r, _ in examples]
        # One forward over clean and transfer images together, as the official code does with its stacked batch.
        outputs = model(pixel_values=torch.cat([images] + [x for _, x in examples]))
        losses = F.cross_entropy(outputs.logits, torch.cat([labels] + [labels[r] for r in rows]), reduction="none",
                                 label_smoothing=self.args.label_smoothing_factor)
        clean_losses, transfer_flat = losses[:n], losses[n:]
        transfer_losses = clean_losses.new_zeros(n, num_pairs)
        for p, chunk in enumerate(transfer_flat.split([len(r) for r in rows])):
            transfer_losses = transfer_losses.index_put((rows[p], torch.full_like(rows[p], p)), chunk)
        counts = crafted.sum(0)
        pair_means = torch.where(crafted, transfer_losses, 0.0).sum(0) / counts.clamp_min(1)
        weights = self.update_pair_weights(pair_means) if self.args.pair_selection == "dynamic" else None
        loss = pubdef_loss(clean_losses, transfer_losses, crafted, self.args.pair_selection, self.args.clean_weight,
                           self.args.top_k, weights)
        self.last_selection = crafted
        self._record(clean_losses, pair_means, counts)
        if return_outputs:
            return loss, ImageClassifierOutput(loss=loss, logits=outputs.logits[:n])
        return loss

    # -- logging ---------------------------------------------------------------------------------------------
    def _record(self, clean_losses: torch.Tensor, pair_means: torch.Tensor, counts: torch.Tensor) -> None:
        counts = counts.detach().float().cpu()
        self._pair_log["sum"] += pair_means.detach().float().cpu() * counts
        self._pair_log["count"] += counts
        self._pair_log["clean"] += clean_losses.detach().mean().item()
        self._pair_log["steps"] += 1

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        # Per-pair transfer losses since the last log (and the dynamic weights): how the game is going.
        if "loss" in logs and self._pair_log["steps"]:
            logs["clean_loss"] = self._pair_log["clean"] / self._pair_log["steps"]
            for pair, total, count in zip(self.transfer_pairs, self._pair_log["sum"], self._pair_log["count"]):
                if count > 0:
                    logs[f"transfer_loss/{pair.name}"] = (total / count).item()
            if self.args.pair_selection == "dynamic":
                weights = self.pair_loss_average / self.pair_loss_average.sum()
                logs.update({f"pair_weight/{pair.name}": w.item() for pair, w in zip(self.transfer_pairs, weights)})
            self._pair_log = {"sum": torch.zeros_like(self._pair_log["sum"]), "count": torch.zeros_like(self._pair_log["count"]),
                              "clean": 0.0, "steps": 0}
        super().log(logs, start_time)
