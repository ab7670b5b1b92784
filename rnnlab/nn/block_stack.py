"""What Mamba (``mamba.py``) and the matrix memories (``matrix_memory.py``) share: a stack of pre-norm residual
blocks around a mixer, as a recurrent layer with torch.nn's arguments::

    x_0     = W x + b                          (input_proj, only when input_size != hidden_size)
    x_{k+1} = x_k + Mixer_k(Norm_k(x_k))       (layers.{k}.norm, layers.{k}.mixer)
    output  = Norm_f(x_K)                      (norm_f)

``BlockStack`` holds the arguments and their checks, the directions (``bidirectional`` runs a second stack,
``layers_reverse`` and ``norm_f_reverse``, over each sequence reversed within its length), the input forms of
the layer contract (docs/extending.md), the state pair (convolution windows, the mixers' states; stacked over
layers and directions), dropout between blocks and what ``inspect`` records. A subclass makes one block
(``block``: a ``Block`` of its norm and mixer) and the final norm (``norm``); every mixer is called as
``mixer(x (N, L, H), window, state, lengths, impl, record) -> (out, window, state, what inspect shows)``; the
mixers' short causal convolution over a carried window (``causal_conv``) and a packed batch's real steps
(``real_steps``) are here too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from .scan_layers import batch_major, laid_out, publish, reverse_each


def check_counts(**values) -> None:
    """A ValueError naming the first of ``values`` that is not a whole number > 0."""
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a whole number > 0, got {value!r}")


def causal_conv(x: Tensor, window: Tensor | None, weight: Tensor, bias: Tensor | None, lengths: Tensor | None):
    """A depthwise causal convolution of x (N, L, C) after the previous ``window`` (N, C, W-1) (zeros when
    None), weight (C, 1, W): (y (N, L, C), the new window: each sequence's last W-1 inputs)."""
    N, L, C = x.shape
    W = weight.shape[-1]
    before = window.to(x.dtype) if window is not None else x.new_zeros(N, C, W - 1)  # (N, C, W-1)
    inputs = torch.cat((before, x.transpose(1, 2)), dim=-1)  # (N, C, W-1+L)   input step t at W-1+t
    y = F.conv1d(inputs, weight, bias, groups=C).transpose(1, 2)  # (N, L, C)
    if lengths is None:
        return y, inputs[:, :, L:]
    index = lengths.to(x.device)[:, None] + torch.arange(W - 1, device=x.device)  # (N, W-1)
    return y, inputs.gather(2, index[:, None, :].expand(N, C, W - 1))


def real_steps(lengths: Tensor | None, L: int, device) -> Tensor | None:
    """(N, L) True at each sequence's own steps (None without lengths)."""
    return None if lengths is None else torch.arange(L, device=device) < lengths.to(device)[:, None]


class Block(nn.Module):
    """``layers.{k}``: a pre-norm residual block, x + mixer(norm(x))."""

    def __init__(self, norm: nn.Module, mixer: nn.Module) -> None:
        super().__init__()
        self.norm, self.mixer = norm, mixer


class BlockStack(nn.Module):
    """The stack (module docstring). A subclass gives ``block(factory) -> Block`` (one block, built in
    ``__init__`` once per layer and direction), ``norm(factory)`` (the final norm), ``state_shapes(batch)`` (the
    state pair's shapes), and may run a call another way (``shortcut``)."""

    has_cell_state = True  # the state is a pair: (convolution windows, the mixers' states)
    gates = 0
    inspected: tuple[str, ...] = ()
    state_names = ("windows", "states")
    defaults: tuple = ()  # (name, default) of the subclass's own settings, for extra_repr

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, bias: bool, batch_first: bool,
                 dropout: float, bidirectional: bool, factory: dict, impl: str) -> None:
        super().__init__()
        check_counts(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)
        if not 0 <= dropout <= 1:
            raise ValueError(f"dropout must be in [0, 1], got {dropout!r}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, float(dropout), bidirectional
        self.impl = impl
        self._recorders: list = []  # filled by rnnlab.nn.inspect
        self.input_proj = nn.Linear(input_size, hidden_size, **factory) if input_size != hidden_size else None
        for suffix in ("", "_reverse")[:self.num_directions]:
            setattr(self, "layers" + suffix, nn.ModuleList(self.block(factory) for _ in range(num_layers)))
            setattr(self, "norm_f" + suffix, self.norm(factory))

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def stacks(self):
        """(blocks, final norm) of each direction: forward, then reverse."""
        for suffix in ("", "_reverse")[:self.num_directions]:
            yield getattr(self, "layers" + suffix), getattr(self, "norm_f" + suffix)

    def reset_parameters(self) -> None:
        """Each part's own initialisation (the paper's); the norms' weights 1."""
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        for name, default in (("num_layers", 1), ("bias", False), ("batch_first", False), ("dropout", 0.0),
                              ("bidirectional", False), *self.defaults):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)!r}"
        return s

    def shortcut(self, stream: Tensor, hx, lengths, record: bool):
        """Another way to run this call on the stream (N, L, H) -- (output, state) -- or None (the blocks)."""
        return None

    def forward(self, input, hx: tuple[Tensor, Tensor] | None = None):
        """(output, (windows, states)), output laid out as torch.nn.GRU's."""
        x, lengths, unbatched = batch_major(self, input)  # (N, L, H_in)
        if hx is not None:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise RuntimeError(f"{type(self).__name__}'s state is a pair ({', '.join(self.state_names)})")
            hx = tuple(h.unsqueeze(1) for h in hx) if unbatched else tuple(hx)
            for given, wanted, name in zip(hx, self.state_shapes(x.shape[0]), self.state_names):
                if tuple(given.shape) != wanted:
                    raise RuntimeError(f"Expected {name} of shape {wanted}, got {list(given.shape)}")
        record = bool(self._recorders)
        stream = self.input_proj(x) if self.input_proj is not None else x  # (N, L, H)
        stream = stream.to(self.norm_f.weight.dtype)  # the residual stream in the weights' precision (autocast: fp32)
        done = self.shortcut(stream, hx, lengths, record)
        if done is not None:
            output, state = done
            state = tuple(s.squeeze(1) for s in state) if unbatched else state
            return laid_out(self, output, lengths, unbatched, packed=False), state
        layers = self.num_layers * self.num_directions
        outputs, windows, states, recorded = [], [None] * layers, [None] * layers, {}
        for direction, (blocks, norm_f) in enumerate(self.stacks()):
            h = reverse_each(stream, lengths) if direction else stream  # the reverse stack reads back to front
            for k, block in enumerate(blocks):
                at = k * self.num_directions + direction  # torch.nn's order of layers and directions
                out, windows[at], states[at], shown = block.mixer(
                    block.norm(h), hx[0][at] if hx else None, hx[1][at] if hx else None, lengths, self.impl, record)
                if self.dropout and self.training and k < self.num_layers - 1:
                    out = F.dropout(out, self.dropout)
                h = h + out  # (N, L, H)
                if k == self.num_layers - 1:
                    h = norm_f(h)  # the stack's output
                if record:  # what the layer passes on, in input order
                    shown["h"] = h.detach()
                    recorded[k, direction] = {name: reverse_each(v, lengths) if direction else v
                                              for name, v in shown.items()}
            outputs.append(reverse_each(h, lengths) if direction else h)
        output = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]  # (N, L, D*H)
        if recorded:
            publish(self, recorded, unbatched)
        state = (torch.stack(windows), torch.stack(states))
        if unbatched:
            state = tuple(s.squeeze(1) for s in state)
        return laid_out(self, output, lengths, unbatched, packed=isinstance(input, PackedSequence)), state
