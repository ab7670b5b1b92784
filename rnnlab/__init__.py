"""rnnlab: recurrent neural networks from first principles, on PyTorch.

    nn/        the layers: cells, the time loop and its C++ twin, the modules, variants, references, registry
    data/      text, CSV series, IDX/npz sequences: parsing and validation, with the errors users see
    training/  the one training loop, its config, checkpoints, distributed, run logs, progress, device
    tasks/     charlm, forecast/, classify, memory: each its data handling, metrics and plots; ``tasks.load``
    learn/     the learner's tools: shapes, inspect's heatmaps, gradients, NumPy from scratch, the tour
    cli/       the rnnlab command: one builder per command beside its handler
"""

from importlib import import_module

__version__ = "0.1.0"

# modules of learn/ that were at the top of the package, and stay reachable as rnnlab.<name>
_LEARN = ("scratch", "gradients", "shapes")


def explain_shapes(*args, **kwargs):
    """Every parameter and tensor shape of a torch.nn RNN/LSTM/GRU configuration, checked on torch.nn: see
    ``rnnlab.learn.shapes.explain_shapes``."""
    from .learn.shapes import explain_shapes as explain
    return explain(*args, **kwargs)


def __getattr__(name: str):
    """``from rnnlab import scratch`` (and gradients, shapes): the module in ``rnnlab.learn``."""
    if name in _LEARN:
        return import_module(f"{__name__}.learn.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
