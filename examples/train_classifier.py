"""Train a CIFAR-10 classifier with hfcifar's CifarTrainer — the same job as `hfcifar train`.

Runs unchanged on one CPU, on N GPUs and on N CPU processes (gloo):

    python examples/train_classifier.py --dataset ../shared/data/cifar10-mini --output runs/fastnet
    accelerate launch --multi_gpu --num_processes 2 examples/train_classifier.py --output runs/fastnet-2p
    accelerate launch --num_processes 8 examples/train_classifier.py --model resnet18 --output runs/r18

(On a machine without CUDA, `--multi_gpu` gives two gloo CPU processes; `--cpu --num_processes 2` starts one.)

Claim and evidence: the default FastNet with its default recipe reaches ≥ 60% (measured: see README) on
held-out real CIFAR-10 images after training on the 4,194 cifar10-mini training images on a 2-core CPU.
"""

import argparse

from hfcifar.models import DEFAULT_MODEL
from hfcifar.training import train_classifier

# Hyper-parameters live here; the command line only picks infrastructure (data, output, model, length).
HPARAMS = {
    "recipe": None,  # None: the model's default recipe ("airbench-cpu" for FastNet: SGD-Nesterov, triangular LR 0.05,
    #                  batch 64, label smoothing 0.2, flip + 2-px translate, flip + translate TTA, bf16 where the
    #                  machine has fast bf16, fitted to a 10-minute budget)
    "seed": 0,
    "validation_size": None,  # hold out 10% when the dataset has no test split
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"model preset or folder (default {DEFAULT_MODEL})")
    parser.add_argument("--dataset", default=None, help="Hub id or local folder; default $HFCIFAR_DATASET or uoft-cs/cifar10")
    parser.add_argument("--output", default="runs/example", help="run folder")
    parser.add_argument("--max-steps", type=int, default=None, help="cap the run (smoke tests)")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()

    summary = train_classifier(
        model=args.model,
        dataset=args.dataset,
        output_dir=args.output,
        max_steps=args.max_steps,
        overwrite=args.overwrite,
        disable_tqdm=args.no_progress,
        **HPARAMS,
    )
    from accelerate import PartialState

    state = PartialState()
    state.print(
        f"{summary['eval_split']} accuracy {summary['eval_accuracy']:.4f} · {summary['num_processes']} process(es) · "
        f"parameters in sync: {summary['parameters_in_sync']}"
    )
    state.destroy_process_group()


if __name__ == "__main__":
    main()
