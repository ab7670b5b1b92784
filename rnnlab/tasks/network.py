"""The network every task uses: an input layer, a stack of recurrent layers, a linear head.

    tokens (N, L) --Embedding--> (N, L, E) \
                                            >-- any registered architecture --> (N, L, D*H) --head--> per step or per sequence
    features (N, L, F) --------------------/

``readout="steps"`` gives an output at every step (language model); ``readout="last"`` one per sequence,
from the final states of the last layer (both directions when bidirectional). The recurrent layer is built
by ``rnnlab.nn.registry`` from ``arch``, with the config's ``Variants``.

``block="residual"`` stacks the layers as the modern recurrences' language models do (Griffin, De et al.
2024; the minGRU paper's, Feng et al. 2024): the input projected to H, then per layer a pre-normalised
residual block around a one-layer recurrent module and one around an MLP, and a final LayerNorm::

    x = x + RNN_k(LayerNorm(x)),   x = x + MLP_k(LayerNorm(x)),   MLP = Linear(H, 4H) -> GELU -> Linear(4H, H)

``block="gated"`` is Mamba's block (Gu & Dao 2023) around any registered recurrence: per layer, with RMSNorm and
E = 2H, ``u, z = in_proj(RMSNorm(x))`` (E each), ``u = SiLU(conv(u))`` (a causal depthwise convolution of width 4),
``x = x + out_proj(RNN_k(u) * SiLU(z))``. ``block="griffin"`` is Griffin's residual pair (De et al. 2024):
``u, g = in_proj(RMSNorm(x))`` (H each), ``x = x + out_proj(RNN_k(conv(u)) * GELU(g))``, then the gated MLP
``x = x + down(GELU(W_1 y) * W_2 y)`` with y = RMSNorm(x) and 3H wide. Both end in an RMSNorm; the state they
carry is the recurrent layers' and each convolution's last 3 inputs (``GatedBlocks``).

``block="stack"`` (the default) is the classic stack, the recurrent module's own ``num_layers``.

``front=S`` (S >= 2) puts a strided convolutional front end before the recurrent layers, so that they read a
long recording S steps at a time (``ConvFront``: stages of stride 4, the last one what is left, each a causal
convolution of width 2s and stride s then GELU, H channels): 1,460 steps become 92. ``readout="max"`` is one
answer per sequence from the largest value each feature of the last layer reaches over the sequence's real steps
(max over time, as in the convolutional classifiers of time series), where ``"last"`` reads its final state.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..nn import registry
from ..nn.variants import Variants


@dataclass
class ModelConfig:
    arch: str = "lstm"  # a name in rnnlab.nn.registry: rnn | lstm | gru
    input_size: int = 1  # features per step, or the embedding size when vocab_size is set
    hidden: int = 128
    layers: int = 1
    dropout: float = 0.0  # between recurrent layers and before the head
    variants: Variants = field(default_factory=Variants)  # layer norm, recurrent dropout, zoneout, DropConnect
    bidirectional: bool = False
    output_size: int = 1
    vocab_size: int = 0  # > 0: inputs are token ids, embedded first
    readout: str = "last"  # "steps" | "last" | "max"
    block: str = "stack"  # "stack": one recurrent module of `layers` layers | "residual" | "gated" | "griffin"
    chrono: int = 0  # > 0: the gate biases initialised for memories of up to this many steps (nn/init.py)
    front: int = 0  # >= 2: a strided convolutional front end reads this many steps as one (ConvFront); 0: none
    tie: bool = False  # the head's weights are the embedding's (tokens in, the same tokens out; TiedHead)

    def to_dict(self) -> dict:
        """Flat JSON, the variants' fields in the variants' place (the form checkpoints have always had)."""
        flat = {}
        for name, value in asdict(self).items():
            flat.update(value if name == "variants" else {name: value})
        return flat

    @classmethod
    def from_dict(cls, values: dict) -> "ModelConfig":
        """The config of ``to_dict``'s JSON; an unknown key is a TypeError, as the dataclass itself gives."""
        variant_names = set(Variants.names())
        known = {f.name for f in fields(cls)} - {"variants"}
        unknown = set(values) - known - variant_names
        if unknown:
            raise TypeError(f"unknown model settings {sorted(unknown)}")
        return cls(**{k: v for k, v in values.items() if k in known}, variants=Variants.from_settings(values))


BLOCKS = ("stack", "residual", "gated", "griffin")
READOUTS = ("steps", "last", "max")


def front_stages(stride: int) -> list[int]:
    """The strides of ``ConvFront``'s stages for an overall ``stride``: fours, then what is left (16 -> 4, 4;
    8 -> 4, 2; 12 -> 4, 3; 6 -> 6)."""
    stages = []
    while stride % 4 == 0 and stride > 4:
        stages.append(4)
        stride //= 4
    return stages + [stride]


def front_length(length: int, stride: int) -> int:
    """The steps ``ConvFront`` of ``stride`` makes of ``length``: ceil(length / stride), stage by stage."""
    for s in front_stages(stride) if stride >= 2 else []:
        length = -(-length // s)
    return length


class TiedEmbedding(nn.Embedding):
    """An embedding whose weights the head reads too (``TiedHead``), drawn N(0, 0.02) as GPT-2's and Zoology's
    tied embeddings are: the logits are the final states' dot products with these rows, which nn.Embedding's
    N(0, 1) rows would spread by sqrt(E) nats (8 at E = 64) before any training."""

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, std=0.02)


class TiedHead(nn.Module):
    """logits = x E^T + bias with E the embedding's weights (weight tying, Press & Wolf 2017): a token read back
    out is scored by the same vector it was written with, so a network that carries a value's embedding to where
    it is asked for names it for every token of the vocabulary at once (associative recall over 8,192 tokens,
    Zoology's models). Only the bias is this module's; the embedding stays its network's (one tensor in the
    checkpoint)."""

    def __init__(self, embedding: nn.Embedding) -> None:
        super().__init__()
        self.tied = [embedding]  # a list: not a submodule, so that the weights are held (and saved) once
        self.bias = nn.Parameter(torch.zeros(embedding.num_embeddings))

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:  # (..., E) -> (..., vocab)
        return F.linear(x, self.tied[0].weight, self.bias)


def rnn_input_size(config: ModelConfig) -> int:
    """The features per step the recurrent layers read: the front end's H channels, else the input's."""
    return config.hidden if config.front else config.input_size


def to_hidden(config: ModelConfig) -> nn.Module:
    """``project`` of the residual and gated blocks: what the layers read, brought to H (Linear), or as it is
    where it is H wide already."""
    width = rnn_input_size(config)
    return nn.Linear(width, config.hidden) if width != config.hidden else nn.Identity()


class ConvFront(nn.Module):
    """``front=S``: (N, L, F) -> (N, L', H), L' = ceil(L / S) stage by stage. Each stage of stride s zeroes
    the steps after each sequence's end, pads s zero steps before the start and s - 1 after the end, and
    convolves with width 2s and stride s: output t reads input steps (t - 1) s .. (t + 1) s - 1 -- its own block
    of s and the one before it, never a later one -- so a sequence's outputs are the same whatever padding
    follows it (a last, partial block reads zeros). Lengths become ceil(length / s)."""

    def __init__(self, input_size: int, channels: int, stride: int) -> None:
        super().__init__()
        stages = front_stages(stride)
        sizes = [input_size] + [channels] * len(stages)
        self.convs = nn.ModuleList(nn.Conv1d(a, channels, 2 * s, stride=s) for a, s in zip(sizes, stages))

    def forward(self, x: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor | None]:
        for conv in self.convs:
            s = conv.stride[0]
            if lengths is not None:  # what follows each sequence's end is never read as data
                real = torch.arange(x.shape[1], device=x.device) < lengths.to(x.device)[:, None]  # (N, L)
                x = x * real.unsqueeze(-1)
                lengths = torch.div(lengths + s - 1, s, rounding_mode="floor")
            inputs = F.pad(x.transpose(1, 2), (s, s - 1))  # (N, F, s + L + s - 1): constant pads, so a trace
            x = F.gelu(conv(inputs)).transpose(1, 2)  # (N, ceil(L / s), H)       keeps L free
        return x, lengths


class ResidualBlocks(nn.Module):
    """``block="residual"``: layers of (pre-norm residual recurrent layer, pre-norm residual MLP), one-directional,
    called as a recurrent module: x (N, L, F), state -> (N, L, H), state with the layers' states stacked
    ((layers, N, H), or the pair (h, c) of them for an LSTM), as a stacked module's are."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        hidden, arch = config.hidden, registry.get(config.arch)
        self.project = to_hidden(config)
        self.layers = nn.ModuleList(arch.build(hidden, hidden, batch_first=True, **layer_options(config))
                                    for _ in range(config.layers))
        self.mlps = nn.ModuleList(nn.Sequential(nn.Linear(hidden, 4 * hidden), nn.GELU(), nn.Linear(4 * hidden, hidden))
                                  for _ in range(config.layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(2 * config.layers + 1))
        self.drop = nn.Dropout(config.dropout)
        self.cell_state = arch.math.has_cell_state

    def forward(self, x: Tensor, state=None):
        x = self.project(x)  # (N, L, H)
        states = per_layer(state, len(self.layers), self.cell_state)
        finals = []
        for k, (layer, mlp) in enumerate(zip(self.layers, self.mlps)):
            steps, final = layer(self.norms[2 * k](x), states[k])  # (N, L, H)
            x = x + self.drop(steps)
            x = x + self.drop(mlp(self.norms[2 * k + 1](x)))
            finals.append(final)
        return self.norms[-1](x), stacked(finals, self.cell_state)


def per_layer(state, count: int, cell_state: bool) -> list:
    """A stacked state -- h (layers, N, H), or the pair (h, c) of them, or None -- as each one-layer module's:
    [(1, N, H)] or [((1, N, H), (1, N, H))] (None for every layer with None)."""
    if state is None:
        return [None] * count
    if cell_state:
        return [(h[None], c[None]) for h, c in zip(*state)]
    return [h[None] for h in state]


def stacked(finals: list, cell_state: bool):
    """``per_layer``'s inverse: the one-layer modules' final states as one stacked state."""
    if cell_state:
        return torch.cat([h for h, _ in finals]), torch.cat([c for _, c in finals])
    return torch.cat(finals)  # (layers, N, H)


class CausalConv(nn.Module):
    """A depthwise convolution over time that reads only the present and the past: x (N, L, C) and the last
    ``width - 1`` inputs before it, window (N, C, width - 1) (zeros at a sequence's start) -> (N, L, C) and the
    window after x. Carrying the window makes running a sequence in pieces (one token at a time when sampling)
    give the numbers of running it whole."""

    def __init__(self, channels: int, width: int = 4) -> None:
        super().__init__()
        self.width = width
        self.conv = nn.Conv1d(channels, channels, width, groups=channels)  # weight (C, 1, K), bias (C)

    def forward(self, x: Tensor, window: Tensor | None = None) -> tuple[Tensor, Tensor]:
        steps = x.transpose(1, 2)  # (N, C, L)
        if window is None:  # zeros before the first step (F.pad: an exporter's trace keeps N and L free)
            full = F.pad(steps, (self.width - 1, 0))  # (N, C, K-1+L)
        else:
            full = torch.cat((window.to(steps.dtype), steps), dim=2)  # (N, C, K-1+L)
        return self.conv(full).transpose(1, 2), full[:, :, full.shape[2] - (self.width - 1):]


class GatedBlocks(nn.Module):
    """``block="gated"`` (Mamba's block) or ``"griffin"`` (Griffin's recurrent block and gated MLP) around
    one-layer recurrent modules of any registered architecture (module docstring), called as a recurrent module:
    x (N, L, F), state -> (N, L, H), state. The state is the tuple (the layers' recurrent states stacked, as a
    stacked module's: h (layers, N, E), or h and c; then the windows (layers, N, E, 3)); E = 2H gated, H griffin.
    ``layers`` holds the recurrent modules (what ``rnnlab inspect`` traces), as ``ResidualBlocks``' does."""

    WIDTH = 4  # the causal convolution's, as both papers have it

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        hidden, arch, count = config.hidden, registry.get(config.arch), config.layers
        if not arch.state_is_output:
            raise ValueError(f"{config.arch} is a block of its own: use block 'stack' or 'residual'")
        self.griffin = config.block == "griffin"
        self.inner = inner = hidden if self.griffin else 2 * hidden  # E
        self.project = to_hidden(config)
        self.in_proj = nn.ModuleList(nn.Linear(hidden, 2 * inner, bias=False) for _ in range(count))
        self.convs = nn.ModuleList(CausalConv(inner, self.WIDTH) for _ in range(count))
        self.layers = nn.ModuleList(arch.build(inner, inner, batch_first=True, **layer_options(config))
                                    for _ in range(count))
        self.out_proj = nn.ModuleList(nn.Linear(inner, hidden, bias=False) for _ in range(count))
        if self.griffin:  # the gated MLP block after each recurrent block, 3H wide
            self.mlp_in = nn.ModuleList(nn.Linear(hidden, 6 * hidden, bias=False) for _ in range(count))
            self.mlp_out = nn.ModuleList(nn.Linear(3 * hidden, hidden, bias=False) for _ in range(count))
        self.norms = nn.ModuleList(nn.RMSNorm(hidden) for _ in range((2 if self.griffin else 1) * count + 1))
        self.drop = nn.Dropout(config.dropout)
        self.cell_state = arch.math.has_cell_state

    def state_shapes(self, batch: int) -> tuple:
        count = len(self.layers)
        recurrent = ((count, batch, self.inner),) * (2 if self.cell_state else 1)  # h, or h and c
        return recurrent + ((count, batch, self.inner, self.WIDTH - 1),)

    def forward(self, x: Tensor, state=None):
        x = self.project(x)  # (N, L, H)
        count = len(self.layers)
        if state is None:
            states, windows = [None] * count, [None] * count
        else:
            *recurrent, windows = state  # (layers, N, E) once or twice; (layers, N, E, K-1)
            states = per_layer(tuple(recurrent) if self.cell_state else recurrent[0], count, self.cell_state)
        finals, ends = [], []
        per_block = 2 if self.griffin else 1
        for k, layer in enumerate(self.layers):
            u, gate = self.in_proj[k](self.norms[per_block * k](x)).chunk(2, dim=-1)  # (N, L, E) each
            u, window = self.convs[k](u, windows[k])  # (N, L, E), (N, E, K-1)
            if not self.griffin:
                u = F.silu(u)
            steps, final = layer(u, states[k])  # (N, L, E)
            gated = steps * (F.gelu(gate, approximate="tanh") if self.griffin else F.silu(gate))
            x = x + self.drop(self.out_proj[k](gated))
            if self.griffin:
                a, b = self.mlp_in[k](self.norms[per_block * k + 1](x)).chunk(2, dim=-1)  # (N, L, 3H) each
                x = x + self.drop(self.mlp_out[k](F.gelu(a, approximate="tanh") * b))
            finals.append(final)
            ends.append(window)
        recurrent = stacked(finals, self.cell_state)  # (layers, N, E), or the pair
        return self.norms[-1](x), (*(recurrent if self.cell_state else (recurrent,)), torch.stack(ends))


def layer_options(config: ModelConfig) -> dict:
    """The keywords every recurrent layer of the network is built with: the variants, and chrono where set (a
    keyword of the layer, so that its own reset_parameters -- which the training loop calls -- keeps it)."""
    return {**config.variants.to_dict(), **({"chrono": config.chrono} if config.chrono else {})}


class SequenceModel(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        directions = 2 if config.bidirectional else 1
        if config.tie and not (config.vocab_size and config.output_size == config.vocab_size
                               and config.input_size == directions * config.hidden):
            raise ValueError("tie needs token inputs and outputs of one vocabulary (output_size == vocab_size) and "
                             "an embedding as wide as the last layer's output (input_size == directions * hidden)")
        embedding = TiedEmbedding if config.tie else nn.Embedding
        self.embedding = embedding(config.vocab_size, config.input_size) if config.vocab_size else None
        if config.readout not in READOUTS:
            raise ValueError(f"readout must be one of {', '.join(READOUTS)}, got {config.readout!r}")
        if config.front and (config.front < 2 or config.readout == "steps"):
            raise ValueError("front is a stride of 2 or more, for readouts of one answer per sequence")
        self.front = ConvFront(config.input_size, config.hidden, config.front) if config.front else None
        if config.block not in BLOCKS:
            raise ValueError(f"block must be one of {', '.join(BLOCKS)}, got {config.block!r}")
        if config.block != "stack" and config.bidirectional:
            raise ValueError(f"{config.block} blocks are one-directional: leave out bidirectional or use block 'stack'")
        if config.block == "residual":
            self.rnn = ResidualBlocks(config)
        elif config.block in ("gated", "griffin"):
            self.rnn = GatedBlocks(config)
        else:
            self.rnn = registry.get(config.arch).build(
                rnn_input_size(config), config.hidden, num_layers=config.layers,
                dropout=config.dropout if config.layers > 1 else 0.0, bidirectional=config.bidirectional,
                batch_first=True, **layer_options(config))
        self.drop = nn.Dropout(config.dropout)
        self.head = (TiedHead(self.embedding) if config.tie else
                     nn.Linear(directions * config.hidden, config.output_size))

    def state_shapes(self, batch: int) -> tuple:
        """The shapes of the state the network returns for ``batch`` sequences: ((layers*D, N, H),), a pair of
        them for an LSTM, or what the layer says (Mamba's windows and SSM states)."""
        if isinstance(self.rnn, GatedBlocks):
            return self.rnn.state_shapes(batch)
        residual = self.config.block == "residual"
        layer = self.rnn.layers[0] if residual else self.rnn
        if hasattr(layer, "state_shapes"):
            shapes = layer.state_shapes(batch)
            return tuple((self.config.layers, *shape[1:]) for shape in shapes) if residual else shapes
        directions = 2 if self.config.bidirectional else 1
        count = 2 if registry.get(self.config.arch).math.has_cell_state else 1
        return ((self.config.layers * directions, batch, self.config.hidden),) * count

    def forward(self, inputs: Tensor, state=None, lengths: Tensor | None = None, at: Tensor | None = None):
        """inputs (N, L) token ids or (N, L, F) features -> (outputs, state).

        outputs: (N, L, output_size) with readout "steps", (N, output_size) with readout "last" or "max";
        with ``at`` (N, P) step indices (readout "steps"), only those steps' outputs, (N, P, output_size): a
        head over a large vocabulary then runs where the answers are, not at every step.
        ``lengths`` (N,): each sequence's real steps, the rest padding (one answer per sequence only): the layers
        read them packed, so the final states are each sequence's own (both directions), whatever the padding.
        """
        x = self.embedding(inputs) if self.embedding is not None else inputs  # (N, L, F)
        readout = self.config.readout
        if lengths is not None and readout == "steps":
            raise ValueError("lengths are for readouts of one answer per sequence ('last', 'max')")
        if self.front is not None:
            x, lengths = self.front(x, lengths)  # (N, L', H), lengths in its steps
        reads_state = readout == "last" and self.config.block == "stack" and registry.get(self.config.arch).state_is_output
        if lengths is not None and self.config.block == "stack":
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            steps, state = self.rnn(packed, state)
            if not reads_state:
                steps, _ = pad_packed_sequence(steps, batch_first=True)  # (N, L, D*H), the batch's order
        else:
            steps, state = self.rnn(x, state)  # (N, L, D*H); causal, so padding after a sequence never reaches it
        if readout == "steps":
            if at is not None:
                steps = steps.gather(1, at.to(steps.device)[..., None].expand(-1, -1, steps.shape[-1]))  # (N, P, D*H)
            return self.head(self.drop(steps)), state
        if at is not None:
            raise ValueError("at picks steps of a readout of every step ('steps')")
        if readout == "max":
            return self.head(self.drop(self._max_steps(steps, lengths))), state
        if not reads_state:  # the outputs at the last (real) step
            return self.head(self.drop(self._last_steps(steps, lengths))), state
        h_n = state[0] if isinstance(state, tuple) else state  # (layers*D, N, H), in the batch's order
        last = h_n[-2:] if self.config.bidirectional else h_n[-1:]  # (D, N, H)
        return self.head(self.drop(torch.cat(list(last), dim=1))), state  # (N, output_size)

    @staticmethod
    def _max_steps(steps: Tensor, lengths: Tensor | None) -> Tensor:
        """readout "max": each feature's largest value over each sequence's real steps, (N, L, D*H) -> (N, D*H)."""
        if lengths is None:
            return steps.amax(1)
        real = torch.arange(steps.shape[1], device=steps.device) < lengths.to(steps.device)[:, None]  # (N, L)
        return steps.masked_fill(~real.unsqueeze(-1), float("-inf")).amax(1)

    def _last_steps(self, steps: Tensor, lengths: Tensor | None) -> Tensor:
        """What each sequence ends in, from the outputs (N, L, D*H): the forward direction's at the last real
        step, the reverse direction's at step 0 (where it ends) -> (N, D*H)."""
        if lengths is None:  # (shapes read from the tensor, so that an exporter's trace keeps N and L free)
            last = steps[:, -1]  # (N, D*H)
        else:
            last = steps[torch.arange(len(steps), device=steps.device), lengths.to(steps.device) - 1]
        if not self.config.bidirectional:
            return last
        forward, reverse = steps.chunk(2, dim=-1)  # (N, L, H) each
        return torch.cat((last.chunk(2, dim=-1)[0], reverse[:, 0]), dim=-1)
