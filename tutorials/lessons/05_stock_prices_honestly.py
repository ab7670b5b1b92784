# %% [markdown]
# # Lesson 5 — Stock prices with an LSTM, done honestly
#
# The classic note: "7 days of stock prices -> the next close with an LSTM". It usually min-max scales the
# whole table, trains, and plots predictions that hug the true curve. Two things hide in that picture:
# the scaler saw the test period (its min and max), and a curve that hugs the truth one day late is what
# **persistence** — "tomorrow's close is today's" — draws with no model at all. We measure both.

# %%
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

QUICK = os.environ.get("RNNLAB_TUTORIAL_QUICK") == "1"
CSV = Path(os.environ["RNNLAB_SHARED_DATA"]) / "stock" / "data-02-stock_daily.csv"
table = pd.read_csv(CSV, skiprows=1, names=["Open", "High", "Low", "Volume", "Close"])[::-1]  # oldest first
values = table.to_numpy(dtype=np.float64)
print(table.shape, "rows x columns; first close", values[0, 4], "last close", values[-1, 4])

# %% [markdown]
# ## The usual recipe
#
# Min-max scale every column **over all rows**, windows of 7 days, a 70 / 30 chronological split, an LSTM.

# %%
scaled = (values - values.min(0)) / (values.max(0) - values.min(0))  # uses the test rows' min and max: a leak
x = np.stack([scaled[i:i + 7] for i in range(len(scaled) - 7)])  # (n, 7, 5)
y = scaled[7:, 4]  # the next close
split = int(0.7 * len(x))
torch.manual_seed(0)
lstm, head = torch.nn.LSTM(5, 16, batch_first=True), torch.nn.Linear(16, 1)
optimizer = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=0.01)
xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
for _ in range(100 if QUICK else 500):
    loss = torch.nn.functional.mse_loss(head(lstm(xt[:split])[0][:, -1]).squeeze(1), yt[:split])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
with torch.no_grad():
    guess = head(lstm(xt[split:])[0][:, -1]).squeeze(1).numpy()
span = values[:, 4].max() - values[:, 4].min()
model_rmse = np.sqrt(np.mean((guess - y[split:]) ** 2)) * span
persistence_rmse = np.sqrt(np.mean((x[split:, -1, 4] - y[split:]) ** 2)) * span
print(f"test RMSE in dollars: LSTM {model_rmse:.2f}   persistence (yesterday's close) {persistence_rmse:.2f}")

# %% [markdown]
# The LSTM's error looks small next to prices in the hundreds — until persistence, which needs no training,
# is scored the same way. And the min-max scaler knew the test period's range in advance; a forecaster in
# production cannot.
#
# ## The same question with rnnlab
#
# `forecast.train` splits chronologically (train | validation | test), fits every scale on the training part
# only, models the *change* from the window's last day, scores persistence, seasonal naive and drift with the
# same function, and shrinks the model towards persistence by a factor fitted on validation (0 = persistence).

# %%
from rnnlab.tasks import forecast

m = forecast.train(csv=str(CSV), newest_first=True, target="Close", window=7, test_frac=0.3,
                   out="runs/stock", quiet=True, **({"steps": 100} if QUICK else {}))
print(f"rnnlab test RMSE {m['test']['rmse']:.3f}   persistence {m['naive']['rmse']:.3f}   "
      f"ratio {m['rmse_vs_naive']:.3f}   shrink {m['shrink']:.2f}")
print(f"MASE: rnnlab {m['test']['mase']:.3f}, persistence {m['naive']['mase']:.3f}, drift {m['drift']['mase']:.3f}")

# %% [markdown]
# ## The picture
#
# The last 60 trading days of the test period: the usual recipe's LSTM, persistence and rnnlab, each
# forecasting the next close from the days before it. The LSTM's curve hugs the truth one day late -- as
# persistence's does, without any model.

# %%
import matplotlib.pyplot as plt

model = forecast.load("runs/stock")
series = forecast.read_series(model.options, str(CSV), None, columns=model.state["columns"],
                              target=model.state["target"])  # oldest first, the columns rnnlab trained on
ends = np.arange(split, len(x)) + 6  # the last day each test window reads (its target is the day after)
rnnlab_close = model.forecast(series.values, ends)[:, 0]
low = values[:, 4].min()
days = slice(-60, None)
fig, ax = plt.subplots(figsize=(10, 4))
ax.plot(values[ends + 1, 4][days], color="black", linewidth=2, label="actual close")
ax.plot((guess * span + low)[days], label=f"usual recipe's LSTM (RMSE {model_rmse:.2f})")
ax.plot(values[ends, 4][days], linestyle="--", label=f"persistence (RMSE {persistence_rmse:.2f})")
ax.plot(rnnlab_close[days], linestyle=":", linewidth=2, label=f"rnnlab (shrink {m['shrink']:.2f})")
ax.set_xlabel("trading day (the last 60 of the test period)")
ax.set_ylabel("close (dollars)")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# "Beating the baseline" means a ratio below 1 on data the model never saw, with nothing learnt from that
# data. On this series no model found a signal that held up on validation, so the fitted shrink is (close
# to) 0 and the forecast is persistence: an honest answer is sometimes "no better than yesterday's close".
