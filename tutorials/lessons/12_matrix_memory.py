# %% [markdown]
# # Lesson 12 — Matrix memory: linear attention, the delta rule and the mLSTM
#
# Every recurrence so far kept a vector: one number per unit (the LSTM, minGRU), or N per channel (Mamba).
# The recurrences the field builds on since 2024 keep a *matrix* per head — a key-value memory. A step writes
# the outer product of a value and a key into it, and reads it back with a query:
#
# | | writes | reads |
# |---|---|---|
# | linear attention (Katharopoulos et al. 2020) | `S_t = S_{t-1} + k_t v_t^T` | `o_t = S_t^T q_t` |
# | gated delta rule (Yang, Kautz & Hatamizadeh 2024) | `S_t = a_t (I - b_t k_t k_t^T) S_{t-1} + b_t k_t v_t^T` | `o_t = S_t^T q_t` |
# | mLSTM (Beck et al. 2024, xLSTM) | `C_t = f_t C_{t-1} + i_t k_t v_t^T`, `n_t = f_t n_{t-1} + i_t k_t` | `h_t = C_t^T q_t / max(|n_t . q_t|, 1)` |
#
# Linear attention only adds. The delta rule first takes out what the memory held for `k_t` and puts the new
# value in its place: with `a_t = 1` and `|k_t| = 1`, `S_t = S_{t-1} + b_t k_t (v_t - S_{t-1}^T k_t)^T` — the
# error between the new value and what the key recalled, written at rate `b_t` (the delta rule of Widrow & Hoff,
# 1960, one step of least squares per token). The mLSTM adds like linear attention, but with an exponential
# input gate `i_t = exp(.)` and a forget gate, stabilised so that no exponent overflows (`ops/mlstm.py`).
#
# We write the three as loops, see the difference on one key written twice, check rnnlab's operators against
# the loops, draw the chunkwise form that trains them, and watch them recall where a GRU cannot.

# %%
import os
import statistics
import timeit

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from rnnlab import nn as rnn

QUICK = os.environ.get("RNNLAB_TUTORIAL_QUICK") == "1"


def linear_attention(q, k, v):
    """S_t = S_{t-1} + k_t v_t^T, o_t = S_t^T q_t; q, k (T, K), v (T, V) -> (T, V)."""
    S = torch.zeros(k.shape[1], v.shape[1], dtype=v.dtype)
    out = []
    for t in range(len(k)):
        S = S + torch.outer(k[t], v[t])
        out.append(S.T @ q[t])
    return torch.stack(out)


def delta_rule(q, k, v, beta, a=None):
    """S_t = a_t (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T, o_t = S_t^T q_t."""
    S = torch.zeros(k.shape[1], v.shape[1], dtype=v.dtype)
    eye = torch.eye(k.shape[1], dtype=v.dtype)
    out = []
    for t in range(len(k)):
        decay = 1.0 if a is None else a[t]
        S = decay * (eye - beta[t] * torch.outer(k[t], k[t])) @ S + beta[t] * torch.outer(k[t], v[t])
        out.append(S.T @ q[t])
    return torch.stack(out)


def mlstm_unstabilised(q, k, v, i, f):
    """C_t = sigmoid(f_t) C_{t-1} + exp(i_t) k_t v_t^T (and n alike), h_t = C_t^T q_t / max(|n_t . q_t|, 1)."""
    C = torch.zeros(k.shape[1], v.shape[1], dtype=v.dtype)
    n = torch.zeros(k.shape[1], dtype=v.dtype)
    out = []
    for t in range(len(k)):
        C = torch.sigmoid(f[t]) * C + torch.exp(i[t]) * torch.outer(k[t], v[t])
        n = torch.sigmoid(f[t]) * n + torch.exp(i[t]) * k[t]
        out.append(C.T @ q[t] / torch.clamp((n @ q[t]).abs(), min=1.0))
    return torch.stack(out)


# One key written twice: (k1 -> v1), three other pairs, then (k1 -> v2); then k1 asked.
torch.manual_seed(0)
K = V = 16
keys = F.normalize(torch.randn(4, K, dtype=torch.float64), dim=-1)  # k1 and three others, unit length
values = torch.randn(5, V, dtype=torch.float64)  # v1, three others, v2
k = torch.stack([keys[0], keys[1], keys[2], keys[3], keys[0]])  # (5, K)
q = k.clone()  # each step reads back the key it wrote
reads = {"linear attention": linear_attention(q, k, values)[-1],
         "delta rule (b = 1)": delta_rule(q, k, values, torch.ones(5, dtype=torch.float64))[-1],
         "mLSTM (i = 0, f = +inf)": mlstm_unstabilised(q, k, values, torch.zeros(5, dtype=torch.float64),
                                                       torch.full((5,), 30.0, dtype=torch.float64))[-1]}
for name, read in reads.items():
    print(f"{name:24} reads k1 as: {F.cosine_similarity(read, values[4], dim=0):+.2f} like v2 (the latest), "
          f"{F.cosine_similarity(read, values[0], dim=0):+.2f} like v1 (overwritten)")

fig, ax = plt.subplots(figsize=(7, 3))
names = list(reads)
ax.bar([i - 0.2 for i in range(3)], [F.cosine_similarity(reads[n], values[4], dim=0) for n in names], width=0.4,
       label="cosine with v2 (the value k1 holds now)")
ax.bar([i + 0.2 for i in range(3)], [F.cosine_similarity(reads[n], values[0], dim=0) for n in names], width=0.4,
       label="cosine with v1 (overwritten)")
ax.set_xticks(range(3), names)
ax.set_ylim(-0.2, 1.1)
ax.set_title("What a memory returns for k1 after k1 -> v1, three pairs, k1 -> v2")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Linear attention returns the sum of everything written under `k1`, v1 + v2 (and a little of every other key
# that is not orthogonal to it): it looks like whichever of the two is larger — here more like the overwritten
# v1 than like v2. The delta rule with `b = 1` returns v2 (cosine 1.00; its -0.32 with v1 is v2's own cosine
# with v1): it took v1 out before it wrote v2. The mLSTM here (forget gate fully open, every input gate equal)
# reads what linear attention reads, normalised by `n`; its gates let it forget everything a little (a small
# `f`) or weigh one write above the others (a large `i`), but not take one key's value out and keep the rest.
#
# ## rnnlab's operators, three forms each
#
# `rnnlab.nn.gated_delta_rule(q, k, v, g, beta)` (flash-linear-attention's semantics, `g` the log of the decay)
# and `rnnlab.nn.mlstm(q, k, v, i, f)` (mlstm_kernels' semantics, stabilised) each come as the loop
# (`impl="reference"`), the chunkwise form in torch operations (`impl="chunk"`) and the same chunkwise form in
# C++ (`impl="ours"`, the default on a CPU). All three against our loops above, in float64, gradients included:

# %%
T, B, H = 50, 1, 1
torch.manual_seed(1)
q, k = torch.randn(T, K, dtype=torch.float64), F.normalize(torch.randn(T, K, dtype=torch.float64), dim=-1)
v, beta = torch.randn(T, V, dtype=torch.float64), torch.rand(T, dtype=torch.float64)
log_a = -torch.rand(T, dtype=torch.float64) * 0.2
mine = delta_rule(q * K ** -0.5, k, v, beta, torch.exp(log_a))
for impl in ("reference", "chunk", "ours"):
    o, _ = rnn.gated_delta_rule(q[None, :, None], k[None, :, None], v[None, :, None], log_a[None, :, None],
                                beta[None, :, None], impl=impl)  # (B, T, H, .) layout
    print(f"gated_delta_rule impl={impl!r:12} differs from the loop by {(o[0, :, 0] - mine).abs().max():.1e}")

i_gate, f_gate = torch.randn(T, dtype=torch.float64), torch.randn(T, dtype=torch.float64) + 3
mine = mlstm_unstabilised(q * K ** -0.5, k, v, i_gate, f_gate)
for impl in ("reference", "chunk", "ours"):
    h = rnn.mlstm(q[None, None], k[None, None], v[None, None], i_gate[None, None], f_gate[None, None], eps=0.0,
                  impl=impl)
    # max(|n . q|, exp(-m)) on the stabilised memories is max(|n . q|, 1) on the unstabilised ones (eps = 0 here)
    print(f"mlstm            impl={impl!r:12} differs from the loop by {(h[0, 0] - mine).abs().max():.1e}")

# %% [markdown]
# ## The chunkwise form: why they train in parallel
#
# Unroll the recurrence inside a chunk of C steps starting from the state `S_0`. For linear attention with a
# decay, `S_r = gamma_r S_0 + sum_{s <= r} (gamma_r / gamma_s) k_s v_s^T` (gamma the running product of the
# decays), so the chunk's outputs are two matrix products:
#
#     O = diag(gamma) Q S_0  +  (M * Q K^T) V        M[r, s] = gamma_r / gamma_s for s <= r, else 0
#
# the first reads what came before the chunk (one state), the second is attention inside the chunk with a
# causal, decaying mask. The delta rule needs one more step — the values it writes depend on what the memory
# held — which becomes one triangular solve per chunk (the "UT transform"). Across chunks, one recurrence
# carries the state. The picture, for T = 256 in chunks of 64, of how much step r reads of step s:

# %%
steps, chunk = 256, 64
G = torch.cumsum(torch.full((steps,), -0.02), 0)  # log of the running decay, a = exp(-0.02) a step
weight = torch.exp(G[:, None] - G[None, :]).tril()  # (T, T) gamma_r / gamma_s, s <= r
inside = torch.zeros(steps, steps, dtype=torch.bool)
for c in range(0, steps, chunk):
    inside[c:c + chunk, c:c + chunk] = True
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
axes[0].imshow(torch.where(inside & (weight > 0), weight, torch.nan), cmap="viridis", vmin=0, vmax=1)
axes[0].set_title("inside a chunk: (M * Q K^T) V\none matrix product per chunk, all chunks at once")
axes[1].imshow(torch.where(~inside & (weight > 0), weight, torch.nan), cmap="magma", vmin=0, vmax=1)
axes[1].set_title("before the chunk: carried by the state S_0\none K x V state per chunk boundary")
for ax in axes:
    ax.set_xlabel("step written (s)")
    ax.set_ylabel("step reading (r)")
plt.tight_layout()
plt.show()

# %% [markdown]
# Left: the diagonal blocks, computed as matrix products — BLAS work, which a CPU does well. Right: everything
# older than the chunk, which no step computes pairwise: it reaches the chunk through its start state, one
# (K, V) matrix. So the cost is T/C chunks of a few C x C and C x K products, plus T/C small state updates —
# instead of T dependent steps (the loop) or a T x T matrix (attention). Time, forward + backward, one head of
# K = V = 64, batch 4:

# %%
lengths = [64, 128] if QUICK else [256, 1024, 4096]
timings = {"ours": [], "chunk": [], "reference": []}
for steps in lengths:
    torch.manual_seed(0)
    args = [torch.randn(4, steps, 1, 64).requires_grad_(), F.normalize(torch.randn(4, steps, 1, 64), dim=-1),
            torch.randn(4, steps, 1, 64).requires_grad_(), -torch.rand(4, steps, 1) * 0.1, torch.rand(4, steps, 1)]
    for impl in timings:
        if impl == "reference" and steps > 1024:
            timings[impl].append(float("nan"))  # a minute: left out
            continue
        run = lambda: rnn.gated_delta_rule(*args, impl=impl)[0].sum().backward()  # noqa: E731
        timings[impl].append(statistics.median(timeit.repeat(run, number=1, repeat=4)[1:]))  # the first warms up
    print(f"T = {steps:5d}: " + ", ".join(f"{impl} {timings[impl][-1] * 1e3:8.1f} ms" for impl in timings))

plt.figure(figsize=(6, 3.5))
for impl, marker in (("ours", "o"), ("chunk", "^"), ("reference", "s")):
    plt.loglog(lengths, [t * 1e3 for t in timings[impl]], marker=marker, label=f"impl={impl!r}")
plt.xticks(lengths, [f"{n:,}" for n in lengths])
plt.gca().xaxis.set_minor_formatter(plt.NullFormatter())
plt.xlabel("T (steps)")
plt.ylabel("forward + backward (ms)")
plt.title("gated_delta_rule, batch 4, one head, K = V = 64")
plt.legend()
plt.grid(True, which="both", alpha=0.3)
plt.show()

# %% [markdown]
# All three grow linearly with T; the chunkwise forms do a chunk's 64 steps in a few products. At issue 39's
# size (batch 8, 4 heads, T = 2,048) the C++ kernel measured 4.6x transformers' torch form of the same operator
# and 66x the loop, and its mLSTM 3.1x mlstm_kernels' torch form (docs/results.md, "Matrix memories").
#
# ## Recall: what the matrix is for
#
# Multi-query associative recall (Arora et al. 2023, Zoology): key-value pairs, then each key asked again, its
# value the answer — from a vocabulary of 8,192 tokens, so no rule of thumb helps. A memory must hold every pair
# at once. Two layers of width 64, (L, pairs) = (64, 4), the same steps for each:

# %%
from rnnlab.tasks import memory

budget = 10 if QUICK else 400
recall = {}
for arch in ("gdn", "gru"):
    m = memory.train(task="mqar", arch=arch, hidden=64, layers=2, length=64, pairs=4, steps=budget,
                     eval_every=budget, out=f"runs/lesson12-mqar-{arch}", quiet=True)
    recall[arch] = m
    print(f"{arch}: {m['final']:.1%} of the asked values recalled after {budget} steps ({m['seconds']:.0f} s; "
          f"a guess: {m['baseline']:.3%})")

# %% [markdown]
# Gated DeltaNet recalls nearly every value within a few hundred steps; the GRU, whose state is 64 numbers per
# layer shared by everything it has read, is still at the guess. docs/results.md has the table for every
# architecture — here the runs at a smaller vocabulary of 256 tokens (L 32, 4 pairs, 600 steps, measured
# 2026-12-07), where every architecture had time to learn what it can:

# %%
measured = {"gated DeltaNet": 100.0, "mLSTM": 99.0, "Mamba": 44.4, "minGRU": 36.9, "minLSTM": 33.0, "GRU": 26.4,
            "RG-LRU": 21.2, "LSTM": 2.4, "RNN": 1.2}  # accuracy on the asked values (%)
plt.figure(figsize=(8, 3.5))
colors = ["tab:green" if name in ("gated DeltaNet", "mLSTM") else "tab:gray" for name in measured]
plt.bar(list(measured), list(measured.values()), color=colors)
plt.axhline(100 / 128, color="k", linestyle=":", label="a guess")
plt.ylabel("asked values recalled (%)")
plt.title("MQAR, vocabulary 256, (L, pairs) = (32, 4), 2 x 64: matrix memories (green), diagonal states (gray)")
plt.xticks(rotation=30)
plt.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# The two recurrences with a matrix per head solve it; every recurrence with a vector state (Mamba's N per channel
# included) stays below half. A diagonal state can store a pair only by spending channels on it; a K x V matrix
# stores K nearly orthogonal keys, each with its value, and reads any one of them back with one product — the
# associative memory of Hopfield and of Schlag, Irie & Schmidhuber's "linear transformers are secretly fast
# weight programmers" (2021), trained here in chunks on a CPU.
