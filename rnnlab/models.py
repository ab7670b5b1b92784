"""The network every task uses: an input layer, a stack of rnnlab.nn recurrent layers, a linear head.

    tokens (N, L) --Embedding--> (N, L, E) \
                                            >-- RNN | LSTM | GRU --> (N, L, D*H) --head--> per step or per sequence
    features (N, L, F) --------------------/

``readout="steps"`` gives an output at every step (language model); ``readout="last"`` one per sequence,
from the final states of the last layer (both directions when bidirectional).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from . import nn as rnn

ARCHS = {"rnn": rnn.RNN, "lstm": rnn.LSTM, "gru": rnn.GRU}


@dataclass
class ModelConfig:
    arch: str = "lstm"  # rnn | lstm | gru
    input_size: int = 1  # features per step, or the embedding size when vocab_size is set
    hidden: int = 128
    layers: int = 1
    dropout: float = 0.0  # between recurrent layers and before the head
    weight_drop: float = 0.0  # DropConnect on the hidden-to-hidden weights while training (rnnlab.nn's weight_drop)
    layer_norm: bool = False  # layer-normalised pre-activations (and LSTM cell state)
    recurrent_dropout: float = 0.0  # one dropout mask per sequence on h where it enters W_hh
    zoneout: float = 0.0  # units keep their previous value with this probability while training
    bidirectional: bool = False
    output_size: int = 1
    vocab_size: int = 0  # > 0: inputs are token ids, embedded first
    readout: str = "last"  # "steps" | "last"

    def to_dict(self) -> dict:
        return asdict(self)


class SequenceModel(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.input_size) if config.vocab_size else None
        self.rnn = ARCHS[config.arch](config.input_size, config.hidden, num_layers=config.layers,
                                      dropout=config.dropout if config.layers > 1 else 0.0,
                                      bidirectional=config.bidirectional, batch_first=True,
                                      weight_drop=config.weight_drop, layer_norm=config.layer_norm,
                                      recurrent_dropout=config.recurrent_dropout, zoneout=config.zoneout)
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
