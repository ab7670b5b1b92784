"""sktime estimators (the ``sktime`` extra: ``pip install 'rnnlab[sktime]'``).

    from rnnlab.sktime import RNNForecaster, RNNTimeSeriesClassifier
    model = RNNTimeSeriesClassifier(steps=500).fit(X_train, y_train)   # any sktime Panel, unequal lengths too
    model.predict(X_test), model.predict_proba(X_test)
    forecaster = RNNForecaster().fit(y, fh=[1, 2, 3])                # one series, or a panel of them
    forecaster.predict(), forecaster.predict_interval(coverage=[0.8, 0.95])
    RNNForecaster().fit(y, X=X, fh=[1, 2, 3]).predict(X=X_ahead)   # X: covariates known in advance

``RNNTimeSeriesClassifier`` is ``rnnlab.sklearn.RNNClassifier`` behind sktime's ``BaseClassifier``: sktime
hands it each case as a frame of (time points, channels) -- its ``df-list`` mtype, which holds cases of any
length -- and the network reads them packed. Its settings are the classifier's, with the same defaults.
``RNNForecaster`` is the panel forecaster of ``rnnlab.tasks.forecast`` behind sktime's ``BaseForecaster``;
sktime's exogenous ``X`` are its known-future covariates.
"""

from __future__ import annotations

import tempfile
import warnings

import numpy as np
import pandas as pd
from sktime.classification.base import BaseClassifier
from sktime.forecasting.base import BaseForecaster, ForecastingHorizon

from .sklearn import InvalidInput, RNNClassifier, _user_errors
from .tasks import forecast
from .tasks.forecast.intervals import QUANTILES


class RNNTimeSeriesClassifier(BaseClassifier):
    """A recurrent time-series classifier for sktime: multivariate, unequal lengths, probabilities.

    The settings are ``rnnlab.sklearn.RNNClassifier``'s, but for ``random_state``: sktime's name for the
    task's ``seed`` (None: a fresh one each fit).

    Examples
    --------
    >>> from sktime.datasets import load_unit_test
    >>> from rnnlab.sktime import RNNTimeSeriesClassifier
    >>> X_train, y_train = load_unit_test(split="train")
    >>> X_test, y_test = load_unit_test(split="test")
    >>> model = RNNTimeSeriesClassifier(hidden=16, layers=1, steps=50).fit(X_train, y_train)
    >>> model.predict_proba(X_test).shape
    (22, 2)
    """

    _tags = {
        "authors": ["rnnlab"],
        "maintainers": ["rnnlab"],
        "python_dependencies": "torch",
        "X_inner_mtype": "df-list",  # a list of (time points, channels) frames, each case its own length
        "y_inner_mtype": "numpy1D",
        "capability:multivariate": True,
        "capability:unequal_length": True,
        "capability:predict_proba": True,
        "property:randomness": "derandomized",  # random_state fixes the weights and the batches
        "capability:random_state": True,
    }

    def __init__(self, arch: str = "gru", hidden: int = 128, layers: int = 2, dropout: float = 0.2,
                 bidirectional: bool = False, block: str = "stack", noise: float | None = None,
                 label_smoothing: float = 0.1, val_frac: float = 0.0, steps: int = 2000, batch_size: int = 128,
                 lr: float = 6e-3, weight_decay: float = 1e-4, random_state: int | None = 0, device: str = "auto",
                 front: int | None = None, readout: str | None = None):
        self.arch, self.hidden, self.layers, self.dropout = arch, hidden, layers, dropout
        self.bidirectional, self.block, self.noise, self.label_smoothing = bidirectional, block, noise, label_smoothing
        self.val_frac, self.steps, self.batch_size, self.lr = val_frac, steps, batch_size, lr
        self.weight_decay, self.random_state, self.device = weight_decay, random_state, device
        self.front, self.readout = front, readout
        super().__init__()

    def _fit(self, X, y):
        settings = self.get_params()
        seed = _seed(settings.pop("random_state"))
        self.estimator_ = RNNClassifier(**settings, seed=seed).fit(_cases(X), y)
        return self

    def _predict(self, X) -> np.ndarray:
        return self.estimator_.predict(_cases(X))

    def _predict_proba(self, X) -> np.ndarray:
        return self.estimator_.predict_proba(_cases(X))  # columns in the order of np.unique(y), as sktime's

    @classmethod
    def get_test_params(cls, parameter_set="default"):
        """Tiny fits for sktime's suite: a one-layer GRU, and a bidirectional LSTM with jitter behind a front
        end of stride 2, answering from the max over steps."""
        return [dict(hidden=8, layers=1, steps=30, batch_size=16),
                dict(arch="lstm", hidden=8, layers=1, bidirectional=True, noise=0.1, steps=30, batch_size=16,
                     front=2, readout="max")]


def _seed(random_state: int | None) -> int:
    """The task's seed for sktime's ``random_state``: itself, or a fresh one where it is None."""
    return int(np.random.SeedSequence().generate_state(1)[0] >> 1) if random_state is None else random_state


def _cases(X) -> list[np.ndarray]:
    """sktime's df-list -> the (T_i, channels) float64 arrays the network reads."""
    return [frame.to_numpy(dtype=np.float64) for frame in X]


class RNNForecaster(BaseForecaster):
    """rnnlab's panel forecaster (``rnnlab.tasks.forecast``, one global network across every series, quantiles
    calibrated on validation, a baseline kept per series where it beat the network) behind sktime's
    ``fit(y, fh)`` / ``predict(fh)``, ``predict_interval`` and ``predict_quantiles``.

    ``y`` is one series or a panel (sktime's ``pd-multiindex``: instance, time; its series may end at
    different times, and each is forecast after its own last); the horizon is the largest step of ``fh``
    given to ``fit``. As in ``forecast.train`` the last ``horizon`` points of each series are its test part
    (the metrics are in ``metrics_``) and the fit reads the whole history at ``predict``. Quantiles between
    the calibrated ones (0.025 .. 0.975) are interpolated linearly. ``random_state`` is the task's ``seed``.

    ``X`` (exogenous columns, numbers, at y's times) is read as known-in-advance covariates (the task's
    ``known``): the network reads them over the window and over the horizon ahead, so ``predict`` needs
    ``X`` at the forecast times too; a step ahead that ``X`` leaves out (fh = [3] given X at step 3 only)
    takes the value last given before it in that series.

    Examples
    --------
    >>> from sktime.datasets import load_airline
    >>> from rnnlab.sktime import RNNForecaster
    >>> y = load_airline()
    >>> model = RNNForecaster(hidden=8, steps=30).fit(y, fh=[1, 2, 3])
    >>> model.predict_interval(coverage=0.8).shape
    (3, 2)
    """

    _tags = {
        "authors": ["rnnlab"],
        "maintainers": ["rnnlab"],
        "python_dependencies": "torch",
        "y_inner_mtype": ["pd.Series", "pd-multiindex"],  # one series, or a panel: one network for all
        "X_inner_mtype": ["pd.DataFrame", "pd-multiindex"],  # X as y: per series in a panel
        "scitype:y": "univariate",
        "capability:exogenous": True,  # X's columns are known-future covariates
        "capability:insample": False,
        "capability:pred_int": True,
        "capability:pred_int:insample": False,
        "requires-fh-in-fit": True,
        "property:randomness": "derandomized",
        "capability:random_state": True,
    }

    def __init__(self, window: int | None = None, season: int | None = None, arch: str = "lstm", hidden: int = 64,
                 layers: int = 1, dropout: float = 0.0, val_frac: float = 0.15, per_series_fallback: bool = True,
                 calendar: bool = False, steps: int = 1500, batch_size: int = 64, lr: float = 3e-3,
                 random_state: int | None = 0, device: str = "auto"):
        self.window, self.season, self.arch, self.hidden, self.layers = window, season, arch, hidden, layers
        self.dropout, self.val_frac, self.per_series_fallback, self.calendar = dropout, val_frac, per_series_fallback, calendar
        self.steps, self.batch_size, self.lr, self.random_state, self.device = steps, batch_size, lr, random_state, device
        with warnings.catch_warnings():  # that remember_data's default will change: it is set here
            warnings.filterwarnings("ignore", "The default of config ``remember_data``", FutureWarning)
            super().__init__()
        self.set_config(remember_data=True)  # predict reads the newest history (self._y, self._X), update's too

    def _fit(self, y, X=None, fh=None):
        steps_ahead = fh.to_relative(self.cutoff).to_numpy()
        if (steps_ahead < 1).any():
            raise ValueError(f"RNNForecaster forecasts ahead of the data only; fh holds the steps {list(steps_ahead)}")
        self.horizon_ = int(steps_ahead.max())
        table, dated = _long_table(y)
        self.exogenous_ = [] if X is None else [str(name) for name in X.columns]  # X's columns, as read
        if X is not None:
            table = pd.concat([table, _covariates(X, y.index)], axis=1)
        settings = self.get_params()
        seed = _seed(settings.pop("random_state"))
        with tempfile.TemporaryDirectory(prefix="rnnlab-") as tmp, _user_errors():
            self.metrics_ = forecast.train(data=table, id_col="unique_id", date_col="ds" if dated else None,
                                           target="y", horizon=self.horizon_, out=tmp, quiet=True, seed=seed,
                                           known=[_known(name) for name in self.exogenous_] or None, **settings)
            self.model_ = forecast.load(tmp)
        return self

    def _forecast_table(self, fh, X=None) -> tuple[pd.DataFrame, pd.Index, np.ndarray]:
        """(the model's long table of the next horizon steps, the series' ids, which of its steps fh asks)."""
        steps_ahead = fh.to_relative(self.cutoff).to_numpy()
        if (steps_ahead < 1).any() or steps_ahead.max() > self.horizon_:
            raise ValueError(f"fh must be steps 1 .. {self.horizon_} ahead (the horizon fit was given); got "
                             f"{list(steps_ahead)}")
        table, _ = _long_table(self._y)
        ids = pd.unique(table["unique_id"])
        future = None
        if self.exogenous_:
            table = pd.concat([table, _covariates(self._X, self._y.index)], axis=1)
            future = self._future(fh, X, ids)
        with _user_errors():
            ahead = self.model_.predict(data=table, future=future)  # (S * horizon) rows, series by series
        return ahead, ids, steps_ahead - 1

    def _future(self, fh, X, ids) -> pd.DataFrame:
        """The long table of X over the ``horizon`` steps after each series' last time -- unique_id, [ds,] and
        X's columns -- from ``X`` (predict's), a step it leaves out taking the series' value last given
        before it (in X, or else in fit's X)."""
        if X is None:
            raise ValueError(f"RNNForecaster was fit with X ({', '.join(self.exogenous_)}): predict needs X at "
                             "the times forecast")
        missing = [name for name in self.exogenous_ if name not in [str(c) for c in X.columns]]
        if missing:
            raise ValueError(f"X given to predict lacks the column(s) {', '.join(missing)} that fit read")
        full = ForecastingHorizon(np.arange(1, self.horizon_ + 1), is_relative=True, freq=fh.freq)
        ahead = self._index(full, ids)  # (S * horizon,) the times ahead, series by series
        given = pd.concat([self._X, X]).rename(columns=str)[self.exogenous_]  # (N, K), the newest row last
        given = given[~given.index.duplicated(keep="last")]
        given = given.reindex(given.index.union(ahead)).sort_index()
        given = given.groupby(level=0).ffill() if isinstance(ahead, pd.MultiIndex) else given.ffill()
        return pd.concat([_keys(ahead)[0], _covariates(given, ahead)], axis=1)

    def _index(self, fh, ids) -> pd.Index:
        """The forecasts' index: fh after the cutoff; in a panel, fh after each series' own last time."""
        if not isinstance(self._y.index, pd.MultiIndex):
            return fh.to_absolute_index(self.cutoff)
        index = self._y.index
        names = index.get_level_values(0)
        steps = fh.to_relative(self.cutoff).to_numpy()
        rows = []
        for i in ids:
            mine = names.astype(str) == i
            times = index.get_level_values(-1)[mine]  # this series' times
            freq = getattr(self.cutoff, "freq", None) or (pd.infer_freq(times) if len(times) > 2 and
                                                          isinstance(times, pd.DatetimeIndex) else None)
            rows += [(names[mine][0], t) for t in _after(times[-1], steps, freq)]
        return pd.MultiIndex.from_tuples(rows, names=index.names)

    def _predict(self, fh, X=None):
        ahead, ids, picked = self._forecast_table(fh, X)
        values = ahead["mean"].to_numpy().reshape(len(ids), self.horizon_)[:, picked].ravel()  # (S * len(fh),)
        index = self._index(fh, ids)
        if isinstance(self._y, pd.Series):
            return pd.Series(values, index=index, name=self._y.name)
        return pd.DataFrame({self._y.columns[0]: values}, index=index)

    def _predict_quantiles(self, fh, X=None, alpha=None):
        alpha = list(alpha)
        if min(alpha) < QUANTILES[0] or max(alpha) > QUANTILES[-1]:
            raise ValueError(f"alpha must be in [{QUANTILES[0]}, {QUANTILES[-1]}] (the calibrated quantiles); "
                             f"got {alpha}")
        ahead, ids, picked = self._forecast_table(fh, X)
        grid = ahead[[f"q-{q:g}" for q in QUANTILES]].to_numpy()  # (S * horizon, Q), ordered
        grid = grid.reshape(len(ids), self.horizon_, len(QUANTILES))[:, picked].reshape(-1, len(QUANTILES))
        values = np.stack([np.interp(alpha, QUANTILES, row) for row in grid])  # (S * len(fh), len(alpha))
        columns = pd.MultiIndex.from_product([self._get_varnames(), alpha])
        return pd.DataFrame(values, index=self._index(fh, ids), columns=columns)

    @classmethod
    def get_test_params(cls, parameter_set="default"):
        """Tiny fits for sktime's suite: the default LSTM, and a GRU with the network on every series."""
        return [dict(hidden=8, steps=20, batch_size=16),
                dict(arch="gru", hidden=8, steps=20, batch_size=16, per_series_fallback=False)]


def _after(last, steps: np.ndarray, freq) -> list:
    """The times ``steps`` (1, 2, ...) after a series' ``last`` one: whole numbers, periods, or timestamps at
    the cutoff's frequency."""
    if isinstance(last, pd.Timestamp):
        if freq is None:
            raise InvalidInput("RNNForecaster: the series end at different dates and the data has no regular "
                               "frequency to count steps after each one", "y")
        offset = pd.tseries.frequencies.to_offset(freq)
        return [last + int(k) * offset for k in steps]
    return [last + int(k) for k in steps]  # whole numbers, or pd.Period (which adds its own frequency)


def _known(name: str) -> str:
    """The long table's column for X's column ``name`` (apart from unique_id, ds and y whatever X calls it)."""
    return f"X[{name}]"


def _covariates(X: pd.DataFrame, index: pd.Index) -> pd.DataFrame:
    """X's columns at the times of ``index`` (y's, or the steps ahead, which ``_future`` has filled), as the
    long table's known columns, in float64; a time X lacks, or a column that is not numbers, is an error
    naming it."""
    X = X.rename(columns=str)
    rows = X.reindex(index)
    lacking = rows.isna().all(axis=1).to_numpy() & ~index.isin(X.index)
    if lacking.any():
        raise InvalidInput(f"X has no row for {index[int(np.flatnonzero(lacking)[0])]}: it needs a row at every "
                           "time of y", "X")
    out = {}
    for name in X.columns:
        try:
            out[_known(name)] = rows[name].to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInput(f"X's column '{name}' is not numbers (dtype {X[name].dtype})", "X") from None
    return pd.DataFrame(out)


def _long_table(y) -> tuple[pd.DataFrame, bool]:
    """sktime's y (a Series, or a frame indexed by (instance, time)) as the long table the panel forecaster
    reads -- unique_id, [ds,] y -- and whether it has dates (as ``_keys`` says)."""
    table, dated = _keys(y.index)
    table["y"] = np.asarray(y.iloc[:, 0] if isinstance(y, pd.DataFrame) else y, dtype=np.float64)
    return table, dated


def _keys(index: pd.Index) -> tuple[pd.DataFrame, bool]:
    """A long table's key columns for sktime's index (a time index, or (instance, time)) -- unique_id, [ds] --
    and whether it has dates (a DatetimeIndex or PeriodIndex; else the rows' order is the time)."""
    if isinstance(index, pd.MultiIndex):
        ids, times = index.get_level_values(0), index.get_level_values(-1)
    else:
        ids, times = np.repeat("series", len(index)), index
    if isinstance(times, pd.PeriodIndex):
        times = times.to_timestamp()
    dated = isinstance(times, pd.DatetimeIndex)
    table = pd.DataFrame({"unique_id": np.asarray(ids).astype(str)})
    if dated:
        table["ds"] = np.asarray(times)
    return table, dated
