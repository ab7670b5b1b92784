"""``rnnlab forecast train`` and ``rnnlab forecast predict``."""

from __future__ import annotations

import argparse
import sys

from .options import model_options, print_metrics, train_keywords, train_options

SERIES_KEYS = ("csv", "target", "features", "date_col", "newest_first", "date_format", "missing", "id_col")


def add(commands) -> None:
    from ..tasks import forecast as fc  # its defaults, in the help
    actions = commands.add_parser("forecast", help="time-series forecasting").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    train = actions.add_parser("train", help="train on a CSV (default: a generated sine wave)")
    train.add_argument("--csv", help="CSV file with a header line (comma, semicolon or tab separated)")
    series_options(train)
    defaults = fc.DEFAULTS
    train.add_argument("--window", type=int, help=f"rows the model reads (default: one season and a step, at "
                                                  f"least {fc.WINDOW}; {fc.WINDOW} without a season)")
    train.add_argument("--horizon", type=int, help=f"values it predicts ahead (default {defaults['horizon']})")
    train.add_argument("--test-frac", type=float, help=f"last fraction of rows for testing "
                                                       f"(default {defaults['test_frac']})")
    train.add_argument("--val-frac", type=float, help=f"fraction of the rest for validation "
                                                      f"(default {defaults['val_frac']})")
    train.add_argument("--season", type=int, help=f"season length in rows (default: from the dates -- quarterly 4, "
                                                  f"monthly 12, weekly 52, daily 7, hourly 24, half-hourly 48; "
                                                  f"none for yearly data or without dates, where the seasonal-naive "
                                                  f"baseline uses {fc.CSV_SEASON}; the built-in sine's period, "
                                                  f"{fc.BUILTINS['sine'][1]})")
    train.add_argument("--per-series-fallback", action=argparse.BooleanOptionalAction, default=None,
                       help="a panel: each series keeps the network or the baseline that beat it on that series' "
                            "validation part, among the baselines at least as good as the network over the "
                            "whole panel's validation (default); --no-per-series-fallback: the network everywhere")
    train.add_argument("--combine", choices=["auto", "baselines", "off"],
                       help="a panel: forecast every series by the combination (mean or median of the "
                            "quantiles) of the network with other forecasters that did best on the last "
                            "validation windows -- auto (default): the baselines and, where statsforecast is "
                            "installed, its AutoETS and AutoTheta; baselines: rnnlab's own; off: the network "
                            "(and --per-series-fallback)")
    train.add_argument("--known", help="a panel: comma-separated columns known in advance (prices, holidays, "
                                       "promotions): the network reads them over the horizon too, and "
                                       "forecast predict needs their coming values (--future)")
    train.add_argument("--calendar", action="store_true", default=None,
                       help="a panel: the network reads each date's place in its season (the quarter, month, "
                            "day of the week or hour, from the dates), over the window and the horizon")
    train.add_argument("--out", help=f"run folder (default {fc.OUT})")
    model_options(train, f"{defaults['layers']} x {defaults['hidden']} {defaults['arch'].upper()}", defaults)
    train_options(train, fc.TRAIN_DEFAULTS)
    train.set_defaults(handler=run_train)

    predict = actions.add_parser("predict", help="print the next values after the end of a CSV: "
                                                 "t+k,value[,date] per line (a panel: a long table)")
    predict.add_argument("--model", required=True, help="run folder of a trained forecaster")
    predict.add_argument("--csv", required=True, help="CSV with the columns the model was trained on")
    predict.add_argument("--future", help="a panel forecaster that read known-future covariates (--known): a "
                                          "long table with the id and date columns and those columns for "
                                          "the horizon's dates after each series' last")
    predict.add_argument("--out", help="write the forecasts to this CSV file instead of printing them "
                                       "(a panel: unique_id, ds, mean, lo-80, hi-80, lo-95, hi-95, q-..., "
                                       "forecaster)")
    predict.add_argument("--update", action="store_true", help="a panel: the rows after those the model was "
                                                               "trained on are new observations; track the "
                                                               "intervals through them before forecasting")
    predict.add_argument("--adapt", choices=["pooled", "series"], default="pooled",
                         help="with --update: one interval correction for the panel (default) or one per series")
    predict.set_defaults(handler=run_predict)

    backtest = actions.add_parser("backtest", help="a rolling-origin backtest: forecasts from several cutoffs, "
                                                   "scored; writes the long table and the scores per window")
    backtest.add_argument("--csv", required=True, help="CSV file: a long table of series (or one series)")
    series_options(backtest)
    backtest.add_argument("--horizon", type=int, required=True, help="values forecast from each cutoff")
    backtest.add_argument("--windows", type=int, default=1, help="cutoffs (default 1: the last horizon rows)")
    backtest.add_argument("--step", type=int, help="rows between cutoffs (default: the horizon)")
    backtest.add_argument("--refit", action="store_true", help="train again at every cutoff (default: once, on the "
                                                               "rows up to the first cutoff)")
    backtest.add_argument("--adapt", choices=["pooled", "series", "none"], default="pooled",
                          help="track the intervals with the outcomes known at each cutoff: one correction "
                               "for the panel (default), one per series, or none (the static intervals)")
    backtest.add_argument("--window", type=int, help="rows the model reads (default: as forecast train)")
    backtest.add_argument("--season", type=int, help="season length in rows (default: from the dates)")
    backtest.add_argument("--known", help="comma-separated columns known in advance (read over the horizon)")
    backtest.add_argument("--calendar", action="store_true", default=None,
                          help="the network reads each date's place in its season")
    backtest.add_argument("--out", help=f"folder for the models and the results (default {fc.backtest.OUT}): "
                                        "backtest.csv (unique_id, ds, cutoff, y, mean, intervals, quantiles), "
                                        "windows.csv (the scores of each window), overall.json")
    model_options(backtest, f"{defaults['layers']} x {defaults['hidden']} {defaults['arch'].upper()}", defaults)
    train_options(backtest, fc.TRAIN_DEFAULTS)
    backtest.set_defaults(handler=run_backtest)


def series_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", help="column to forecast (default: the last numeric column; y in a panel)")
    parser.add_argument("--id-col", help="a panel (a long table of many series): the column naming each row's "
                                         "series (default: unique_id when the file has it; then --date-col "
                                         "defaults to ds and --target to y)")
    parser.add_argument("--features", help="comma-separated input columns (default: every numeric column; a "
                                           "panel: none, and these are read over the window only)")
    dates = parser.add_mutually_exclusive_group()
    dates.add_argument("--date-col", help="date column: rows are sorted by it")
    dates.add_argument("--newest-first", action="store_true", default=None, help="rows run from newest to oldest")
    parser.add_argument("--date-format", help="how dates are written, e.g. %%d/%%m/%%Y (default: ISO 8601, or "
                                              "day/month/year-style when that is unambiguous)")
    parser.add_argument("--missing", choices=["error", "ffill", "drop"],
                        help="empty or NaN cells: stop with an error (default), carry the last value, drop the row")


def column_lists(args) -> None:
    """--features and --known as lists of column names (they come comma-separated)."""
    for name in ("features", "known"):
        if getattr(args, name) is not None:
            setattr(args, name, [column.strip() for column in getattr(args, name).split(",")])


def run_train(args) -> None:
    from ..tasks import forecast
    column_lists(args)
    metrics = forecast.train(**train_keywords(args, *SERIES_KEYS, "window", "horizon", "test_frac", "val_frac",
                                              "season", "per_series_fallback", "known", "calendar",
                                              "combine"))
    words = headline(metrics) if "test" in metrics else panel_headline(metrics) if "series" in metrics else ""
    print_metrics(metrics, words)  # rank 0's metrics (torchrun)


def panel_headline(metrics: dict) -> str:
    """A panel's result in words: mean MASE beside the baselines', and the intervals' coverage."""
    def named(name):
        return name.replace("_", " ")
    baselines = ", ".join(f"{named(b)} {metrics[b]['mase']:.3f}" for b in ("naive", "seasonal_naive", "drift")
                          if b in metrics and (b != "seasonal_naive" or metrics["season"]))
    kept = ", ".join(f"{named(k)} {v}" for k, v in metrics["chosen"].items() if v)
    combined = metrics.get("combined")
    if combined:
        kept = (f"the {combined['how']} of {', '.join(named(m) for m in combined['members'])}, chosen on "
                f"validation ({kept})")
    return (f"panel of {metrics['series']} series: test MASE {metrics['mase']:.3f} (mean over series; {baselines}); "
            f"80 % intervals hold {100 * metrics['coverage80']:.0f} % of the outcomes, 95 % intervals "
            f"{100 * metrics['coverage95']:.0f} %; forecasters kept per series on validation: {kept}")


def headline(metrics: dict) -> str:
    """The result in words: the test RMSE beside the baselines', and what the forecaster is."""
    rmse = {name: metrics[name]["rmse"] for name in ("test", "naive", "seasonal_naive", "drift") if name in metrics}
    words = (f"{metrics['target']}: test RMSE {rmse['test']:.4g}, persistence {rmse['naive']:.4g} "
             f"({rmse['test'] / max(rmse['naive'], 1e-300):.2f}x), seasonal naive (lag "
             f"{metrics['seasonal_naive_lag']}) {rmse['seasonal_naive']:.4g}, drift {rmse['drift']:.4g}")
    if metrics["test"].get("mase") is not None:
        words += f"; MASE {metrics['test']['mase']:.3g}"
    base = metrics["base"].replace("_", " ")
    if metrics.get("fallback"):
        return words + f" (the network was not clearly better on validation: it forecasts the " \
                       f"{metrics['fallback'].replace('_', ' ')})"
    return words + f" (the network corrects the {base})"


def run_predict(args) -> None:
    from ..tasks import forecast
    from ..training.checkpoint import write_text_atomic
    forecasts = forecast.predict(args.model, csv=args.csv, future=args.future, update=args.update,
                                 adapt=args.adapt)
    if getattr(forecasts, "ndim", 1) == 2:  # a panel's long table (a DataFrame)
        text = forecasts.to_csv(index=False, date_format=None, float_format="%.6g")
        return write_text_atomic(args.out, text) if args.out else print(text, end="")
    dated = forecasts.index.dtype.kind == "M"
    lines = [f"t+{step},{value:.6g}" + (f",{date_text(when)}" if dated else "")
             for step, (when, value) in enumerate(forecasts.items(), start=1)]
    if args.out:
        return write_text_atomic(args.out, "".join(line + "\n" for line in lines))
    print("\n".join(lines))


def run_backtest(args) -> None:
    import json
    from pathlib import Path
    from ..tasks import forecast
    from ..training.checkpoint import write_text_atomic
    if args.resume:
        from ..errors import UserError
        raise UserError("--resume continues one training run; a backtest trains its own (run it again to redo it)")
    column_lists(args)
    settings = {k: v for k, v in train_keywords(args, *SERIES_KEYS, "window", "season", "known", "calendar").items()
                if v is not None and k not in ("resume", "out", "csv")}
    out = Path(args.out or forecast.backtest.OUT)
    result = forecast.cross_validation(csv=args.csv, horizon=args.horizon, windows=args.windows, step=args.step,
                                       refit=args.refit, adapt=None if args.adapt == "none" else args.adapt,
                                       out=out, **settings)
    write_text_atomic(out / "backtest.csv", result.table.to_csv(index=False, float_format="%.6g"))
    write_text_atomic(out / "windows.csv", result.windows.to_csv(index=False, float_format="%.6g"))
    write_text_atomic(out / "overall.json", json.dumps(result.overall, indent=1) + "\n")
    shown = ["window", "cutoff", "series", "mase", "coverage80", "coverage95"]
    print(result.windows[[c for c in shown if c in result.windows]].to_string(index=False, float_format="%.3f"))
    overall = result.overall
    adapted = f" (static {100 * overall['static_coverage80']:.0f} / {100 * overall['static_coverage95']:.0f} %)" \
        if "static_coverage80" in overall else ""
    print(f"{overall['windows']} windows, {overall['forecasts']} forecasts: mean MASE {overall['mase']:.3f}; "
          f"80 / 95 % intervals hold {100 * overall['coverage80']:.0f} / {100 * overall['coverage95']:.0f} % of "
          f"the outcomes{adapted}; the table is in {out / 'backtest.csv'}", file=sys.stderr)


def date_text(when) -> str:
    """2024-02-26 for a day, the full ISO timestamp when it has a time or a time zone."""
    return when.strftime("%Y-%m-%d") if when == when.normalize() and when.tzinfo is None else when.isoformat()
