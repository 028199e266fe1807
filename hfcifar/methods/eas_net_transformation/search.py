"""EAS's search loop (Cai et al. 2018, §3 and Algorithm-level description of §4.1): episodes of networks grown from one
start network by the meta-controller's actions, each inheriting its weights, trained briefly and rewarded by its
validation accuracy.

One episode: each of `networks_per_episode` networks starts from the start network, takes `wider_actions` Net2Wider
decisions and then `deeper_actions` Net2Deeper decisions of the controller (every one applied with the
function-preserving transforms, so the network starts its training computing exactly what the start network computes),
is trained with `train_network` and validated with `evaluate`; an architecture met before reuses its accuracy (EAS's
network pool) instead of being trained again. The rewards `tan(acc·π/2)` minus the moving-average baseline then give one
REINFORCE step of the controller.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .controller import EASMetaController, MovingAverageBaseline, accuracy_reward
from .transforms import _check_model, conv_blocks, conv_widths, function_change, net2deeper, net2wider


@dataclass
class Transform:
    """One transform applied to a network: `kind` `"wider"` (conv `layer` to `width` channels) or `"deeper"` (a new
    conv of `width` channels after conv `layer`), and the max |Δlogits| it caused on the probe images, with both forward
    passes in float64 (`function_change`: the transform's own error) and in float32 (`float32_change`: what a float32
    forward pass shows, rounding of the forward pass included)."""

    kind: str
    layer: int
    width: int
    function_change: float | None = None
    float32_change: float | None = None


@dataclass
class NetworkRecord:
    """One network the search sampled: its episode, its architecture (`config.layers`), the transforms that grew it from
    the start network, its validation accuracy and reward, and whether it was trained (False: its architecture was
    met before and its accuracy reused)."""

    episode: int
    index: int
    layers: list
    transforms: list
    accuracy: float
    reward: float
    trained: bool
    seconds: float = 0.0


@dataclass
class EASSearchResult:
    """What [`eas_search`] found.

    Attributes:
        start_layers / start_accuracy: the start network's architecture and validation accuracy.
        best: the [`NetworkRecord`] with the highest validation accuracy; `best_model` that network as trained in the
            search.
        networks: every network sampled, in order; `networks_evaluated` how many were trained and validated (new
            architectures), `networks_sampled` how many were sampled.
        max_function_change: the largest max |Δlogits| of any transform of the search (float64 forward passes);
            `max_float32_change` the same in float32.
        baselines: the REINFORCE baseline after each episode; `seconds`: wall time of the search.
        controller: the meta-controller after the search (pass it to another search to continue).
    """

    start_layers: list
    start_accuracy: float
    best: NetworkRecord | None
    best_model: object
    networks: list = field(default_factory=list)
    networks_evaluated: int = 0
    networks_sampled: int = 0
    max_function_change: float = 0.0
    max_float32_change: float = 0.0
    baselines: list = field(default_factory=list)
    seconds: float = 0.0
    controller: object = None

    def summary(self) -> dict:
        """The result as JSON values (without the models)."""
        return {"start_layers": self.start_layers, "start_accuracy": self.start_accuracy,
                "best": asdict(self.best) if self.best else None, "networks_evaluated": self.networks_evaluated,
                "networks_sampled": self.networks_sampled, "max_function_change": self.max_function_change,
                "max_float32_change": self.max_float32_change,
                "baselines": self.baselines, "seconds": round(self.seconds, 2),
                "networks": [asdict(record) for record in self.networks]}


def next_width(width: int, widths: list[int]) -> int | None:
    """The next ladder width above `width` (None at the top)."""
    return next((w for w in widths if w > width), None)


def apply_actions(model, transforms: list[Transform], *, calibration: torch.Tensor | None = None, noise: float = 0.0,
                  generator: torch.Generator | None = None, probe: torch.Tensor | None = None):
    """Replay `transforms` on `model` (e.g. the best network's, on its start network): returns the transformed network
    and the transforms with their measured max |Δlogits| on `probe` (float64 and float32 forward passes; None without a
    probe)."""
    measured = []
    for transform in transforms:
        if transform.kind == "wider":
            grown = net2wider(model, transform.layer, transform.width, noise=noise, generator=generator)
        elif transform.kind == "deeper":
            grown = net2deeper(model, transform.layer, calibration=calibration)
        else:
            raise ValueError(f"a transform's kind is 'wider' or 'deeper'; got {transform.kind!r}.")
        changes = (function_change(model, grown, probe), function_change(model, grown, probe, dtype=None)) \
            if probe is not None else (None, None)
        measured.append(Transform(transform.kind, transform.layer, transform.width, *changes))
        model = grown
    return model, measured


def cifar_trainer(train_dataset, output_dir: str | Path, **arguments) -> Callable:
    """A `train_network(model, name)` for [`eas_search`]: `CifarTrainer` with `CifarTrainingArguments(**arguments)`
    (e.g. `max_steps=100, learning_rate=0.05, optim="sgd"`), writing under `output_dir/name`; returns the model."""
    from hfcifar.training import CifarTrainer, CifarTrainingArguments

    if "max_steps" not in arguments and "num_train_epochs" not in arguments:
        raise ValueError("cifar_trainer needs the amount of training per network: max_steps=… or num_train_epochs=….")

    def train_network(model, name: str):
        settings = {"save_strategy": "no", "eval_strategy": "no", "report_to": "none", "logging_strategy": "no",
                    "disable_tqdm": True, **arguments}
        args = CifarTrainingArguments(output_dir=str(Path(output_dir) / name), **settings)
        trainer = CifarTrainer(model=model, args=args, train_dataset=train_dataset)
        trainer.train()
        return trainer.model

    return train_network


def validation_accuracy(dataset) -> Callable:
    """An `evaluate(model)` for [`eas_search`]: accuracy on a `CifarTensorDataset` (eval mode, batches of 256)."""
    from hfcifar.attacks.transfer import predict
    from hfcifar.data.augment import to_float_images

    def evaluate(model) -> float:
        predictions = predict(model, to_float_images(dataset.images))
        return float((predictions.cpu() == dataset.labels.cpu()).float().mean())

    return evaluate


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"eas_search: {name} must be an integer ≥ {minimum}; got {value!r}.")
    return value


def eas_search(model, train_network: Callable, evaluate: Callable, *, widths: list[int], episodes: int = 2,
               networks_per_episode: int = 4, wider_actions: int = 2, deeper_actions: int = 2,
               calibration: torch.Tensor | None = None, probe: torch.Tensor | None = None, noise: float = 0.1,
               controller: EASMetaController | None = None, learning_rate: float = 2e-3,
               entropy_penalty: float = 1e-5, baseline_decay: float = 0.95, seed: int = 0,
               log: Callable | None = None) -> EASSearchResult:
    r"""Search architectures around `model` with EAS's meta-controller, reusing `model`'s weights for every network.

    Args:
        model (`VGGForImageClassification`):
            The start network, already trained (it is not modified).
        train_network (`Callable[[model, str], model]`):
            Trains a network in place (or returns the trained one) given a name; e.g. [`cifar_trainer`], or
            `ClaimContext.train` in the claim check.
        evaluate (`Callable[[model], float]`):
            The validation accuracy of a network (e.g. [`validation_accuracy`] on images held out of training).
        widths (`list[int]`):
            The width ladder: a widened conv layer gets the next larger width of this list.
        episodes (`int`, *optional*, defaults to 2):
            Controller updates; each samples `networks_per_episode` networks (the paper: 10 per episode).
        wider_actions / deeper_actions (`int`, *optional*, default to 2):
            Net2Wider and Net2Deeper decisions per network (the authors' code: 4 and 5).
        calibration (`torch.Tensor`, *optional*):
            Training images (float N×3×32×32 in [0, 1]) that set each new layer's batch-norm statistics
            ([`net2deeper`]); EAS uses one batch of 64.
        probe (`torch.Tensor`, *optional*):
            Images on which every transform's max |Δlogits| is measured (none measured without).
        noise (`float`, *optional*, defaults to 0.1):
            Net2Wider's random outgoing-weight split (see [`net2wider`]); it breaks the symmetry of the copies without
            changing the function.
        controller (`EASMetaController`, *optional*):
            A controller to continue training; a new one over `widths` by default.
        learning_rate / entropy_penalty / baseline_decay:
            Adam's learning rate for the controller (2e-3), the entropy bonus (1e-5) and the baseline's decay (0.95).
        seed (`int`, *optional*, defaults to 0):
            Seeds the controller's initialization and sampling and the Net2Wider replication.
        log (`Callable[[str], None]`, *optional*):
            Called with one line per network.

    Returns:
        [`EASSearchResult`].
    """
    _check_model(model, "eas_search")
    for name, value, minimum in (("episodes", episodes, 1), ("networks_per_episode", networks_per_episode, 1),
                                 ("wider_actions", wider_actions, 0), ("deeper_actions", deeper_actions, 0)):
        _check_int(name, value, minimum)
    if wider_actions + deeper_actions == 0:
        raise ValueError("eas_search: give the controller at least one action (wider_actions or deeper_actions ≥ 1).")
    started = time.monotonic()
    generator = torch.Generator().manual_seed(seed)
    if controller is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            controller = EASMetaController(widths)
    elif list(controller.widths) != list(widths):
        raise ValueError(f"eas_search: the controller's width ladder {controller.widths} differs from widths {widths}.")
    optimizer = torch.optim.Adam(controller.parameters(), lr=learning_rate)
    baseline = MovingAverageBaseline(baseline_decay)

    start_layers = list(model.config.layers)
    result = EASSearchResult(start_layers=start_layers, start_accuracy=float(evaluate(model)), best=None,
                             best_model=None, controller=controller)
    pool: dict[tuple, float] = {}  # EAS's network pool: architecture → validation accuracy
    grow = dict(calibration=calibration, noise=noise, generator=generator, probe=probe)
    for episode in range(episodes):
        trajectories, records = [], []
        for index in range(networks_per_episode):
            network_started = time.monotonic()
            network, decisions, transforms = model, [], []
            for _ in range(wider_actions):
                decision = controller.sample_wider(network.config.layers, generator)
                decisions.append(decision)
                chosen = [Transform("wider", layer, next_width(conv_widths(network.config)[layer], widths))
                          for layer, widen in enumerate(decision.widen) if widen]
                network, measured = apply_actions(network, chosen, **grow)
                transforms += measured
            for _ in range(deeper_actions):
                decision = controller.sample_deeper(network.config.layers, generator)
                decisions.append(decision)
                layer = conv_blocks(network.config)[decision.block][decision.position]
                chosen = [Transform("deeper", layer, conv_widths(network.config)[layer])]
                network, measured = apply_actions(network, chosen, **grow)
                transforms += measured

            key = tuple(network.config.layers)
            trained = key not in pool
            if trained:
                network = train_network(network, f"episode-{episode}-network-{index}") or network
                pool[key] = float(evaluate(network))
                result.networks_evaluated += 1
            accuracy = pool[key]
            record = NetworkRecord(episode, index, list(key), transforms, accuracy, accuracy_reward(accuracy), trained,
                                   round(time.monotonic() - network_started, 2))
            if trained and (result.best is None or accuracy > result.best.accuracy):
                result.best, result.best_model = record, network
            records.append(record)
            trajectories.append(decisions)
            result.networks_sampled += 1
            if log is not None:
                log(f"episode {episode} network {index}: {list(key)} accuracy {accuracy:.4f}"
                    + ("" if trained else " (architecture met before)"))
        rewards = [record.reward for record in records]
        value = baseline.update(rewards)
        result.baselines.append(value)
        optimizer.zero_grad()
        controller.reinforce_loss(trajectories, [r - value for r in rewards], entropy_penalty).backward()
        optimizer.step()
        result.networks.extend(records)

    measured = [t for r in result.networks for t in r.transforms if t.function_change is not None]
    result.max_function_change = max((t.function_change for t in measured), default=0.0)
    result.max_float32_change = max((t.float32_change for t in measured), default=0.0)
    result.seconds = time.monotonic() - started
    return result


__all__ = ["EASSearchResult", "NetworkRecord", "Transform", "apply_actions", "cifar_trainer", "eas_search",
           "next_width", "validation_accuracy"]
