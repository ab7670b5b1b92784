"""The learner's commands: ``rnnlab shapes``, ``rnnlab inspect`` and ``rnnlab gradients``."""

from __future__ import annotations

import sys

from ..errors import UserError
from ..nn import registry


def add_shapes(commands) -> None:
    shapes = commands.add_parser("shapes", help="every parameter and tensor shape of a recurrent layer, checked on "
                                                "torch.nn", description="Print the parameters and the shapes of "
                                 "input, h_0, output, h_n (c_0, c_n) with each dimension named, how to split the "
                                 "directions, and which slices are equal -- all checked by running torch.nn first "
                                 "(for minGRU, minLSTM, RG-LRU and Mamba, which torch.nn lacks: rnnlab's layer, "
                                 "checked against the paper's loop).")
    shapes.add_argument("--mode", required=True, choices=registry.names())
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
    shapes.set_defaults(handler=run_shapes)


def run_shapes(args) -> None:
    from ..learn.shapes import explain_shapes
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


def add_inspect(commands) -> None:
    look = commands.add_parser("inspect", help="heatmaps of a trained model's gates and hidden units over one input",
                               description="Run a trained model of any task on one input inside rnnlab.nn.inspect "
                               "and write a heatmap PNG per layer and direction (units x steps, a panel per "
                               "gate and state) and the numbers as internals.npz.")
    look.add_argument("--model", required=True, help="run folder of a trained model")
    given = look.add_mutually_exclusive_group()
    given.add_argument("--text", help="character model: the text to read (default: a greedy sample of its own)")
    given.add_argument("--csv", help="forecaster: a CSV with its columns; it reads the last window")
    given.add_argument("--index", type=int, help="classifier or memory task: which test sequence (default 0)")
    look.add_argument("--out", default="runs/inspect", help="folder for the PNGs and internals.npz "
                                                            "(default runs/inspect)")
    look.set_defaults(handler=run_inspect)


def run_inspect(args) -> None:
    from ..learn.heatmaps import inspect_model
    for path in inspect_model(args.model, args.out, text=args.text, csv=args.csv, index=args.index):
        print(path)


def add_gradients(commands) -> None:
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
    grads.set_defaults(handler=run_gradients)


def run_gradients(args) -> None:
    from ..learn import gradients
    results = gradients.run(args.out, length=args.length, hidden=args.hidden, steps=args.steps, seed=args.seed)
    print(gradients.table(results))
    print(f"wrote {args.out}/gradients.png and {args.out}/gradients.json", file=sys.stderr)
