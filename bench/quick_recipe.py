"""The default job vs a plain PyTorch loop: same images, same minutes, same held-out images, side by side.

    python bench/quick_recipe.py --dataset ../shared/data/cifar10-mini --minutes 10 --seeds 3

Per seed, `hfcifar train` with its default model and recipe (`fastnet-wide`, `airbench-cpu`) and an independent
plain-PyTorch loop of the 0.3M FastNet layout (SGD-Nesterov, triangular LR 0.05, label smoothing 0.2, flip + 2-px
translate, flip TTA — the reference of issue 15) each train for `--minutes` on the same training images and are scored
on the same held-out images, which neither sees and which no recipe was chosen on: `--holdout` images carved from the
data with `--holdout-seed` before anything else (recipes are tuned on validation carves of the rest, see
`bench/tune_quick_recipe.py`). Prints each run, then both accuracies as mean ± SE over seeds (per-image correctness
over seeds × images, `hfcifar.reproduce.statistics`), the paired difference, epochs achieved and the ratio.

`--parallel` runs the two jobs of a seed at the same time, one thread each (OMP_NUM_THREADS=1): half the wall time,
and both see the same machine; without it they run one after the other with all threads (a quiet machine).

`--combine A.json B.json …` trains nothing: it pools the runs that earlier `--output-json` files saved (same held-out
images) and prints the same summary over all their seeds, e.g. three runs of 3 seeds as one 9-seed figure.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]

# -- the plain reference: torch only, written as a person would without hfcifar ------------------------------------
MEAN = torch.tensor((0.4914, 0.4822, 0.4465)).view(1, 3, 1, 1)
STD = torch.tensor((0.2470, 0.2435, 0.2616)).view(1, 3, 1, 1)


def conv_bn(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.GELU()]


class PlainNet(nn.Module):
    """FastNet's layout (stem 24, blocks 32/64/128 of conv-pool-BN-GELU-conv-BN-GELU, max-pool, linear/9)."""

    def __init__(self, widths=(32, 64, 128), stem=24):
        super().__init__()
        layers = conv_bn(3, stem)
        for c_in, c_out in zip((stem, *widths[:-1]), widths):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(c_out),
                       nn.GELU(), *conv_bn(c_out, c_out)]
        self.features = nn.Sequential(*layers, nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.head = nn.Linear(widths[-1], 10, bias=False)

    def forward(self, x):
        return self.head(self.features((x - MEAN) / STD)) / 9


def augment(images: torch.Tensor, pad: int = 2) -> torch.Tensor:
    """Random flip + random translate by up to `pad` pixels (reflect padding), per image."""
    n = len(images)
    flip = torch.rand(n) < 0.5
    images = torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
    padded = nn.functional.pad(images, (pad,) * 4, mode="reflect")
    dx, dy = torch.randint(0, 2 * pad + 1, (2, n))
    rows = (torch.arange(32).view(1, -1) + dy.view(-1, 1))
    cols = (torch.arange(32).view(1, -1) + dx.view(-1, 1))
    batch = torch.arange(n).view(-1, 1, 1)
    return padded.permute(0, 2, 3, 1)[batch, rows.view(n, 32, 1), cols.view(n, 1, 32)].permute(0, 3, 1, 2)


def plain_run(train_x, train_y, test_x, test_y, minutes: float, seed: int) -> dict:
    """Train PlainNet for `minutes` (the epoch count set from the first epoch's time so the triangular schedule ends
    with the budget), then score with flip TTA. Images are float [0, 1]."""
    torch.manual_seed(seed)
    model = PlainNet().to(memory_format=torch.channels_last)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    optimizer = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0}],
                                lr=0.05, momentum=0.9, nesterov=True)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.2)
    batch, n = 128, len(train_x)
    steps_per_epoch = math.ceil(n / batch)
    budget, start = minutes * 60, time.perf_counter()
    epochs, step, epoch = None, 0, 0
    while True:
        if epochs is not None and epoch >= epochs:
            break
        model.train()
        order = torch.randperm(n)
        for i in range(steps_per_epoch):
            total = (epochs or 10**6) * steps_per_epoch
            progress = step / total
            lr = 0.05 * (progress / 0.2 if progress < 0.2 else (1 - progress) / 0.8)
            for group in optimizer.param_groups:
                group["lr"] = max(lr, 0.0)
            index = order[i * batch:(i + 1) * batch]
            x = augment(train_x[index]).contiguous(memory_format=torch.channels_last)
            loss = loss_fn(model(x), train_y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
        epoch += 1
        elapsed = time.perf_counter() - start
        if elapsed > budget:
            break
        # as many epochs as the budget holds, re-estimated after every epoch (the first one is the slowest)
        epochs = max(epoch + 1, int(budget / (elapsed / epoch)))
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        logits = model(test_x) + model(test_x.flip(-1))
    correct = (logits.argmax(1) == test_y).float().numpy()
    return {"accuracy": float(correct.mean()), "correct": correct.tolist(), "epochs": epoch, "planned_epochs": epochs,
            "train_seconds": seconds}


# -- data ------------------------------------------------------------------------------------------------------------
def write_splits(train, test, folder: Path) -> Path:
    """`train` and `test` (Hub-schema datasets) as a folder `load_cifar10` reads: training on `train`, held out `test`."""
    target = folder / "plain_text"
    target.mkdir(parents=True, exist_ok=True)
    train.to_parquet(str(target / "train-00000-of-00001.parquet"))
    test.to_parquet(str(target / "test-00000-of-00001.parquet"))
    return folder


def carve(dataset: str, holdout: int, holdout_seed: int, folder: Path) -> tuple[Path, dict]:
    """Write the training images (`train`) and the held-out images (`test`) as a Hub-schema folder."""
    from hfcifar.data import load_cifar10

    data = load_cifar10(dataset, validation_size=holdout, seed=holdout_seed)
    return write_splits(data["train"], data["validation"], folder / "data"), {
        "train": len(data["train"]), "test": len(data["validation"])}


def tensors(folder: Path, split: str):
    from hfcifar.data import CifarTensorDataset, load_cifar10

    data = CifarTensorDataset.from_hf(load_cifar10(str(folder))[split], progress=False)
    return data.images.float().div(255), data.labels


# -- one job per process (so --parallel can give each one thread) --------------------------------------------------
def job(kind: str, data: Path, minutes: float, seed: int, out: Path, recipe: str | None, model: str,
        overrides: dict | None = None) -> dict:
    if kind == "plain":
        train_x, train_y = tensors(data, "train")
        test_x, test_y = tensors(data, "test")
        start = time.perf_counter()
        result = plain_run(train_x, train_y, test_x, test_y, minutes, seed)
        result["wall_seconds"] = time.perf_counter() - start
        return result
    from hfcifar.training import train_classifier
    from transformers import AutoModelForImageClassification

    start = time.perf_counter()
    options = {"recipe": recipe} if recipe else {}
    summary = train_classifier(model, dataset=str(data), output_dir=str(out), time_budget_minutes=minutes, seed=seed,
                               overwrite=True, disable_tqdm=True, plot_curves=False, **options, **(overrides or {}))
    wall = time.perf_counter() - start
    # score the saved model on the held-out images exactly as the recipe evaluates (its TTA), image by image
    from hfcifar.data import CifarTensorDataset, load_cifar10
    from hfcifar.training import CifarTrainer, CifarTrainingArguments

    net = AutoModelForImageClassification.from_pretrained(str(out)).eval()
    args = CifarTrainingArguments(output_dir=str(out / "eval"), tta=summary["tta"],
                                  tta_translate=summary.get("tta_translate", 0) or 0, report_to="none",
                                  per_device_eval_batch_size=512, disable_tqdm=True)
    held_out = CifarTensorDataset.from_hf(load_cifar10(str(data))["test"], progress=False)
    prediction = CifarTrainer(model=net, args=args).predict(held_out)
    correct = (prediction.predictions.argmax(-1) == prediction.label_ids).astype(float)
    return {"accuracy": float(correct.mean()), "correct": correct.tolist(), "epochs": summary.get("epochs"),
            "tta_variants": tta_variants(net, held_out, out),
            "train_seconds": summary.get("train_runtime_seconds"), "wall_seconds": wall,
            "summary_accuracy": summary.get("eval_accuracy"), "recipe": summary.get("recipe"),
            "mixed_precision": summary.get("mixed_precision"), "model": model}


def tta_variants(net, held_out, out: Path) -> dict:
    """Accuracy of the same saved model under each TTA setting (for choosing the recipe's evaluation)."""
    from hfcifar.training import CifarTrainer, CifarTrainingArguments

    accuracies = {}
    for name, tta, shift in (("none", False, 0), ("flip", True, 0), ("flip+translate1", True, 1),
                             ("flip+translate2", True, 2)):
        args = CifarTrainingArguments(output_dir=str(out / "eval"), tta=tta, tta_translate=shift, report_to="none",
                                      per_device_eval_batch_size=512, disable_tqdm=True)
        prediction = CifarTrainer(model=net, args=args).predict(held_out)
        accuracies[name] = (prediction.predictions.argmax(-1) == prediction.label_ids).astype(float).tolist()
    return accuracies


def run_job(kind, data, minutes, seed, out, recipe, model, threads, overrides=None) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    command = [sys.executable, __file__, "--job", kind, "--data", str(data), "--minutes", str(minutes), "--seed",
               str(seed), "--out", str(out), "--model", model] + (["--recipe", recipe] if recipe else [])
    command += ["--overrides", json.dumps(overrides)] if overrides else []
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)


def collect(process: subprocess.Popen) -> dict:
    output, _ = process.communicate()
    if process.returncode:
        raise SystemExit(f"a job failed (exit {process.returncode})")
    return json.loads(output.strip().splitlines()[-1])


def summarize(runs: dict, sizes: dict) -> None:
    """Print both accuracies (mean ± SE over seeds × held-out images), the paired difference and the ratio."""
    from hfcifar.reproduce.statistics import paired_difference, per_example_estimate
    from hfcifar.reproduce.verdicts import critical_value

    scores = {kind: np.array([r["correct"] for r in results]) for kind, results in runs.items()}
    estimates = {kind: per_example_estimate(s) for kind, s in scores.items()}
    difference = paired_difference(scores["hfcifar"], scores["plain"])
    print()
    for kind in ("hfcifar", "plain"):
        e = estimates[kind]
        epochs = np.mean([r["epochs"] for r in runs[kind]])
        print(f"{kind:8s} {e.estimate:.4f} ± {e.standard_error:.4f}  ({len(runs[kind])} seeds × {sizes['test']} "
              f"images, {epochs:.1f} epochs on average)")
    per_seed = ", ".join(f"{d:+.1f}" for d in 100 * (scores["hfcifar"].mean(1) - scores["plain"].mean(1)))
    low, high = (difference.estimate + sign * critical_value() * difference.standard_error for sign in (-1, 1))
    print(f"difference hfcifar − plain: {difference.estimate:+.4f} ± {difference.standard_error:.4f} "
          f"(paired; 95% interval [{low:+.4f}, {high:+.4f}]; per seed, points: {per_seed})")
    print(f"ratio hfcifar/plain = {estimates['hfcifar'].estimate / estimates['plain'].estimate:.3f}")


def combine(paths: list[str]) -> None:
    """Pool the runs of earlier `--output-json` files (they must share the held-out images) and summarize them."""
    saved = [json.loads(Path(path).read_text()) for path in paths]
    sizes = saved[0]["sizes"]
    for path, one in zip(paths, saved):
        if one["sizes"] != sizes or one["minutes"] != saved[0]["minutes"]:
            raise SystemExit(f"{path} was run with {one['sizes']} images for {one['minutes']} min, {paths[0]} with "
                             f"{sizes} for {saved[0]['minutes']} min: only runs on the same held-out images and "
                             "minutes pool.")
    runs = {kind: [run for one in saved for run in one["runs"][kind]] for kind in ("hfcifar", "plain")}
    print(f"{len(paths)} saved runs pooled: {sizes['train']} training images, {sizes['test']} held-out images, "
          f"{saved[0]['minutes']:g} min per run")
    summarize(runs, sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=os.environ.get("HFCIFAR_DATASET", str(ROOT.parent / "shared/data/cifar10-mini")))
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--holdout", type=int, default=660, help="held-out images carved first (default 660)")
    parser.add_argument("--holdout-seed", type=int, default=2026)
    parser.add_argument("--model", default=None, help="hfcifar model (default: `hfcifar train`'s default model)")
    parser.add_argument("--recipe", default=None, help="hfcifar recipe (default: the model's default)")
    parser.add_argument("--parallel", action="store_true", help="run both jobs of a seed at once, one thread each")
    parser.add_argument("--output-json", default=None)
    parser.add_argument("--combine", nargs="+", metavar="JSON",
                        help="pool saved runs (--output-json files) and summarize them; trains nothing")
    # internal: one job
    parser.add_argument("--job", choices=("plain", "hfcifar"), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--overrides", default=None, help=argparse.SUPPRESS)  # JSON training-argument overrides
    args = parser.parse_args()
    if args.model is None:
        from hfcifar.models import DEFAULT_MODEL

        args.model = DEFAULT_MODEL
    if args.job:
        overrides = json.loads(args.overrides) if args.overrides else None
        result = job(args.job, Path(args.data), args.minutes, args.seed, Path(args.out), args.recipe, args.model,
                     overrides)
        print(json.dumps(result))
        return

    if args.combine:
        combine(args.combine)
        return
    scratch = Path(tempfile.mkdtemp(prefix="quick_recipe_"))
    data, sizes = carve(args.dataset, args.holdout, args.holdout_seed, scratch)
    print(f"{sizes['train']} training images, {sizes['test']} held-out images (seed {args.holdout_seed}); "
          f"{args.minutes:g} min per run; torch {torch.__version__}, "
          f"{'parallel, 1 thread each' if args.parallel else f'sequential, {torch.get_num_threads()} threads'}")
    runs = {"hfcifar": [], "plain": []}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        jobs = {}
        for kind in ("hfcifar", "plain"):
            process = run_job(kind, data, args.minutes, seed, scratch / f"{kind}-{seed}", args.recipe, args.model,
                              1 if args.parallel else None)
            jobs[kind] = process if args.parallel else collect(process)
        results = {kind: collect(j) if args.parallel else j for kind, j in jobs.items()}
        for kind, result in results.items():
            runs[kind].append(result)
            print(f"seed {seed} {kind:8s} accuracy {result['accuracy']:.4f}  epochs {result['epochs']}  "
                  f"train {result['train_seconds']:.0f} s  wall {result['wall_seconds']:.0f} s", flush=True)
    summarize(runs, sizes)
    if args.output_json:
        Path(args.output_json).write_text(json.dumps({"sizes": sizes, "minutes": args.minutes, "runs": runs,
                                                      "parallel": args.parallel}, separators=(",", ":")))


if __name__ == "__main__":
    main()
