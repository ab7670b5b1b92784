"""What the three tasks share: settings resolved in one way, and one way to load a trained model.

Every task's ``train(**settings)`` takes keywords only. A setting left as None takes the task's default
(its ``DEFAULTS`` and ``TRAIN_DEFAULTS``, stated once, in the task's module). With ``resume=True`` the
saved run's settings come back instead: the task's own settings (network, window, ...) must not change,
so a given value that differs from the saved one is a UserError; the training loop's settings (steps,
minutes, lr, ...) may, and a given value replaces the saved one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch

from ..errors import UserError, check_settings, require
from ..nn import registry
from ..nn.variants import Variants
from ..training import TrainConfig, checkpoint
from ..training.loop import APART
from ..training.device import memory_guard
from .network import BLOCKS, ModelConfig, SequenceModel

FIXED_TRAIN = ("ema",)  # training settings a resumed run keeps: its checkpoint's tensors depend on them
NOT_RESTORED = ("quiet",)  # training settings a resumed run does not take from the checkpoint
MODEL_SIZES = ("hidden", "layers")  # every task's network sizes (whole numbers > 0)
# The network settings every task takes among its ``**train_options`` (with their defaults): the layers'
# variants and how the layers are put together (network.BLOCKS).
NETWORK_EXTRAS = {**Variants().to_dict(), "block": "stack", "chrono": None}  # chrono None: default_chrono's
"""The recurrent layers' variants every task's network takes (``rnnlab.nn.Variants``), all off by default."""


def given(values: dict) -> dict:
    """The settings the caller set (not None)."""
    return {name: value for name, value in values.items() if value is not None}


EVAL_STEPS = 56_000  # sequence-steps per forward pass when evaluating (2,000 MNIST rows of 28): long sequences
# go in fewer at a time, so that a wide layer's activations stay bounded -- a 2 x 128 Mamba on 2,000 sequences
# of 784 pixels made 3.2 GB tensors and was killed for memory


def per_pass(steps: int, most: int) -> int:
    """How many sequences of ``steps`` steps one evaluation pass takes: at most ``most``, and EVAL_STEPS steps."""
    return max(1, min(most, EVAL_STEPS // max(1, steps)))


def resolve(task: str, out: str | Path, resume: bool, options: dict, defaults: dict, train_options: dict,
            train_defaults: dict) -> tuple[dict, TrainConfig, dict | None]:
    """(the task's settings, the training loop's settings, the saved state or None) for a new or resumed run.
    The variants' keywords (``rnnlab.nn.Variants``) come among ``train_options``, as each task's
    ``train(**train_options)`` takes them: they join the task's settings."""
    options = given({**options, **{k: v for k, v in train_options.items() if k in NETWORK_EXTRAS}})
    train_options = given({k: v for k, v in train_options.items() if k not in NETWORK_EXTRAS})
    unknown = set(train_options) - set(TrainConfig.__dataclass_fields__)
    if unknown:
        raise UserError(f"unknown setting {sorted(unknown)[0]!r}; the training settings are: "
                        f"{', '.join(TrainConfig.__dataclass_fields__)}")
    if not resume:
        settings = _fit_recipe({**defaults, **options}, options)
        return settings, TrainConfig.from_dict({**train_defaults, **train_options}), None
    saved = checkpoint.load(out, task).state
    saved_options = saved.get("options", {})
    saved_train = {k: v for k, v in saved.get("train", {}).items() if k not in NOT_RESTORED}
    for name, value in {**options, **{k: train_options[k] for k in FIXED_TRAIN if k in train_options}}.items():
        before = saved_options.get(name, saved_train.get(name))
        if _differs(value, before):
            raise UserError(f"{name} {value!r} contradicts the checkpoint in {out}, trained with {name} {before!r}: "
                            "leave it out to resume, or train into another out folder", name)
    return ({**defaults, **saved_options}, TrainConfig.from_dict({**saved_train, **train_options}), saved)


def _fit_recipe(settings: dict, given: dict) -> dict:
    """A task's default recipe may turn on a variant of its default architecture (charlm's DropConnect on the
    LSTM); for an architecture without it, that default is off -- what the user asked for stays asked."""
    arch = registry.get(settings["arch"]) if settings.get("arch") in registry.names() else None
    if arch is None:
        return settings  # check_network names the unknown arch
    lacking = set(arch.unsupported(variants=Variants.from_settings(settings))) - set(given)
    return {**settings, **{name: NETWORK_EXTRAS[name] for name in lacking}}


def _differs(value, saved) -> bool:
    if isinstance(value, (list, tuple)) and isinstance(saved, (list, tuple)):
        return list(value) != list(saved)
    if isinstance(value, (int, float)) and isinstance(saved, (int, float)) and not isinstance(value, bool):
        return float(value) != float(saved)
    return value != saved


def check_network(options: dict) -> None:
    """The checks every task's network settings get: arch, sizes, dropout rates, what the arch supports."""
    arch = options["arch"]
    require(arch in registry.names(), "arch", f"be one of {', '.join(registry.names())}", arch)
    fractions = [f.name for f in fields(Variants) if f.metadata["kind"] == "fraction"]
    check_settings(options, positive=MODEL_SIZES + ("embed",), fractions=["dropout", *fractions])
    for f in fields(Variants):
        if f.metadata["kind"] == "switch":
            require(isinstance(options[f.name], bool), f.name, "be True or False", options[f.name])
    missing = registry.get(arch).unsupported(bool(options.get("bidirectional")), variants=Variants.from_settings(options))
    if missing:
        raise UserError(f"arch {arch} has no {' or '.join(missing)}", "arch")
    block = options.get("block", "stack")
    require(block in BLOCKS, "block", f"be one of {', '.join(BLOCKS)}", block)
    if block != "stack" and options.get("bidirectional"):
        raise UserError(f"block {block} is one-directional: leave out bidirectional, or use block stack", "block")
    if block in ("gated", "griffin") and not registry.get(arch).state_is_output:
        raise UserError(f"arch {arch} is a block of its own: use block stack or residual", "block")
    chrono = options.get("chrono")
    if chrono is not None:
        require(isinstance(chrono, int) and not isinstance(chrono, bool) and (chrono == 0 or chrono >= 2), "chrono",
                "be 0 (off) or a memory of >= 2 steps", chrono)
        if chrono and not has_chrono(arch):
            raise UserError(f"arch {arch} has no chrono initialisation (it applies to "
                            f"{', '.join(n for n in registry.names() if has_chrono(n))}): leave out chrono", "chrono")


def has_chrono(arch: str) -> bool:
    """Whether the architecture's gates take the chrono initialisation (LSTM, GRU, minGRU, minLSTM)."""
    return registry.get(arch).chrono


LONG = 100  # steps: a network reading whole sequences longer than this for one answer gets chrono by default


def default_chrono(arch: str, length: int, readout: str) -> int:
    """chrono when left as None: the sequence length where a layer must carry a whole sequence of more than
    ``LONG`` steps to one answer (readout "last": pixel-by-pixel images, the adding problem, long recordings),
    for the architectures that take it (LSTM, GRU, minGRU, minLSTM); 0 elsewhere -- language models, copy
    tasks and short windows keep torch.nn's init, under which their figures were measured."""
    return length if readout == "last" and length > LONG and has_chrono(arch) else 0


def network_config(options: dict, length: int = 0, **shape) -> ModelConfig:
    """The task's network: its settings (arch, hidden, layers, dropout, block, chrono and the variants) and its
    ``shape`` (input_size, output_size, readout, ...). ``length``, the steps the task trains on, is the memory
    the chrono initialisation prepares for when chrono is left as None (for the architectures that take it)."""
    chrono = options.get("chrono")
    if chrono is None:
        chrono = default_chrono(options["arch"], length, shape.get("readout", "last"))
    return ModelConfig(arch=options["arch"], hidden=options["hidden"], layers=options["layers"],
                       dropout=options["dropout"], variants=Variants.from_settings(options),
                       block=options.get("block", "stack"), chrono=chrono, **shape)


def network_guard(options: dict):
    """Building a network too large for memory is one line that names its size."""
    size = ", ".join(f"{name} {options[name]}" for name in ("hidden", "layers", "embed") if options.get(name))
    return memory_guard(f"the network ({size})", "lower its size")


@dataclass
class ModelInput:
    """One input of a trained network, as its task reads its data (what ``rnnlab inspect`` looks at)."""

    inputs: torch.Tensor  # (1, T) token ids or (1, T, F) features
    labels: list[str]  # one per step, for the pictures' columns
    title: str  # what the input is, in a few words


@dataclass
class Trained:
    """A trained model with everything it takes to use it, as ``load`` returns it (on the CPU, in eval mode).

    ``network`` is the ``SequenceModel``; ``options`` the task's settings; ``summary`` the metrics the checkpoint
    holds, ``metrics`` what training reported (the summary and, read from metrics.json the first time they are
    asked for, the parts only that file keeps: a panel's scores per series); ``state`` the whole saved JSON
    (vocabulary, scalers, ...); ``model_dir`` where it was loaded from.
    """

    task: str
    network: SequenceModel
    options: dict
    summary: dict
    state: dict = field(repr=False)
    model_dir: Path
    _metrics: dict | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def metrics(self) -> dict:
        if self._metrics is None:
            self._metrics = dict(self.summary)
            report = self.model_dir / "metrics.json"
            if report.exists() and any(name not in self.summary for name in APART):
                try:
                    written = json.loads(report.read_text())
                except (OSError, ValueError):
                    written = {}  # a damaged report: the summary is what there is
                if isinstance(written, dict) and written.get("steps") == self.summary.get("steps"):
                    self._metrics.update({name: written[name] for name in APART if name in written})
        return self._metrics

    @classmethod
    def read(cls, model_dir: str | Path, task: str):
        saved = checkpoint.load(model_dir, task)
        try:
            config = ModelConfig.from_dict(saved.state["model"])
        except (KeyError, TypeError):
            raise UserError(f"checkpoint in {model_dir} has no usable model configuration") from None
        network = SequenceModel(config)
        checkpoint.load_weights(network, saved.weights, model_dir)
        return cls(task, network.eval(), saved.state.get("options", {}), saved.state.get("metrics", {}),
                   saved.state, Path(model_dir))

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    def model_input(self, text: str | None = None, csv: str | None = None, index: int | None = None) -> ModelInput:
        """One input of the network from the task's own kind of data: a character model reads ``text``, a
        forecaster the last window of ``csv``, a classifier or a memory model test sequence ``index``. Each
        task's trained model says which (a UserError names what to give instead)."""
        raise UserError(f"a {self.task} model has no input to show")

    def view(self, port: int = 0, **options):
        """This model's live page (``rnnlab view``), served in the background on 127.0.0.1 (``port`` 0: any free
        one): a ``Running`` server -- its ``url``, ``stop()``, and in a notebook the page itself. ``options``:
        ``rnnlab.view.serve``'s (text, csv, data, host)."""
        from ..view import serve
        return serve(self.model_dir, port=port, block=False, **options)

    def example_input(self, batch: int = 2, steps: int = 5) -> torch.Tensor:
        """Random input of the shape and dtype the network reads (for exporters): token ids (N, L) or
        features (N, L, F)."""
        config = self.network.config
        if config.vocab_size:
            return torch.randint(0, config.vocab_size, (batch, steps), dtype=torch.int64)
        return torch.randn(batch, steps, config.input_size)
