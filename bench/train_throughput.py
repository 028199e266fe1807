"""Training throughput: hfcifar's CifarTrainer vs a plain PyTorch loop (same model, batch, data, one process).

    python bench/train_throughput.py --dataset ../shared/data/cifar10-mini            # ResNet-18, batch 128
    python bench/train_throughput.py --dataset ../shared/data/cifar10-mini --model fastnet --steps 40 --rounds 3
    python bench/train_throughput.py --dataset ../shared/data/cifar10-mini --model fastnet-wide --bf16 --steps 40 \
        --rounds 3 --skip-naive                                                        # the default job (bf16)

Prints images/s of each path and `ratio hfcifar/plain = X` (target X ≥ 0.95), plus the naive path a user gets
from a vanilla `transformers.Trainer` fed by a `datasets` per-example transform (PIL decode + numpy crop/flip
per image), for comparison. Paths alternate over `--rounds`; the median of each is reported.

On a Linux CPU, CifarTrainer raises glibc's malloc thresholds (`reuse_cpu_memory`, process-wide): the bench sets
them before the first path runs, so every path in the process trains with the same allocator and the ratio measures
the Trainer, not malloc. `--no-memory-reuse` leaves malloc alone on every path (the setting's own effect: compare
the img/s of the two runs).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

from hfcifar.data import BatchAugmentation, CifarTensorDataset, load_cifar10
from hfcifar.models import create_model
from hfcifar.training import CifarTrainer, CifarTrainingArguments
from hfcifar.training.allocator import reuse_freed_memory

SGD = {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}


class StepTimer(TrainerCallback):
    def __init__(self):
        self.times = []

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter())


def images_per_second(times: list[float], warmup: int, batch_size: int) -> float:
    return batch_size * (len(times) - 1 - warmup) / (times[-1] - times[warmup])


def plain_loop(model_name, data: CifarTensorDataset, batch_size, steps, warmup, seed, bf16=False) -> float:
    """The reference: a hand-written loop on the same uint8 tensor with the same batched augmentation."""
    torch.manual_seed(seed)
    model = create_model(model_name).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(model.parameters(), **SGD)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1 - s / steps)
    augment = BatchAugmentation(crop_padding=4)
    times = []
    for _ in range(steps):
        index = torch.randint(0, len(data), (batch_size,))
        images = augment(data.images[index]).contiguous(memory_format=torch.channels_last)
        with torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(model(images).logits, data.labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        times.append(time.perf_counter())
    return images_per_second(times, warmup, batch_size)


def trainer_args(cls, output_dir, batch_size, steps, seed, **extra):
    return cls(
        output_dir=output_dir, max_steps=steps, per_device_train_batch_size=batch_size, learning_rate=SGD["lr"],
        weight_decay=SGD["weight_decay"], optim="sgd", optim_args="momentum=0.9,nesterov=True",
        lr_scheduler_type="linear", max_grad_norm=0.0, save_strategy="no", eval_strategy="no",
        logging_steps=10_000, disable_tqdm=True, report_to="none", seed=seed, use_cpu=not torch.cuda.is_available(),
        dataloader_drop_last=True, **extra,
    )


def hfcifar_trainer(model_name, data: CifarTensorDataset, batch_size, steps, warmup, seed, bf16=False,
                    reuse_memory=True) -> float:
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as out:
        args = trainer_args(CifarTrainingArguments, out, batch_size, steps, seed, crop_padding=4, plot_curves=False,
                            bf16=bf16, reuse_cpu_memory=reuse_memory)
        CifarTrainer(model=create_model(model_name), args=args, train_dataset=data, callbacks=[timer]).train()
    return images_per_second(timer.times, warmup, batch_size)


def naive_trainer(model_name, hf_train, batch_size, steps, warmup, seed) -> float:
    """Vanilla Trainer + `datasets` per-example transform: decode PIL, pad/crop/flip in numpy, per image."""
    rng = np.random.default_rng(seed)

    def transform(batch):
        pixels = []
        for image in batch["img"]:
            array = np.pad(np.asarray(image.convert("RGB"), dtype=np.float32) / 255, ((4, 4), (4, 4), (0, 0)), mode="reflect")
            y, x = rng.integers(0, 9, 2)
            array = array[y : y + 32, x : x + 32]
            if rng.random() < 0.5:
                array = array[:, ::-1]
            pixels.append(torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))))
        return {"pixel_values": pixels, "labels": batch["label"]}

    timer = StepTimer()
    with tempfile.TemporaryDirectory() as out:
        args = trainer_args(TrainingArguments, out, batch_size, steps, seed, remove_unused_columns=False)
        Trainer(model=create_model(model_name), args=args, train_dataset=hf_train.with_transform(transform), callbacks=[timer]).train()
    return images_per_second(timer.times, warmup, batch_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--dataset", default=None, help="Hub id or local folder (default $HFCIFAR_DATASET)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=12, help="timed steps per run (after --warmup)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast on both paths (the default job's precision "
                        "where the machine has fast bf16); implies --skip-naive")
    parser.add_argument("--no-memory-reuse", action="store_true",
                        help="leave glibc's malloc thresholds alone on every path (CifarTrainer's reuse_cpu_memory off)")
    args = parser.parse_args()
    reuse = not args.no_memory_reuse and reuse_freed_memory()

    hf = load_cifar10(args.dataset)["train"]
    data = CifarTensorDataset.from_hf(hf, progress=False)
    total = args.steps + args.warmup
    results = {"plain": [], "hfcifar": [], "naive": []}
    for round_ in range(args.rounds):
        results["plain"].append(plain_loop(args.model, data, args.batch_size, total, args.warmup, round_, args.bf16))
        results["hfcifar"].append(hfcifar_trainer(args.model, data, args.batch_size, total, args.warmup, round_,
                                                  args.bf16, reuse_memory=not args.no_memory_reuse))
        if not (args.skip_naive or args.bf16):
            results["naive"].append(naive_trainer(args.model, hf, args.batch_size, total, args.warmup, round_))
        print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.1f} img/s" for k, v in results.items() if v), flush=True)
    median = {k: statistics.median(v) for k, v in results.items() if v}
    print(f"\n{args.model}{' (bf16)' if args.bf16 else ''}, batch {args.batch_size}, {args.steps} timed steps × "
          f"{args.rounds} rounds, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, malloc reuse {'on' if reuse else 'off'}")
    for name, value in median.items():
        print(f"  {name:8s} {value:8.1f} img/s")
    print(f"ratio hfcifar/plain = {median['hfcifar'] / median['plain']:.3f}")
    if "naive" in median:
        print(f"ratio naive/plain = {median['naive'] / median['plain']:.3f}")


if __name__ == "__main__":
    main()
