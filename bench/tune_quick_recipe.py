"""Choose the quick recipe on validation carves, never on the held-out images of `bench/quick_recipe.py`.

    python bench/tune_quick_recipe.py --minutes 4 --seeds 2 --config baseline '{}' --config lookahead '{"lookahead_decay": 0.77}'

The data is cifar10-mini minus `bench/quick_recipe.py`'s held-out images (same `--holdout`/`--holdout-seed`); per seed
k a stratified validation carve (`--validation`, seed k) of the rest is scored, the remainder trained on. Each
`--config NAME JSON` is the default job (`hfcifar train`, its default model unless `--model`, and that model's recipe)
with those training-argument overrides, for `--minutes` under a time budget. Two runs go at once, one thread each
(OMP_NUM_THREADS=1), so every configuration sees the same machine. Prints per-configuration validation accuracy (mean
± SE over seeds × images) under each TTA setting, and each configuration's paired difference to the first.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quick_recipe import collect, run_job, write_splits  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=str(ROOT.parent / "shared/data/cifar10-mini"))
    parser.add_argument("--holdout", type=int, default=660)
    parser.add_argument("--holdout-seed", type=int, default=2026)
    parser.add_argument("--validation", type=int, default=400)
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--model", default=None, help="hfcifar model (default: `hfcifar train`'s default model)")
    parser.add_argument("--config", nargs=2, action="append", metavar=("NAME", "JSON"), required=True)
    parser.add_argument("--output-json", default=None)
    args = parser.parse_args()

    from hfcifar.data import load_cifar10
    from hfcifar.models import DEFAULT_MODEL
    from hfcifar.reproduce.statistics import paired_difference, per_example_estimate

    scratch = Path(tempfile.mkdtemp(prefix="tune_quick_"))
    pool = load_cifar10(args.dataset, validation_size=args.holdout, seed=args.holdout_seed)["train"]  # never the held-out
    folders = {}
    for seed in range(args.seeds):
        parts = pool.train_test_split(test_size=args.validation, seed=seed, stratify_by_column="label")
        folders[seed] = write_splits(parts["train"], parts["test"], scratch / f"data-{seed}")
    configs = [(name, json.loads(text)) for name, text in args.config]
    queue = [(name, overrides, seed) for seed in range(args.seeds) for name, overrides in configs]
    results: dict[str, list[dict]] = {name: [] for name, _ in configs}
    while queue:
        batch, queue = queue[:2], queue[2:]
        running = [(name, seed, run_job("hfcifar", folders[seed], args.minutes, seed, scratch / f"{name}-{seed}", None,
                                        args.model or DEFAULT_MODEL, 1, overrides)) for name, overrides, seed in batch]
        for name, seed, process in running:
            result = collect(process)
            results[name].append(result)
            tta = {k: np.mean(v) for k, v in result["tta_variants"].items()}
            print(f"{name:24s} seed {seed}: recipe's TTA {result['accuracy']:.4f}, epochs {result['epochs']:.1f}; "
                  + ", ".join(f"{k} {v:.4f}" for k, v in tta.items()), flush=True)
    print(f"\nvalidation accuracy ({args.seeds} seeds × {args.validation} images, {args.minutes:g} min, 1 thread each):")
    base_name = configs[0][0]
    for name, _ in configs:
        for variant in results[name][0]["tta_variants"]:
            scores = np.array([r["tta_variants"][variant] for r in results[name]])
            e = per_example_estimate(scores)
            line = f"  {name:24s} {variant:16s} {e.estimate:.4f} ± {e.standard_error:.4f}"
            if name != base_name:
                base = np.array([r["tta_variants"][variant] for r in results[base_name]])
                d = paired_difference(scores, base)
                line += f"   vs {base_name}: {d.estimate:+.4f} ± {d.standard_error:.4f}"
            print(line)
        print(f"  {name:24s} epochs {np.mean([r['epochs'] for r in results[name]]):.1f}")
    if args.output_json:
        Path(args.output_json).write_text(json.dumps(results))


if __name__ == "__main__":
    main()
