"""PubDef (METHODS.md row 20): the training loss, frozen public sources, transfer crafting, the transfer metric and
errors. Tiny FastNets and a few images; the full-budget claim check runs from the command line."""

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForImageClassification, set_seed

from hfcifar.attacks import create_attack
from hfcifar.data import CifarTensorDataset, load_cifar10
from hfcifar.methods.pubdef import (
    PubDefTrainer,
    PubDefTrainingArguments,
    TransferPair,
    craft_transfer_examples,
    create_transfer_attack,
    evaluate_transfer_attacks,
    pubdef_loss,
    transfer_accuracy,
)
from hfcifar.models import create_model

N = 12
ATTACK = {"attack_eps": 8 / 255, "attack_alpha": 4 / 255, "attack_steps": 2}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tensors here are tiny: one thread avoids OpenMP synchronization, which dominates (and, on a busy 2-core
    # machine, multiplies) their run time.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(seed: int, **overrides):
    set_seed(seed)
    return create_model("fastnet-tiny", **overrides)


@pytest.fixture()
def batch():
    generator = torch.Generator().manual_seed(0)
    return torch.rand(N, 3, 32, 32, generator=generator), torch.arange(N) % 10


@pytest.fixture()
def sources():
    return {"a": tiny(1), "b": tiny(2)}


def make_trainer(tmp_path, target, sources, data=None, **overrides):
    settings = {"max_steps": 2, "per_device_train_batch_size": 8, "save_strategy": "no", "plot_curves": False,
                "disable_tqdm": True, "report_to": "none", "learning_rate": 0.05, "label_smoothing_factor": 0.1,
                **ATTACK, **overrides}
    args = PubDefTrainingArguments(output_dir=str(tmp_path / "run"), **settings)
    if data is None:
        data = CifarTensorDataset(torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8), torch.arange(16) % 10)
    return PubDefTrainer(model=target, args=args, train_dataset=data, source_models=sources)


# -- the loss ------------------------------------------------------------------------------------------------


def test_pubdef_loss_formula_on_hand_made_losses():
    clean = torch.tensor([1.0, 3.0])
    transfer = torch.tensor([[2.0, 4.0], [6.0, 8.0]])
    every = torch.ones(2, 2, dtype=torch.bool)
    one_each = torch.tensor([[True, False], [False, True]])
    # c·mean(clean) + (1−c)·transfer term, with mean(clean) = 2
    assert pubdef_loss(clean, transfer, one_each, "random", 0.5).item() == pytest.approx(0.5 * 2 + 0.5 * (2 + 8) / 2)
    assert pubdef_loss(clean, transfer, every, "all", 0.5).item() == pytest.approx(0.5 * 2 + 0.5 * 5)
    assert pubdef_loss(clean, transfer, every, "top-k", 0.5, top_k=1).item() == pytest.approx(0.5 * 2 + 0.5 * (4 + 8) / 2)
    assert pubdef_loss(clean, transfer, every, "top-k", 0.2, top_k=2).item() == pytest.approx(0.2 * 2 + 0.8 * 5)
    weights = torch.tensor([0.25, 0.75])  # pair means are 4 and 6
    assert pubdef_loss(clean, transfer, every, "dynamic", 0.5, pair_weights=weights).item() == pytest.approx(0.5 * 2 + 0.5 * 5.5)
    with pytest.raises(ValueError, match="exactly one"):
        pubdef_loss(clean, transfer, every, "random")
    with pytest.raises(ValueError, match="every pair"):
        pubdef_loss(clean, transfer, one_each, "all")


def hand_computed_loss(trainer, model, images, labels, crafted, args):
    """The PubDef loss written out example by example, from transfer examples crafted here on the sources."""
    chunks, chunk_labels, owners = [images], [labels], []
    for p, pair in enumerate(trainer.transfer_pairs):
        rows = crafted[:, p].nonzero().squeeze(1)
        attack = create_transfer_attack(pair.attack, trainer.source_models[pair.source], args.attack_settings(),
                                        seed=trainer.step_seed() + p + 1)
        chunks.append(attack(images[rows], labels[rows]))
        chunk_labels.append(labels[rows])
        owners += [(int(n), p) for n in rows]
    logits = model(pixel_values=torch.cat(chunks)).logits
    losses = F.cross_entropy(logits, torch.cat(chunk_labels), reduction="none", label_smoothing=args.label_smoothing_factor)
    clean = losses[:N].mean()
    table = {}  # (example, pair) -> loss
    for (n, p), loss in zip(owners, losses[N:]):
        table[n, p] = loss
    num_pairs = len(trainer.transfer_pairs)
    if args.pair_selection == "random":
        transfer = sum(table[n, p] for (n, p) in table) / N
    elif args.pair_selection == "all":
        transfer = sum(table.values()) / (N * num_pairs)
    elif args.pair_selection == "top-k":
        transfer = sum(sum(sorted((table[n, p] for p in range(num_pairs)), key=lambda t: t.item(), reverse=True)[: args.top_k])
                       for n in range(N)) / (N * args.top_k)
    else:  # dynamic: moving average from the uniform start, one update with this step's pair means
        means = torch.stack([sum(table[n, p] for n in range(N)) / N for p in range(num_pairs)])
        average = (1 - args.dynamic_weight_smoothing) / num_pairs + args.dynamic_weight_smoothing * means.detach()
        transfer = (means * average / average.sum()).sum()
    return args.clean_weight * clean + (1 - args.clean_weight) * transfer


@pytest.mark.parametrize("selection, extra", [("random", {}), ("all", {"clean_weight": 0.3}),
                                              ("top-k", {"top_k": 2}), ("dynamic", {"dynamic_weight_smoothing": 0.5})])
def test_compute_loss_equals_the_hand_computed_combination(tmp_path, batch, sources, selection, extra):
    images, labels = batch
    target = tiny(0)
    trainer = make_trainer(tmp_path, target, sources, pair_selection=selection, transfer_attacks=["pgd", "fgsm"], **extra)
    model = trainer.model.train()
    loss = trainer.compute_loss(model, {"pixel_values": images, "labels": labels})
    crafted = trainer.last_selection
    assert crafted.shape == (N, 4)  # 2 sources × 2 attacks
    if selection == "random":
        assert (crafted.sum(1) == 1).all()
    else:
        assert crafted.all()
    expected = hand_computed_loss(trainer, model, images, labels, crafted, trainer.args)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()  # the loss is differentiable w.r.t. the target only
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert all(p.grad is None for s in sources.values() for p in s.parameters())


# -- frozen sources, crafted on the source ---------------------------------------------------------------------


def test_source_models_stay_frozen_while_the_target_trains(tmp_path, sources):
    before = {name: {k: v.clone() for k, v in s.state_dict().items()} for name, s in sources.items()}
    target = tiny(0)
    target_before = [p.detach().clone() for p in target.parameters()]
    trainer = make_trainer(tmp_path, target, sources, pair_selection="all", logging_steps=1)
    trainer.train()
    assert trainer.state.global_step == 2
    for name, source in sources.items():
        assert not source.training
        for key, value in source.state_dict().items():  # weights and batch-norm statistics alike
            assert torch.equal(value, before[name][key]), (name, key)
        assert all(not p.requires_grad and p.grad is None for p in source.parameters())
    assert any(not torch.equal(p, q) for p, q in zip(target.parameters(), target_before))
    logged = trainer.state.log_history[0]
    assert {"transfer_loss/a/pgd", "transfer_loss/b/pgd", "clean_loss"} <= set(logged)


def test_transfer_examples_are_crafted_on_the_source_not_the_target(tmp_path, batch, sources):
    images, labels = batch
    target = tiny(0)
    trainer = make_trainer(tmp_path, target, sources, pair_selection="all")
    crafted = torch.ones(N, 2, dtype=torch.bool)
    examples = trainer.transfer_examples(images, labels, crafted)
    settings = trainer.args.attack_settings()
    for p, (rows, adversarial) in enumerate(examples):
        seed = trainer.step_seed() + p + 1
        source = sources[trainer.transfer_pairs[p].source]
        assert torch.equal(rows, torch.arange(N))
        assert torch.equal(adversarial, create_attack("pgd", source, seed=seed, **settings)(images, labels))
        assert not torch.equal(adversarial, create_attack("pgd", target, seed=seed, **settings)(images, labels))
        assert (adversarial - images).abs().max() <= 8 / 255 + 1e-6
    # the evaluation crafts the same way: on the source, with the attack's own settings
    crafted_for_eval = craft_transfer_examples({"a": sources["a"]}, {"pgd": settings}, images, labels, seed=5)
    assert torch.equal(crafted_for_eval[TransferPair("a", "pgd")], create_attack("pgd", sources["a"], seed=5, **settings)(images, labels))


# -- the metric ---------------------------------------------------------------------------------------------------


def test_evaluation_reports_every_pair_and_the_worst_case(batch, sources):
    images, labels = batch
    target = tiny(0)
    attacks = {"pgd": {"eps": 8 / 255, "alpha": 2 / 255, "steps": 3}, "fgsm": {"eps": 16 / 255}}
    results = evaluate_transfer_attacks(target, sources, attacks, images, labels)
    assert set(results["transfer_accuracy"]) == {"a/pgd", "a/fgsm", "b/pgd", "b/fgsm"}
    worst = min(results["transfer_accuracy"].values())
    assert results["worst_case_transfer_accuracy"] == worst
    assert results["transfer_accuracy"][results["worst_case_pair"]] == worst
    assert results["num_examples"] == N
    with torch.no_grad():
        clean = (target.eval()(images).logits.argmax(-1) == labels).float().mean().item()
        fgsm = create_attack("fgsm", sources["b"], eps=16 / 255)(images, labels)
        under_fgsm = (target(fgsm).logits.argmax(-1) == labels).float().mean().item()
    assert results["clean_accuracy"] == pytest.approx(clean)
    assert results["transfer_accuracy"]["b/fgsm"] == pytest.approx(under_fgsm)
    # the sources were only borrowed: nothing about them changed
    assert all(p.requires_grad for s in sources.values() for p in s.parameters())


def test_a_pair_the_target_fails_on_is_the_worst_case(batch):
    # A "source" with the target's own weights is a white-box attacker: its PGD examples fool the target far more
    # than FGSM from an unrelated net, and the metric must pick it as the worst case.
    images, labels = batch
    target = tiny(0, logit_scale=1.0)
    twin = tiny(0, logit_scale=1.0)
    examples = craft_transfer_examples({"twin": twin, "other": tiny(7)},
                                       {"pgd": {"eps": 32 / 255, "alpha": 8 / 255, "steps": 10}}, images, labels)
    results = transfer_accuracy(target, labels, examples, clean_images=images)
    assert results["transfer_accuracy"]["twin/pgd"] == 0.0
    assert results["worst_case_pair"] == "twin/pgd" and results["worst_case_transfer_accuracy"] == 0.0


def test_sources_and_images_load_from_folders_and_hub_splits(tmp_path, synthetic_path):
    source = tiny(3)
    source.save_pretrained(tmp_path / "public-net")
    split = load_cifar10(synthetic_path)["train"].select(range(8))
    results = evaluate_transfer_attacks(tiny(0), [str(tmp_path / "public-net")], ["fgsm"], split)
    assert list(results["transfer_accuracy"]) == ["public-net/fgsm"] and results["num_examples"] == 8
    # the loaded folder is the same network as the saved instance (the real HF loader as the oracle)
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path / "public-net")
    images, labels = torch.rand(4, 3, 32, 32), torch.arange(4)
    assert torch.equal(create_attack("fgsm", loaded)(images, labels), create_attack("fgsm", source.eval())(images, labels))


def test_arguments_are_serializable():
    args = PubDefTrainingArguments(output_dir="unused", source_models=["runs/a", "runs/b"], transfer_attacks=["pgd", "fgsm"])
    assert '"transfer_attacks": [\n    "pgd",\n    "fgsm"\n  ]' in args.to_json_string()
    assert args.attack_settings() == {"eps": 8 / 255, "alpha": 2 / 255, "steps": 10}


# -- bad input ----------------------------------------------------------------------------------------------------


def test_no_source_models_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="at least one public source model"):
        make_trainer(tmp_path, tiny(0), [])
    with pytest.raises(ValueError, match="at least one public source model"):
        make_trainer(tmp_path, tiny(0), None)  # and none in the arguments either


@pytest.mark.parametrize("settings, message", [
    ({"transfer_attacks": ["pgd", "deepfool"]}, r"Unknown transfer attack.*deepfool.*available attacks: .*fgsm, pgd"),
    ({"transfer_attacks": []}, "at least one transfer attack"),
    ({"pair_selection": "best"}, "pair_selection must be one of"),
    ({"clean_weight": 1.0}, r"clean_weight must lie in \[0, 1\)"),
    ({"top_k": 0}, "top_k must be"),
    ({"attack_eps": -0.1}, "must be ≥ 0"),
])
def test_bad_arguments_are_clear_errors(settings, message):
    with pytest.raises(ValueError, match=message):
        PubDefTrainingArguments(output_dir="unused", **settings)


def test_bad_sources_and_attacks_are_clear_errors(tmp_path, batch, sources):
    images, labels = batch
    target = tiny(0)
    with pytest.raises(ValueError, match="Unknown transfer attack"):
        evaluate_transfer_attacks(target, sources, ["pgd", "not-an-attack"], images, labels)
    with pytest.raises(ValueError, match="the target itself"):
        make_trainer(tmp_path, target, {"self": target})
    with pytest.raises(ValueError, match="the target itself"):
        evaluate_transfer_attacks(target, [target], ["fgsm"], images, labels)
    with pytest.raises(ValueError, match="100 classes but the target has 10"):
        make_trainer(tmp_path, target, {"c100": tiny(4, num_labels=100)})
    with pytest.raises(ValueError, match="only 2"):
        make_trainer(tmp_path, target, sources, pair_selection="top-k", top_k=3)
    with pytest.raises(ValueError, match="must be a classifier"):
        make_trainer(tmp_path, target, {"x": 42})


def test_claim_worst_case_margin_is_the_papers_metric_with_a_paired_bootstrap():
    import numpy as np

    from hfcifar.methods.pubdef.claim import worst_case_accuracy, worst_case_margin

    rng = np.random.default_rng(0)
    a = rng.random((3, 200)) < np.array([[0.9], [0.6], [0.8]])  # [pairs, images]: pair 1 is a's worst
    b = rng.random((3, 200)) < np.array([[0.5], [0.7], [0.4]])  # pair 2 is b's worst
    assert worst_case_accuracy(a) == a.mean(axis=1).min() and worst_case_accuracy(a) == a[1].mean()
    margin, se = worst_case_margin(a, b)
    assert margin == pytest.approx(a[1].mean() - b[2].mean()) and 0 < se < 0.1
    # the images are resampled together for both targets: a target compared with itself has no spread at all
    assert worst_case_margin(a, a) == (0.0, 0.0)
