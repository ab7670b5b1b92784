# %% [markdown]
# # Lesson 11 — Selective state spaces: Mamba on a CPU
#
# Lesson 9's minGRU dropped the state from its gates, and so became a scan. Mamba (Gu & Dao 2023) keeps that
# and adds two things: a state of N numbers per channel instead of one, and a step size `dt` that the input
# chooses. With `*` elementwise, per channel d and state n:
#
# | minGRU (Feng et al. 2024) | Mamba's S6 (Gu & Dao 2023) |
# |---|---|
# | `z_t = sigmoid(W_z x_t + b_z)` | `dt_t = softplus(W_dt x_t + b_dt)` (one per channel) |
# | `h~_t = g(W_h x_t + b_h)` | `B_t = W_B x_t`, `C_t = W_C x_t` (N each, shared by the channels) |
# | `h_t = (1 - z_t) * h_{t-1} + z_t * h~_t` | `h_t[n] = exp(dt_t * A[n]) * h_{t-1}[n] + dt_t * x_t * B_t[n]` |
# | output `h_t` | output `y_t = sum_n C_t[n] h_t[n] + D * x_t` |
#
# `A[n] < 0` is a learned decay per channel and state (initialised `-1, -2, ..., -N`, the S4D-real
# initialisation). A small `dt` keeps the state (`exp(dt A)` near 1) and lets little in; a large `dt` forgets
# the past and writes the present. Since `dt`, `B` and `C` are computed from the token, the layer *selects*:
# it can let a meaningful token in and let noise pass by — what the paper calls selection, and what the
# selective-copy task tests. The recurrence is still linear in `h`, so it is still a scan, only a wider one
# (N states per channel).
#
# We write the scan as a loop and check `rnnlab.nn.selective_scan` against it, watch what `dt` selects in a
# trained Mamba, time the scan as T grows, and look at what the initialisation of `dt` means for memory.

# %%
import os
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from rnnlab import nn as rnn

QUICK = os.environ.get("RNNLAB_TUTORIAL_QUICK") == "1"


def scan_loop(u, dt, A, B, C, D):
    """The S6 recurrence one step after another: u, dt (batch, dim, L), A (dim, N), B, C (batch, N, L), D (dim)
    -> y (batch, dim, L)."""
    h = u.new_zeros(u.shape[0], u.shape[1], A.shape[1])  # (batch, dim, N)
    ys = []
    for t in range(u.shape[2]):
        h = torch.exp(dt[:, :, t, None] * A) * h + (dt[:, :, t] * u[:, :, t])[..., None] * B[:, None, :, t]
        ys.append((h * C[:, None, :, t]).sum(-1) + D * u[:, :, t])
    return torch.stack(ys, dim=-1)


torch.manual_seed(0)
batch, dim, steps, N = 2, 8, 50, 4
u = torch.randn(batch, dim, steps, dtype=torch.float64, requires_grad=True)
dt = F.softplus(torch.randn(batch, dim, steps, dtype=torch.float64) - 2).requires_grad_()
A = -torch.arange(1.0, N + 1, dtype=torch.float64).repeat(dim, 1).requires_grad_()
B = torch.randn(batch, N, steps, dtype=torch.float64, requires_grad=True)
C = torch.randn(batch, N, steps, dtype=torch.float64, requires_grad=True)
D = torch.ones(dim, dtype=torch.float64, requires_grad=True)
weights = torch.randn(batch, dim, steps, dtype=torch.float64)
loop = scan_loop(u, dt, A, B, C, D)
loop_grads = torch.autograd.grad((loop * weights).sum(), (u, dt, A, B, C, D))
for impl in ("reference", "ours"):
    y = rnn.selective_scan(u, dt, A, B, C, D, impl=impl)
    grads = torch.autograd.grad((y * weights).sum(), (u, dt, A, B, C, D))
    worst = max((g - e).abs().max().item() for g, e in zip(grads, loop_grads))
    print(f"selective_scan impl={impl!r:12} output differs by {(y - loop).abs().max().item():.1e}, "
          f"gradients by {worst:.1e}")

# %% [markdown]
# They agree to float64 rounding, gradients included. `impl="ours"` is the C++ kernel: forward keeps the state
# only every 64 steps, and backward recomputes each stretch of 64 from there before walking it back — so it
# never holds a (batch, dim, L, N) tensor, which the loop above (through autograd) and a parallel scan both do.
#
# ## What `dt` selects
#
# Selective copy: 8 symbols sit at random places among noise (token 0), then a delimiter asks for them in
# order. We train a small Mamba (2 layers of 64) on sequences of 40 noise steps and look inside it with
# `rnnlab.nn.inspect`, which records each layer's `delta` (the `dt` of every channel and step) and the norm of
# its state, then compare the `dt` that noise, symbols and the delimiter get.

# %%
from rnnlab.tasks import load, memory

run = "runs/lesson11-selective-copy"
metrics = memory.train(task="selective-copy", length=40, arch="mamba", hidden=64, layers=2,
                       steps=20 if QUICK else 1500, lr=3e-3, out=run, quiet=True)
print(f"token accuracy {metrics['final']:.1%} after {metrics['steps']} steps (a guess: 12.5 %)")

network = load(run).network.eval()
x, y = memory.selective_copy_batch(40, 200, torch.Generator().manual_seed(7))  # 200 sequences (200, 49)
with torch.no_grad(), rnn.inspect(network.rnn) as trace:
    written = network(x)[0][:, -8:].argmax(-1)  # (200, 8)
print("one sequence's symbols:", y[0].tolist(), " written:", written[0].tolist())

steps = torch.arange(x.shape[1])
kinds = {"noise": (x == 0) & (steps < 40), "symbol": (x >= 1) & (x <= 8), "delimiter": x == 9,
         "answer step": steps.expand_as(x) > 40}
for layer in range(2):
    delta = trace[layer, 0]["delta"]  # (200, 49, E)   dt of every sequence, step and channel
    mean = {kind: delta[where].mean(0) for kind, where in kinds.items()}  # (E,) per kind of token
    print(f"layer {layer}: mean dt " + ", ".join(f"{kind} {m.mean():.3f}" for kind, m in mean.items()))
    for kind in ("symbol", "delimiter"):
        ratio = mean[kind] / mean["noise"]  # (E,)
        print(f"   {kind}s against noise, per channel: up to {ratio.max():.1f}x, "
              f"{int((ratio > 2).sum())} of {len(ratio)} channels above 2x")

delta = trace[1, 0]["delta"]  # (200, 49, E)   layer 1
ratio = delta[kinds["delimiter"]].mean(0) / delta[kinds["noise"]].mean(0)
channels = ratio.topk(6).indices  # the channels the delimiter opens most
fig, ax = plt.subplots(figsize=(9, 3.2))
for channel in channels.tolist():
    ax.plot(delta[0, :, channel], label=f"channel {channel}")
for step, token in enumerate(x[0].tolist()):
    if 1 <= token <= 8:
        ax.axvline(step, color="tab:red", alpha=0.25)
ax.axvline(40, color="k", linestyle="--")
ax.set_xlabel("step (red: a symbol to keep; dashed: the delimiter)")
ax.set_ylabel("dt, layer 1")
ax.legend(fontsize=7, ncol=3)
plt.tight_layout()
plt.show()

# %% [markdown]
# Read the numbers above as a measurement, not a cartoon. In the run that built this notebook (1,500 steps,
# the accuracy printed above) the second layer had a few channels whose `dt` jumped several times at the
# delimiter -- "forget the noise, start reading out" -- while in neither layer did the symbols get much
# larger steps than the noise (about 1.5x at most on a channel). The noise here is one token, always the same, so
# its writes into the state are one fixed vector that the readout `C_t` can learn to discount: selection by
# `dt` is one way to ignore the noise, not the only one. What a single minGRU layer lacks is the state: one
# number per channel has to hold all eight symbols in one running average (docs/results.md: one minGRU layer
# 32.6 % on this task, one Mamba layer 48.6 %, two Mamba layers 99.96 %).
#
# ## The scan's cost against T
#
# A training step's scan (forward + backward) on (batch 8, dim 256, N 16), float32, as T grows: the C++
# kernel, and the loop in torch operations that `impl="reference"` runs.

# %%
def step_time(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


lengths = [32, 64, 128] if QUICK else [64, 256, 1024, 4096]
timings = {"ours": [], "reference": []}
for steps in lengths:
    torch.manual_seed(0)
    args = [torch.randn(8, 256, steps).requires_grad_(), F.softplus(torch.randn(8, 256, steps) - 2).requires_grad_(),
            -torch.arange(1.0, 17).repeat(256, 1).requires_grad_(), torch.randn(8, 16, steps).requires_grad_(),
            torch.randn(8, 16, steps).requires_grad_()]
    for impl in timings:
        if impl == "reference" and steps > 1024:
            timings[impl].append(float("nan"))  # minutes: left out
            continue
        timings[impl].append(step_time(lambda: rnn.selective_scan(*args, impl=impl).sum().backward(), 3))
    print(f"T = {steps:5d}: " + ", ".join(f"{impl} {timings[impl][-1] * 1e3:8.1f} ms" for impl in timings))

plt.figure(figsize=(6, 3.5))
for impl, marker in (("ours", "o"), ("reference", "s")):
    plt.loglog(lengths, [t * 1e3 for t in timings[impl]], marker=marker, label=f"impl={impl!r}")
plt.xlabel("T (steps)")
plt.ylabel("forward + backward (ms)")
plt.title("selective_scan, batch 8, dim 256, N 16")
plt.legend()
plt.grid(True, which="both", alpha=0.3)
plt.show()

# %% [markdown]
# Both grow linearly with T — a scan does T steps whatever its form. The loop pays a few torch operations per
# step (and keeps every step's state for autograd); the kernel does the arithmetic of a step in registers.
# A parallel scan (Blelloch's, as mamba.py runs it on a CPU) does the same work in log T rounds over
# (batch, L, dim, N) tensors; on a GPU that is the point, on a CPU's two cores it is memory traffic:
# `benchmarks/modern.py` measured it 31x slower than this kernel (docs/results.md).
#
# ## The initialisation: how long a state remembers
#
# At `dt` the state n of a channel keeps `exp(dt * A[n])` of itself per step: after `1 / (dt |A[n]|)` steps it
# is down to 1/e. Mamba initialises `dt` log-uniform in [0.001, 0.1] (through the bias of `dt_proj`) and
# `A = -(1, ..., N)`, so its channels start with memories from 10 steps to 1,000 (with N = 16, 0.6 to 1,000);
# a minGRU starts with gates near 0.5 — a memory of about 1.4 steps — and the same range for
# a layer whose `dt` starts at 1 would be under one step. Here is the spread at initialisation for a
# `Mamba(1, 128)` layer and for the same layer with `dt_min = dt_max = 1`:

# %%
def horizons(layer):
    """Steps until each state falls to 1/e at initialisation (no input yet): 1 / (dt |A|)."""
    mixer = layer.layers[0].mixer
    dt = F.softplus(mixer.dt_proj.bias).detach()  # (E,)
    return (1 / (dt[:, None] * torch.exp(mixer.A_log.detach()))).flatten()


def memory_histograms(spreads: dict, low: float, xlabel: str, ylabel: str):
    """One histogram per {label: memories in steps}, on a log axis, with pixel MNIST's 784 steps marked."""
    bins = torch.logspace(low, 3.5, 40)
    plt.figure(figsize=(6, 3.5))
    for label, memories in spreads.items():
        plt.hist(memories, bins=bins, alpha=0.6, label=label)
    plt.axvline(784, color="k", linestyle="--", label="pixel MNIST: 784 steps")
    plt.xscale("log")
    plt.xlabel(xlabel)
    plt.ylabel(ylabel)
    plt.legend()
    plt.show()


torch.manual_seed(0)
paper = horizons(rnn.Mamba(1, 128))
short = horizons(rnn.Mamba(1, 128, dt_min=1.0, dt_max=1.0))
memory_histograms({"the paper's dt in [0.001, 0.1]": paper, "dt = 1": short}, -2, "steps to 1/e", "states")
print(f"states remembering more than 100 steps: paper's {(paper > 100).float().mean():.0%}, "
      f"dt = 1: {(short > 100).float().mean():.0%}")

# %% [markdown]
# On pixel MNIST, where the class hangs on pixels hundreds of steps back, that spread is the difference
# between learning and not: docs/results.md has the table (the command: `rnnlab classify train --idx-dir
# ../shared/data/mnist --pixels --minutes 12 --arch mamba`), with minGRU and minLSTM, whose gates start near
# 0.5, at chance in the same budget.

# %% [markdown]
# ## The same lesson for the gated layers: chrono initialisation
#
# minGRU keeps `1 - z_t` of its state per step. At torch.nn's initialisation every bias is drawn from
# U(-1/sqrt(H), 1/sqrt(H)), so `z` starts near 0.5: half the state is gone after a step, a millionth after
# twenty. Tallec & Ollivier (2018, "Can recurrent neural networks warp time?") give the gated layers what
# Mamba's `dt` range gives it: set each unit's keep gate at zero input to `u / (1 + u)` with
# u ~ U[1, T - 1], a memory of u steps, and its input gate to the complement (`b_z = -log u` for minGRU,
# `b_f = log u, b_i = -log u` for an LSTM and minLSTM). `rnnlab.nn.init.chrono_(layer, T)` does it for LSTM,
# GRU, minGRU and minLSTM; the layers take it as `chrono=T`, and the tasks use the sequence length where a
# layer must carry a whole sequence to one answer. The memories at initialisation, for a `MinGRU(1, 128)`:

# %%
def gate_memories(layer):
    """Steps a minGRU unit keeps its state at zero input at initialisation: 1 / z, z = sigmoid(b_z)."""
    z = torch.sigmoid(layer.bias_ih_l0[:layer.hidden_size].detach())
    return 1 / z


torch.manual_seed(0)
plain = gate_memories(rnn.MinGRU(1, 128))
chrono = gate_memories(rnn.MinGRU(1, 128, chrono=784))
memory_histograms({"torch.nn's init": plain, "chrono, T = 784": chrono}, 0, "steps kept (1 / z)", "units")
print(f"median memory: torch.nn's init {plain.median():.1f} steps, chrono {chrono.median():.0f} steps")

# %% [markdown]
# What it did on pixel MNIST (train-5k -> t10k, 12 minutes per run, two at a time on one thread each; the
# numbers of docs/results.md, measured 2026-12-07 with `rnnlab classify train --idx-dir ../shared/data/mnist
# --pixels --minutes 12 --arch A --chrono 0` and without `--chrono`, the default):

# %%
measured = {  # test accuracy (%), 2 x 128 layers, the classify recipe: torch.nn's init, chrono (T = 784)
    "minGRU": (45.4, 68.2), "minLSTM": (49.7, 60.0), "GRU": (36.9, 90.3), "LSTM": (9.8, 63.3)}
names = list(measured)
plt.figure(figsize=(6, 3.5))
plt.bar([i - 0.2 for i in range(len(names))], [measured[n][0] for n in names], width=0.4, label="torch.nn's init")
plt.bar([i + 0.2 for i in range(len(names))], [measured[n][1] for n in names], width=0.4, label="chrono, T = 784")
plt.axhline(10, color="k", linestyle=":", label="chance")
plt.xticks(range(len(names)), names)
plt.ylabel("test accuracy (%)")
plt.legend()
plt.show()

# %% [markdown]
# The same layers, the same budget, only where their gates start: the LSTM goes from chance to 63 %, the GRU
# from 37 % to 90 %, minGRU from 45 % to 68 % and minLSTM from 50 % to 60 %.
