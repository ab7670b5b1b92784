# %% [markdown]
# # Lesson 2 — Memorise "hihello" and "if you want you"
#
# The classic first RNN exercise: given each character, predict the next one, until the network can replay
# the whole string. Two versions circulate. The **textbook recipe** feeds one-hot characters to an
# `nn.RNN` whose hidden size is the vocabulary size and uses the **hidden state itself as the logits**
# (no output layer). rnnlab's character model embeds the characters, runs an LSTM and reads the logits from a
# linear layer. We run both on the same strings.

# %%
import os

import torch

QUICK = os.environ.get("RNNLAB_TUTORIAL_QUICK") == "1"


def textbook(text: str, iterations: int = 50, lr: float = 0.1, seed: int = 0):
    """One-hot in, hidden size = vocabulary, hidden state = logits, Adam 0.1: the recipe of the notes.
    Returns the greedy replay and the loss of every iteration."""
    torch.manual_seed(seed)
    chars = sorted(set(text))
    ids = torch.tensor([chars.index(c) for c in text])
    x = torch.eye(len(chars))[ids[:-1]].unsqueeze(0)  # (1, L-1, V) one-hot
    y = ids[1:]
    rnn = torch.nn.RNN(len(chars), len(chars), batch_first=True)
    optimizer = torch.optim.Adam(rnn.parameters(), lr=lr)
    losses = []
    for _ in range(iterations):
        logits = rnn(x)[0][0]  # (L-1, V): the hidden state, squashed by tanh into [-1, 1]
        loss = torch.nn.functional.cross_entropy(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    with torch.no_grad():
        guess = rnn(x)[0][0].argmax(1)
    return text[0] + "".join(chars[i] for i in guess), losses


TEXTS = {"hihello": "hihello", "ifyou": "if you want you"}
textbook_losses = {}
for name, text in TEXTS.items():
    replay, textbook_losses[name] = textbook(text)
    print(f"textbook {text!r:>18} -> {replay!r}   loss {textbook_losses[name][-1]:.3f}")

# %% [markdown]
# The hidden state passes through tanh, so every "logit" lies in [-1, 1]: the softmax can never put more
# than e² / (e² + V - 1) on the right character, so the loss has a floor well above zero (compare the two
# columns of losses), and where one character is followed by different ones ("l" then "l" then "o"; the
# spaces of "if you want you"), a replay can go wrong. A linear read-out removes the ceiling; an embedding
# replaces the one-hot input (the same as a one-hot times a matrix, but cheaper).

# %%
from rnnlab.tasks import charlm

rnnlab_history = {}
for name, text in TEXTS.items():
    metrics = charlm.train(text=text, out=f"runs/{name}", steps=60 if QUICK else 150, eval_every=5, quiet=True)
    replay = charlm.sample(f"runs/{name}", prime=text[0], length=len(text) - 1, greedy=True)
    print(f"rnnlab   {text!r:>18} -> {replay!r}   loss {metrics['train_loss']:.3f}")
    rnnlab_history[name] = charlm.load(f"runs/{name}").state["run"]["history"]  # one row per evaluation

# %% [markdown]
# The two recipes' losses side by side, with the textbook recipe's floor: with every logit in [-1, 1] the
# right character gets at most e / (e + (V - 1) / e) of the probability, so its loss cannot go below
# ln(1 + (V - 1) e^-2), V being the number of distinct characters.

# %%
import math

import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for ax, (name, text) in zip(axes, TEXTS.items()):
    history = rnnlab_history[name]
    ax.semilogy(range(1, len(textbook_losses[name]) + 1), textbook_losses[name], label="textbook: hidden state as logits")
    ax.semilogy([row["step"] for row in history], [row["val_loss"] for row in history], label="rnnlab: embedding, LSTM, linear read-out")
    vocabulary = len(set(text))
    ax.axhline(math.log(1 + (vocabulary - 1) * math.exp(-2)), color="gray", linestyle="--", label="the textbook recipe's floor")
    ax.set_title(repr(text))
    ax.set_xlabel("training step")
    ax.set_ylabel("loss (nats per character)")
axes[0].legend(fontsize=8)
fig.tight_layout()
plt.show()
