"""EAS's meta-controller: an encoder of the architecture and two actors, trained with REINFORCE (Cai et al. 2018, §3).

- **Encoder** (§3.1): each layer of the network is a token (`conv` at its width level, or `pool`), embedded and read by
  a bidirectional LSTM; its per-layer outputs describe each layer in the context of the whole network.
- **Net2Wider actor** (§3.2): one shared sigmoid classifier on every conv layer's encoder output decides whether to
  widen that layer (to the next width of the ladder); layers already at the top of the ladder are masked.
- **Net2Deeper actor** (§3.2): an LSTM whose state starts from the encoder's final state picks, in sequence, the block
  (the layers between two max-pools) and the layer of that block to insert a new layer after; each choice is a
  softmax over the positions that exist, and the embedding of a choice is the input of the next step.
- **Training** (§3.3): REINFORCE with reward `tan(accuracy · π/2)` (which stretches the differences between already
  high accuracies) minus a moving-average baseline, averaged over the networks of an episode, with a small entropy
  bonus.

A decision is stored with the architecture it was taken on (`WiderDecision`, `DeeperDecision`), so the update
recomputes its log-probability with the current parameters, as the authors' code feeds the trajectory back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

PAD, POOL = 0, 1


def width_level(width: int, widths: list[int]) -> int:
    """Index of the largest ladder width ≤ `width` (0 below the ladder)."""
    return max(0, sum(1 for w in widths if w <= width) - 1)


def architecture_tokens(layers: list, widths: list[int]) -> list[int]:
    """The encoder's input for `config.layers`: `POOL` for a max-pool, `2 + level` for a conv at that width level."""
    return [POOL if entry == "M" else 2 + width_level(entry, widths) for entry in layers]


@dataclass
class WiderDecision:
    """Whether to widen each conv layer (`widen[i]` for conv `i`) of the network `layers`; `allowed[i]` is False
    where the layer is at the top of the ladder."""

    layers: list
    widen: list
    allowed: list


@dataclass
class DeeperDecision:
    """Insert a layer into block `block` after its `position`-th conv layer, on the network `layers`."""

    layers: list
    block: int
    position: int


class EASMetaController(nn.Module):
    r"""The EAS meta-controller: encoder, Net2Wider actor and Net2Deeper actor.

    Args:
        widths (`list[int]`):
            The width ladder: widening moves a conv layer to the next larger width of this list (EAS's discrete
            filter numbers), and a layer's token is its level in it.
        embedding_dim (`int`, *optional*, defaults to 16):
            Size of the layer-token and decision embeddings (16 in the authors' code).
        hidden_size (`int`, *optional*, defaults to 50):
            LSTM units per direction of the encoder (50 in the authors' code); the Net2Deeper LSTM has twice as many.
        max_blocks (`int`, *optional*, defaults to 5):
            Blocks the Net2Deeper actor can choose from (the softmax's size).
        max_layers_per_block (`int`, *optional*, defaults to 10):
            Layers per block it can choose from.
    """

    def __init__(self, widths: list[int], embedding_dim: int = 16, hidden_size: int = 50, max_blocks: int = 5,
                 max_layers_per_block: int = 10):
        super().__init__()
        widths = list(widths)
        if not widths or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths) or \
                widths != sorted(set(widths)):
            raise ValueError(f"widths must be a strictly increasing list of positive integers (the width ladder); "
                             f"got {widths}.")
        for name, value in (("embedding_dim", embedding_dim), ("hidden_size", hidden_size),
                            ("max_blocks", max_blocks), ("max_layers_per_block", max_layers_per_block)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer ≥ 1; got {value!r}.")
        self.widths = widths
        self.max_blocks, self.max_layers_per_block = max_blocks, max_layers_per_block
        self.embedding = nn.Embedding(2 + len(widths), embedding_dim, padding_idx=PAD)
        self.encoder = nn.LSTM(embedding_dim, hidden_size, batch_first=True, bidirectional=True)
        self.wider_actor = nn.Linear(2 * hidden_size, 1)
        self.deeper_cell = nn.LSTMCell(embedding_dim, 2 * hidden_size)
        # the input of decision step i is the embedding of decision i-1 (a start symbol for the first)
        self.deeper_inputs = nn.ModuleList([nn.Embedding(1, embedding_dim), nn.Embedding(max_blocks, embedding_dim)])
        self.deeper_heads = nn.ModuleList([nn.Linear(2 * hidden_size, max_blocks),
                                           nn.Linear(2 * hidden_size, max_layers_per_block)])

    # -- encoder ------------------------------------------------------------------------------------------------
    def encode(self, layers: list) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Per-layer encoder outputs `[len(layers), 2·hidden]` and the final (h, c), both directions concatenated."""
        device = self.embedding.weight.device
        tokens = torch.tensor([architecture_tokens(layers, self.widths)], device=device)
        outputs, (h, c) = self.encoder(self.embedding(tokens))
        return outputs[0], (torch.cat([h[0], h[1]], dim=-1), torch.cat([c[0], c[1]], dim=-1))

    # -- Net2Wider actor ----------------------------------------------------------------------------------------
    def wider_probabilities(self, layers: list) -> tuple[torch.Tensor, torch.Tensor]:
        """P(widen) for every conv layer, and which conv layers may be widened (not at the top of the ladder)."""
        outputs, _ = self.encode(layers)
        conv = [i for i, entry in enumerate(layers) if entry != "M"]
        probabilities = torch.sigmoid(self.wider_actor(outputs[conv]).squeeze(-1))
        allowed = torch.tensor([layers[i] < self.widths[-1] for i in conv], device=probabilities.device)
        return probabilities, allowed

    @torch.no_grad()
    def sample_wider(self, layers: list, generator: torch.Generator | None = None) -> WiderDecision:
        probabilities, allowed = self.wider_probabilities(layers)
        draws = torch.rand(probabilities.shape, generator=generator).to(probabilities.device)
        widen = (draws < probabilities) & allowed
        return WiderDecision(list(layers), widen.tolist(), allowed.tolist())

    def wider_log_prob(self, decision: WiderDecision) -> tuple[torch.Tensor, torch.Tensor]:
        """log π(decision) summed over the allowed layers, and the mean Bernoulli entropy over them."""
        p, allowed = self.wider_probabilities(decision.layers)
        p = p.clamp(1e-6, 1 - 1e-6)
        widen = torch.tensor(decision.widen, device=p.device, dtype=p.dtype)
        mask = allowed.to(p.dtype)
        log_prob = (widen * p.log() + (1 - widen) * (1 - p).log()) * mask
        entropy = -(p * p.log() + (1 - p) * (1 - p).log()) * mask
        return log_prob.sum(), entropy.sum() / mask.sum().clamp(min=1)

    # -- Net2Deeper actor ---------------------------------------------------------------------------------------
    def block_sizes(self, layers: list) -> list[int]:
        sizes, count = [], 0
        for entry in layers:
            if entry == "M":
                sizes.append(count)
                count = 0
            else:
                count += 1
        if count:
            sizes.append(count)
        if len(sizes) > self.max_blocks:
            raise ValueError(f"the network has {len(sizes)} blocks; the Net2Deeper actor was built for at most "
                             f"{self.max_blocks}: create the EASMetaController with max_blocks={len(sizes)}.")
        return sizes

    def deeper_distributions(self, layers: list, block: int | None = None) -> list[torch.Tensor]:
        """The Net2Deeper actor's probabilities: over blocks, and — when `block` is given — over that block's layers
        (the masked softmaxes of EAS's decoder)."""
        sizes = self.block_sizes(layers)
        _, state = self.encode(layers)
        device = state[0].device
        step_input = self.deeper_inputs[0](torch.zeros(1, dtype=torch.long, device=device))
        state = self.deeper_cell(step_input, state)
        block_mask = torch.zeros(self.max_blocks, dtype=torch.bool, device=device)
        block_mask[:len(sizes)] = torch.tensor([s > 0 for s in sizes], device=device)
        distributions = [masked_softmax(self.deeper_heads[0](state[0])[0], block_mask)]
        if block is not None:
            step_input = self.deeper_inputs[1](torch.tensor([block], device=device))
            state = self.deeper_cell(step_input, state)
            layer_mask = torch.arange(self.max_layers_per_block, device=device) < sizes[block]
            distributions.append(masked_softmax(self.deeper_heads[1](state[0])[0], layer_mask))
        return distributions

    @torch.no_grad()
    def sample_deeper(self, layers: list, generator: torch.Generator | None = None) -> DeeperDecision:
        blocks = self.deeper_distributions(layers)[0]
        block = int(torch.multinomial(blocks.cpu(), 1, generator=generator))
        positions = self.deeper_distributions(layers, block)[1]
        position = int(torch.multinomial(positions.cpu(), 1, generator=generator))
        return DeeperDecision(list(layers), block, position)

    def deeper_log_prob(self, decision: DeeperDecision) -> tuple[torch.Tensor, torch.Tensor]:
        blocks, positions = self.deeper_distributions(decision.layers, decision.block)
        log_prob = blocks[decision.block].log() + positions[decision.position].log()
        entropy = (categorical_entropy(blocks) + categorical_entropy(positions)) / 2
        return log_prob, entropy

    # -- REINFORCE ------------------------------------------------------------------------------------------------
    def reinforce_loss(self, trajectories: list[list], advantages: list[float],
                       entropy_penalty: float = 1e-5) -> torch.Tensor:
        """−(1/B) Σ_networks advantage · Σ_decisions log π(decision) − entropy_penalty · mean entropy: minimizing it
        is one REINFORCE step on an episode of B networks (`trajectories[n]` holds network n's decisions)."""
        if len(trajectories) != len(advantages) or not trajectories:
            raise ValueError("reinforce_loss needs one advantage per trajectory, and at least one trajectory.")
        objective, entropies = 0.0, []
        for decisions, advantage in zip(trajectories, advantages):
            for decision in decisions:
                log_prob, entropy = (self.wider_log_prob(decision) if isinstance(decision, WiderDecision)
                                     else self.deeper_log_prob(decision))
                objective = objective + advantage * log_prob
                entropies.append(entropy)
        entropy = torch.stack(entropies).mean() if entropies else torch.zeros(())
        return -objective / len(trajectories) - entropy_penalty * entropy


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits.masked_fill(~mask, float("-inf")), dim=-1)


def categorical_entropy(p: torch.Tensor) -> torch.Tensor:
    return -(p * p.clamp(min=1e-12).log()).sum()


def accuracy_reward(accuracy: float) -> float:
    """EAS's reward: tan(accuracy · π/2), which grows ever faster as the accuracy nears 1 (§3.3)."""
    return math.tan(min(max(float(accuracy), 0.0), 0.999) * math.pi / 2)


class MovingAverageBaseline:
    """The REINFORCE baseline: an exponential moving average of the episodes' mean rewards (decay 0.95 in the
    paper), started at the first episode's mean."""

    def __init__(self, decay: float = 0.95):
        if not 0 <= decay < 1:
            raise ValueError(f"decay must be in [0, 1); got {decay!r}.")
        self.decay, self.value = decay, None

    def update(self, rewards: list[float]) -> float:
        mean = sum(rewards) / len(rewards)
        self.value = mean if self.value is None else self.decay * self.value + (1 - self.decay) * mean
        return self.value


__all__ = ["DeeperDecision", "EASMetaController", "MovingAverageBaseline", "WiderDecision", "accuracy_reward",
           "architecture_tokens", "width_level"]
