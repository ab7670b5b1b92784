"""Japanese Vowels (UEA: 270 train / 370 test cases, 12 channels, 7-29 frames, 9 speakers), read from the
archive's .ts files, classified with the task's defaults -- and, beside them, without the default jitter.

    python benchmarks/japanese_vowels.py                   # seeds 0,1,2 (about 4 minutes on 2 cores)
    python benchmarks/japanese_vowels.py --seeds 0,1,2,3,4

Prints a Markdown table: test accuracy per seed, its mean, and the training seconds. Published test
accuracies for comparison (Fawaz et al. 2019, Ismail Fawaz et al. 2020): FCN 0.993, ResNet 0.992,
InceptionTime 0.992, MLP 0.976, an echo-state network (TWIESN) 0.965.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from rnnlab.tasks import classify

SHARED = Path(os.environ.get("RNNLAB_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def run(seed: int, **settings) -> tuple[float, float]:
    folder = SHARED / "sequences"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        metrics = classify.train(ts=str(folder / "JapaneseVowels_TRAIN.ts"), ts_test=str(folder / "JapaneseVowels_TEST.ts"),
                                 out=out, quiet=True, seed=seed, **settings)
    return metrics["test_accuracy"], time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = {"defaults (jitter 0.2)": {}, "--noise 0 (no jitter)": {}}
    for seed in seeds:  # interleaved: the two recipes see the same machine load
        rows["defaults (jitter 0.2)"][seed] = run(seed)
        rows["--noise 0 (no jitter)"][seed] = run(seed, noise=0.0)
    print(f"| recipe | test accuracy, seeds {args.seeds} | mean | seconds (median) |")
    print("|---|---|---|---|")
    for name, results in rows.items():
        accuracies = [results[s][0] for s in seeds]
        print(f"| {name} | {' / '.join(f'{a:.4f}' for a in accuracies)} | {np.mean(accuracies):.4f} | "
              f"{np.median([results[s][1] for s in seeds]):.0f} |")


if __name__ == "__main__":
    main()
