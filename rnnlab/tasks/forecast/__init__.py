"""Time-series forecasting: the last ``window`` rows -> the next ``horizon`` values of the target column.

    metrics = train(csv="prices.csv", target="Close", date_col="Date")       # or data=<DataFrame or array>
    model = load("runs/forecast")
    model.predict(csv="prices.csv")                 # the next values after the file's last row, by date

Honest by construction:

* the split is chronological -- train, then validation, then the last ``test_frac`` as test -- and every
  scale is fitted on the training part only;
* the model sees *changes relative to the window's last row*, not absolute levels: log-ratios for columns
  that are positive in the training part (prices, volumes), differences otherwise, each divided by its
  typical one-step change in the training part. A price that grew 100x after the training part looks
  the same to the model, so forecasts stay sensible where min-max scaling of levels breaks down;
* the forecast is ``persistence + shrink * model``: ``shrink`` in [0, 1] is fitted on the validation part
  (least squares), so a model that learnt nothing useful falls back to persistence instead of adding noise;
* the baselines -- naive persistence, seasonal naive, drift -- are forecasters like the network (one
  ``forecast(values, ends)``), scored by the same ``score`` on exactly the same test targets, with MASE
  (MAE over the training part's in-sample one-step naive MAE; Hyndman & Koehler 2006).

Many series at once: ``train(data=<long DataFrame>)`` (or ``csv=``) with a ``unique_id`` column (or
``id_col=``) trains one network across every series of the panel (``panel``), whose ``predict`` gives a long
table -- ``unique_id, ds, mean, lo-80, hi-80, lo-95, hi-95`` and the quantiles -- with quantiles calibrated
on validation (``intervals``) and a forecaster kept per series (the network or a baseline).

The package: ``task`` (the split, the training targets, the fallback, ``train``), ``features`` (the scaler
and what the network reads), ``baselines`` (persistence, seasonal naive, drift), ``metrics`` (the scores)
``forecaster`` (the trained model: ``forecast``, ``predict``), ``panel`` (many series: the task and its
trained model) and ``intervals`` (quantiles, the pinball loss, the baselines' intervals, calibration).
"""

from .backtest import Backtest, cross_validation
from .baselines import Drift, Naive, SeasonalNaive, base_forecaster, baselines
from .features import Scaler, network_inputs, seasonal_changes, window_inputs
from .forecaster import Forecaster, read_series
from .loading import load, predict
from .metrics import aggregate, in_sample_naive_mae, panel_scores, score
from .panel import PanelTask
from .panel_forecaster import PanelForecaster
from .task import BUILTINS, CSV_SEASON, DEFAULTS, HUBER_BETA, OUT, TRAIN_DEFAULTS, ForecastTask, train
from .validation import WINDOW, default_window, has_season

__all__ = ["train", "load", "predict", "cross_validation", "Backtest", "Forecaster", "ForecastTask", "Scaler", "Naive", "SeasonalNaive", "Drift",
           "baselines", "base_forecaster", "score", "panel_scores", "aggregate", "PanelTask", "PanelForecaster", "in_sample_naive_mae", "network_inputs", "window_inputs",
           "seasonal_changes", "read_series", "default_window", "has_season",
           "BUILTINS", "CSV_SEASON", "DEFAULTS", "HUBER_BETA", "OUT", "TRAIN_DEFAULTS", "WINDOW"]
