"""The network every task uses: an input layer, a stack of recurrent layers, a linear head.

    tokens (N, L) --Embedding--> (N, L, E) \
                                            >-- any registered architecture --> (N, L, D*H) --head--> per step or per sequence
    features (N, L, F) --------------------/

``readout="steps"`` gives an output at every step (language model); ``readout="last"`` one per sequence,
from the final states of the last layer (both directions when bidirectional). The recurrent layer is built
by ``rnnlab.nn.registry`` from ``arch``, with the config's ``Variants``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import torch
from torch import Tensor, nn

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
    readout: str = "last"  # "steps" | "last"

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


class SequenceModel(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.input_size) if config.vocab_size else None
        self.rnn = registry.get(config.arch).build(
            config.input_size, config.hidden, num_layers=config.layers,
            dropout=config.dropout if config.layers > 1 else 0.0, bidirectional=config.bidirectional,
            batch_first=True, **config.variants.to_dict())
        self.drop = nn.Dropout(config.dropout)
        directions = 2 if config.bidirectional else 1
        self.head = nn.Linear(directions * config.hidden, config.output_size)

    def forward(self, inputs: Tensor, state=None):
        """inputs (N, L) token ids or (N, L, F) features -> (outputs, state).

        outputs: (N, L, output_size) with readout "steps", (N, output_size) with readout "last".
        """
        x = self.embedding(inputs) if self.embedding is not None else inputs  # (N, L, F)
        steps, state = self.rnn(x, state)  # (N, L, D*H)
        if self.config.readout == "steps":
            return self.head(self.drop(steps)), state
        h_n = state[0] if isinstance(state, tuple) else state  # (layers*D, N, H)
        last = h_n[-2:] if self.config.bidirectional else h_n[-1:]  # (D, N, H)
        return self.head(self.drop(torch.cat(list(last), dim=1))), state  # (N, output_size)
