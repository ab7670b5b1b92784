# %% [markdown]
# # Lesson 4 — RNN and LSTM from scratch in NumPy, checked against torch
#
# `rnnlab.scratch` writes both networks the way "밑바닥부터 시작하는 딥러닝 2" does: a cell with `forward`
# and `backward` for one step, and a `Time` layer that loops it over T steps, **keeps every step's cache** and
# **sums the weight gradients** of all steps (the same weights serve every step). Here we build them, then
# hold them to `torch.nn` on the same weights: outputs, input gradients and weight gradients.

# %%
import inspect

import numpy as np
import torch

from rnnlab import scratch

print(inspect.getsource(scratch.RNN))

# %% [markdown]
# Shapes: `Wx` is (D, H) and `Wh` is **(H, H)** — the recurrent weight multiplies the previous hidden
# state. The time layer stores the new state after every step, so step t+1 reads it:

# %%
print(inspect.getsource(scratch.TimeRNN.forward))

# %% [markdown]
# ## Checked against torch.nn
#
# `scratch.from_torch` copies a `torch.nn` layer's weights (`Wx = weight_ih.T`, `Wh = weight_hh.T`, `b` the
# sum of the two biases). We run both on the same input and push the same gradient back.

# %%
rng = np.random.default_rng(0)
N, T, D, H = 3, 6, 4, 5
pairs = {}  # kind -> (every gradient entry of ours, the same entries of torch's)
for kind in ("RNN", "LSTM"):
    torch.manual_seed(0)
    layer = getattr(torch.nn, kind)(D, H, batch_first=True, dtype=torch.float64)
    ours = scratch.from_torch(layer)
    xs, dhs = rng.standard_normal((N, T, D)), rng.standard_normal((N, T, H))

    x = torch.tensor(xs, requires_grad=True)
    hs_torch, _ = layer(x)
    hs_torch.backward(torch.tensor(dhs))

    hs, dxs = ours.forward(xs), None
    dxs = ours.backward(dhs)
    dWx, dWh, db = ours.grads
    print(f"{kind}: max |difference|  hs {np.abs(hs - hs_torch.detach().numpy()).max():.1e}"
          f"  dxs {np.abs(dxs - x.grad.numpy()).max():.1e}"
          f"  dWx {np.abs(dWx - layer.weight_ih_l0.grad.numpy().T).max():.1e}"
          f"  dWh {np.abs(dWh - layer.weight_hh_l0.grad.numpy().T).max():.1e}"
          f"  db {np.abs(db - layer.bias_ih_l0.grad.numpy()).max():.1e}")
    theirs = (x.grad.numpy(), layer.weight_ih_l0.grad.numpy().T, layer.weight_hh_l0.grad.numpy().T,
              layer.bias_ih_l0.grad.numpy())
    pairs[kind] = (np.concatenate([g.ravel() for g in (dxs, dWx, dWh, db)]),
                   np.concatenate([g.ravel() for g in theirs]))

# %% [markdown]
# Every gradient entry -- dx, dWx, dWh, db -- of the NumPy code against torch's autograd: on the diagonal.

# %%
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
for ax, (kind, (ours_grads, torch_grads)) in zip(axes, pairs.items()):
    ax.scatter(torch_grads, ours_grads, s=10)
    low, high = torch_grads.min(), torch_grads.max()
    ax.plot([low, high], [low, high], color="gray", linewidth=1, label="y = x")
    ax.set_title(f"{kind}: {len(ours_grads)} gradient entries, max |diff| {np.abs(ours_grads - torch_grads).max():.0e}")
    ax.set_xlabel("torch.nn autograd")
    ax.set_ylabel("rnnlab.scratch, by hand")
    ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# Differences around 1e-16: the from-scratch code and torch compute the same numbers. The LSTM cell is the
# same pattern with four gates stacked i, f, g, o (torch's order) and a cell state carried beside h:

# %%
print(inspect.getsource(scratch.LSTM.forward))
print(inspect.getsource(scratch.LSTM.backward))
