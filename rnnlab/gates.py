"""Gates and states, seen: heatmaps of a trained model's hidden units and gates over the steps of one input.

    rnnlab inspect --model runs/shakespeare --text "ROMEO: But soft" --out runs/inspect

For a character model every column is labelled with its character (the picture of Karpathy, Johnson &
Fei-Fei's "Visualizing and understanding recurrent networks"); for a forecaster the columns are the rows of
its last input window; for a classifier the steps of test sequence K. It is ``rnnlab.nn.inspect`` on the
task's own network: one PNG per layer and direction, rows = units, columns = steps, a panel per quantity
(LSTM: i, f, g, o, c, h; GRU: r, z, n, h; RNN: h), and the numbers in ``internals.npz`` as (T, H) arrays
named ``l{layer}_d{direction}_{name}``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import nn as rnn
from .errors import UserError

ORDER = ("i", "f", "g", "o", "r", "z", "n", "c", "h")  # the panels, in the cells' own order
IN_UNIT_RANGE = ("i", "f", "o", "r", "z")  # sigmoid gates: 0..1; the rest: tanh-like, -1..1 (c unbounded)


def model_input(trained, text: str | None = None, csv: str | None = None, index: int | None = None):
    """(network input (1, T, ...), one label per step, a title) for a loaded model of any task."""
    if trained.task == "charlm":
        if csv is not None or index is not None:
            raise UserError("a character model reads --text (default: a greedy sample of its own)")
        if text is None:
            text = trained.sample(length=60, greedy=True)
        if not text:
            raise UserError("--text is empty")
        return trained.vocab.encode(text)[None], list(text), f"{len(text)} characters"
    if trained.task == "forecast":
        if csv is None:
            raise UserError("a forecaster reads the last window of a CSV with its columns: give --csv")
        from .tasks.forecast import _series, window_inputs
        series = _series(trained.options, csv, None, columns=trained.state["columns"], target=trained.state["target"])
        window = trained.state["window"]
        if len(series.values) < window:
            raise UserError(f"{csv} has {len(series.values)} rows; the model reads the last {window}")
        inputs = window_inputs(series.values, np.array([len(series.values) - 1]), window, trained.scaler)
        labels = [f"t-{window - 1 - k}" if k < window - 1 else "t" for k in range(window)]
        return torch.tensor(inputs, dtype=torch.float32), labels, f"the last {window} rows of {Path(csv).name}"
    if text is not None or csv is not None:
        raise UserError("a classifier reads test sequence --index K of its data")
    from .tasks.classify import load_data, normalise
    source = trained.options.get("source", {})
    if source.get("arrays"):
        raise UserError("the model was trained on arrays: inspect it from Python with rnnlab.nn.inspect")
    _, test = load_data(source.get("idx_dir"), source.get("npz"), source.get("train_prefix"), source.get("test_prefix"))
    index = 0 if index is None else index
    if not 0 <= index < len(test.y):
        raise UserError(f"--index must be in [0, {len(test.y)}), got {index}", "index")
    x = test.x[index:index + 1]
    if trained.options.get("pixels"):
        x = x.reshape(1, -1, 1)
    labels = [str(t) for t in range(x.shape[1])]
    return normalise(x, trained.state["norm"]), labels, f"test sequence {index} (label {int(test.y[index])})"


def record(trained, inputs) -> dict:
    """{(layer, direction): {name: (T, H) array}} of the network's recurrent layer on ``inputs``."""
    network = trained.network
    with torch.no_grad(), rnn.inspect(network.rnn) as trace:
        network(inputs.to(trained.device))
    return {key: {name: values[0].cpu().numpy() for name, values in trace[key].items()} for key in trace.keys()}


def heatmaps(internals: dict, labels: list[str], title: str, out: Path) -> list[Path]:
    """One PNG per (layer, direction); returns their paths."""
    from .plots import _pyplot
    plt = _pyplot()
    paths = []
    for (layer, direction), values in internals.items():
        names = [name for name in ORDER if name in values]
        steps, units = values[names[0]].shape
        fig, axes = plt.subplots(len(names), 1, figsize=(min(3 + 0.22 * steps, 40), 1.2 + 1.6 * len(names)),
                                 squeeze=False)
        for ax, name in zip(axes[:, 0], names):
            data = values[name].T  # (H, T): a row per unit, a column per step
            limits = (0, 1) if name in IN_UNIT_RANGE else (-1, 1)
            image = ax.imshow(data, aspect="auto", cmap="viridis" if name in IN_UNIT_RANGE else "RdBu_r",
                              vmin=limits[0], vmax=limits[1], interpolation="nearest")
            ax.set_ylabel(f"{name}\n({units} units)")
            ax.set_xticks(range(steps) if steps <= 120 else [])
            ax.set_xticklabels([repr(label)[1:-1] if len(label) == 1 else label for label in labels]
                               if steps <= 120 else [], fontsize=7, rotation=0 if steps <= 60 else 90)
            fig.colorbar(image, ax=ax, pad=0.01)
        axes[0, 0].set_title(f"layer {layer}, {'forward' if direction == 0 else 'backward'}: {title}")
        fig.tight_layout()
        path = out / f"layer{layer}_{'forward' if direction == 0 else 'backward'}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths


def inspect_model(model_dir: str | Path, out: str | Path, text: str | None = None, csv: str | None = None,
                  index: int | None = None) -> list[Path]:
    """Load the model in ``model_dir``, record its gates on the given input, write the heatmaps and
    ``internals.npz`` into ``out``; returns the files written."""
    from .tasks import load
    from .train import prepare_out_dir
    trained = load(model_dir)
    inputs, labels, title = model_input(trained, text, csv, index)
    internals = record(trained, inputs)
    out = prepare_out_dir(out)
    paths = heatmaps(internals, labels, title, out)
    arrays = {f"l{layer}_d{direction}_{name}": values
              for (layer, direction), named in internals.items() for name, values in named.items()}
    np.savez(out / "internals.npz", labels=np.array(labels), **arrays)
    return paths + [out / "internals.npz"]
