"""Long sequences: peak memory and time of one LSTM training step at T = 100, 1,000 and 10,000 (B=32, H=128),
torch.nn against ours without and with ``checkpoint_steps``.

Every measurement runs in a fresh subprocess, so that its peak resident memory (ru_maxrss) is its own; the
table shows that peak and the peak minus the RSS just before the step (the memory the step itself took).
Time is the second of two steps (the first pays for allocation), median over --repeats subprocesses.

    python benchmarks/long.py [--steps 100,1000,10000] [--checkpoint 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

BATCH, FEATURES, HIDDEN = 32, 16, 128


def child(kind: str, steps: int, every: int) -> None:
    """One measurement: build, take two training steps, print JSON."""
    import torch

    from rnnlab import nn as rnn
    torch.manual_seed(0)
    if kind == "torch":
        module = torch.nn.LSTM(FEATURES, HIDDEN)
    else:
        module = rnn.LSTM(FEATURES, HIDDEN, impl="ours", checkpoint_steps=every)
    x = torch.randn(steps, BATCH, FEATURES)
    module(x[:2])[0].sum().backward()  # load the extension, warm the allocator on a tiny input
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds = []
    for _ in range(2):
        module.zero_grad(set_to_none=True)
        start = time.perf_counter()
        module(x)[0].sum().backward()
        seconds.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_mb": peak / 1024, "step_mb": (peak - before) / 1024, "seconds": seconds[-1]}))


def measure(kind: str, steps: int, every: int, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        done = subprocess.run([sys.executable, __file__, "--child", kind, str(steps), str(every)],
                              capture_output=True, text=True, check=True)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", default="100,1000,10000")
    parser.add_argument("--checkpoint", type=int, default=100, help="checkpoint_steps of the third contender")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), int(args.child[2]))
        return
    contenders = [("torch.nn.LSTM", "torch", 0), ("ours", "ours", 0),
                  (f"ours, checkpoint_steps={args.checkpoint}", "ours", args.checkpoint)]
    print(f"LSTM training step, B={BATCH}, D={FEATURES}, H={HIDDEN}, float32, CPU; peak RSS of a fresh process "
          f"(and what the step added), median of {args.repeats} processes")
    print("| T | " + " | ".join(name for name, _, _ in contenders) + " |")
    print("|---|" + "---|" * len(contenders))
    for steps in map(int, args.steps.split(",")):
        cells = []
        for _, kind, every in contenders:  # one process at a time: interleaving would share the cores
            m = measure(kind, steps, every, args.repeats)
            cells.append(f"{m['peak_mb']:,.0f} MB (+{m['step_mb']:,.0f}), {m['seconds']:.2f} s")
        print(f"| {steps:,} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
