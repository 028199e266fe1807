"""EAS (row 26): Net2Wider / Net2Deeper preserve the function (eval mode, batch norm with real statistics), return new
models that round-trip through from_pretrained, refuse bad input; the meta-controller's actors respect their masks and
REINFORCE moves them towards rewarded actions; the search reuses weights, caches architectures and replays its best."""

from __future__ import annotations

import pytest
import torch

from hfcifar.data import CifarTensorDataset
from hfcifar.methods.eas_net_transformation import (EASMetaController, conv_blocks, conv_widths, eas_search,
                                                    function_change, net2deeper, net2wider)
from hfcifar.methods.eas_net_transformation.claim import random_battery
from hfcifar.methods.eas_net_transformation.controller import (DeeperDecision, WiderDecision, accuracy_reward,
                                                               architecture_tokens)
from hfcifar.methods.eas_net_transformation.search import (Transform, apply_actions, cifar_trainer, next_width,
                                                           validation_accuracy)
from hfcifar.methods.eas_net_transformation.transforms import input_statistics, outgoing_split, replication_mapping
from hfcifar.models import create_model
from hfcifar.models.vgg import VGGConfig, VGGForImageClassification

LAYERS = [6, "M", 8, 8, "M", 5]


def random_statistics(model, seed=0):
    """Give every batch norm non-trivial running statistics and affine parameters, as a trained network has."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=generator))
                module.running_var.copy_(torch.rand(n, generator=generator) * 2 + 0.2)
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(n, generator=generator))
    return model


def plain_cnn(layers=LAYERS, batch_norm=True, seed=0):
    torch.manual_seed(seed)
    return random_statistics(VGGForImageClassification(VGGConfig(layers=list(layers), batch_norm=batch_norm)), seed)


def images(n=8, seed=1):
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("layer, new_width", [(0, 9), (1, 16), (2, 11), (3, 12)])
@pytest.mark.parametrize("noise", [0.0, 0.2])
def test_net2wider_preserves_the_function_and_leaves_the_input_untouched(layer, new_width, noise):
    model = plain_cnn().eval()
    before = snapshot(model)
    wider = net2wider(model, layer, new_width, noise=noise, generator=torch.Generator().manual_seed(0))
    assert conv_widths(wider.config)[layer] == new_width
    assert [w for i, w in enumerate(conv_widths(wider.config)) if i != layer] == \
        [w for i, w in enumerate(conv_widths(model.config)) if i != layer]
    assert wider is not model and not wider.training
    assert function_change(model, wider, images()) <= 1e-5
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert wider.num_parameters() > model.num_parameters()


def test_net2wider_preserves_the_function_in_train_mode_too():
    # copies have identical activations, so identical batch statistics: batch norm in train mode agrees as well
    model = plain_cnn().train()
    wider = net2wider(model, 1, 20, generator=torch.Generator().manual_seed(3))
    assert wider.training
    x = images(16)
    with torch.no_grad():
        assert (model(x).logits - wider(x).logits).abs().max() <= 1e-5


def test_net2wider_copies_units_and_splits_their_outgoing_weights():
    mapping = replication_mapping(4, 9, torch.Generator().manual_seed(0))
    assert mapping[:4].tolist() == [0, 1, 2, 3] and mapping.max() < 4
    for noise in (0.0, 0.3):
        split = outgoing_split(mapping, 4, noise, torch.Generator().manual_seed(1))
        totals = torch.zeros(4, dtype=split.dtype).index_add_(0, mapping, split)
        assert torch.allclose(totals, torch.ones(4, dtype=split.dtype))
    equal = outgoing_split(mapping, 4)
    counts = torch.bincount(mapping, minlength=4).to(equal.dtype)
    assert torch.allclose(equal, 1 / counts[mapping])
    noisy = outgoing_split(mapping, 4, 0.3, torch.Generator().manual_seed(1))
    assert not torch.allclose(noisy, equal)  # the copies no longer get identical gradients
    model = plain_cnn()
    wider = net2wider(model, 0, 10, generator=torch.Generator().manual_seed(0))
    new_conv, old_conv = wider.vgg.stages[0].layers[0].conv, model.vgg.stages[0].layers[0].conv
    for j in range(10):
        assert any(torch.equal(new_conv.weight[j], old_conv.weight[c]) for c in range(6))


@pytest.mark.parametrize("after_layer", [0, 1, 2, 3])
@pytest.mark.parametrize("calibrated", [False, True])
def test_net2deeper_preserves_the_function_at_every_position(after_layer, calibrated):
    model = plain_cnn().eval()
    before = snapshot(model)
    x = images()
    deeper = net2deeper(model, after_layer, calibration=x if calibrated else None)
    widths = conv_widths(model.config)
    assert conv_widths(deeper.config) == widths[:after_layer + 1] + [widths[after_layer]] + widths[after_layer + 1:]
    assert deeper.config.layers.count("M") == model.config.layers.count("M")
    assert function_change(model, deeper, x) <= 1e-5
    assert function_change(model, deeper, images(seed=7)) <= 1e-5
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_net2deeper_with_calibration_is_close_to_the_identity_in_train_mode():
    model = plain_cnn().eval()
    x = images(32)
    deeper = net2deeper(model, 1, calibration=x).eval()
    captured = {}
    layers = [layer for stage in deeper.vgg.stages for layer in stage.layers]
    layers[2].norm.train()  # only the new batch norm normalizes with batch statistics
    layers[1].act.register_forward_hook(lambda m, i, o: captured.update(before=o))
    layers[2].act.register_forward_hook(lambda m, i, o: captured.update(after=o))
    mean, var = input_statistics(model, 1, x)
    norm = layers[2].norm
    assert torch.allclose(norm.running_mean, mean) and torch.allclose(norm.running_var, var)
    assert torch.allclose(norm.weight, torch.sqrt(var + norm.eps)) and torch.allclose(norm.bias, mean)
    with torch.no_grad():
        deeper(x)  # the calibration batch's statistics are the running statistics net2deeper set
    assert torch.allclose(captured["after"], captured["before"], atol=1e-4)


def test_transforms_without_batch_norm():
    model = plain_cnn(batch_norm=False).eval()
    x = images()
    assert function_change(model, net2wider(model, 2, 12), x) <= 1e-5
    assert function_change(model, net2deeper(model, 0), x) <= 1e-5


def test_transformed_model_round_trips_through_from_pretrained(tmp_path):
    model = plain_cnn().eval()
    grown = net2deeper(net2wider(model, 1, 12, noise=0.1), 1, calibration=images())
    grown.save_pretrained(tmp_path)
    loaded = VGGForImageClassification.from_pretrained(tmp_path).eval()
    assert loaded.config.layers == [6, "M", 12, 12, 8, "M", 5]
    x = images()
    with torch.no_grad():
        assert torch.equal(loaded(x).logits, grown(x).logits)
    assert function_change(model, loaded, x) <= 1e-5


@pytest.mark.parametrize("call, error, match", [
    (lambda m: net2wider(m, 4, 20), ValueError, r"integer in \[0, 3\]"),
    (lambda m: net2wider(m, -1, 20), ValueError, "index of a conv layer"),
    (lambda m: net2wider(m, True, 20), ValueError, "index of a conv layer"),
    (lambda m: net2wider(m, 1, 8), ValueError, "larger than conv layer 1's current width 8"),
    (lambda m: net2wider(m, 1, 7), ValueError, "Net2Net only widens"),
    (lambda m: net2wider(m, 1, 12.0), ValueError, "new_width must be an integer"),
    (lambda m: net2wider(m, 1, 12, noise=-0.1), ValueError, "noise must be a number in"),
    (lambda m: net2deeper(m, 4), ValueError, "after_layer must be the index of a conv layer"),
    (lambda m: net2deeper(m, 0, calibration=torch.rand(2, 3, 16, 16)), ValueError, "pixel_values must be"),
    (lambda m: net2wider(create_model("convnet", net_width=8, net_depth=1), 0, 9), TypeError, "VGGForImageClass"),
    (lambda m: net2deeper(torch.nn.Linear(2, 2), 0), TypeError, "create_model"),
])
def test_bad_input_is_refused_with_the_fix(call, error, match):
    with pytest.raises(error, match=match):
        call(plain_cnn())


def test_conv_blocks_and_tokens():
    config = VGGConfig(layers=[4, "M", "M", 8, 8, "M", 16])
    assert conv_blocks(config) == [[0], [], [1, 2], [3]]
    assert architecture_tokens(config.layers, [4, 8, 16]) == [2, 1, 1, 3, 3, 1, 4]
    assert next_width(8, [4, 8, 16]) == 16 and next_width(16, [4, 8, 16]) is None and next_width(5, [4, 8, 16]) == 8
    assert accuracy_reward(0.5) == pytest.approx(1.0)
    assert accuracy_reward(0.9) > 2 * accuracy_reward(0.6)  # tan stretches differences at high accuracy


def test_controller_sampling_is_reproducible_and_respects_its_masks():
    torch.manual_seed(0)
    controller = EASMetaController([4, 8, 16])
    layers = [16, "M", 4, 8, "M", "M", 8]

    def sample(seed):
        generator = torch.Generator().manual_seed(seed)
        return [controller.sample_wider(layers, generator) for _ in range(20)], \
            [controller.sample_deeper(layers, generator) for _ in range(40)]

    wider, deeper = sample(0)
    assert [d.widen for d in wider] == [d.widen for d in sample(0)[0]]
    assert all(d.allowed == [False, True, True, True] and not d.widen[0] for d in wider)  # 16 is the top width
    assert any(any(d.widen) for d in wider)
    sizes = [1, 2, 0, 1]
    assert all(d.block != 2 and d.position < sizes[d.block] for d in deeper)  # never an empty block or a missing layer
    assert {d.block for d in deeper} == {0, 1, 3}
    with pytest.raises(ValueError, match="max_blocks=6"):
        controller.sample_deeper([4, "M"] * 6)


@pytest.mark.parametrize("widths, match", [([8, 4], "strictly increasing"), ([], "strictly increasing"),
                                           ([4, 4.5], "strictly increasing")])
def test_controller_refuses_a_bad_ladder(widths, match):
    with pytest.raises(ValueError, match=match):
        EASMetaController(widths)


def test_reinforce_moves_the_actors_towards_rewarded_actions():
    torch.manual_seed(0)
    controller = EASMetaController([4, 8, 16])
    layers = [4, "M", 4, 4, "M"]
    widen_first = WiderDecision(layers, [True, False, False], [True, True, True])
    widen_none = WiderDecision(layers, [False, False, False], [True, True, True])
    deeper = DeeperDecision(layers, 1, 1)
    optimizer = torch.optim.Adam(controller.parameters(), lr=0.05)
    before_wider = controller.wider_probabilities(layers)[0][0].item()
    before_deeper = controller.deeper_distributions(layers, 1)[1][1].item()
    for _ in range(10):
        optimizer.zero_grad()
        controller.reinforce_loss([[widen_first, deeper], [widen_none]], [1.0, -1.0]).backward()
        optimizer.step()
    assert controller.wider_probabilities(layers)[0][0].item() > before_wider + 0.1
    assert controller.deeper_distributions(layers, 1)[1][1].item() > before_deeper + 0.1


def tiny_search(model, evaluate, train_network=None, **kwargs):
    settings = dict(widths=[6, 8, 12, 16], episodes=2, networks_per_episode=3, wider_actions=1, deeper_actions=1,
                    calibration=images(), probe=images(seed=5), seed=0)
    return eas_search(model, train_network or (lambda m, name: m), evaluate, **{**settings, **kwargs})


def test_search_reuses_weights_caches_architectures_and_replays_its_best():
    model = plain_cnn([6, "M", 8, "M"]).eval()
    before = snapshot(model)
    trained = []

    def train_network(network, name):
        trained.append(name)
        # the network starts from the start network's function: the weights were inherited, not re-initialized
        assert function_change(model, network, images()) <= 1e-5
        return network

    def evaluate(network):  # a stand-in accuracy that prefers deeper and wider networks
        return min(0.9, 0.1 + 0.01 * network.num_parameters() / 1000)

    result = tiny_search(model, evaluate, train_network)
    assert result.networks_sampled == 6 and len(result.networks) == 6
    assert result.networks_evaluated == len(trained) == len({tuple(r.layers) for r in result.networks})
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert result.best.accuracy == max(r.accuracy for r in result.networks)
    assert result.best_model.config.layers == result.best.layers
    assert 0 < result.max_function_change <= 1e-5
    assert len(result.baselines) == 2 and result.start_accuracy == evaluate(model)
    replayed, measured = apply_actions(model, result.best.transforms, calibration=images(), noise=0.1,
                                       generator=torch.Generator().manual_seed(9), probe=images())
    assert replayed.config.layers == result.best.layers
    assert all(t.function_change <= 1e-5 for t in measured)
    again = tiny_search(model, evaluate)
    assert [r.layers for r in again.networks] == [r.layers for r in result.networks]  # the seed fixes the search
    assert result.summary()["networks_evaluated"] == result.networks_evaluated


def test_search_learns_which_action_pays():
    # reward only the networks whose first conv was widened: REINFORCE must raise that layer's widening probability
    model = plain_cnn([6, "M", 8, "M"]).eval()
    controller = EASMetaController([6, 8, 12, 16, 24, 32])
    start = controller.wider_probabilities(model.config.layers)[0][0].item()
    tiny_search(model, lambda net: 0.8 if conv_widths(net.config)[0] > 6 else 0.2, controller=controller,
                widths=[6, 8, 12, 16, 24, 32], episodes=6, networks_per_episode=4, learning_rate=0.05)
    assert controller.wider_probabilities(model.config.layers)[0][0].item() > start + 0.1


@pytest.mark.parametrize("kwargs, match", [({"episodes": 0}, "episodes must be an integer ≥ 1"),
                                           ({"wider_actions": 0, "deeper_actions": 0}, "at least one action"),
                                           ({"controller": EASMetaController([6, 8])}, "width ladder")])
def test_search_refuses_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny_search(plain_cnn([6, "M"]), lambda m: 0.5, **kwargs)


def test_search_with_cifar_trainer_end_to_end(tmp_path):
    generator = torch.Generator().manual_seed(0)
    data = CifarTensorDataset(torch.randint(0, 256, (48, 3, 32, 32), dtype=torch.uint8, generator=generator),
                              torch.randint(0, 10, (48,), generator=generator))
    model = plain_cnn([4, "M", 8, "M"])
    train_network = cifar_trainer(data, tmp_path, max_steps=2, per_device_train_batch_size=16, learning_rate=0.01,
                                  disable_tqdm=True, logging_strategy="no")
    result = eas_search(model, train_network, validation_accuracy(data), widths=[4, 8, 16], episodes=1,
                        networks_per_episode=2, wider_actions=1, deeper_actions=1, probe=images(4))
    assert result.networks_evaluated >= 1 and result.best_model is not None
    assert 0.0 <= result.best.accuracy <= 1.0 and result.best.trained
    with pytest.raises(ValueError, match="max_steps"):
        cifar_trainer(data, tmp_path)
    with pytest.raises(ValueError, match="'wider' or 'deeper'"):
        apply_actions(model, [Transform("taller", 0, 8)])


def test_random_battery_stays_below_the_threshold():
    changes = random_battery(10, torch.Generator().manual_seed(0), 8)
    assert len(changes) == 10 and max(c[0] for c in changes) <= 1e-5 and max(c[1] for c in changes) <= 1e-5


def test_function_change_in_float64_measures_the_transform_not_the_forward_passs_rounding():
    model = plain_cnn().eval()
    with torch.no_grad():
        model.classifier.weight.mul_(1000)  # large logits: float32 rounding of the forward pass grows with them
    x = images()
    assert function_change(model, model, x) == 0.0
    wider = net2wider(model, 3, 13, generator=torch.Generator().manual_seed(0))
    float64, float32 = function_change(model, wider, x), function_change(model, wider, x, dtype=None)
    assert float64 < float32
    assert model.classifier.weight.dtype == torch.float32  # the models are compared on copies
    broken = net2wider(model, 3, 13, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        broken.vgg.stages[2].layers[0].conv.bias[-1] += 0.1  # a transform that is not function-preserving is caught
    assert function_change(model, broken, x) > 1e-3
