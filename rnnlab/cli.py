"""The ``rnnlab`` command: argument parsing only; every command calls the Python API that users call.

A user mistake (a ``UserError``) is printed as one line on stderr, exit status 2, no traceback.
"""

from __future__ import annotations

import argparse
import sys

from .errors import UserError


def _train_options(parser: argparse.ArgumentParser) -> None:
    """Flags of the shared training loop (``rnnlab.train.TrainConfig``); unset ones take the task's defaults."""
    group = parser.add_argument_group("training")
    group.add_argument("--steps", type=int, help="optimizer steps from the start of the run")
    group.add_argument("--minutes", type=float, help="stop after this much training time")
    group.add_argument("--batch", dest="batch_size", type=int, help="sequences per step")
    group.add_argument("--lr", type=float, help="peak learning rate (AdamW, warm-up then cosine)")
    group.add_argument("--weight-decay", type=float)
    group.add_argument("--clip", type=float, help="gradient-norm clipping (0: off)")
    group.add_argument("--eval-every", type=int, help="steps between validations")
    group.add_argument("--checkpoint-every", type=int, help="steps between checkpoints")
    group.add_argument("--patience", type=int, help="stop after this many validations without improvement")
    group.add_argument("--seed", type=int)
    group.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    group.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")


TRAIN_KEYS = ("steps", "minutes", "batch_size", "lr", "weight_decay", "clip", "eval_every", "checkpoint_every",
              "patience", "seed", "device")


def _model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--arch", choices=["rnn", "lstm", "gru"])
    group.add_argument("--hidden", type=int, help="hidden units per layer")
    group.add_argument("--layers", type=int, help="stacked recurrent layers")
    group.add_argument("--dropout", type=float)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnnlab", description="Recurrent neural networks from first principles.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="the main job: every task on built-in data, about a minute",
                               description="Run the classic experiments on built-in data and summarise them.")
    demo.add_argument("--out", default="runs/demo", help="folder for the runs (default: runs/demo)")

    charlm = commands.add_parser("charlm", help="character language model").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    train = charlm.add_parser("train", help="train on a UTF-8 text file (default: a built-in text)")
    train.add_argument("--text", dest="text_file", help="UTF-8 text file")
    train.add_argument("--encoding", default="utf-8", help="the text file's encoding (default utf-8)")
    train.add_argument("--out", default="runs/charlm", help="run folder (default runs/charlm)")
    _model_options(train)
    train.add_argument("--embed", type=int, help="character embedding size")
    train.add_argument("--seq-len", type=int, help="characters per training sequence")
    train.add_argument("--val-frac", type=float, help="last fraction of the text held out (default 0.1)")
    _train_options(train)
    sample = charlm.add_parser("sample", help="generate text; prints the prime and what follows, nothing else")
    sample.add_argument("--model", required=True, help="run folder of a trained model")
    sample.add_argument("--prime", help="text to start from (default: the training text's first character)")
    sample.add_argument("--length", type=int, default=200, help="characters to generate")
    sample.add_argument("--temperature", type=float, default=1.0)
    sample.add_argument("--top-k", type=int, default=0, help="sample among the k likeliest (0: all)")
    sample.add_argument("--greedy", action="store_true", help="always take the likeliest character")
    sample.add_argument("--seed", type=int)
    return parser


def _train_kwargs(args) -> dict:
    return {key: getattr(args, key) for key in TRAIN_KEYS}


def _print_metrics(metrics: dict) -> None:
    shown = {k: v for k, v in metrics.items() if not isinstance(v, (list, dict)) and k != "sample"}
    print(" ".join(f"{k}={v}" for k, v in shown.items()), file=sys.stderr)


def run(args) -> None:
    if args.command == "demo":
        from .demo import demo
        demo(args.out)
    elif args.command == "charlm":
        from .tasks import charlm
        if args.action == "train":
            _print_metrics(charlm.train(args.text_file, args.out, args.arch, args.hidden, args.layers, args.embed,
                                        args.seq_len, args.dropout, args.val_frac, args.encoding, args.resume,
                                        **_train_kwargs(args)))
        else:
            print(charlm.sample(args.model, args.prime, args.length, args.temperature, args.top_k, args.greedy,
                                args.seed))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except UserError as err:
        print(f"rnnlab: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnnlab: interrupted (the last checkpoint is kept)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
