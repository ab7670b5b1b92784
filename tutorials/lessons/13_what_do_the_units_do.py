# %% [markdown]
# # Lesson 13 — What do the units do?
#
# A trained character model is a few hundred numbers per character, updated by the same rule at every step.
# Some of those numbers turn out to mean something a person can name: Karpathy, Johnson & Fei-Fei (2015,
# "Visualizing and understanding recurrent networks") found LSTM cells that count the position in a line, that
# switch on inside quotes, that track the depth of brackets. LSTMVis (Strobelt et al. 2017) turned the search
# around: *mark* the characters you have a hypothesis about, and let the tool rank the units whose activity
# separates the marked characters from the rest.
#
# We train an LSTM on Tiny Shakespeare, state three hypotheses as marks on a passage, rank every unit by how well
# it separates them -- the correlation between the unit's value and the marks, the score `rnnlab view` shows --
# and look at the winners, Karpathy's way: the text coloured by one unit. Then the same, live, in the browser.

# %%
import os
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import rnnlab
from rnnlab import view
from rnnlab.learn.heatmaps import record
from rnnlab.tasks import charlm

QUICK = os.environ.get("RNNLAB_TUTORIAL_QUICK") == "1"
TEXT = Path(os.environ["RNNLAB_SHARED_DATA"]) / "text" / "tinyshakespeare.txt"

budget = dict(steps=30) if QUICK else dict(minutes=4)
metrics = charlm.train(text_file=str(TEXT), out="runs/units", arch="lstm", hidden=256, layers=1, quiet=True,
                       **budget)
model = charlm.load("runs/units")
print(f"{metrics['steps']} steps, validation loss {metrics['val_loss']:.3f} nats per character")

# %% [markdown]
# ## Three hypotheses, as marks
#
# A passage from the held-out part of the text (the checkpoint keeps one: it is what `rnnlab view` opens with),
# and three statements about each of its characters, each a 0/1 mark -- or a number, for the third:
#
# - *the line's first word*: the characters from a newline up to the first space or punctuation;
# - *a speaker's name*: the lines that are a name and a colon, `ROMEO:`, where a speech begins;
# - *how far into the line*: the character's column (a number, not a mark: the correlation takes either).

# %%
passage = model.state["passage"]
ids = model.vocab.encode(passage)[None]  # (1, T)
internals = record(model, ids)  # {(layer, direction): {name: (T, H)}}
h, c = internals[0, 0]["h"], internals[0, 0]["c"]  # (T, 256) each: the hidden and the cell state
print(f"{len(passage)} characters; h and c: {h.shape}")


def marks(pattern: str) -> np.ndarray:
    """(T,) 1 where the regular expression matches, 0 elsewhere."""
    mark = np.zeros(len(passage))
    for match in re.finditer(pattern, passage, flags=re.M):
        mark[match.start():match.end()] = 1
    return mark


position = np.concatenate([np.arange(len(line) + 1) for line in passage.split("\n")])[:len(passage)]
hypotheses = {"the line's first word": marks(r"^[A-Za-z']+"), "a speaker's name": marks(r"^[A-Z][A-Za-z ]*:$"),
              "how far into the line": position.astype(float)}


def ranked(values: np.ndarray, mark: np.ndarray) -> np.ndarray:
    """(H,) every unit's correlation with the marks (0 for a unit that does not move): the page's score."""
    centred, m = values - values.mean(0), mark - mark.mean()
    spread = np.sqrt((centred ** 2).sum(0) * (m ** 2).sum())
    return np.where(spread > 1e-12, (centred * m[:, None]).sum(0) / np.where(spread > 1e-12, spread, 1), 0.0)


best = {}
for name, mark in hypotheses.items():
    for quantity, values in (("h", h), ("c", c)):
        r = ranked(values, mark)
        unit = int(np.abs(r).argmax())
        if name not in best or abs(r[unit]) > abs(best[name][2]):
            best[name] = (quantity, unit, r[unit])
        top = np.argsort(-np.abs(r))[:3]
        print(f"{name:24s} {quantity}: units {', '.join(f'{u} (r {r[u]:+.2f})' for u in top)}")

# %% [markdown]
# Most units correlate a little with everything; a few stand out. A unit is a hypothesis's unit only as far as its
# score goes: |r| of 0.8 means the unit's value alone tells marked from unmarked characters nearly every time.
# Here is each hypothesis's best unit, the text coloured by it (red high, blue low): does it do what the score says?

# %%
def coloured(ax, values: np.ndarray, title: str, width: int = 64, rows: int = 9) -> None:
    """The passage's first rows x width characters on a grid, each on its unit's colour."""
    reach = np.percentile(np.abs(values), 99) or 1.0
    x = y = 0
    for ch, v in zip(passage, values):
        if y >= rows:
            break
        if ch != "\n":
            ax.add_patch(plt.Rectangle((x, -y), 1, 1, color=plt.cm.RdBu_r(0.5 + 0.5 * np.clip(v / reach, -1, 1))))
            ax.text(x + 0.5, -y + 0.45, ch, ha="center", va="center", family="monospace", fontsize=8)
        x += 1
        if ch == "\n" or x >= width:
            x, y = 0, y + 1
    ax.set_xlim(0, width)
    ax.set_ylim(-rows + 1, 1)
    ax.set_axis_off()
    ax.set_title(title, fontsize=10, loc="left")


fig, axes = plt.subplots(len(best), 1, figsize=(12, 2.6 * len(best)))
for ax, (name, (quantity, unit, r)) in zip(axes, best.items()):
    values = (h if quantity == "h" else c)[:, unit]
    coloured(ax, values, f"{name}: {quantity}[{unit}], r = {r:+.2f}")
fig.tight_layout()

# %% [markdown]
# ## The same, live: `rnnlab view`
#
# Everything above is one page in the browser, on any run folder of any task:
#
#     rnnlab view --model runs/units
#
# Type your own text and every unit and gate is drawn per character; hover a character for the model's five
# likeliest next characters and the loss of the one that came; give a regular expression (or select characters)
# and the page ranks every unit by the same correlation; sample with a temperature and see each step's
# distribution. `--export page.html` writes the page, with its answers for one text, into a single HTML file
# that opens with no server -- to share, or to keep beside a notebook. Below: the page on a run like this one.

# %%
page = view.export("runs/units", "runs/units.html", text=passage)
print(f"wrote {page} ({page.stat().st_size / 1e6:.1f} MB): open it in a browser")
shot = Path(rnnlab.__file__).resolve().parents[1] / "docs" / "view" / "charlm.png"
if shot.exists():
    from IPython.display import Image, display
    display(Image(filename=str(shot), width=900))
