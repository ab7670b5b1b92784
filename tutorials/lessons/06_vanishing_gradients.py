# %% [markdown]
# # Lesson 6 — Vanishing gradients, and how the gates carry information
#
# A loss computed at the last step reaches an earlier hidden state only through the chain rule, one Jacobian
# per step: `dL/dh_t = dL/dh_{t+1} · dh_{t+1}/dh_t`. For a tanh RNN each factor is `diag(1 - h²) W_hh`; a
# product of many such factors shrinks (or grows) geometrically. We measure it: four networks learn to tell
# the sign of the first of T = 50 steps (the rest is noise), and we plot ||dL/dh_t|| for every t.

# %%
import os

from IPython.display import Image, display

from rnnlab import gradients

QUICK = os.environ.get("RNNLAB_TUTORIAL_QUICK") == "1"
results = gradients.run("runs/gradients", length=20 if QUICK else 50, steps=20 if QUICK else 300)
print(gradients.table(results))
display(Image("runs/gradients/gradients.png"))

# %% [markdown]
# At initialisation every curve falls in a straight line on the log scale: geometric decay, about ten
# orders of magnitude over 50 steps. A weight update driven by the first step's information gets almost
# nothing. The LSTM's cell state passes through `c_t = f * c_{t-1} + ...` and the GRU's state through
# `h_t = z * h_{t-1} + ...`: when the forget gate f (or z) sits near 1, that path's factor is near 1 and the
# gradient survives. With torch's initialisation f ≈ sigmoid(0) = 0.5, so the gated networks start on the
# same slope and first have to learn to open their gates — the plateau visible in the second panel, where a
# tanh RNN that happened to find an integrating solution already carries the gradient across all 50 steps.
#
# `rnnlab gradients` runs the same from the command line; `rnnlab memory-task` gives the classic benchmarks
# (the adding problem, the copy task) with their no-memory baselines.
