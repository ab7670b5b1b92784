"""The ``rnnlab`` command: argument parsing only; every command calls the Python API that users call, with
keywords. A flag left out is passed as None, so the task's own default applies: defaults live in the tasks.

A user mistake (a ``UserError``) is printed as one line on stderr, exit status 2, no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys

from .errors import UserError

# Settings whose flag is not "--" + the setting's name with dashes.
FLAGS = {"batch_size": "--batch", "text_file": "--text"}
TRAIN_KEYS = ("steps", "minutes", "batch_size", "lr", "weight_decay", "clip", "eval_every", "checkpoint_every",
              "patience", "ema", "seed", "device", "precision", "quiet", "log_dir")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (not the whole usage text) and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _train_options(parser: argparse.ArgumentParser) -> None:
    """Flags of the shared training loop (``rnnlab.train.TrainConfig``); unset ones take the task's defaults."""
    group = parser.add_argument_group("training (unset: the task's defaults; on --resume, the run's)")
    group.add_argument("--steps", type=int, help="optimizer steps from the start of the run")
    group.add_argument("--minutes", type=float, help="stop after this much training time")
    group.add_argument("--batch", dest="batch_size", type=int, help="sequences per step")
    group.add_argument("--lr", type=float, help="peak learning rate (AdamW, warm-up then cosine)")
    group.add_argument("--weight-decay", type=float)
    group.add_argument("--clip", type=float, help="gradient-norm clipping (0: off)")
    group.add_argument("--eval-every", type=int, help="steps between validations")
    group.add_argument("--checkpoint-every", type=int, help="steps between checkpoints")
    group.add_argument("--patience", type=int, help="stop after this many validations without improvement")
    group.add_argument("--ema", type=float, help="keep and use a moving average of the weights (decay, e.g. 0.999)")
    group.add_argument("--seed", type=int)
    group.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    group.add_argument("--precision", choices=["fp32", "bf16", "auto"], help="bf16: autocast the training forward")
    group.add_argument("--quiet", action="store_true", default=None, help="no progress bar")
    group.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    group.add_argument("--log-dir", help="write TensorBoard event files and history.csv here "
                       '(pip install "rnnlab[tensorboard]")')


def _model_options(parser: argparse.ArgumentParser, defaults: str) -> None:
    group = parser.add_argument_group(f"model (default: {defaults})")
    group.add_argument("--arch", choices=["rnn", "lstm", "gru"])
    group.add_argument("--hidden", type=int, help="hidden units per layer")
    group.add_argument("--layers", type=int, help="stacked recurrent layers")
    group.add_argument("--dropout", type=float)
    group.add_argument("--layer-norm", action="store_true", default=None,
                       help="layer-normalised recurrent layers (Ba et al. 2016)")
    group.add_argument("--recurrent-dropout", type=float,
                       help="one dropout mask per sequence on the state entering W_hh (Gal & Ghahramani 2016)")
    group.add_argument("--zoneout", type=float, help="units keep their previous value with this probability while "
                                                     "training (Krueger et al. 2016)")
    group.add_argument("--weight-drop", type=float,
                       help="DropConnect on the hidden-to-hidden weights while training (AWD-LSTM), e.g. 0.25")


def build_parser() -> argparse.ArgumentParser:
    from .tasks import charlm as lm, classify as cls, forecast as fc, memory as mt  # defaults in the help
    parser = Parser(prog="rnnlab", description="Recurrent neural networks from first principles.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="the main job: every task on built-in data, about a minute",
                               description="Run the classic experiments on built-in data and summarise them.")
    demo.add_argument("--out", default="runs/demo", help="folder for the runs (default: runs/demo)")

    charlm = commands.add_parser("charlm", help="character language model").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    train = charlm.add_parser("train", help="train on a UTF-8 text file (default: a built-in text)")
    train.add_argument("--text", dest="text_file", help="UTF-8 text file")
    train.add_argument("--encoding", help="the text file's encoding (default utf-8)")
    train.add_argument("--out", help=f"run folder (default {lm.OUT})")
    _model_options(train, f"a text of {lm.SMALL_TEXT:,} characters or more gets "
                          f"{lm.LARGE['layers']} x {lm.LARGE['hidden']} {lm.LARGE['arch'].upper()}, a "
                          f"shorter one {lm.SMALL['layers']} x {lm.SMALL['hidden']}")
    train.add_argument("--embed", type=int, help="character embedding size")
    train.add_argument("--seq-len", type=int, help="characters per training sequence")
    train.add_argument("--val-frac", type=float, help="last fraction of the text held out (default "
                                                      f"{lm.LARGE['val_frac']}; none for a short text)")
    train.add_argument("--stateful", action=argparse.BooleanOptionalAction,
                       help="read the text as parallel streams and carry each stream's state from one batch to "
                            "the next (truncated BPTT); default: off, random windows that start from zero")
    _train_options(train)
    sample = charlm.add_parser("sample", help="generate text; prints the prime and what follows, nothing else")
    sample.add_argument("--model", required=True, help="run folder of a trained model")
    sample.add_argument("--prime", help="text to start from (default: the training text's first character)")
    sample.add_argument("--length", type=int, help="characters to generate (default 200)")
    sample.add_argument("--temperature", type=float, help="divides the scores before sampling (default 1)")
    sample.add_argument("--top-k", type=int, help="sample among the k likeliest (default 0: all)")
    sample.add_argument("--greedy", action="store_true", help="always take the likeliest character")
    sample.add_argument("--seed", type=int)

    forecast = commands.add_parser("forecast", help="time-series forecasting").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    train = forecast.add_parser("train", help="train on a CSV (default: a generated sine wave)")
    train.add_argument("--csv", help="CSV file with a header line (comma, semicolon or tab separated)")
    _series_options(train)
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
    train.add_argument("--out", help=f"run folder (default {fc.OUT})")
    _model_options(train, f"{defaults['layers']} x {defaults['hidden']} {defaults['arch'].upper()}")
    _train_options(train)
    predict = forecast.add_parser("predict", help="print the next values after the end of a CSV: "
                                                  "t+k,value[,date] per line")
    predict.add_argument("--model", required=True, help="run folder of a trained forecaster")
    predict.add_argument("--csv", required=True, help="CSV with the columns the model was trained on")

    classify = commands.add_parser("classify", help="sequence classification").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    train = classify.add_parser("train", help="train on MNIST-format IDX files, an .npz, or built-in digits")
    _classify_data(train)
    train.add_argument("--bidirectional", action="store_true", default=None)
    defaults = cls.DEFAULTS
    train.add_argument("--val-frac", type=float, help=f"fraction of training sequences held out "
                                                      f"(default {defaults['val_frac']})")
    train.add_argument("--shift", type=int, help="random image shifts in pixels (default 2 for images of 16 rows "
                                                 "or more, 1 below, 0 for other sequences)")
    train.add_argument("--label-smoothing", type=float, help=f"(default {defaults['label_smoothing']})")
    train.add_argument("--pixels", action="store_true", default=None,
                       help="read each image pixel by pixel (MNIST: 784 steps of 1 pixel) instead of row by row")
    train.add_argument("--out", help=f"run folder (default {cls.OUT})")
    _model_options(train, f"{defaults['layers']} x {defaults['hidden']} {defaults['arch'].upper()}, "
                          f"dropout {defaults['dropout']}")
    _train_options(train)
    shapes = commands.add_parser("shapes", help="every parameter and tensor shape of an RNN/LSTM/GRU, checked on "
                                                "torch.nn", description="Print the parameters and the shapes of "
                                 "input, h_0, output, h_n (c_0, c_n) with each dimension named, how to split the "
                                 "directions, and which slices are equal -- all checked by running torch.nn first.")
    shapes.add_argument("--mode", required=True, choices=["rnn", "lstm", "gru"])
    shapes.add_argument("--input-size", type=int, required=True, help="H_in")
    shapes.add_argument("--hidden", type=int, required=True, help="H_cell (hidden_size)")
    shapes.add_argument("--layers", type=int, default=1, help="num_layers (default 1)")
    shapes.add_argument("--bidirectional", action="store_true")
    shapes.add_argument("--batch-first", action="store_true")
    shapes.add_argument("--proj-size", type=int, default=0, help="LSTM only: H_out (default 0: H_out = H_cell)")
    shapes.add_argument("--seq-len", type=int, default=5, help="L (default 5)")
    shapes.add_argument("--batch", type=int, default=3, help="N (default 3)")
    kind = shapes.add_mutually_exclusive_group()
    kind.add_argument("--unbatched", action="store_true", help="one sequence without a batch dimension")
    kind.add_argument("--lengths", help="a packed batch of sequences of these lengths, e.g. 5,3,2")
    shapes.add_argument("--json", action="store_true", help="print JSON for scripts")

    look = commands.add_parser("inspect", help="heatmaps of a trained model's gates and hidden units over one input",
                               description="Run a trained model of any task on one input inside rnnlab.nn.inspect "
                               "and write a heatmap PNG per layer and direction (units x steps, a panel per "
                               "gate and state) and the numbers as internals.npz.")
    look.add_argument("--model", required=True, help="run folder of a trained model")
    given = look.add_mutually_exclusive_group()
    given.add_argument("--text", help="character model: the text to read (default: a greedy sample of its own)")
    given.add_argument("--csv", help="forecaster: a CSV with its columns; it reads the last window")
    given.add_argument("--index", type=int, help="classifier: which test sequence (default 0)")
    look.add_argument("--out", default="runs/inspect", help="folder for the PNGs and internals.npz "
                                                            "(default runs/inspect)")

    memory = commands.add_parser("memory-task", help="the adding problem or the copy task: what can a network "
                                 "remember over T steps", description="Train on the adding problem (Hochreiter & "
                                 "Schmidhuber 1997) or the copy-memory task (Arjovsky et al. 2016) and write "
                                 "metrics.json (final metric, its no-memory baseline, solved) and curve.png.")
    memory.add_argument("--task", choices=["adding", "copy"], help=f"(default {mt.DEFAULTS['task']})")
    memory.add_argument("--length", type=int, help=f"T, steps to remember across (default {mt.DEFAULTS['length']})")
    memory.add_argument("--out", help=f"run folder (default {mt.OUT})")
    _model_options(memory, f"{mt.DEFAULTS['layers']} x {mt.DEFAULTS['hidden']} {mt.DEFAULTS['arch'].upper()}")
    _train_options(memory)

    grads = commands.add_parser("gradients", help="vanishing gradients, measured: ||dL/dh_t|| of RNN, LSTM, GRU",
                                description="Train a tanh RNN, a relu RNN, an LSTM and a GRU on a task that "
                                "needs memory (tell the sign of the first step) and plot ||dL/dh_t|| against t, "
                                "at initialisation and after training.")
    grads.add_argument("--out", default="runs/gradients", help="folder for gradients.png and gradients.json "
                                                              "(default runs/gradients)")
    grads.add_argument("--length", type=int, default=50, help="steps T (default 50)")
    grads.add_argument("--hidden", type=int, default=32, help="hidden units (default 32)")
    grads.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    grads.add_argument("--seed", type=int, default=0)

    export = commands.add_parser("export", help="a trained model as ONNX or TorchScript, its data settings as JSON",
                                 description="Write a trained model of any task with torch.nn's recurrent layer "
                                 "(the same weights) as ONNX or TorchScript, dynamic in batch and length; beside "
                                 "it FILE.json holds the vocabulary, scalers or normalisation. Prints both paths.")
    export.add_argument("--model", required=True, help="run folder of a trained model")
    export.add_argument("--format", required=True, choices=["onnx", "torchscript"])
    export.add_argument("--out", help="file to write (default: the run folder's model.onnx or model.pt)")

    evaluate = classify.add_parser("evaluate", help="test metrics of a trained classifier, as JSON on stdout")
    evaluate.add_argument("--model", required=True, help="run folder of a trained classifier")
    _classify_data(evaluate)
    return parser


def _series_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", help="column to forecast (default: the last numeric column)")
    parser.add_argument("--features", help="comma-separated input columns (default: every numeric column)")
    dates = parser.add_mutually_exclusive_group()
    dates.add_argument("--date-col", help="date column: rows are sorted by it")
    dates.add_argument("--newest-first", action="store_true", default=None, help="rows run from newest to oldest")
    parser.add_argument("--date-format", help="how dates are written, e.g. %%d/%%m/%%Y (default: ISO 8601, or "
                                              "day/month/year-style when that is unambiguous)")
    parser.add_argument("--missing", choices=["error", "ffill", "drop"],
                        help="empty or NaN cells: stop with an error (default), carry the last value, drop the row")


def _classify_data(parser: argparse.ArgumentParser) -> None:
    data = parser.add_mutually_exclusive_group()
    data.add_argument("--idx-dir", help="folder of MNIST-format files (*-images-idx3-ubyte[.gz], *-labels-...)")
    data.add_argument("--npz", help=".npz with x (n, T, F), y (n,) and optionally x_test, y_test")
    parser.add_argument("--train-prefix", help="training files' prefix (default: train, or the one present)")
    parser.add_argument("--test-prefix", help="test files' prefix (default t10k)")


def _keywords(args, *names: str) -> dict:
    return {name: getattr(args, name) for name in names}


def _train_keywords(args, *names: str) -> dict:
    """The task's settings ``names``, the network's, the training loop's, --out and --resume."""
    return _keywords(args, "out", "resume", "arch", "hidden", "layers", "dropout", "weight_drop", "layer_norm",
                     "recurrent_dropout", "zoneout", *TRAIN_KEYS, *names)


def _print_metrics(metrics: dict) -> None:
    from .distributed import is_main
    if not is_main():
        return  # under torchrun rank 0 speaks for the job
    shown = {k: v for k, v in metrics.items() if not isinstance(v, (list, dict)) and k != "sample"}
    print(" ".join(f"{k}={v}" for k, v in shown.items()), file=sys.stderr)


def run(args) -> None:
    if args.command == "demo":
        from .demo import demo
        demo(args.out)
    elif args.command == "charlm":
        from .tasks import charlm
        if args.action == "train":
            _print_metrics(charlm.train(**_train_keywords(args, "text_file", "encoding", "embed", "seq_len",
                                                          "val_frac", "stateful")))
        else:
            options = _keywords(args, "prime", "length", "temperature", "top_k", "greedy", "seed")
            print(charlm.sample(args.model, **{k: v for k, v in options.items() if v is not None}))
    elif args.command == "forecast":
        from .tasks import forecast
        if args.action == "train":
            if args.features is not None:
                args.features = [name.strip() for name in args.features.split(",")]
            _print_metrics(forecast.train(**_train_keywords(
                args, "csv", "target", "features", "date_col", "newest_first", "date_format", "missing", "window",
                "horizon", "test_frac", "val_frac", "season")))
        else:
            forecasts = forecast.predict(args.model, csv=args.csv)
            dated = forecasts.index.dtype.kind == "M"
            for step, (when, value) in enumerate(forecasts.items(), start=1):
                print(f"t+{step},{value:.6g}" + (f",{_date_text(when)}" if dated else ""))
    elif args.command == "memory-task":
        from .tasks import memory
        _print_metrics(memory.train(**_train_keywords(args, "task", "length")))
    elif args.command == "inspect":
        from .gates import inspect_model
        for path in inspect_model(args.model, args.out, text=args.text, csv=args.csv, index=args.index):
            print(path)
    elif args.command == "export":
        from .export import export
        for path in export(args.model, args.format, args.out):
            print(path)
    elif args.command == "gradients":
        from . import gradients
        from .errors import check_settings
        check_settings({"length": args.length, "hidden": args.hidden, "steps": args.steps},
                       positive=("length", "hidden", "steps"))
        from .train import prepare_out_dir
        out = prepare_out_dir(args.out)
        print(gradients.table(gradients.run(out, length=args.length, hidden=args.hidden, steps=args.steps,
                                            seed=args.seed)))
        print(f"wrote {out / 'gradients.png'} and {out / 'gradients.json'}", file=sys.stderr)
    elif args.command == "shapes":
        from .shapes import explain_shapes
        lengths = None
        if args.lengths is not None:
            try:
                lengths = [int(part) for part in args.lengths.split(",")]
            except ValueError:
                raise UserError(f"--lengths takes whole numbers separated by commas, e.g. 5,3,2; got "
                                f"{args.lengths!r}") from None
        explanation = explain_shapes(args.mode, args.input_size, args.hidden, num_layers=args.layers,
                                     bidirectional=args.bidirectional, batch_first=args.batch_first,
                                     proj_size=args.proj_size, seq_len=args.seq_len, batch=args.batch,
                                     unbatched=args.unbatched, lengths=lengths)
        print(explanation.to_json() if args.json else explanation.table())
    elif args.command == "classify":
        from .tasks import classify
        if args.action == "train":
            _print_metrics(classify.train(**_train_keywords(
                args, "idx_dir", "npz", "train_prefix", "test_prefix", "bidirectional", "val_frac", "shift",
                "label_smoothing", "pixels")))
        else:
            print(json.dumps(classify.evaluate(args.model, **_keywords(args, "idx_dir", "npz", "train_prefix",
                                                                       "test_prefix"))))


def _date_text(when) -> str:
    """2024-02-26 for a day, the full ISO timestamp when it has a time or a time zone."""
    return when.strftime("%Y-%m-%d") if when == when.normalize() and when.tzinfo is None else when.isoformat()


def flag_message(err: UserError) -> str:
    """The error's message, its setting's name (``batch_size``) shown as the flag (``--batch``)."""
    message = str(err)
    if err.setting and message.startswith(err.setting + " "):
        flag = FLAGS.get(err.setting, "--" + err.setting.replace("_", "-"))
        message = flag + message[len(err.setting):]
    return message


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except UserError as err:
        print(f"rnnlab: error: {flag_message(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnnlab: interrupted (the last checkpoint is kept)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
