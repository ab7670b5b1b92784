"""``rnnlab charlm train`` and ``rnnlab charlm sample``."""

from __future__ import annotations

import argparse

from .options import keywords, model_options, print_metrics, shown, train_keywords, train_options


def add(commands) -> None:
    from ..tasks import charlm as lm  # its defaults, in the help
    actions = commands.add_parser("charlm", help="character language model").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    train = actions.add_parser("train", help="train on a UTF-8 text file (default: a built-in text)")
    train.add_argument("--text", dest="text_file", help="UTF-8 text file")
    train.add_argument("--encoding", help="the text file's encoding (default utf-8)")
    train.add_argument("--out", help=f"run folder (default {lm.OUT})")
    model_options(train, f"a text of {lm.SMALL_TEXT:,} characters or more gets "
                         f"{lm.LARGE['layers']} x {lm.LARGE['hidden']} {lm.LARGE['arch'].upper()}, a "
                         f"shorter one {lm.SMALL['layers']} x {lm.SMALL['hidden']}", lm.LARGE, lm.SMALL)
    train.add_argument("--embed", type=int, help="character embedding size" + shown(lm.LARGE, "embed", lm.SMALL))
    train.add_argument("--seq-len", type=int, help="characters per training sequence"
                                                   + shown(lm.LARGE, "seq_len", lm.SMALL))
    train.add_argument("--val-frac", type=float, help="last fraction of the text held out (default "
                                                      f"{lm.LARGE['val_frac']}; none for a short text)")
    train.add_argument("--stateful", action=argparse.BooleanOptionalAction,
                       help="read the text as parallel streams and carry each stream's state from one batch to "
                            "the next (truncated BPTT); default: off, random windows that start from zero")
    train.add_argument("--val-chars", type=int, help=f"validation characters scored at each evaluation (default "
                                                     f"{lm.VAL_CHARS:,}); the final val_loss scores up to "
                                                     f"{lm.FINAL_VAL_CHARS:,}")
    train.add_argument("--val-full", action="store_true", default=None,
                       help="score the whole validation part for the final val_loss (slow on a big text)")
    train_options(train, lm.LARGE_TRAIN, lm.SMALL_TRAIN)
    train.set_defaults(handler=run_train)

    sample = actions.add_parser("sample", help="generate text; prints the prime and what follows, nothing else")
    sample.add_argument("--model", required=True, help="run folder of a trained model")
    sample.add_argument("--prime", help="text to start from (default: the training text's first character)")
    sample.add_argument("--length", type=int, help="characters to generate (default 200)")
    sample.add_argument("--temperature", type=float, help="divides the scores before sampling (default 1)")
    sample.add_argument("--top-k", type=int, help="sample among the k likeliest (default 0: all)")
    sample.add_argument("--greedy", action="store_true", help="always take the likeliest character")
    sample.add_argument("--seed", type=int)
    sample.set_defaults(handler=run_sample)


def run_train(args) -> None:
    from ..tasks import charlm
    print_metrics(charlm.train(**train_keywords(args, "text_file", "encoding", "embed", "seq_len", "val_frac",
                                                "stateful", "val_chars", "val_full")))


def run_sample(args) -> None:
    from ..tasks import charlm
    options = keywords(args, "prime", "length", "temperature", "top_k", "greedy", "seed")
    print(charlm.sample(args.model, **{k: v for k, v in options.items() if v is not None}))
