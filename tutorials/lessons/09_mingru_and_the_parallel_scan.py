# %% [markdown]
# # Lesson 9 — RNNs without the state in the gates: minGRU and the parallel scan
#
# A GRU's gates read the previous state. With `*` elementwise:
#
# | GRU (Cho et al. 2014) | minGRU (Feng et al. 2024, "Were RNNs All We Needed?") |
# |---|---|
# | `z_t = sigmoid(W_z x_t + U_z h_{t-1} + b_z)` | `z_t = sigmoid(W_z x_t + b_z)` |
# | `r_t = sigmoid(W_r x_t + U_r h_{t-1} + b_r)` | (no reset gate) |
# | `h~_t = tanh(W_h x_t + r_t * (U_h h_{t-1}) + b_h)` | `h~_t = g(W_h x_t + b_h)` |
# | `h_t = (1 - z_t) * h_{t-1} + z_t * h~_t` | `h_t = (1 - z_t) * h_{t-1} + z_t * h~_t` |
#
# (`g(v) = v + 0.5` for `v >= 0`, `sigmoid(v)` below: positive, which the log-space form below needs.)
# On the right nothing but the last line reads `h_{t-1}`, and that line is linear in it:
# `h_t = a_t * h_{t-1} + b_t` with `a_t = 1 - z_t`, `b_t = z_t * h~_t`. Every `a_t` and `b_t` comes from the
# input alone, so one matrix product computes them for all steps at once; what is left is a *scan*. The GRU
# cannot do that: step t's product `U h_{t-1}` waits for step t - 1.
#
# We write the scan three ways, check that they agree, time a training step against the GRU as the sequence
# grows, and measure how exact the log-space form is in float32.

# %%
import os
import time

import matplotlib.pyplot as plt
import torch

from rnnlab import nn as rnn

QUICK = os.environ.get("RNNLAB_TUTORIAL_QUICK") == "1"


def scan_loop(a, b, h0):
    """h_t = a_t * h_{t-1} + b_t, one step after another: a, b (N, T, H), h0 (N, H) -> h (N, T, H)."""
    h, state = [], h0
    for t in range(a.shape[1]):
        state = a[:, t] * state + b[:, t]
        h.append(state)
    return torch.stack(h, dim=1)


def scan_log_space(a, b, h0):
    """Heinsen (2023), the minGRU paper's form: log h_t = a*_t + logcumsumexp_k(log b_k - a*_k), where
    a*_t = log a_1 + ... + log a_t and the term k = 0 is h0 (a, b, h0 > 0)."""
    a_star = torch.cumsum(torch.log(a), dim=1)  # (N, T, H)
    terms = torch.cat((torch.log(h0).unsqueeze(1), torch.log(b) - a_star), dim=1)  # (N, T + 1, H)
    return torch.exp(a_star + torch.logcumsumexp(terms, dim=1)[:, 1:])


torch.manual_seed(0)
N, T, H = 4, 50, 8
a = torch.rand(N, T, H, dtype=torch.float64)  # decays in (0, 1)
b = torch.rand(N, T, H, dtype=torch.float64)
h0 = torch.rand(N, H, dtype=torch.float64)
loop = scan_loop(a, b, h0)
for name, h in (("log space (ours written above)", scan_log_space(a, b, h0)),
                ("rnnlab linear_scan, impl='reference'", rnn.linear_scan(a, b, h0, impl="reference")),
                ("rnnlab linear_scan, impl='log'", rnn.linear_scan(a, b, h0, impl="log")),
                ("rnnlab linear_scan, impl='ours' (C++)", rnn.linear_scan(a, b, h0))):
    print(f"{name:40s} largest difference from the loop: {(h - loop).abs().max().item():.1e}")

# %% [markdown]
# All four agree to float64 rounding. `linear_scan` is differentiable: its backward is the same recurrence
# run backwards, `G_t = dL/dh_t + a_{t+1} * G_{t+1}`, with `dL/db_t = G_t` and `dL/da_t = G_t * h_{t-1}` — a
# second scan, no per-step matrices. `rnnlab.nn.MinGRU` (and `MinLSTM`, `RGLRU`) compute the gates with one
# `Linear` over all steps and hand `a`, `b` to that scan; in the C++ engine the gate arithmetic happens inside
# the scan's loop.
#
# Now the training step (forward + backward) as T grows, batch 16, input and hidden 128, float32, on this
# machine's CPU: `torch.nn.GRU` and `torch.nn.LSTM`, a minGRU whose scan is the Python loop above, one whose
# scan is the log-space form, and `rnnlab.nn.MinGRU` (the C++ scan).

# %%
class LessonMinGRU(torch.nn.Module):
    """minGRU from the table above, with a scan of our choosing."""

    def __init__(self, size, hidden, scan):
        super().__init__()
        self.linear, self.scan = torch.nn.Linear(size, 2 * hidden), scan

    def forward(self, x):  # x (N, T, size)
        gate, candidate = self.linear(x).chunk(2, dim=-1)  # (N, T, H) each
        z = torch.sigmoid(gate)
        h_tilde = torch.where(candidate >= 0, candidate + 0.5, torch.sigmoid(candidate))
        h0 = torch.full_like(z[:, 0], 1e-3)  # positive, for the log-space form
        return self.scan(1 - z, z * h_tilde, h0)


def step_time(module, x, repeats):
    times = []
    for _ in range(repeats):
        module.zero_grad(set_to_none=True)
        start = time.perf_counter()
        out = module(x)
        (out[0] if isinstance(out, tuple) else out).sum().backward()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


size = hidden = 128
lengths = [16, 32, 64] if QUICK else [64, 128, 256, 512, 1024]
models = {"torch.nn.GRU": torch.nn.GRU(size, hidden, batch_first=True),
          "torch.nn.LSTM": torch.nn.LSTM(size, hidden, batch_first=True),
          "minGRU, Python loop": LessonMinGRU(size, hidden, scan_loop),
          "minGRU, log space": LessonMinGRU(size, hidden, scan_log_space),
          "rnnlab.nn.MinGRU (C++ scan)": rnn.MinGRU(size, hidden, batch_first=True)}
timings = {name: [] for name in models}
for steps in lengths:
    x = torch.randn(16, steps, size)
    for name, model in models.items():
        step_time(model, x, 1)  # warm-up
        timings[name].append(step_time(model, x, 3 if QUICK else 5))
print("T      " + "".join(f"{name:>30s}" for name in models))
for k, steps in enumerate(lengths):
    print(f"{steps:<7d}" + "".join(f"{timings[name][k] * 1e3:27.1f} ms" for name in models))

fig, ax = plt.subplots(figsize=(8, 4.2))
for name, values in timings.items():
    ax.loglog(lengths, [v * 1e3 for v in values], marker="o", label=name)
ax.set_xlabel("sequence length T")
ax.set_ylabel("training step, ms (median)")
ax.set_title("forward + backward, batch 16, input = hidden = 128, float32, CPU")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# On a CPU a scan is still a walk over time, only one that moves a few bytes per element instead of a matrix
# product per step, so the lines grow about in proportion to T -- all but the Python loop, which grows faster:
# its autograd graph keeps a node per operation and step, and walking it back costs more the longer it is. The GRU and LSTM pay a (128 x 384) or (128 x 512)
# product at every step, one after the other; the minGRU pays one large product for all steps and a cheap
# elementwise walk. The Python loop loses that advantage to one interpreter round trip per step, and torch's
# CPU `logcumsumexp` is a slow elementwise loop of its own; the C++ scan is what makes the minGRU fast here
# (`benchmarks/modern.py` measures it at B = 32, H = 256, and docs/results.md has the table). On a GPU the
# log-space form or a tree-shaped scan runs the steps in parallel as well (Blelloch 1990; Martin & Cundy 2018).
#
# Is the log-space form exact? In exact arithmetic yes; in float32 its `cumsum` of logarithms and its
# `exp(a* + ...)` each round, and the rounding of a long sum grows with its length. We compare each float32
# scan with the float64 loop on sequences of decays near 1 (a long memory, where it matters).

# %%
lengths = [64, 256, 1024] if QUICK else [64, 256, 1024, 4096, 16384]
errors = {"log space, float32": [], "loop (C++), float32": []}
for steps in lengths:
    gen = torch.Generator().manual_seed(steps)
    a = 1 - 0.05 * torch.rand(8, steps, 64, generator=gen, dtype=torch.float64)
    b = 0.05 * torch.rand(8, steps, 64, generator=gen, dtype=torch.float64)
    h0 = torch.full((8, 64), 0.5, dtype=torch.float64)
    exact = rnn.linear_scan(a, b, h0, impl="reference")
    for name, impl in (("log space, float32", "log"), ("loop (C++), float32", "ours")):
        h = rnn.linear_scan(a.float(), b.float(), h0.float(), impl=impl).double()
        errors[name].append(((h - exact).abs().max() / exact.abs().max()).item())
for name, values in errors.items():
    print(f"{name:22s}" + "  ".join(f"T={steps}: {e:.1e}" for steps, e in zip(lengths, values)))

fig, ax = plt.subplots(figsize=(7, 3.8))
for name, values in errors.items():
    ax.loglog(lengths, values, marker="o", label=name)
ax.set_xlabel("sequence length T")
ax.set_ylabel("largest error / largest |h|")
ax.set_title("float32 scans against the float64 loop")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# The loop's error stays at float32's rounding (a few 1e-7) at every length: each step rounds once and the
# decays below 1 forget old rounding. The log-space form's error grows with T — its running sum of log a_t is
# a single long float32 sum. That is why rnnlab's default scan is the loop, and the log-space form is kept as
# `impl="log"` for this lesson.
#
# Where to go next: every task takes the modern layers with `--arch mingru | minlstm | rglru`
# (`rnnlab charlm train --arch mingru --layers 3`, `rnnlab memory-task --task selective-copy --arch mingru`),
# `rnnlab inspect` draws their gates (minGRU's z, minLSTM's f' and i', RG-LRU's a and i), and
# `rnnlab shapes` explains torch.nn's classic layers. docs/layers.md lists each layer's equations and its
# paper; docs/results.md has the measured speed and the task tables.
