"""Compressed models vs the dense one, in one run: size on disk and CPU inference latency, as ratios.

    python bench/compression.py                       # ResNet-20 (random init), batch 128 and batch 1
    python bench/compression.py --model resnet18
    python bench/compression.py --quick               # seconds: fastnet-tiny, small batches, 1 round

Variants of the same network (weights are random: size and latency do not depend on training):
- `dense`             the fp32 model, `save_pretrained` (safetensors);
- `pruned-90/-98`     Global MP (`hfcifar.pruning`), masks made permanent: the same dense safetensors layout, plus
                      the packed layout a sparse release would ship (each pruned weight stored as its non-zero values
                      + a 1-bit-per-weight mask, `np.packbits`), written to a real file here and checked to unpack
                      to the same weights; latency runs the dense kernels on the zeroed weights;
- `qfx-8/-4`          QFX fixed point (`hfcifar.quantization`): the integer export `save_fixed_point` writes
                      (`fixed_point.safetensors`, the narrowest integer dtype per tensor: int8 for ≤ 8 bits, 4-bit
                      values are not nibble-packed); latency is the fp32 *emulation* of fixed point in PyTorch (what
                      training and evaluation run), not an integer kernel.

Prints bytes and `size ratio` (variant / dense, < 1 is smaller) and the median latency per batch with
`latency ratio` (variant / dense, > 1 is slower); variants alternate within each of `--rounds` rounds.

# Measured: see the README's "Measured" section (2-core CPU).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hfcifar.models import create_model
from hfcifar.pruning import apply_masks, global_magnitude_masks, make_permanent, prunable_layers, sparsity_report
from hfcifar.quantization import post_training_quantization, save_fixed_point


def folder_bytes(folder: Path, names: tuple[str, ...]) -> int:
    return sum((folder / name).stat().st_size for name in names)


def save_packed_sparse(model: torch.nn.Module, path: Path) -> int:
    """Write the prunable weights as non-zero values + packed bit masks (other tensors as they are); verify that
    unpacking gives the same weights; return the file's size."""
    from safetensors.torch import load_file, save_file

    layers = {f"{name}.weight" for name in prunable_layers(model)}
    tensors = {}
    for name, value in model.state_dict().items():
        value = value.detach().cpu().contiguous()
        if name in layers:
            mask = value != 0
            tensors[f"{name}.values"] = value[mask].contiguous()
            tensors[f"{name}.bitmask"] = torch.from_numpy(np.packbits(mask.numpy().reshape(-1)))
        else:
            tensors[name] = value
    save_file(tensors, str(path))
    loaded = load_file(str(path))
    for name, value in model.state_dict().items():
        if name in layers:
            bits = np.unpackbits(loaded[f"{name}.bitmask"].numpy())[: value.numel()].astype(bool)
            restored = torch.zeros(value.numel(), dtype=value.dtype)
            restored[torch.from_numpy(bits)] = loaded[f"{name}.values"]
            assert torch.equal(restored.view_as(value), value.cpu()), f"packed {name} does not unpack to the weights"
    return path.stat().st_size


def latency(model: torch.nn.Module, images: torch.Tensor) -> float:
    with torch.no_grad():
        start = time.perf_counter()
        model(images)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 1])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="timed forward passes per variant per round")
    parser.add_argument("--quick", action="store_true", help="fastnet-tiny, batches 8 and 1, 1 round")
    args = parser.parse_args()
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # one "Writing model shards" bar per save would bury the table
    if args.quick:
        args.model, args.batch_sizes, args.rounds, args.repeats = "fastnet-tiny", [8, 1], 1, 1
    torch.manual_seed(0)
    dense = create_model(args.model).eval()
    calibration = torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(1))

    variants: dict[str, torch.nn.Module] = {"dense": dense}
    for sparsity in (0.9, 0.98):
        pruned = copy.deepcopy(dense)
        apply_masks(pruned, global_magnitude_masks(pruned, sparsity))
        variants[f"pruned-{round(sparsity * 100)}"] = make_permanent(pruned).eval()
    for bits in (8, 4):
        variants[f"qfx-{bits}"] = post_training_quantization(copy.deepcopy(dense), bits, calibration).eval()

    sizes: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        for name, model in variants.items():
            folder = scratch / name
            if name.startswith("qfx"):
                save_fixed_point(model, folder, save_model=False)
                sizes[name] = {"integer export (fixed_point.safetensors)": folder_bytes(folder, ("fixed_point.safetensors",))}
            else:
                model.save_pretrained(folder)
                sizes[name] = {"safetensors": folder_bytes(folder, ("model.safetensors",))}
                if name.startswith("pruned"):
                    sizes[name]["packed sparse (values + bit mask)"] = save_packed_sparse(model, scratch / f"{name}.safetensors")
    dense_bytes = sizes["dense"]["safetensors"]
    print(f"{args.model}: {sum(p.numel() for p in dense.parameters()) / 1e6:.2f}M parameters")
    print("\nsize on disk")
    for name, layouts in sizes.items():
        detail = f" (counted sparsity {sparsity_report(variants[name])['sparsity']:.4f})" if name.startswith("pruned") else ""
        for layout, size in layouts.items():
            print(f"  {name:10s} {layout:42s} {size / 1e6:8.3f} MB   size ratio {name}/dense = {size / dense_bytes:.3f}{detail}")

    print("\ninference latency (median per batch, eval mode, no_grad, torch threads =", torch.get_num_threads(), ")")
    for batch in args.batch_sizes:
        images = torch.rand(batch, 3, 32, 32, generator=torch.Generator().manual_seed(2))
        for model in variants.values():
            latency(model, images)  # warm-up: allocations, first-call dispatch
        times: dict[str, list[float]] = {name: [] for name in variants}
        names = list(variants)
        for round_index in range(args.rounds):
            for name in (names if round_index % 2 == 0 else names[::-1]):
                times[name] += [latency(variants[name], images) for _ in range(args.repeats)]
        base = statistics.median(times["dense"])
        for name in names:
            median = statistics.median(times[name])
            print(f"  batch {batch:4d}  {name:10s} {median * 1e3:9.2f} ms   latency ratio {name}/dense = {median / base:.3f}")


if __name__ == "__main__":
    main()
