"""A memory task for each architecture, depth and length: what a network can remember over T steps.

Trains ``rnnlab memory-task`` (hidden 128, Adam 1e-3, batch 64, gradient clipping 1) for every architecture,
number of layers and T, one run after another, and prints the table: the final test metric (adding: MSE;
copy: cross-entropy per step; selective-copy: token accuracy), its no-memory baseline, solved (adding, copy:
below a tenth of the baseline; selective-copy: accuracy >= 95 %), and the training time.

    python benchmarks/memory.py [--task adding|copy|selective-copy] [--steps 3000] [--lengths 50,100,200,400]
                                [--archs rnn,lstm,gru (default: every registered)] [--layers 1,2,3]
                                [--threads N] [--device auto|cpu|cuda]
"""

from __future__ import annotations

import argparse

import torch

from rnnlab.nn import registry
from rnnlab.tasks import memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--lengths", default="50,100,200,400")
    parser.add_argument("--archs", default=",".join(registry.names()), help="default: every registered one")
    parser.add_argument("--task", default="adding", choices=memory.TASKS)
    parser.add_argument("--layers", default="1", help="stacked layers, a list: 1,2,3")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--out", default="runs/memory_table")
    parser.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu or cuda")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{args.task}, hidden 128, {args.steps} steps of batch 64, Adam 1e-3; the final test metric")
    print("| arch | layers | T | final | baseline | solved | seconds |\n|---|---|---|---|---|---|---|")
    for arch in args.archs.split(","):
        for layers in map(int, args.layers.split(",")):
            for length in map(int, args.lengths.split(",")):
                m = memory.train(task=args.task, length=length, arch=arch, layers=layers, steps=args.steps,
                                 quiet=True, device=args.device,
                                 out=f"{args.out}/{args.task}_{arch}_{layers}_{length}")
                print(f"| {arch} | {layers} | {length} | {m['final']:.4f} | {m['baseline']:.4f} | "
                      f"{'yes' if m['solved'] else 'no'} | {m['seconds']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
