"""Speed of rnnlab.nn (our engine, impl="ours": its C++ fast path) against torch.nn, for RNN, LSTM and GRU.

For each shape (T, B, D, H) = (steps, batch, input size, hidden size) it times a training step
(forward + backward of output.sum()) and inference (forward under no_grad), alternating torch.nn and
ours within every repeat so that both see the same machine load, and reports the median of the repeats
and the ratio torch.nn / ours (above 1: ours is faster), then each layer's geometric mean over the shapes.

    python benchmarks/layers.py [--repeats 7] [--modes RNN,LSTM,GRU] [--threads N] [--device cuda]

(``--modes`` also takes RNN_RELU: the plain RNN with relu instead of tanh.)

On a GPU (``--device cuda``) torch.nn runs cuDNN and ours runs the readable engine's CUDA operations step
by step (the C++ fast path is for the CPU); every timed call ends with a synchronize.
"""

from __future__ import annotations

import argparse

import torch

from rnnlab import nn as rnn
from timing import geometric_mean, interleaved

SHAPES = [(14, 1, 10, 10), (20, 1, 1, 32), (7, 500, 5, 10), (28, 128, 28, 128), (50, 64, 128, 256),
          (100, 32, 65, 512)]


def measure(mode: str, shape: tuple, repeats: int, device: torch.device) -> dict:
    steps, batch, features, hidden = shape
    torch.manual_seed(0)
    name, extra = ("RNN", {"nonlinearity": "relu"}) if mode == "RNN_RELU" else (mode, {})
    reference = getattr(torch.nn, name)(features, hidden, **extra).to(device)
    ours = getattr(rnn, name)(features, hidden, impl="ours", **extra).to(device)
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(steps, batch, features).to(device)
    finish = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def train(module):
        module.zero_grad(set_to_none=True)
        module(x)[0].sum().backward()
        finish()

    def infer(module):
        with torch.no_grad():
            module(x)
        finish()

    results = {}
    for task, run in (("train", train), ("infer", infer)):
        medians = interleaved({"torch": lambda: run(reference), "ours": lambda: run(ours)}, repeats)
        results.update({(task, name): seconds for name, seconds in medians.items()})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--modes", default="RNN,LSTM,GRU")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda: torch.nn's cuDNN against ours on the GPU")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, {where}, median of {args.repeats}")
    print("| layer | T, B, D, H | train torch.nn | train ours | torch/ours | infer torch.nn | infer ours | torch/ours |")
    print("|---|---|---|---|---|---|---|---|")
    ratios = {}
    for mode in args.modes.split(","):
        for shape in SHAPES:
            t = measure(mode, shape, args.repeats, device)
            for task in ("train", "infer"):
                ratios.setdefault((mode, task), []).append(t[task, "torch"] / t[task, "ours"])
            print(f"| {mode} | {', '.join(map(str, shape))} | {t['train', 'torch'] * 1e3:.2f} ms | "
                  f"{t['train', 'ours'] * 1e3:.2f} ms | {t['train', 'torch'] / t['train', 'ours']:.2f} | "
                  f"{t['infer', 'torch'] * 1e3:.2f} ms | {t['infer', 'ours'] * 1e3:.2f} ms | "
                  f"{t['infer', 'torch'] / t['infer', 'ours']:.2f} |", flush=True)
    print("\n| layer | train: geometric mean (lowest) | inference: geometric mean (lowest) |\n|---|---|---|")
    for mode in args.modes.split(","):
        cells = [f"{geometric_mean(ratios[mode, task]):.2f} "
                 f"({min(ratios[mode, task]):.2f})" for task in ("train", "infer")]
        print(f"| {mode} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
