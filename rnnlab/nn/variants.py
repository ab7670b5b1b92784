"""The variants torch.nn lacks, as values: the settings a layer is built with (``Variants``), and the tensors
one layer and direction of one call runs with (``VariantTensors``).

``Variants`` is declared once, here: the layers take its fields as keywords, the tasks' network carries one
in its config, and the command line makes a flag of each field from its metadata (help text, kind).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from torch import Tensor


def _setting(default, kind: str, flag_help: str):
    """A variant's field: its default (off), its kind ("fraction" in [0, 1) or "switch") and its help text."""
    return field(default=default, metadata={"kind": kind, "help": flag_help})


@dataclass(frozen=True)
class Variants:
    """Each variant is off by default; with all off a layer is exactly its ``torch.nn`` namesake."""

    weight_drop: float = _setting(0.0, "fraction", "DropConnect on the hidden-to-hidden weights while training "
                                                   "(Wan et al. 2013; AWD-LSTM), e.g. 0.25")
    layer_norm: bool = _setting(False, "switch", "layer-normalised recurrent layers (Ba et al. 2016)")
    recurrent_dropout: float = _setting(0.0, "fraction", "one dropout mask per sequence on the state entering "
                                                         "W_hh (Gal & Ghahramani 2016)")
    zoneout: float = _setting(0.0, "fraction", "units keep their previous value with this probability while "
                                               "training (Krueger et al. 2016)")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_settings(cls, settings: dict) -> "Variants":
        """The variants among ``settings`` (other keys are passed over; missing ones are off)."""
        return cls(**{name: settings[name] for name in cls.names() if name in settings})

    def to_dict(self) -> dict:
        """name -> value, in declaration order: the layers' keywords."""
        return asdict(self)

    def on(self) -> tuple[str, ...]:
        """The names of the variants that are on."""
        return tuple(name for name, value in self.to_dict().items() if value)


@dataclass(frozen=True)
class VariantTensors:
    """What the time loop (``engine.RecurrentLayer``, and its C++ twin) needs of the variants for one layer and
    direction of one call; each None when off. The engine takes them in this order (``as_tuple``).

    layer norm (``layer_norm``): gains and shifts of LN_ih, LN_hh (G*H,) and the LSTM's LN_c (H,),
        pre = LN_ih(W_ih x) + b_ih + LN_hh(W_hh h) + b_hh,  LSTM h = o * tanh(LN_c(c))
    rd_mask (``recurrent_dropout``)  (B, P): h_{t-1} * rd_mask enters W_hh (the same mask at every step)
    zone_h (``zoneout``)  (N, P) | (1, 1): h_t = d h_{t-1} + (1 - d) h~_t, d = zone_h's row (0/1 in training,
        the constant p in evaluation); zone_c (N, H) | (1, 1): the same for the LSTM cell state
    """

    ln_ih_gain: Tensor | None = None
    ln_ih_shift: Tensor | None = None
    ln_hh_gain: Tensor | None = None
    ln_hh_shift: Tensor | None = None
    ln_c_gain: Tensor | None = None
    ln_c_shift: Tensor | None = None
    rd_mask: Tensor | None = None
    zone_h: Tensor | None = None
    zone_c: Tensor | None = None

    def as_tuple(self) -> tuple:
        """The nine tensors in the engine's order (written out: this runs once per layer and direction per call)."""
        return (self.ln_ih_gain, self.ln_ih_shift, self.ln_hh_gain, self.ln_hh_shift, self.ln_c_gain, self.ln_c_shift,
                self.rd_mask, self.zone_h, self.zone_c)


NO_TENSORS = VariantTensors()  # every variant off
