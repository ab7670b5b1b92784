# %% [markdown]
# # Lesson 3 — `nn.RNN`'s arguments and every shape, stacked and bidirectional
#
# `torch.nn.RNN` takes eight arguments besides `device` and `dtype`: `input_size`, `hidden_size`, `num_layers`,
# `nonlinearity`, `bias`, `batch_first`, `dropout`, `bidirectional`. This lesson runs each configuration and
# reads the shapes off the tensors themselves, then lets `rnnlab shapes` name every dimension — it checks each
# statement on a real run of `torch.nn` before printing it.
#
# Names used throughout (as in the PyTorch docs): L sequence length, N batch size, D = 2 if bidirectional
# else 1, H_in = input_size, H_out = hidden_size (or proj_size for an LSTM with projections).

# %%
import torch
import rnnlab

torch.manual_seed(0)
L, N, H_in, H = 5, 3, 4, 6
x = torch.randn(L, N, H_in)  # batch_first=False: (L, N, H_in)

rnn = torch.nn.RNN(input_size=H_in, hidden_size=H, num_layers=1, nonlinearity="tanh", bias=True,
                   batch_first=False, dropout=0.0, bidirectional=False)
output, h_n = rnn(x)
print("output", tuple(output.shape), "  h_n", tuple(h_n.shape))
for name, p in rnn.named_parameters():
    print(f"{name:<14} {tuple(p.shape)}")

# %% [markdown]
# `output` holds the hidden state of **every step** of the **last layer**; `h_n` holds the **last step** of
# **every layer** (and direction). For one layer and one direction they meet: `output[-1]` is `h_n[0]`.
# Note `weight_hh_l0` is (H, H): the recurrent weight reads the hidden state, not the input.

# %%
print(torch.equal(output[-1], h_n[0]))

# %% [markdown]
# ## Stacked and bidirectional
#
# With `num_layers=2, bidirectional=True` the output's feature size is `D * H` = 12 — not
# `D * num_layers * H`: the lower layer's outputs feed the upper layer and never appear in `output`.
# `h_n` has `D * num_layers` = 4 rows: layer 0 forward, layer 0 backward, layer 1 forward, layer 1 backward.

# %%
deep = torch.nn.RNN(H_in, H, num_layers=2, bidirectional=True)
output, h_n = deep(x)
print("output", tuple(output.shape), "  h_n", tuple(h_n.shape))
forward, backward = output.view(L, N, 2, H).unbind(2)  # split the directions
print("last layer forward final state  == output[-1, :, :H]:", torch.equal(h_n[-2], output[-1, :, :H]))
print("last layer backward final state == output[0, :, H:]:", torch.equal(h_n[-1], output[0, :, H:]))
print("... and NOT output[-1, :, H:]:", torch.equal(h_n[-1], output[-1, :, H:]))

# %% [markdown]
# Drawn for the first sequence of the batch: `output` as a grid of L steps by D * H features, and where the
# last layer's two final states sit in it.

# %%
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

grid = output[:, 0, :].detach()  # (L, D*H) of sequence 0
fig, ax = plt.subplots(figsize=(8, 3.6))
image = ax.imshow(grid, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
for row, first, name, color in ((L - 1, 0, "h_n[-2]: forward final state, step L-1", "black"),
                                (0, H, "h_n[-1]: backward final state, step 0", "darkgreen")):
    ax.add_patch(Rectangle((first - 0.5, row - 0.5), H, 1, fill=False, edgecolor=color, linewidth=3, label=name))
ax.axvline(H - 0.5, color="gray", linewidth=1)
ax.set_xticks(range(2 * H), [f"f{k}" for k in range(H)] + [f"b{k}" for k in range(H)])
ax.set_xlabel("feature of output: forward direction's H, then backward direction's H")
ax.set_ylabel("step t")
ax.set_title("output[:, 0, :] of a 2-layer bidirectional RNN (values in [-1, 1])")
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2, fontsize=8)
fig.colorbar(image, ax=ax)
fig.tight_layout()
plt.show()

# %% [markdown]
# The backward direction reads the sequence from the end, so its *final* state is at step 0. Taking
# `output[-1]` as "the last hidden state" of a bidirectional RNN mixes the forward direction's last state with
# the backward direction's *first* one.
#
# ## The whole table, checked
#
# `rnnlab.explain_shapes` (the `rnnlab shapes` command) prints all of it for any configuration — packed
# batches (`lengths=[...]`) and unbatched input too:

# %%
print(rnnlab.explain_shapes("rnn", H_in, H, num_layers=2, bidirectional=True, seq_len=L, batch=N).table())

# %%
print(rnnlab.explain_shapes("lstm", H_in, H, batch_first=True, proj_size=3, lengths=[5, 3, 2]).table())
