"""Speed of the modern recurrences (rnnlab.nn.MinGRU, MinLSTM, RGLRU) and of their scan, against torch.nn.

Three tables, every contender of a table timed in turn within each repeat (interleaved), medians, ratios:

1. The scan ``linear_scan`` (forward + backward) on (N, T, H) float32, beside one ``torch.add(a, b, out=c)`` of
   that shape -- the cheapest pass over memory there is -- for each of its forms: the C++ loop (impl="ours"),
   the loop in torch operations (impl="reference") and the log-space form (impl="log").
2. A layer's training step (forward + backward of output.sum(), B = 32, input = hidden = 256) and its inference
   (forward under no_grad) at T = 256 and 1,024: torch.nn.GRU and LSTM, our MinGRU, MinLSTM and RGLRU, and the
   modern layers' own input projection (one Linear(256, G * 256) over all steps, forward + backward) -- the
   floor under them, since they have no recurrent product.
3. Stepping one token at a time with a carried state (what sampling does), batch 1: torch.nn.GRU against
   MinGRU, MinLSTM and RGLRU, per token.

    python benchmarks/modern.py [--repeats 7] [--threads N] [--lengths 256,1024]
"""

from __future__ import annotations

import argparse

import torch

from rnnlab import nn as rnn
from timing import interleaved

BATCH, SIZE = 32, 256
MODERN = ("MinGRU", "MinLSTM", "RGLRU")


def scan_table(repeats: int) -> None:
    torch.manual_seed(0)
    shape = (32, 1024, 256)
    c = torch.empty(shape)
    a, b = torch.rand(shape) * 0.5 + 0.5, torch.rand(shape) + 0.1  # positive: the log-space form applies
    a.requires_grad_(), b.requires_grad_()
    grad = torch.randn(shape)

    def scan(impl):
        def run():
            a.grad = b.grad = None
            rnn.linear_scan(a, b, impl=impl).backward(grad)
        return run

    runs = {"torch.add(a, b, out=c)": lambda: torch.add(a.detach(), b.detach(), out=c)}
    runs.update({f"linear_scan impl={impl!r}, forward + backward": scan(impl) for impl in ("ours", "reference", "log")})
    t = interleaved(runs, repeats)
    add = t["torch.add(a, b, out=c)"]
    print(f"\n### The scan on {shape} float32\n\n| what | time | / torch.add |\n|---|---|---|")
    for name, seconds in t.items():
        print(f"| {name} | {seconds * 1e3:.2f} ms | {seconds / add:.1f} |", flush=True)


def layer_table(lengths, repeats: int) -> None:
    print(f"\n### A layer, B = {BATCH}, input = hidden = {SIZE}, float32\n")
    print("| T | layer | train step | torch.nn.GRU / this | this / its Linear | inference | torch.nn.GRU / this |")
    print("|---|---|---|---|---|---|---|")
    for steps in lengths:
        torch.manual_seed(0)
        x = torch.randn(steps, BATCH, SIZE)
        layers = {"torch.nn.GRU": torch.nn.GRU(SIZE, SIZE), "torch.nn.LSTM": torch.nn.LSTM(SIZE, SIZE)}
        layers.update({name: getattr(rnn, name)(SIZE, SIZE) for name in MODERN})
        projections = {g: torch.nn.Linear(SIZE, g * SIZE) for g in (2, 3)}  # minGRU's (2H rows), the others' (3H)
        inputs = x.clone().requires_grad_()  # the projection's gradient reaches its input, as the layers' does
        grads = {g: torch.randn(steps, BATCH, g * SIZE) for g in projections}

        def train(module):
            def run():
                module.zero_grad(set_to_none=True)
                module(x)[0].sum().backward()
            return run

        def project(g):
            def run():
                projections[g].zero_grad(set_to_none=True)
                inputs.grad = None
                projections[g](inputs).backward(grads[g])
            return run

        def infer(module):
            def run():
                with torch.no_grad():
                    module(x)
            return run

        runs = {("train", name): train(m) for name, m in layers.items()}
        runs.update({("project", g): project(g) for g in projections})
        runs.update({("infer", name): infer(m) for name, m in layers.items()})
        t = interleaved(runs, repeats)
        for name, layer in layers.items():
            own = t["project", getattr(layer, "gates", 0)] if name in MODERN else None
            floor = f"{t['train', name] / own:.2f}" if own else "-"
            print(f"| {steps} | {name} | {t['train', name] * 1e3:.1f} ms | "
                  f"{t['train', 'torch.nn.GRU'] / t['train', name]:.2f} | {floor} | "
                  f"{t['infer', name] * 1e3:.1f} ms | {t['infer', 'torch.nn.GRU'] / t['infer', name]:.2f} |",
                  flush=True)
        for g in projections:
            print(f"| {steps} | Linear({SIZE}, {g * SIZE}) forward + backward | {t['project', g] * 1e3:.1f} ms | "
                  f"| | | |")


def stepping_table(repeats: int, tokens: int = 64) -> None:
    torch.manual_seed(0)
    xs = torch.randn(tokens, 1, 1, SIZE)  # one token at a time: (L = 1, N = 1, H_in)
    layers = {"torch.nn.GRU": torch.nn.GRU(SIZE, SIZE)}
    layers.update({name: getattr(rnn, name)(SIZE, SIZE) for name in MODERN})

    def step(module):
        def run():
            with torch.no_grad():
                h = None
                for x in xs:
                    _, h = module(x, h)
        return run

    t = interleaved({name: step(m) for name, m in layers.items()}, repeats)
    print(f"\n### Stepping one token with a carried state, batch 1, input = hidden = {SIZE}\n")
    print("| layer | per token | torch.nn.GRU / this |\n|---|---|---|")
    for name, seconds in t.items():
        print(f"| {name} | {seconds / tokens * 1e6:.1f} us | {t['torch.nn.GRU'] / seconds:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--lengths", default="256,1024", help="the sequence lengths T of the layer table")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rnn.fast.extension()  # built and loaded (and malloc set to reuse freed blocks) before anything is timed
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU, median of {args.repeats}")
    scan_table(args.repeats)
    layer_table([int(n) for n in args.lengths.split(",")], args.repeats)
    stepping_table(args.repeats)


if __name__ == "__main__":
    main()
