"""A short tour of ``rnnlab.nn``: swap torch.nn for rnnlab.nn, check that nothing changed, look inside."""

from __future__ import annotations

import torch

from rnnlab import nn as rnn


def _max_diff(a, b) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a, b))


def tour(print=print) -> dict:
    """Run every layer kind next to torch.nn in float64 and report the largest differences."""
    torch.manual_seed(0)
    seq_len, batch, features, hidden = 12, 4, 8, 16
    report = {}
    for name in ("RNN", "LSTM", "GRU"):
        reference = getattr(torch.nn, name)(features, hidden, num_layers=2, bidirectional=True, dtype=torch.float64)
        ours = getattr(rnn, name)(features, hidden, num_layers=2, bidirectional=True, dtype=torch.float64, impl="ours")
        ours.load_state_dict(reference.state_dict())  # the same parameter names and shapes
        x = torch.randn(seq_len, batch, features, dtype=torch.float64, requires_grad=True)
        results = []
        for module in (reference, ours):
            output, state = module(x)
            final = state[0] if name == "LSTM" else state
            loss = output.pow(2).sum() + final.sum()
            grads = torch.autograd.grad(loss, [x, *module.parameters()])
            results.append((output, final, grads))
        report[name] = {"output": _max_diff([results[0][0]], [results[1][0]]),
                        "h_n": _max_diff([results[0][1]], [results[1][1]]),
                        "gradients": _max_diff(results[0][2], results[1][2])}
        print(f"{name:4s} 2 layers, bidirectional, float64: max |torch.nn - rnnlab| "
              f"output {report[name]['output']:.1e}, h_n {report[name]['h_n']:.1e}, "
              f"gradients (input + {len(results[0][2]) - 1} parameters) {report[name]['gradients']:.1e}")

    lstm = rnn.LSTM(features, hidden, batch_first=True)
    x = torch.randn(batch, seq_len, features)
    with rnn.inspect(lstm) as trace:
        output, (h_n, c_n) = lstm(x)
    gates = trace[0, 0]
    print(f"\nLSTM(batch_first=True) on x {tuple(x.shape)}: output {tuple(output.shape)}, "
          f"h_n {tuple(h_n.shape)}, c_n {tuple(c_n.shape)}")
    print("per-step internals of layer 0: " + ", ".join(f"{k} {tuple(v.shape)}" for k, v in gates.items()))
    print(f"mean forget gate per step: {' '.join(f'{v:.2f}' for v in gates['f'].mean(dim=(0, 2)).tolist())}")
    report["inspected"] = sorted(gates)
    return report
