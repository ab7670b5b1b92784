"""``rnnlab export``: a trained task model as ONNX or TorchScript, for places where rnnlab is not installed.

The task's network (``models.SequenceModel``) is rebuilt around ``torch.nn``'s own recurrent layer
(``to_torch()``: the same weights), or for the architectures without a twin (minGRU, minLSTM, RG-LRU, Mamba)
around their traceable forms (``rnnlab.nn.traceable``: the same weights, the time loop a TorchScript
function), and handed to torch's exporters; nothing of the exporters is ours. The exported model reads what
the network reads and returns what its head returns:

    charlm     tokens (N, L) int64          -> logits (N, L, vocabulary)  (the next character's scores)
    forecast   features (N, L, F) float32   -> (N, horizon)               (scaled changes; see the JSON)
    classify   features (N, L, F) float32   -> (N, classes)               (class scores)
    regress    features (N, L, F) float32   -> (N, k)                     (standardised values; see the JSON)

with N and L free (dynamic axes); a classifier reads each sequence's last column, so give sequences of
different lengths one by one or in batches of one length, not padded. Beside it, ``<file>.json`` holds what
turns raw data into those inputs and the outputs back into answers -- the vocabulary, the scalers, the
normalisation -- with the task's settings.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from .training.checkpoint import write_json_atomic
from .errors import UserError
from .nn.traceable import PlainRMSNorm, TraceableMamba, traceable

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
SIDECAR_SKIPS = ("run", "train")  # the training record: not needed to use the model


class Exportable(nn.Module):
    """A trained ``SequenceModel`` with ``torch.nn``'s recurrent layer in place of ours, returning only the
    head's outputs (the exporters want one tensor in, one out)."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = copy.deepcopy(network).eval()
        try:
            if network.config.block == "stack":
                self.network.rnn = traceable(self.network.rnn)
            else:  # one single-layer recurrent module per block
                self.network.rnn.layers = nn.ModuleList(traceable(layer) for layer in self.network.rnn.layers)
        except ValueError as err:
            raise UserError(f"cannot export: {err}") from None
        plain_norms(self.network)

    def forward(self, inputs: Tensor) -> Tensor:
        return self.network(inputs)[0]


def plain_norms(module: nn.Module) -> None:
    """Every ``nn.RMSNorm`` under ``module`` (the gated blocks') as a ``PlainRMSNorm``: torch's exporter has no
    rms_norm. A traceable Mamba computes its own norms so."""
    for name, child in module.named_children():
        if isinstance(child, nn.RMSNorm):
            setattr(module, name, PlainRMSNorm(child))
        elif not isinstance(child, TraceableMamba):
            plain_norms(child)


def export(model_dir: str | Path, fmt: str, out: str | Path | None = None) -> tuple[Path, Path]:
    """Write the trained model in ``model_dir`` as ``fmt`` ("onnx" or "torchscript") to ``out`` (default:
    ``model_dir/model.onnx`` or ``model.pt``) and its data settings to ``out`` + ".json"; returns both paths."""
    from .tasks import load
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    if fmt == "onnx":
        try:
            import onnx  # noqa: F401 -- torch's exporter writes through it
        except ImportError:
            raise UserError('ONNX export needs the onnx package: pip install "rnnlab[onnx]"') from None
    trained = load(model_dir)
    model = Exportable(trained.network)
    path = Path(out) if out else Path(model_dir) / ("model" + FORMATS[fmt])
    path.parent.mkdir(parents=True, exist_ok=True)
    example = trained.example_input()
    tmp = path.with_name(path.name + ".tmp")
    with warnings.catch_warnings(), torch.no_grad():  # the exporters' notes about themselves (deprecations, tracing)
        warnings.simplefilter("ignore")
        if fmt == "onnx":
            axes = {0: "batch", 1: "steps"}
            torch.onnx.export(model, (example,), str(tmp), input_names=["inputs"], output_names=["outputs"],
                              dynamic_axes={"inputs": axes, "outputs": axes if trained.network.config.readout
                                            == "steps" else {0: "batch"}}, dynamo=False)
        else:
            torch.jit.trace(model, (example,)).save(str(tmp))
    tmp.replace(path)  # a kill mid-export leaves no half-written model under the final name
    sidecar = path.with_name(path.name + ".json")
    write_json_atomic(sidecar, describe(trained, fmt, example))
    return path, sidecar


def describe(trained, fmt: str, example: Tensor) -> dict:
    """The JSON beside an exported model: its input and output, then the task's saved settings (vocabulary,
    scalers, normalisation, model configuration, metrics)."""
    config = trained.network.config
    inputs = {"name": "inputs", "dtype": str(example.dtype).replace("torch.", ""),
              "shape": ["batch", "steps"] + ([] if config.vocab_size else [config.input_size])}
    outputs = {"name": "outputs", "shape": ["batch"] + (["steps"] if config.readout == "steps" else [])
               + [config.output_size]}
    if config.readout != "steps":  # one answer per sequence, from its last step or its max: padding would be read
        inputs["lengths"] = (f"each sequence is read out from its {'max over steps' if config.readout == 'max' else 'last step'}: "
                             "give sequences of different lengths one by one, or in batches of one length, never padded")
    saved = {key: value for key, value in trained.state.items() if key not in SIDECAR_SKIPS}
    return {"format": fmt, "task": trained.task, "inputs": inputs, "outputs": outputs, **saved}
