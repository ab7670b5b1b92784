"""Why a plain RNN forgets, measured: how much of a loss's gradient reaches each earlier hidden state.

The task needs memory: a sequence of T steps whose first value is +1 or -1 and the rest noise; the network
must tell, from its last hidden state, which sign came first. To see the recurrence alone, the gradient is
measured for a fixed linear read-out L = u . h_{T-1} (u a random unit vector; a trained classifier's own
loss flattens once it is confident), so the gradient that reaches h_t has travelled back T-1-t steps:

    dL/dh_t = dL/dh_{t+1} * dh_{t+1}/dh_t      (the chain rule, one Jacobian per step)

For a tanh RNN each Jacobian is diag(1 - h^2) W_hh, and a product of many of them shrinks (or grows)
geometrically: the vanishing (exploding) gradient. The LSTM's cell state passes through f * c, the GRU's
state through z * h: paths whose factor the gates can hold near 1. ``measure`` trains one network of each
kind on the task and records ||dL/dh_t|| for every t, at initialisation and after training.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import nn as rnn
from ..errors import check_settings
from ..training import prepare_out_dir

KINDS = {"rnn_tanh": ("RNN", {"nonlinearity": "tanh"}), "rnn_relu": ("RNN", {"nonlinearity": "relu"}),
         "lstm": ("LSTM", {}), "gru": ("GRU", {})}


def first_sign_task(length: int, batch: int, generator: torch.Generator):
    """x (T, N, 1): the first step +-1, then noise N(0, 0.2^2); y (N,): 1 where the first step was +1."""
    y = torch.randint(0, 2, (batch,), generator=generator)
    x = 0.2 * torch.randn(length, batch, 1, generator=generator)
    x[0, :, 0] = 2.0 * y - 1.0
    return x, y.float()


class MemoryProbe(torch.nn.Module):
    """One recurrent layer (rnnlab.nn) and a linear read-out of its last hidden state."""

    def __init__(self, kind: str, hidden: int) -> None:
        super().__init__()
        name, options = KINDS[kind]
        self.kind, self.layer = kind, getattr(rnn, name)(1, hidden, **options)
        self.head = torch.nn.Linear(hidden, 1)

    def forward(self, x):  # x (T, N, 1) -> logits (N,)
        output, _ = self.layer(x)
        return self.head(output[-1]).squeeze(1)

    def gradient_norms(self, x, u) -> np.ndarray:
        """||dL/dh_t|| for t = 0 .. T-1 (mean over the batch) with L = sum over the batch of u . h_{T-1}: the
        layer's own weights, stepped one t at a time so that each h_t is a tensor whose gradient autograd keeps."""
        p = dict(self.layer.named_parameters())
        w = (p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"])
        h = x.new_zeros(x.shape[1], self.layer.hidden_size)
        c = torch.zeros_like(h)
        states = []
        for t in range(x.shape[0]):
            if self.kind == "lstm":
                h, c = torch.lstm_cell(x[t], (h, c), *w)
            elif self.kind == "gru":
                h = torch.gru_cell(x[t], h, *w)
            else:
                h = (torch.rnn_tanh_cell if self.kind == "rnn_tanh" else torch.rnn_relu_cell)(x[t], h, *w)
            h.retain_grad()
            states.append(h)
        (h @ u).sum().backward()
        self.zero_grad(set_to_none=True)
        return np.array([state.grad.norm(dim=1).mean().item() for state in states])


def measure(length: int = 50, hidden: int = 32, steps: int = 300, batch: int = 64, lr: float = 1e-2,
            seed: int = 0) -> dict:
    """For each kind: gradient norms per step at initialisation and after ``steps`` Adam steps on the task,
    and the accuracy it reached (on fresh sequences)."""
    results = {}
    for kind in KINDS:
        torch.manual_seed(seed)
        model = MemoryProbe(kind, hidden)
        probe = first_sign_task(length, 256, torch.Generator().manual_seed(seed + 1))[0]
        u = F.normalize(torch.randn(hidden, generator=torch.Generator().manual_seed(seed + 4)), dim=0)
        before = model.gradient_norms(probe, u)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        data = torch.Generator().manual_seed(seed + 2)
        for _ in range(steps):
            x, y = first_sign_task(length, batch, data)
            loss = F.binary_cross_entropy_with_logits(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        after = model.gradient_norms(probe, u)
        with torch.no_grad():
            x, y = first_sign_task(length, 1000, torch.Generator().manual_seed(seed + 3))
            accuracy = ((model(x) > 0).float() == y).float().mean().item()
        results[kind] = {"init": before.tolist(), "trained": after.tolist(), "accuracy": accuracy,
                         "ratio_init": float(before[0] / before[-1]), "ratio_trained": float(after[0] / after[-1])}
    return {"length": length, "hidden": hidden, "steps": steps, "kinds": results}


def table(results: dict) -> str:
    lines = [f"||dL/dh_0|| / ||dL/dh_{{T-1}}|| over T = {results['length']} steps (hidden {results['hidden']}), "
             f"and accuracy after {results['steps']} training steps (chance: 0.5)",
             "| layer | ratio at init | ratio trained | accuracy trained |", "|---|---|---|---|"]
    for kind, r in results["kinds"].items():
        lines.append(f"| {kind} | {r['ratio_init']:.2e} | {r['ratio_trained']:.2e} | {r['accuracy']:.3f} |")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    from ..plots import figure
    fig = figure(figsize=(11, 4))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, stage, title in zip(axes, ("init", "trained"), ("at initialisation", f"after {results['steps']} steps")):
        for kind, r in results["kinds"].items():
            ax.semilogy(range(results["length"]), r[stage], label=kind)
        ax.set_title(f"||dL/dh_t||, {title}")
        ax.set_xlabel("t (the loss reads the last step)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def run(out: str | Path, **settings) -> dict:
    """``measure``, then write gradients.json and gradients.png into ``out``; returns the results. A setting
    out of range (length, hidden, steps) or a folder that cannot be written is a UserError."""
    check_settings(settings, positive=("length", "hidden", "steps", "batch"))
    out = prepare_out_dir(out)
    results = measure(**settings)
    (out / "gradients.json").write_text(json.dumps(results, indent=1))
    plot(results, out / "gradients.png")
    return results
