"""``rnnlab classify train`` and ``rnnlab classify evaluate``."""

from __future__ import annotations

import argparse
import json

from .options import keywords, model_options, print_metrics, train_keywords, train_options

DATA_KEYS = ("idx_dir", "npz", "ts", "train_prefix", "test_prefix")


def add(commands) -> None:
    from ..tasks import classify as cls  # its defaults, in the help
    actions = commands.add_parser("classify", help="sequence classification").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    train = actions.add_parser("train", help="train on MNIST-format IDX files, an .npz, .ts files, or built-in digits")
    data_options(train)
    train.add_argument("--ts-test", help="the test cases' .ts file, with --ts (default: 20 %% of --ts's cases)")
    train.add_argument("--bidirectional", action="store_true", default=None)
    defaults = cls.DEFAULTS
    train.add_argument("--val-frac", type=float, help="fraction of training sequences held out (default 0.1, or 0 "
                                                      f"with fewer than {cls.SMALL_SET} sequences per class)")
    train.add_argument("--shift", type=int, help="random image shifts in pixels (default 2 for images of 16 rows "
                                                 "or more, 1 below, 0 for other sequences)")
    train.add_argument("--label-smoothing", type=float, help=f"(default {defaults['label_smoothing']})")
    train.add_argument("--noise", type=float, help="jitter: N(0, noise^2) added to each standardised value of a "
                                                   "training batch (default 0.2, 0 for images and where a --front reads the sequences)")
    train.add_argument("--group-lengths", action="store_true", default=None,
                       help="draw each batch from sequences of similar lengths (where lengths differ and the set "
                            "holds over 4 batches): faster steps, less varied batches (default: uniform)")
    train.add_argument("--pixels", action="store_true", default=None,
                       help="read each image pixel by pixel (MNIST: 784 steps of 1 pixel) instead of row by row")
    train.add_argument("--front", type=int,
                       help="a strided convolutional front end that reads this many steps as one; 0: none (default: "
                            f"for sequences of over {cls.LONG_RECORDING} steps without --pixels, the smallest power of "
                            f"two that leaves at most {cls.READ_STEPS} steps; else 0)")
    train.add_argument("--readout", choices=("last", "max"),
                       help="each sequence's answer from its last step, or from each feature's max over its steps "
                            "(default: max with a front end, else last)")
    train.add_argument("--out", help=f"run folder (default {cls.OUT})")
    model_options(train, f"{defaults['layers']} x {defaults['hidden']} {defaults['arch'].upper()}, "
                         f"dropout {defaults['dropout']}", defaults)
    train_options(train, cls.TRAIN_DEFAULTS)
    train.set_defaults(handler=run_train)

    evaluate = actions.add_parser("evaluate", help="test metrics of a trained classifier: a readable report on "
                                                   "stdout (--json: the metrics as JSON)")
    evaluate.add_argument("--model", required=True, help="run folder of a trained classifier")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as one JSON object instead")
    data_options(evaluate)
    evaluate.set_defaults(handler=run_evaluate)


def data_options(parser: argparse.ArgumentParser) -> None:
    data = parser.add_mutually_exclusive_group()
    data.add_argument("--idx-dir", help="folder of MNIST-format files (*-images-idx3-ubyte[.gz], *-labels-...)")
    data.add_argument("--npz", help=".npz with x (n, T, F), y (n,) and optionally x_test, y_test; lengths "
                                    "(n,) and lengths_test where sequences of different lengths are padded")
    data.add_argument("--ts", help="sktime/aeon .ts file of cases of any length (needs aeon or sktime: "
                                   "pip install 'rnnlab[sktime]')")
    parser.add_argument("--train-prefix", help="training files' prefix (default: train, or the one present)")
    parser.add_argument("--test-prefix", help="test files' prefix (default t10k)")


def run_train(args) -> None:
    from ..tasks import classify
    print_metrics(classify.train(**train_keywords(args, *DATA_KEYS, "ts_test", "bidirectional", "val_frac",
                                                  "shift", "label_smoothing", "pixels", "noise", "group_lengths",
                                                  "front", "readout")))


def run_evaluate(args) -> None:
    from ..tasks import classify
    metrics = classify.evaluate(args.model, **keywords(args, *DATA_KEYS))
    print(json.dumps(metrics) if args.json else report(metrics))


def report(metrics: dict) -> str:
    """The test metrics as a reader wants them: accuracy, each class's accuracy, the confusion matrix."""
    classes = [str(c) for c in metrics["classes"]]
    width = max(5, *(len(c) for c in classes))
    lines = [f"test accuracy {100 * metrics['test_accuracy']:.2f} % on {metrics['test_sequences']:,} sequences",
             "", "accuracy per class:"]
    lines += [f"  {c:>{width}}  {100 * a:6.2f} %" for c, a in zip(classes, metrics["per_class_accuracy"])]
    cell = max(width, *(len(f"{n:,}") for row in metrics["confusion_matrix"] for n in row))
    lines += ["", "confusion matrix (rows: true class, columns: predicted):",
              " " * (width + 2) + " ".join(f"{c:>{cell}}" for c in classes)]
    lines += [f"  {c:>{width}}" + "".join(f" {n:>{cell},}" for n in row)
              for c, row in zip(classes, metrics["confusion_matrix"])]
    return "\n".join(lines)
