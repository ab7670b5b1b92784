# %% [markdown]
# # Lesson 1 — The next step of a sine wave
#
# The first sequence task in most notes: read a window of a sine wave, predict the next value. rnnlab's
# forecaster does it end to end — windows, a chronological train / validation / test split, scaling fitted
# on the training part only, an LSTM, and the honest baselines (persistence: "the next value is the last
# one"; seasonal naive: "the value one period ago") scored the same way.

# %%
import json
import os

from IPython.display import Image, display

from rnnlab.tasks import forecast

QUICK = os.environ.get("RNNLAB_TUTORIAL_QUICK") == "1"
metrics = forecast.train(builtin="sine", window=7, horizon=1, out="runs/sine", steps=100 if QUICK else 1500,
                         quiet=True)
for name in ("test", "naive", "seasonal_naive", "drift"):
    print(f"{name:<15} RMSE {metrics[name]['rmse']:.2e}   MASE {metrics[name]['mase']:.3f}")
display(Image("runs/sine/forecast.png"))

# %% [markdown]
# The test RMSE is a small fraction of persistence's: the network has learnt the wave's local shape (a sine
# is fully determined by a few past values). MASE divides the error by the in-sample error of persistence,
# so below 1 means "better than repeating the last value".
#
# ## Using the trained model
#
# `forecast.load` gives the forecaster back; `predict` continues any series with the same columns.

# %%
import numpy as np
import pandas as pd

model = forecast.load("runs/sine")
t = np.arange(200)
series = pd.DataFrame({"sine": np.sin(0.1 * t)})  # the column the built-in series was trained on
prediction = model.predict(data=series)
print(prediction)
print("true next value:", round(float(np.sin(0.1 * 200)), 4))
print(json.dumps({k: metrics[k] for k in ("window", "horizon", "test_windows")}))
