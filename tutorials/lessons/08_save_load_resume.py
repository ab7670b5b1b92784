# %% [markdown]
# # Lesson 8 — Saving, loading and resuming, safely
#
# A run folder holds `checkpoint/` (weights as **safetensors**, everything else as **JSON**: the settings,
# the vocabulary or the scalers, the training state), `metrics.json` and the plots. Nothing in it is pickled,
# so loading a checkpoint never runs code — unlike `torch.load` on an untrusted `.pt` file.

# %%
import json
import os
from pathlib import Path

from rnnlab.tasks import charlm

QUICK = os.environ.get("RNNLAB_TUTORIAL_QUICK") == "1"
steps = 40 if QUICK else 150
charlm.train(text="if you want you", out="runs/save", steps=steps, quiet=True)
for path in sorted(Path("runs/save").rglob("*")):
    print(path)
state = json.loads(Path("runs/save/checkpoint/state.json").read_text())
print("saved settings:", {k: state["options"][k] for k in ("arch", "hidden", "layers")}, "vocabulary:", state["vocab"])

# %% [markdown]
# ## Loading
#
# `load` rebuilds the network from the JSON and fills it from safetensors; `rnnlab.tasks.load` opens a run of
# any task.

# %%
model = charlm.load("runs/save")
print(type(model).__name__, model.network.config.arch, model.network.config.hidden)
print(model.sample(prime="i", length=14, greedy=True))

# %% [markdown]
# ## Resuming
#
# A run that is killed and resumed ends with exactly the weights of a run that never stopped: the checkpoint
# keeps the optimizer, the data order and the random state, and is written to a temporary folder and renamed,
# so a kill never leaves half a checkpoint. Below, a training process is killed right after its first
# checkpoint, resumed with `--resume`, and compared with one that ran straight through.

# %%
import signal
import subprocess
import sys
import time

import torch
from safetensors.torch import load_file

Path("ifyou.txt").write_text("if you want you")
command = [sys.executable, "-m", "rnnlab.cli", "charlm", "train", "--text", "ifyou.txt", "--steps", str(4 * steps),
           "--checkpoint-every", str(steps // 2), "--eval-every", "10", "--quiet"]
subprocess.run(command + ["--out", "runs/straight"], check=True)

job = subprocess.Popen(command + ["--out", "runs/killed"])
saved = Path("runs/killed/checkpoint/state.json")
while not saved.exists() and job.poll() is None:
    time.sleep(0.01)
job.send_signal(signal.SIGKILL)
job.wait()
killed_at = json.loads(saved.read_text())["run"]["step"]
print("killed; its checkpoint is at step", killed_at, "of", 4 * steps)
subprocess.run(command + ["--out", "runs/killed", "--resume"], check=True)

straight = load_file("runs/straight/checkpoint/model.safetensors")
resumed = load_file("runs/killed/checkpoint/model.safetensors")
print("bit-identical weights:", all(torch.equal(straight[k], resumed[k]) for k in straight))

# %% [markdown]
# The two runs' loss curves, from the run record each checkpoint keeps: after the kill the resumed run picks
# up at its checkpoint and traces the straight run's curve step for step.

# %%
import matplotlib.pyplot as plt

curves = {name: json.loads(Path(f"runs/{name}/checkpoint/state.json").read_text())["run"]["history"]
          for name in ("straight", "killed")}
fig, ax = plt.subplots(figsize=(9, 3.8))
ax.semilogy([row["step"] for row in curves["straight"]], [row["val_loss"] for row in curves["straight"]],
            linewidth=4, alpha=0.4, label="the run that never stopped")
after = [row for row in curves["killed"] if row["step"] > killed_at]
ax.semilogy([row["step"] for row in after], [row["val_loss"] for row in after], "o", markersize=3,
            label="the killed run, after --resume")
ax.axvline(killed_at, color="gray", linestyle="--", label=f"killed; resumed from the checkpoint at step {killed_at}")
ax.set_xlabel("training step")
ax.set_ylabel("loss (nats per character)")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
