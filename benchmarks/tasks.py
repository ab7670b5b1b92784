"""The measured acceptance figures of the tasks, each with its baseline, on the data in ../shared/data.

    python benchmarks/tasks.py                 # sine, stock, MNIST (about 4 minutes on 2 cores)
    python benchmarks/tasks.py --charlm        # + Tiny Shakespeare, a 10-minute run
    python benchmarks/tasks.py --only mnist    # one of: sine, stock, mnist, charlm

Every run uses the task's defaults (what `rnnlab ... train` does with no tuning flags) and writes its run
folder under --out. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from rnnlab.tasks import charlm, classify, forecast

SHARED = Path(os.environ.get("RNNLAB_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def sine(out: Path) -> tuple:
    m = forecast.train(out=str(out / "sine"))
    return ("forecast, built-in sine, next step", f"held-out MSE {m['mse']:.2g} (target <= 1e-4); persistence "
            f"MSE {m['naive']['rmse'] ** 2:.2g}", m["seconds"])


def stock(out: Path) -> tuple:
    m = forecast.train(csv=str(SHARED / "stock" / "data-02-stock_daily.csv"), target="Close", newest_first=True,
                       window=7, test_frac=0.3, out=str(out / "stock"))
    return ("forecast, stock CSV, Close, window 7, test 30 %",
            f"test RMSE {m['test']['rmse']:.3f} vs persistence {m['naive']['rmse']:.3f} "
            f"({m['rmse_vs_naive']:.3f}x; shrink {m['shrink']:.2f}), seasonal naive {m['seasonal_naive']['rmse']:.3f}; "
            f"MAE {m['test']['mae']:.3f} vs {m['naive']['mae']:.3f}; MASE {m['test']['mase']:.3f} vs naive "
            f"{m['naive']['mase']:.3f}, drift {m['drift']['mase']:.3f}", m["seconds"])


def mnist(out: Path) -> tuple:
    start = time.perf_counter()
    m = classify.train(idx_dir=str(SHARED / "mnist"), out=str(out / "mnist"))
    wall = time.perf_counter() - start
    return ("classify, MNIST train-5k -> t10k, rows as steps",
            f"test accuracy {100 * m['test_accuracy']:.2f} % (target >= 98.3 %), {wall:.0f} s wall in all",
            m["seconds"])


def shakespeare(out: Path) -> tuple:
    m = charlm.train(text_file=str(SHARED / "text" / "tinyshakespeare.txt"), out=str(out / "shakespeare"), minutes=10)
    return ("charlm, Tiny Shakespeare, --minutes 10", f"validation {m['val_loss']:.4f} nats/char (target <= 1.45), "
            f"train {m['train_loss']:.4f}, {m['steps']} steps", m["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/bench")
    parser.add_argument("--charlm", action="store_true", help="include the 10-minute Tiny Shakespeare run")
    parser.add_argument("--only", choices=["sine", "stock", "mnist", "charlm"])
    args = parser.parse_args()
    runs = {"sine": sine, "stock": stock, "mnist": mnist, "charlm": shakespeare}
    names = [args.only] if args.only else ["sine", "stock", "mnist"] + (["charlm"] if args.charlm else [])
    rows = [runs[name](Path(args.out)) for name in names]
    print("| task | result | train seconds |\n|---|---|---|")
    for task, result, seconds in rows:
        print(f"| {task} | {result} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
