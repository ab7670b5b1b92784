"""Zoology's multi-query associative recall (Arora et al. 2023) for every registered architecture: the table of
issue 39 -- d_model 64 and 128, two layers, (sequence length, key-value pairs) in (64, 4), (128, 8), (256, 16),
vocabulary 8,192, the same budget for every architecture (steps of batch 64, AdamW at ``--lr``, the head tied to
the embedding as Zoology's models are).

Each run is ``rnnlab memory-task --task mqar`` in a folder of its own under ``--out``; a run whose folder already
holds the metrics of the same settings is read, not trained again, so the table can be filled over several
sittings (``--cells`` picks which (L, pairs, d_model) to run, in order). Prints the table of accuracies on the
asked values (held-out sequences) with each run's seconds.

    python benchmarks/mqar.py [--archs gdn,mlstm,...] [--cells 256x16x128,128x8x128,...] [--steps 1000]
                              [--lr 3e-3] [--curriculum 64x4:500] [--threads N] [--out runs/mqar]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from rnnlab.nn import registry
from rnnlab.tasks import memory

CELLS = ("64x4x64", "128x8x64", "256x16x64", "64x4x128", "128x8x128", "256x16x128")  # L x pairs x d_model


def run(arch: str, length: int, pairs: int, width: int, steps: int, lr: float, out: Path,
        curriculum: str | None = None) -> dict:
    """One run's metrics, trained now or read from its folder when it holds these settings. ``curriculum``:
    its stages shorter than this cell's sequences come first (memory.train's curriculum)."""
    stages = [stage for stage in (curriculum or "").split(",") if stage and int(stage.split("x")[0]) < length]
    settings = dict(steps=steps, lr=lr, **({"curriculum": ",".join(stages)} if stages else {}))
    folder = out / f"{arch}_L{length}_p{pairs}_d{width}"
    saved = folder / "metrics.json"
    if saved.exists():
        metrics = json.loads(saved.read_text())
        known = json.loads((folder / "settings.json").read_text()) if (folder / "settings.json").exists() else {}
        if known == settings:
            return metrics
    metrics = memory.train(task="mqar", arch=arch, hidden=width, layers=2, length=length, pairs=pairs, steps=steps,
                           lr=lr, eval_every=max(steps // 5, 1), out=str(folder), quiet=True,
                           curriculum=",".join(stages) or None)
    (folder / "settings.json").write_text(json.dumps(settings))
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", default=",".join(registry.names()), help="default: every registered one")
    parser.add_argument("--cells", default=",".join(CELLS), help="L x pairs x d_model, in the order to run them")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--curriculum", default=None, help="stages LxP:STEPS trained first in the cells of longer "
                                                            "sequences (e.g. 64x4:500)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--out", default="runs/mqar")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cells = [tuple(map(int, cell.split("x"))) for cell in args.cells.split(",")]
    archs = args.archs.split(",")
    results = {}
    for length, pairs, width in cells:
        for arch in archs:
            m = run(arch, length, pairs, width, args.steps, args.lr, Path(args.out), args.curriculum)
            results[arch, length, pairs, width] = m
            print(f"mqar L {length} pairs {pairs} d_model {width} {arch}: {100 * m['final']:.1f} % "
                  f"({m['seconds']:.0f} s)", flush=True)
    print(f"\nmqar, vocabulary 8,192, two layers, {args.steps} steps of batch 64, AdamW {args.lr:g}"
          f"{', curriculum ' + args.curriculum if args.curriculum else ''}; accuracy on the asked values (held-out "
          "sequences), seconds in brackets\n")
    print("| arch | " + " | ".join(f"({l}, {p}) d {w}" for l, p, w in cells) + " |")
    print("|---|" + "---|" * len(cells))
    for arch in archs:
        row = [results[arch, *cell] for cell in cells]
        print(f"| {arch} | " + " | ".join(f"{100 * m['final']:.1f} % ({m['seconds']:.0f})" for m in row) + " |")


if __name__ == "__main__":
    main()
