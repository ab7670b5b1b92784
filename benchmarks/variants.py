"""The LSTM variants torch.nn lacks: a training step of ours against the same variant written the usual way
(a Python loop over cells under autograd) and against plain torch.nn.LSTM without the variant.

For each shape (T, B, D, H) and variant it times forward + backward of output.sum(), the three contenders
interleaved in every repeat, and prints the medians and each one's time relative to plain torch.nn.LSTM
(below 1.3: the variant costs less than 30 % over torch's fused LSTM).

    python benchmarks/variants.py [--repeats 7] [--variants layer_norm,recurrent_dropout,zoneout,weight_drop]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from rnnlab import nn as rnn
from timing import interleaved

SHAPES = [(28, 128, 28, 128), (50, 64, 128, 256), (100, 32, 65, 512)]
VARIANTS = {"layer_norm": True, "recurrent_dropout": 0.25, "zoneout": 0.1, "weight_drop": 0.5}


class CellLoop(torch.nn.Module):
    """The usual way: an LSTM step by step under autograd, with the variant written into the loop."""

    def __init__(self, variant: str, value, features: int, hidden: int) -> None:
        super().__init__()
        self.variant, self.p = variant, float(value)
        self.cell = torch.nn.LSTMCell(features, hidden)
        if variant == "layer_norm":
            self.norm_ih, self.norm_hh = torch.nn.LayerNorm(4 * hidden), torch.nn.LayerNorm(4 * hidden)
            self.norm_c = torch.nn.LayerNorm(hidden)

    def forward(self, x):  # x: (T, B, D)
        batch, hidden = x.shape[1], self.cell.hidden_size
        h = c = x.new_zeros(batch, hidden)
        cell = self.cell
        if self.variant == "layer_norm":
            x_proj = self.norm_ih(x @ cell.weight_ih.t()) + cell.bias_ih  # (T, B, 4H)
        if self.variant == "recurrent_dropout":
            mask = F.dropout(x.new_ones(batch, hidden), self.p)
        outputs = []
        for t in range(x.shape[0]):
            if self.variant == "layer_norm":
                gates = x_proj[t] + self.norm_hh(h @ cell.weight_hh.t()) + cell.bias_hh
                i, f, g, o = gates.chunk(4, 1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(self.norm_c(c))
            elif self.variant == "recurrent_dropout":
                gates = F.linear(x[t], cell.weight_ih, cell.bias_ih) + F.linear(h * mask, cell.weight_hh, cell.bias_hh)
                i, f, g, o = gates.chunk(4, 1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
            elif self.variant == "zoneout":
                h_new, c_new = cell(x[t], (h, c))
                keep_h = torch.empty_like(h).bernoulli_(self.p)
                keep_c = torch.empty_like(c).bernoulli_(self.p)
                h, c = keep_h * h + (1 - keep_h) * h_new, keep_c * c + (1 - keep_c) * c_new
            else:  # weight_drop: AWD-LSTM's way is torch's kernel on masked weights, no cell loop needed
                raise ValueError("weight_drop is run by WeightDropLSTM")
            outputs.append(h)
        return torch.stack(outputs), (h, c)


class WeightDropLSTM(torch.nn.Module):
    """The usual weight_drop (AWD-LSTM's WeightDrop): torch.nn.LSTM called with a DropConnect-ed W_hh."""

    def __init__(self, p: float, features: int, hidden: int) -> None:
        super().__init__()
        self.p, self.lstm = p, torch.nn.LSTM(features, hidden)

    def forward(self, x):
        weights = dict(self.lstm.named_parameters())
        weights["weight_hh_l0"] = F.dropout(weights["weight_hh_l0"], self.p)
        return torch.func.functional_call(self.lstm, weights, (x,))


def measure(variant: str, shape: tuple, repeats: int) -> dict:
    steps, batch, features, hidden = shape
    torch.manual_seed(0)
    value = VARIANTS[variant]
    plain = torch.nn.LSTM(features, hidden)
    ours = rnn.LSTM(features, hidden, impl="ours", **{variant: value})
    usual = WeightDropLSTM(value, features, hidden) if variant == "weight_drop" else \
        CellLoop(variant, value, features, hidden)
    x = torch.randn(steps, batch, features)

    def train(module):
        module.zero_grad(set_to_none=True)
        module(x)[0].sum().backward()

    return interleaved({name: (lambda m=module: train(m)) for name, module in
                        (("torch", plain), ("ours", ours), ("usual", usual))}, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, CPU, training step, "
          f"median of {args.repeats}; time relative to plain torch.nn.LSTM (lower is better)")
    print("| variant | T, B, D, H | torch.nn.LSTM (no variant) | ours | ours / torch | usual way | usual / torch |")
    print("|---|---|---|---|---|---|---|")
    for variant in args.variants.split(","):
        for shape in SHAPES:
            t = measure(variant, shape, args.repeats)
            print(f"| {variant}={VARIANTS[variant]} | {', '.join(map(str, shape))} | {t['torch'] * 1e3:.1f} ms | "
                  f"{t['ours'] * 1e3:.1f} ms | {t['ours'] / t['torch']:.2f} | {t['usual'] * 1e3:.1f} ms | "
                  f"{t['usual'] / t['torch']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
