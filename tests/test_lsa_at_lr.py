"""LSA and AT-LR (row 14): the relative error, Algorithm 1's MVL rule, the probes, and the AT-LR loss."""

import copy

import pytest
import torch
from torch import nn

import hfcifar
from hfcifar.attacks import FGSM, PGD
from hfcifar.data import CifarTensorDataset
from hfcifar.methods.lsa_at_lr import (
    ATLRTrainer,
    ATLRTrainingArguments,
    LayerRepresentations,
    frozen_batch_norm_statistics,
    layer_sustainability_analysis,
    most_vulnerable_layers,
    plot_layer_sustainability,
    probe_layers,
    relative_error,
)
from hfcifar.training import AdversarialTrainer, AdversarialTrainingArguments


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return hfcifar.create_model("fastnet-tiny")


def tiny_data(n=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator)
    return CifarTensorDataset(images, torch.arange(n) % 10)


def settings(**overrides):
    values = dict(per_device_train_batch_size=8, max_steps=2, learning_rate=0.05, report_to="none", save_strategy="no",
                  eval_strategy="no", plot_curves=False, disable_tqdm=True, attack="pgd", attack_steps=2,
                  attack_eps=8 / 255, attack_alpha=4 / 255, seed=7, optim="sgd", optim_args="momentum=0.9")
    values.update(overrides)
    return values


def test_relative_error_is_the_frobenius_ratio_per_example():
    clean = torch.tensor([[[1.0, 2.0], [2.0, 0.0]], [[0.0, 3.0], [4.0, 0.0]]])
    perturbed = torch.tensor([[[1.0, 2.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    # ‖(0,0,2,0)‖ / ‖(1,2,2,0)‖ = 2/3 ; ‖(0,3,4,0)‖ / ‖(0,3,4,0)‖ = 1
    torch.testing.assert_close(relative_error(clean, perturbed), torch.tensor([2 / 3, 1.0]))


def test_mvl_follows_algorithm_1_with_the_statistics_of_eq_12():
    errors = torch.tensor([[0.2, 0.9, 0.3, 0.4], [0.2, 1.1, 0.3, 0.6]])  # M = 2 samples, L = 4 layers
    values = errors.flatten().tolist()
    mu = sum(values) / len(values)
    sigma = (sum((v - mu) ** 2 for v in values) / len(values)) ** 0.5  # 1/(M·Ly), Eq. 12
    per_layer = [0.2, 1.0, 0.3, 0.5]
    for eta in (1.0, 0.5, 0.0, -1.0):
        expected = [l for l, value in enumerate(per_layer) if value - mu > eta * sigma]
        assert most_vulnerable_layers(errors, eta) == expected
    assert most_vulnerable_layers(errors, 1.0) == [1]
    assert most_vulnerable_layers(torch.tensor([1.0, 1.0, 5.0, 1.0]), 1.0) == [2]  # one sample: (L,)
    with pytest.raises(ValueError, match="shape"):
        most_vulnerable_layers(torch.zeros(2, 2, 2))


def test_probes_capture_the_representations_the_model_reports():
    model = tiny_model().eval()
    layers = probe_layers(model)
    assert layers == ["fastnet.stem.2"] + [f"fastnet.blocks.{i}.act{j}" for i in range(3) for j in (1, 2)]
    images = torch.rand(3, 3, 32, 32)
    with LayerRepresentations(model, layers) as probe:
        outputs = model(images, output_hidden_states=True)
        captured = probe.pop()
    # oracle: the hidden states FastNet returns are the stem's and each block's (act2) outputs
    torch.testing.assert_close(captured["fastnet.stem.2"], outputs.hidden_states[0])
    for i in range(3):
        torch.testing.assert_close(captured[f"fastnet.blocks.{i}.act2"], outputs.hidden_states[i + 1])
    assert all(not m._forward_hooks for m in model.modules()), "hooks must be removed on exit"


def test_probes_refuse_what_they_cannot_measure():
    model = tiny_model()
    with pytest.raises(ValueError, match="No module named"):
        LayerRepresentations(model, ["fastnet.blocks.9.act1"])

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.act(x))

    twice = Twice()
    with pytest.raises(ValueError, match="ran twice"):
        with LayerRepresentations(twice, ["act"]):
            twice(torch.ones(2))


def test_lsa_measures_zero_without_a_perturbation_and_ranks_layers_under_pgd(tmp_path):
    model = tiny_model().train()
    images, labels = torch.rand(12, 3, 32, 32), torch.arange(12) % 10

    def no_attack(x, y):
        return x

    out = layer_sustainability_analysis(model, images, labels, no_attack)
    assert out.per_example.shape == (12, 7) and float(out.relative_errors.abs().max()) == 0.0
    assert out.most_vulnerable_layers == [] and model.training  # mode restored

    out = layer_sustainability_analysis(model, images, labels, PGD(model, eps=8 / 255, steps=3), eta=0.0, batch_size=5)
    assert (out.relative_errors > 0).all() and out.mean == pytest.approx(float(out.per_example.mean()))
    expected = [out.layers[i] for i in most_vulnerable_layers(out.per_example, 0.0)]
    assert out.most_vulnerable_layers == expected and expected
    assert set(out.to_dict()) >= {"layers", "relative_errors", "most_vulnerable_layers", "eta"}
    path = plot_layer_sustainability(out, tmp_path / "lsa.png")
    assert open(path, "rb").read(4) == b"\x89PNG"


def test_frozen_batch_norm_statistics_leaves_running_stats_untouched():
    model = tiny_model().train()
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    before = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone(), m.momentum) for m in norms]
    with frozen_batch_norm_statistics(model):
        model(torch.rand(4, 3, 32, 32))
    for m, (mean, var, tracked, momentum) in zip(norms, before):
        assert torch.equal(m.running_mean, mean) and torch.equal(m.running_var, var)
        assert torch.equal(m.num_batches_tracked, tracked) and m.momentum == momentum
    model(torch.rand(4, 3, 32, 32))
    assert not torch.equal(norms[0].running_mean, before[0][0])  # outside the context, training mode updates them


def test_at_lr_with_zero_weight_trains_exactly_plain_at(tmp_path):
    data = tiny_data()
    plain, regularized = tiny_model(3), tiny_model(3)
    AdversarialTrainer(model=plain, args=AdversarialTrainingArguments(str(tmp_path / "at"), **settings()),
                       train_dataset=data).train()
    args = ATLRTrainingArguments(str(tmp_path / "atlr"), most_vulnerable_layers=["fastnet.blocks.0.act2"],
                                 layer_regularization_weight=0.0, **settings())
    ATLRTrainer(model=regularized, args=args, train_dataset=data).train()
    # weights and BN statistics; the tolerance absorbs float reordering between two multi-threaded runs (seen: 6e-6 on
    # a loaded 2-core CI), far below what any extra term or forward pass would change (~1e-2)
    for a, b in zip(plain.state_dict().values(), regularized.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=5e-5)


def test_at_lr_loss_adds_gamma_times_the_relative_errors_of_the_mvl(tmp_path):
    layers = ["fastnet.blocks.1.act2", "fastnet.blocks.2.act1"]
    start = tiny_model().train()
    inputs = {"pixel_values": torch.rand(6, 3, 32, 32), "labels": torch.arange(6)}
    losses = {}
    for gamma in (0.0, 2.5):  # each from the same state: a forward in training mode moves the BN statistics
        model = copy.deepcopy(start)
        args = ATLRTrainingArguments(str(tmp_path / str(gamma)), most_vulnerable_layers=layers,
                                     layer_regularization_weight=gamma, **settings(attack="fgsm"))
        losses[gamma] = ATLRTrainer(model=model, args=args).compute_loss(model, dict(inputs)).item()
    model = copy.deepcopy(start)
    adversarial = FGSM(model, eps=8 / 255)(inputs["pixel_values"], inputs["labels"])  # FGSM is deterministic
    with LayerRepresentations(model, layers) as probe, frozen_batch_norm_statistics(model):
        model(inputs["pixel_values"])
        clean = probe.pop()
        model(adversarial)
        perturbed = probe.pop()
    by_hand = sum(relative_error(clean[name], perturbed[name]).mean().item() for name in layers)
    assert by_hand > 0
    assert losses[2.5] - losses[0.0] == pytest.approx(2.5 * by_hand, rel=1e-4)


def test_bad_at_lr_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="layer_regularization_weight"):
        ATLRTrainingArguments(str(tmp_path), layer_regularization_weight=-1.0)
    args = ATLRTrainingArguments(str(tmp_path), most_vulnerable_layers=["features.3"], **settings())
    with pytest.raises(ValueError, match="features.3"):
        ATLRTrainer(model=tiny_model(), args=args)
    with pytest.raises(TypeError, match="ATLRTrainingArguments"):
        ATLRTrainer(model=tiny_model(), args=AdversarialTrainingArguments(str(tmp_path), **settings()))
    with pytest.raises(ValueError, match="attack"):
        layer_sustainability_analysis(tiny_model(), torch.rand(2, 3, 32, 32), torch.zeros(2, dtype=torch.long), attack=None)


def test_claim_scores_each_image_under_pgd_with_shared_random_starts():
    from hfcifar.methods.lsa_at_lr.claim import robust_correct
    from hfcifar.reproduce import ClaimContext

    model = tiny_model(4).eval()
    data = tiny_data(20)
    clean = ClaimContext.correct(model, data)
    # ε = 0 leaves every image as it is: per image, robust correctness is clean correctness
    assert (robust_correct(model, data, eps=0.0, batch_size=8) == clean).all()
    # the same seed gives the same random starts, so two evaluations of one model agree image for image
    first = robust_correct(model, data, eps=16 / 255, steps=2, batch_size=8, seed=3)
    assert first.shape == (20,) and (first == robust_correct(model, data, eps=16 / 255, steps=2, batch_size=8, seed=3)).all()
