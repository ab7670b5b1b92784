"""Gates and states, seen: heatmaps of a trained model's hidden units and gates over the steps of one input.

    rnnlab inspect --model runs/shakespeare --text "ROMEO: But soft" --out runs/inspect

For a character model every column is labelled with its character (the picture of Karpathy, Johnson &
Fei-Fei's "Visualizing and understanding recurrent networks"); for a forecaster the columns are the rows of
its last input window; for a classifier or a memory task the steps of test sequence K. The trained model
says what its input is (``model_input``). It is ``rnnlab.nn.inspect`` on the
task's own network: one PNG per layer and direction, rows = units, columns = steps, a panel per quantity
(LSTM: i, f, g, o, c, h; GRU: r, z, n, h; RNN: h), and the numbers in ``internals.npz`` as (T, H) arrays
named ``l{layer}_d{direction}_{name}``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch

from .. import nn as rnn
from ..nn import registry

IN_UNIT_RANGE = ("i", "f", "o", "r", "z", "f'", "i'", "a", "beta", "decay", "forget_gate")  # sigmoid gates: 0..1; the rest: their own range


def record(trained, inputs) -> dict:
    """{(layer, direction): {name: (T, H) array}} of the network's recurrent layer on ``inputs``, the names in
    the order its architecture's registry entry gives (``recorded``: the gates, the states, then h)."""
    return run_recorded(trained, inputs)[1]


def run_recorded(trained, inputs, state=None, final: bool = False) -> tuple:
    """(the network's outputs on ``inputs``, ``record``'s internals) from one forward pass, starting from
    ``state`` (the network's state after earlier input); with ``final``, the state it ends in as well."""
    network = trained.network
    residual = network.config.block != "stack"  # one single-layer module per block
    modules = list(network.rnn.layers) if residual else [network.rnn]
    names = registry.of_layer(modules[0]).recorded
    with torch.no_grad(), contextlib.ExitStack() as stack:
        traces = [stack.enter_context(rnn.inspect(module)) for module in modules]
        outputs, ended = network(inputs.to(trained.device), state)
    internals = {}
    for block, trace in enumerate(traces):  # a block's layer 0 is the network's layer `block`
        for layer, direction in trace.keys():
            internals[layer + block, direction] = {name: trace[layer, direction][name][0].cpu().numpy()
                                                   for name in names}
    return (outputs, internals, ended) if final else (outputs, internals)


def unit_order(values: dict) -> np.ndarray:
    """The units from the most to the least varying ``h`` over the steps (the last quantity where there is
    no h): every panel shows the units in this one order, so that a row is the same unit throughout."""
    lead = values["h"] if "h" in values else values[list(values)[-1]]  # (T, H)
    return np.argsort(-lead.var(axis=0), kind="stable")


def color_limits(name: str, data: np.ndarray) -> tuple[float, float]:
    """Sigmoid gates 0..1; every other quantity symmetric about 0 at its own largest magnitude (tanh-like ones
    within -1..1, an LSTM's cell state c as far as it goes)."""
    if name in IN_UNIT_RANGE:
        return 0.0, 1.0
    reach = float(np.abs(data).max()) if data.size else 1.0
    return -(reach or 1.0), reach or 1.0


def heatmap_figure(values: dict, labels: list[str], title: str):
    """One figure: a panel per quantity, rows = units (by ``unit_order``), columns = steps."""
    from ..plots import figure
    names = list(values)
    steps = values[names[0]].shape[0]
    order = unit_order(values)
    fig = figure(figsize=(max(8, min(3 + 0.22 * steps, 40)), 1.6 + 1.6 * len(names)))
    axes = fig.subplots(len(names), 1, squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        width = values[name].shape[1]  # h's units, or another count (Mamba's channels, a matrix memory's heads)
        data = (values[name][:, order] if width == len(order) else values[name]).T  # (width, T): a row per unit
        low, high = color_limits(name, data)
        image = ax.imshow(data, aspect="auto", cmap="viridis" if name in IN_UNIT_RANGE else "RdBu_r",
                          vmin=low, vmax=high, interpolation="nearest")
        ax.set_ylabel(f"{name}\n({width} {'units' if width == len(order) else 'rows'})")
        ax.set_yticks([])
        ax.set_xticks(range(steps) if steps <= 120 else [])
        ax.set_xticklabels([repr(label)[1:-1] if len(label) == 1 else label for label in labels]
                           if steps <= 120 else [], fontsize=7, rotation=0 if steps <= 60 else 90)
        fig.colorbar(image, ax=ax, pad=0.01)
    fig.suptitle(f"{title}\n(units from the most to the least varying h, top to bottom)", wrap=True, fontsize=10)
    fig.tight_layout()
    return fig


def heatmaps(internals: dict, labels: list[str], title: str, out: Path) -> list[Path]:
    """One PNG per (layer, direction); returns their paths."""
    paths = []
    for (layer, direction), values in internals.items():
        side = "forward" if direction == 0 else "backward"
        fig = heatmap_figure(values, labels, f"layer {layer}, {side}: {title}")
        path = out / f"layer{layer}_{side}.png"
        fig.savefig(path, dpi=90)
        paths.append(path)
    return paths


def inspect_model(model_dir: str | Path, out: str | Path, text: str | None = None, csv: str | None = None,
                  index: int | None = None) -> list[Path]:
    """Load the model in ``model_dir``, record its gates on the given input, write the heatmaps and
    ``internals.npz`` into ``out``; returns the files written."""
    from ..tasks import load
    from ..training import prepare_out_dir
    trained = load(model_dir)
    given = trained.model_input(text=text, csv=csv, index=index)
    internals = record(trained, given.inputs)
    out = prepare_out_dir(out)
    paths = heatmaps(internals, given.labels, given.title, out)
    arrays = {f"l{layer}_d{direction}_{name}": values
              for (layer, direction), named in internals.items() for name, values in named.items()}
    np.savez(out / "internals.npz", labels=np.array(given.labels), **arrays)
    return paths + [out / "internals.npz"]
