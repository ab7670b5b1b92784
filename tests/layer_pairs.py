"""Helpers for the parity tests: a torch.nn module and its rnnlab twin with the same weights, and random inputs."""

from __future__ import annotations

import contextlib
import os

import torch
from torch.nn.utils.rnn import pack_padded_sequence

from rnnlab import nn as rnn
from rnnlab.nn import fast

DTYPE = torch.float64
# The parity tests run on the CPU; RNNLAB_TEST_DEVICE=cuda runs them on a GPU against torch.nn there (cuDNN).
DEVICE = torch.device(os.environ.get("RNNLAB_TEST_DEVICE", "cpu"))
MODES = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")


def module_kwargs(mode: str) -> tuple[str, dict]:
    if mode.startswith("RNN"):
        return "RNN", {"nonlinearity": "tanh" if mode == "RNN_TANH" else "relu"}
    return mode, {}


def make_pair(mode: str, input_size: int, hidden_size: int, impl: str = "ours", **options):
    """(torch.nn module, rnnlab module) with identical float64 parameters, on DEVICE."""
    name, extra = module_kwargs(mode)
    reference = getattr(torch.nn, name)(input_size, hidden_size, dtype=DTYPE, **extra, **options).to(DEVICE)
    ours = getattr(rnn, name)(input_size, hidden_size, dtype=DTYPE, impl=impl, **extra, **options).to(DEVICE)
    ours.load_state_dict(reference.state_dict())
    return reference, ours


def random_lengths(generator: torch.Generator, batch: int, max_len: int) -> torch.Tensor:
    """Unsorted lengths in [1, max_len] with at least one full-length sequence."""
    lengths = torch.randint(1, max_len + 1, (batch,), generator=generator)
    lengths[torch.randint(0, batch, (1,), generator=generator)] = max_len
    return lengths


def pack(x: torch.Tensor, lengths: torch.Tensor, batch_first: bool):
    return pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)


def flat(result) -> list[torch.Tensor]:
    """(output, h_n) or (output, (h_n, c_n)) -> [output, h_n(, c_n)], packed output unwrapped to its data."""
    output, state = result
    output = output.data if hasattr(output, "batch_sizes") else output
    return [output, *(state if isinstance(state, tuple) else (state,))]


@contextlib.contextmanager
def lstm_units_split(team: int = 0):
    """Within: the fast path's LSTM loop that splits the hidden units between two threads (normally used from
    hidden size 64 up) runs at every size, so that the parity tests' small random layers go through it.
    ``team=1``: one thread runs both blocks, as when the loop is called inside another parallel region."""
    engine, threads = fast.extension(), torch.get_num_threads()
    torch.set_num_threads(2)
    before = engine.set_split_range(1, 2**62, team)
    try:
        yield
    finally:
        engine.set_split_range(*before)
        torch.set_num_threads(threads)


@contextlib.contextmanager
def lstm_rows_whole():
    """Within: the fast path's LSTM step runs each row's units as one loop at every size (normally below 32
    hidden units it takes blocks of rows gate-major), so that the parity tests' small layers go through it."""
    engine = fast.extension()
    before = engine.set_flat_below(0)
    try:
        yield
    finally:
        engine.set_flat_below(before)
