"""Stacked as the classic layers are, or wrapped as the modern recurrences' language models wrap them?

Griffin (De et al. 2024) and the minGRU paper's language model (Feng et al. 2024) put each recurrent layer in
a pre-normalised residual block followed by an MLP block:

    x = x + RNN_k(LayerNorm(x));   x = x + MLP_k(LayerNorm(x)),   MLP = Linear(H, 4H) -> GELU -> Linear(4H, H)

This trains both on Tiny Shakespeare (characters, sequences of 128, batch 32, AdamW 2e-3 with a cosine decay,
gradient clipping 1) for the same number of steps and prints the validation loss (nats per character, the
last 10 % of the text) and the time per step: the plain stack (``num_layers`` layers in one module, as
``rnnlab charlm`` builds it) against the blocks, for each architecture, at the same hidden size and depth.

    python benchmarks/modern_blocks.py [--archs mingru,minlstm,rglru] [--steps 400] [--hidden 256] [--layers 3]
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from rnnlab.nn import registry

TEXT = Path(os.environ.get("RNNLAB_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
TEXT = TEXT / "text" / "tinyshakespeare.txt"


class Plain(nn.Module):
    def __init__(self, arch, vocab, hidden, layers):
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.rnn = registry.get(arch).layer(hidden, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, tokens):  # (N, L) -> (N, L, vocab)
        return self.head(self.rnn(self.embed(tokens))[0])


class Blocks(nn.Module):
    def __init__(self, arch, vocab, hidden, layers):
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.rnns = nn.ModuleList(registry.get(arch).layer(hidden, hidden, batch_first=True) for _ in range(layers))
        self.mlps = nn.ModuleList(nn.Sequential(nn.Linear(hidden, 4 * hidden), nn.GELU(), nn.Linear(4 * hidden, hidden))
                                  for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(2 * layers + 1))
        self.head = nn.Linear(hidden, vocab)

    def forward(self, tokens):
        x = self.embed(tokens)  # (N, L, H)
        for k, (rnn, mlp) in enumerate(zip(self.rnns, self.mlps)):
            x = x + rnn(self.norms[2 * k](x))[0]
            x = x + mlp(self.norms[2 * k + 1](x))
        return self.head(self.norms[-1](x))


def train(model, data, val, steps, seq=128, batch=32, lr=2e-3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    start = time.perf_counter()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        at = torch.randint(0, len(data) - seq - 1, (batch,), generator=gen)
        window = torch.stack([data[i:i + seq + 1] for i in at.tolist()])  # (N, L + 1)
        loss = F.cross_entropy(model(window[:, :-1]).flatten(0, 1), window[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        pieces = val[: (len(val) - 1) // (seq + 1) * (seq + 1)].view(-1, seq + 1)[:256]
        val_loss = F.cross_entropy(model(pieces[:, :-1]).flatten(0, 1), pieces[:, 1:].flatten()).item()
    return val_loss, seconds / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", default="mingru,minlstm,rglru")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    text = TEXT.read_text(encoding="utf-8")
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([index[c] for c in text])  # (characters,)
    cut = int(0.9 * len(data))
    print(f"Tiny Shakespeare, {args.layers} x {args.hidden}, {args.steps} steps of 32 x 128 characters")
    print("| arch | stacking | validation loss | ms per step | parameters |\n|---|---|---|---|---|")
    for arch in args.archs.split(","):
        for name, kind in (("plain stack", Plain), ("residual blocks + MLP", Blocks)):
            torch.manual_seed(0)
            model = kind(arch, len(chars), args.hidden, args.layers)
            loss, per_step = train(model, data[:cut], data[cut:], args.steps)
            count = sum(p.numel() for p in model.parameters())
            print(f"| {arch} | {name} | {loss:.4f} | {per_step * 1e3:.0f} | {count:,} |", flush=True)


if __name__ == "__main__":
    main()
