"""What every rnnlab recurrent module shares, sequence layers and cells alike: the choice of engine
(``impl``), the inspection recorders, and torch.nn's parameter initialisation."""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor, nn

from .masks import ones_with_probability

IMPLS = ("auto", "ours", "native", "reference")


class RecurrentModule(nn.Module):
    """Base of ``RNNBase`` and ``RNNCellBase``.

    ``impl``: ``"ours"`` runs rnnlab's engine -- its C++ fast path (``csrc/engine.cpp``) where that is built,
    else the readable Python one; ``"reference"`` always runs the readable engine (``cells.py`` +
    ``engine.py``, the documented equations); ``"native"`` calls torch's fused kernel with the same
    parameters; ``"auto"`` runs the native kernel unless our engine is needed (inside
    ``rnnlab.nn.inspect``, which adds a recorder to ``_recorders`` and runs the readable engine) or our fast
    path measured faster (``prefers_ours``).
    """

    hidden_size: int

    def __init__(self, impl: str = "auto") -> None:
        super().__init__()
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        self.impl = impl
        self._recorders: list = []  # filled by rnnlab.nn.inspect

    # ---- the variants layers and cells share: layer norm and zoneout ---------------------------------------

    @staticmethod
    def _check_variants(impl: str, layer_norm, probabilities: dict, unsupported: dict) -> None:
        """torch.nn-style checks of the variants' arguments; ``unsupported``: name -> value of the settings torch's
        kernel lacks, refused with impl="native" when on."""
        for name, p in probabilities.items():
            if not isinstance(p, numbers.Number) or isinstance(p, bool) or not 0 <= p < 1:
                raise ValueError(f"{name} should be a probability in [0, 1), got {p!r}")
        if not isinstance(layer_norm, bool):
            raise TypeError(f"layer_norm should be of type bool, got: {type(layer_norm).__name__}")
        if impl == "native" and any(unsupported.values()):
            names = list(unsupported)
            raise ValueError(f"impl='native' runs torch's kernel, which has no {', '.join(names[:-1])} or "
                             f"{names[-1]}; use impl='auto' or 'ours'")

    def _add_layer_norm(self, suffix: str, gate_size: int, hidden_size: int, lstm: bool, factory: dict) -> None:
        """Gains (init 1) and shifts (init 0) of LN_ih, LN_hh (G*H) and the LSTM's LN_c (H): ``ln_gain_ih{suffix}``..."""
        sizes = {"ih": gate_size, "hh": gate_size, **({"c": hidden_size} if lstm else {})}
        for part, size in sizes.items():
            for kind in ("gain", "shift"):
                setattr(self, f"ln_{kind}_{part}{suffix}", nn.Parameter(torch.empty(size, **factory)))

    def _norms(self, suffix: str) -> dict:
        """The layer norm fields of ``VariantTensors`` (gain, shift of ih, hh, c): name -> parameter; {} when off."""
        if not self.layer_norm:
            return {}
        return {f"ln_{part}_{kind}": getattr(self, f"ln_{kind}_{part}{suffix}", None)
                for part in ("ih", "hh", "c") for kind in ("gain", "shift")}

    def _zoneout(self, rows: int, sizes: tuple, like: Tensor) -> tuple:
        """(zone_h, zone_c): in training (rows, size) masks, 1 with probability p, h's drawn before c's; in
        evaluation the constant p as a (1, 1) tensor; None where off (zone_c: None unless two sizes)."""
        if not self.zoneout:
            return None, None
        if self.training:
            masks = [ones_with_probability(self.zoneout, (rows, size), like) for size in sizes]
        else:
            masks = [like.new_full((1, 1), self.zoneout)] * len(sizes)
        return masks[0], masks[1] if len(masks) > 1 else None

    # ---- the same module in torch.nn -------------------------------------------------------------------------

    def to_torch(self) -> nn.Module:
        """The equivalent ``torch.nn`` module: the same class, arguments and weights (copied), in the same mode,
        e.g. to export the model with torch's own exporters. A variant ``torch.nn`` cannot express
        (``layer_norm``, ``recurrent_dropout``, ``zoneout``) is a ValueError; ``weight_drop`` acts only in
        training and ``checkpoint_steps`` only on memory, so with those the module is the one that evaluates."""
        inexpressible = [name for name in ("layer_norm", "recurrent_dropout", "zoneout") if getattr(self, name, 0)]
        kind = type(self).__name__
        if inexpressible:
            raise ValueError(f"{kind} with {' and '.join(inexpressible)}: torch.nn.{kind} has no such option, so "
                             "to_torch() cannot express it (run it with rnnlab, or train without it)")
        weight = next(self.parameters())
        arguments = self._torch_arguments()  # the twin's constructor arguments: RNNBase and RNNCellBase say
        if self.mode.startswith("RNN"):
            arguments["nonlinearity"] = "tanh" if self.mode == "RNN_TANH" else "relu"
        module = getattr(nn, kind)(**arguments, device=weight.device, dtype=weight.dtype)
        module.load_state_dict({name: p.detach().clone() for name, p in self.named_parameters()})
        return module.train(self.training)

    def uses_native(self, x: Tensor | None = None) -> bool:
        """Whether a forward on ``x`` runs torch's fused kernel rather than our engine."""
        if self.impl == "native":
            return True
        return self.impl == "auto" and not self._recorders and not (x is not None and self.prefers_ours(x))

    def prefers_ours(self, x: Tensor) -> bool:
        """With ``impl="auto"``: whether our fast path measured faster than torch's kernel for this input
        (layers override it; a cell runs torch's kernel)."""
        return False

    def uses_fast_path(self) -> bool:
        """Whether our engine, when it runs, may take its C++ fast path (not under inspection)."""
        return self.impl in ("ours", "auto") and not self._recorders

    def reset_parameters(self) -> None:
        """Every weight and bias ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), drawn in torch.nn's order;
        layer norm gains 1 and shifts 0 (they draw nothing, so the other weights match torch.nn's)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for name, weight in self.named_parameters():
            if name.startswith("ln_gain"):
                nn.init.ones_(weight)
            elif name.startswith("ln_shift"):
                nn.init.zeros_(weight)
            else:
                nn.init.uniform_(weight, -bound, bound)
