"""The attack library: each attack against its defining equation, the base class's contract, and bad input.

Models are tiny (a linear classifier, where the minimum L2 distance to the decision boundary has a closed form,
and a small conv net); tensors are synthetic; every attack is deterministic, so nothing here depends on luck.
"""

import pytest
import torch
from torch import nn

from hfcifar.attacks import ATTACKS, CW, FGSM, PGD, PGDL2, Attack, TransferAttack, create_attack, predict, success_rate
from hfcifar.models import create_model
from hfcifar.registry import Registry, RegistryError


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # These tensors are tiny: on a shared 2-core machine, two OpenMP threads spend more time waiting for each
    # other than computing (measured 40× slower per op under load), so this file runs single-threaded.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def linear_model(seed: int = 0, size: int = 8) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * size * size, 10))
    with torch.no_grad():
        model[1].weight.mul_(4)  # margins of a few units, like a trained network's logits
    return model.eval()


def conv_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                         nn.Linear(128, 10)).eval()


def batch(n: int = 16, size: int = 8, seed: int = 0, model: nn.Module | None = None):
    # offset: the models draw their weights from torch.manual_seed(seed), and images from the same stream would
    # correlate with the weight rows (image i ∝ row i gives image i a huge margin for class i)
    generator = torch.Generator().manual_seed(10_000 + seed)
    images = torch.rand(n, 3, size, size, generator=generator)
    labels = model(images).argmax(1) if model is not None else torch.randint(0, 10, (n,), generator=generator)
    return images, labels


def cross_entropy_gradient(model, images, labels):
    images = images.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(nn.functional.cross_entropy(model(images), labels), images)
    return grad


def linear_boundary_distance(model, images, labels):
    """Exact minimum L2 distance to another class's region for a linear model, without the [0, 1] box:
    min_{j≠y} (z_y − z_j) / ‖w_y − w_j‖₂. With the box the true minimum can only be larger."""
    weight = model[1].weight
    logits = model(images).detach()
    distances = []
    for z, y in zip(logits, labels):
        d = (z[y] - z) / (weight[y] - weight).norm(dim=1).clamp_min(1e-12)
        d[y] = float("inf")
        distances.append(d.min())
    return torch.stack(distances).detach()


# -- FGSM ------------------------------------------------------------------------------------------------------
def test_fgsm_is_one_signed_gradient_step():
    model = conv_model()
    images, labels = batch(model=None)
    grad = cross_entropy_gradient(model, images, labels)
    expected = (images + 8 / 255 * grad.sign()).clamp(0, 1)
    assert torch.equal(FGSM(model, eps=8 / 255)(images, labels), expected)


def test_targeted_fgsm_moves_toward_the_target():
    model = linear_model()
    images, labels = batch(n=64, model=model)
    targets = (labels + 1) % 10
    attack = FGSM(model, eps=1 / 255).set_targeted()
    before = nn.functional.cross_entropy(model(images), targets, reduction="none")
    after = nn.functional.cross_entropy(model(attack(images, targets)), targets, reduction="none")
    assert (after < before).all()  # a small step against the target's gradient lowers its loss, image by image
    # A larger step lands on the target far more often than an untargeted step of the same size does.
    hits = (model(FGSM(model, eps=32 / 255).set_targeted()(images, targets)).argmax(1) == targets).float().mean()
    untargeted = (model(FGSM(model, eps=32 / 255)(images, labels)).argmax(1) == targets).float().mean()
    assert hits > 0.5 and hits > 4 * untargeted


# -- PGD -------------------------------------------------------------------------------------------------------
class Recording:
    """Mixin: keep every iterate that `project` returns (the random start and each step)."""

    def project(self, adversarial, images):
        projected = super().project(adversarial, images)
        self.iterates.append(projected.detach().clone())
        return projected


class RecordingPGD(Recording, PGD):
    iterates: list


class RecordingPGDL2(Recording, PGDL2):
    iterates: list


@pytest.mark.parametrize("cls, eps, alpha", [(RecordingPGD, 8 / 255, 4 / 255), (RecordingPGDL2, 0.5, 0.3)])
def test_every_pgd_iterate_stays_in_the_eps_ball_and_the_image_box(cls, eps, alpha):
    model = conv_model()
    images, labels = batch(model=model)
    attack = cls(model, eps=eps, alpha=alpha, steps=6)
    attack.iterates = []
    adversarial = attack(images, labels)
    assert len(attack.iterates) == 7 and torch.equal(attack.iterates[-1], adversarial)
    for iterate in attack.iterates:
        delta = (iterate - images).flatten(1)
        norm = delta.abs().amax(1) if cls is RecordingPGD else delta.norm(dim=1)
        assert (norm <= eps * (1 + 1e-5) + 1e-7).all()
        assert iterate.min() >= 0 and iterate.max() <= 1
    # the attack used its budget: the perturbation is not trivially small
    final = (adversarial - images).flatten(1)
    assert (final.abs().amax(1) if cls is RecordingPGD else final.norm(dim=1)).mean() > eps / 2


@pytest.mark.parametrize("cls", [PGD, PGDL2])
def test_pgd_is_deterministic_under_its_seed(cls):
    model = conv_model()
    images, labels = batch(model=model)
    first = cls(model, steps=3, seed=7)(images, labels)
    assert torch.equal(first, cls(model, steps=3, seed=7)(images, labels))
    assert not torch.equal(first, cls(model, steps=3, seed=8)(images, labels))


def test_pgd_raises_the_loss_and_beats_fgsm():
    model = linear_model()
    images, labels = batch(n=64, model=model)
    clean = nn.functional.cross_entropy(model(images), labels)
    fgsm = nn.functional.cross_entropy(model(FGSM(model, eps=4 / 255)(images, labels)), labels)
    pgd = nn.functional.cross_entropy(model(PGD(model, eps=4 / 255, alpha=1 / 255, steps=10)(images, labels)), labels)
    assert clean < fgsm <= pgd * (1 + 1e-4)


# -- CW-L2 -----------------------------------------------------------------------------------------------------
def test_cw_examples_are_adversarial_where_it_reports_success_and_near_the_minimum_distance():
    model = linear_model()
    images, labels = batch(n=32, model=model)
    attack = CW(model, binary_search_steps=6, steps=100)
    adversarial = attack(images, labels)
    success = attack.last_success
    assert success.dtype == torch.bool and success.shape == labels.shape and success.float().mean() > 0.9
    assert (model(adversarial).argmax(1)[success] != labels[success]).all()
    assert torch.equal(adversarial[~success], images[~success])
    l2 = (adversarial - images).flatten(1).norm(dim=1)
    assert torch.allclose(attack.last_l2, torch.where(success, l2, torch.zeros_like(l2)))
    # No attack beats the exact minimum distance (box ignored, so a lower bound), and CW gets close to it.
    bound = linear_boundary_distance(model, images, labels)[success]
    assert (l2[success] >= bound * (1 - 1e-3)).all()
    assert (l2[success] / bound).median() < 1.1


def test_cw_finds_smaller_perturbations_than_the_smallest_successful_fgsm():
    model = linear_model(seed=1)
    images, labels = batch(n=32, seed=1, model=model)
    attack = CW(model, binary_search_steps=6, steps=100)
    cw_l2 = (attack(images, labels) - images).flatten(1).norm(dim=1)
    # Baseline: for each image, the FGSM example of the smallest ε (on a grid) that fools the model.
    fgsm_l2 = torch.full_like(cw_l2, float("inf"))
    for eps in [i / 255 for i in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)]:
        adversarial = FGSM(model, eps=eps)(images, labels)
        fooled = (model(adversarial).argmax(1) != labels) & fgsm_l2.isinf()
        fgsm_l2[fooled] = (adversarial - images).flatten(1).norm(dim=1)[fooled]
    both = attack.last_success & fgsm_l2.isfinite()
    assert both.sum() >= 24
    assert cw_l2[both].mean() < 0.8 * fgsm_l2[both].mean()
    assert (cw_l2[both] < fgsm_l2[both]).float().mean() > 0.9


def test_targeted_cw_reaches_the_target():
    model = linear_model()
    images, labels = batch(n=16, model=model)
    targets = (labels + 3) % 10
    attack = CW(model, binary_search_steps=6, steps=100).set_targeted()
    adversarial = attack(images, targets)
    assert attack.last_success.float().mean() > 0.9
    assert (model(adversarial).argmax(1)[attack.last_success] == targets[attack.last_success]).all()


def test_cw_with_a_budget_counts_only_successes_within_eps():
    model = linear_model()
    images, labels = batch(n=32, model=model)
    unbounded = CW(model, binary_search_steps=4, steps=40)
    unbounded(images, labels)
    eps = unbounded.last_l2[unbounded.last_success].median().item()
    bounded = CW(model, eps=eps, binary_search_steps=4, steps=40)
    adversarial = bounded(images, labels)
    assert (bounded.last_l2 <= eps).all()
    assert 0 < bounded.last_success.sum() < unbounded.last_success.sum()
    assert torch.equal(adversarial[~bounded.last_success], images[~bounded.last_success])


def test_cw_confidence_kappa_widens_the_margin():
    model = linear_model()
    images, labels = batch(n=16, model=model)
    attack = CW(model, binary_search_steps=5, steps=60, kappa=2.0)
    adversarial = attack(images, labels)
    logits = model(adversarial)
    other = logits.masked_fill(nn.functional.one_hot(labels, 10).bool(), -float("inf")).amax(1)
    margin = other - logits.gather(1, labels[:, None]).squeeze(1)
    assert attack.last_success.any() and (margin[attack.last_success] > 2.0 - 1e-3).all()


# -- the transfer wrapper --------------------------------------------------------------------------------------
def test_transfer_attack_returns_the_examples_crafted_on_the_source():
    source, target = linear_model(0), linear_model(1)
    images, labels = batch(model=source)
    # No random start: the examples then do not depend on how `evaluate` splits the images into batches.
    transfer = TransferAttack(PGD(source, eps=16 / 255, alpha=4 / 255, steps=10, random_start=False))
    assert torch.equal(transfer(images, labels), PGD(source, eps=16 / 255, alpha=4 / 255, steps=10,
                                                     random_start=False)(images, labels))
    result = transfer.evaluate(target, images, labels, batch_size=5)
    assert result.num_examples == 16 and 0 <= result.robust_accuracy <= 1 and 0 <= result.clean_accuracy <= 1
    source_fooled = (source(transfer(images, labels)).argmax(1) != labels).float().mean().item()
    assert result.source_success_rate == pytest.approx(source_fooled) and source_fooled > 0.9


def test_transfer_to_the_source_itself_is_the_white_box_attack():
    model = linear_model()
    images, labels = batch(n=32, model=model)
    transfer = TransferAttack(FGSM(model, eps=8 / 255))
    result = transfer.evaluate(model, images, labels)
    adversarial = FGSM(model, eps=8 / 255)(images, labels)
    fooled = (model(adversarial).argmax(1) != labels).float().mean().item()
    assert result.clean_accuracy == 1.0 and result.success_rate == pytest.approx(fooled)
    assert result.source_success_rate == result.success_rate
    assert result.robust_accuracy == pytest.approx(1 - fooled)


def test_targeted_transfer_measures_hits_on_the_target_class():
    model = linear_model()
    images, labels = batch(n=32, model=model)
    targets = (labels + 1) % 10
    transfer = TransferAttack(PGD(model, eps=16 / 255, alpha=2 / 255, steps=10)).set_targeted()
    assert transfer.source_attack.targeted
    result = transfer.evaluate(model, images, labels, targets=targets)
    hits = (model(transfer(images, targets)).argmax(1) == targets).float().mean().item()
    assert result.success_rate == pytest.approx(hits)
    with pytest.raises(ValueError, match="targets"):
        transfer.evaluate(model, images, labels)
    with pytest.raises(ValueError, match="set_targeted"):
        TransferAttack(PGD(model)).evaluate(model, images, labels, targets=targets)


def test_success_rate_counts_only_correctly_classified_images():
    labels = torch.tensor([0, 1, 2, 3])
    clean = torch.tensor([0, 1, 2, 9])        # the last one is already wrong: not counted
    adversarial = torch.tensor([5, 1, 7, 3])  # fools 2 of the 3 eligible
    assert success_rate(clean, adversarial, labels) == pytest.approx(2 / 3)
    # targeted: eligible = correct and target ≠ label (images 0 and 1); a hit = classified as the target (image 0)
    assert success_rate(clean, adversarial, labels, targets=torch.tensor([5, 0, 2, 3])) == pytest.approx(1 / 2)
    assert torch.equal(predict(linear_model(), torch.zeros(0, 3, 8, 8)), torch.zeros(0, dtype=torch.long))


# -- the base class's contract ---------------------------------------------------------------------------------
ALL_ATTACKS = [
    lambda m: FGSM(m), lambda m: PGD(m, steps=2), lambda m: PGDL2(m, steps=2),
    lambda m: CW(m, binary_search_steps=1, steps=3), lambda m: TransferAttack(PGD(m, steps=1)),
]


@pytest.mark.parametrize("make", ALL_ATTACKS)
def test_model_mode_and_requires_grad_flags_are_restored(make):
    model = create_model("fastnet-tiny")  # a real hfcifar model: the output has `.logits`
    model.train()
    frozen = list(model.parameters())[0]
    frozen.requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    images = torch.rand(2, 3, 32, 32)
    adversarial = make(model)(images, torch.tensor([1, 2]))
    assert adversarial.shape == images.shape and adversarial.min() >= 0 and adversarial.max() <= 1
    assert model.training and all(m.training for m in model.modules())
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())  # nothing accumulated in the weights
    # ... and also when the attack fails half-way (a label the model does not have)
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        make(model)(images, torch.tensor([1, 10]))
    assert model.training and [p.requires_grad for p in model.parameters()] == flags


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_every_registered_attack_refuses_a_negative_eps(name):
    with pytest.raises(ValueError, match="eps must be ≥ 0"):
        create_attack(name, linear_model(), eps=-0.1)


@pytest.mark.parametrize("make", ALL_ATTACKS)
def test_bad_input_gets_a_clear_error(make):
    model = linear_model()
    attack = make(model)
    images, labels = batch(n=4)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        attack(images * 2, labels)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        attack(images - 0.5, labels)
    with pytest.raises(ValueError, match="one label per image"):
        attack(images, labels[:3])
    with pytest.raises(ValueError, match="float tensor"):
        attack((images * 255).to(torch.uint8), labels)
    with pytest.raises(ValueError, match="integer tensor"):
        attack(images, labels.float())


class FeatureMap(nn.Module):
    def forward(self, x):
        return x * 2  # a 4-D tensor, not (batch, classes) logits


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_a_model_that_is_not_a_classifier_is_refused(name):
    images, labels = batch(n=2)
    with pytest.raises(ValueError, match="not a classifier"):
        create_attack(name, FeatureMap())(images, labels)
    with pytest.raises(ValueError, match="nn.Module"):
        create_attack(name, lambda x: x)
    with pytest.raises(ValueError, match="hfcifar Attack"):
        TransferAttack(linear_model())


def test_create_attack_names_what_is_available():
    assert set(ATTACKS) >= {"fgsm", "pgd", "pgdl2", "cw"} and all(issubclass(c, Attack) for _, c in ATTACKS.items())
    assert isinstance(ATTACKS, Registry) and ATTACKS["pgd"] is PGD and "cw" in ATTACKS
    assert isinstance(create_attack("cw", linear_model(), steps=5), CW)
    with pytest.raises(RegistryError, match="Unknown attack 'deepfool'; available: cw, fgsm, pgd, pgdl2"):
        create_attack("deepfool", linear_model())
    with pytest.raises(ValueError, match="takes no setting"):
        create_attack("fgsm", linear_model(), steps=10)
    with pytest.raises(ValueError, match="binary_search_steps and steps must be ≥ 1"):
        CW(linear_model(), steps=0)
    assert "steps=5" in repr(CW(linear_model(), steps=5)) and "last_success" not in repr(CW(linear_model()))


def test_attack_throughput_bench_runs_in_quick_mode():
    import subprocess
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parents[1] / "bench" / "attack_throughput.py"
    result = subprocess.run([sys.executable, str(bench), "--quick"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if "ratio hfcifar/reference = " in line]
    assert [line.split()[0] for line in lines] == ["FGSM", "PGD-2", "CW-1x2"]
    # both sides computed the same examples (the timings compare the same work)
    assert all(float(line.split("max |hfcifar − reference| = ")[1].split()[0]) < 1e-6 for line in lines)
