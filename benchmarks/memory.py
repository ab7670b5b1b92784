"""The adding problem for each architecture and length: what a network can remember over T steps.

Trains ``rnnlab memory-task`` (hidden 128, Adam 1e-3, batch 64, gradient clipping 1) for every architecture
and T, one run after another, and prints the table: final test MSE, its no-memory baseline (1/6, always
answering 1), solved (below a tenth of the baseline), and the training time.

    python benchmarks/memory.py [--steps 3000] [--lengths 50,100,200,400] [--archs rnn,lstm,gru (default: every registered)] [--task adding]
                                [--device auto|cpu|cuda]
"""

from __future__ import annotations

import argparse

from rnnlab.nn import registry
from rnnlab.tasks import memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--lengths", default="50,100,200,400")
    parser.add_argument("--archs", default=",".join(registry.names()), help="default: every registered one")
    parser.add_argument("--task", default="adding", choices=memory.TASKS)
    parser.add_argument("--out", default="runs/memory_table")
    parser.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu or cuda")
    args = parser.parse_args()
    print(f"{args.task}, hidden 128, {args.steps} steps of batch 64, Adam 1e-3; final test metric (baseline "
          f"{memory.baseline(args.task, 100) if args.task == 'copy' else 1 / 6:.4g}), solved = below a tenth of it")
    print("| arch | T | final | baseline | solved | seconds |\n|---|---|---|---|---|---|")
    for arch in args.archs.split(","):
        for length in map(int, args.lengths.split(",")):
            m = memory.train(task=args.task, length=length, arch=arch, steps=args.steps, quiet=True,
                             device=args.device, out=f"{args.out}/{args.task}_{arch}_{length}")
            print(f"| {arch} | {length} | {m['final']:.4f} | {m['baseline']:.4f} | {'yes' if m['solved'] else 'no'} | "
                  f"{m['seconds']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
