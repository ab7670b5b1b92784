"""The C++ fast path of our engine (rnnlab/nn/csrc/engine.cpp): built from the package's source, used by
impl="ours", equal to the readable engine, and replaced by it -- with one warning -- where it cannot be built.
(Its parity with torch.nn is in test_parity.py, test_cells.py and test_weight_drop.py, on both paths.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from rnnlab import nn as rnn
from rnnlab.nn import fast


def count_fast_calls(monkeypatch) -> list:
    """The cell names of the fast path's calls: with autograd, and for inference (no_grad) without."""
    calls, real_train, real_infer = [], fast.train, fast.infer
    monkeypatch.setattr(fast, "train", lambda *args: (calls.append(args[0]), real_train(*args))[1])
    monkeypatch.setattr(fast, "infer", lambda *args: (calls.append("infer " + args[0]), real_infer(*args))[1])
    return calls


def test_the_engine_builds_here():
    assert fast.extension() is not None  # CI builds it from csrc/engine.cpp with the machine's g++


@pytest.mark.parametrize("hidden, batch", [(9, 5), (40, 70)])  # small products in loops; large ones in oneDNN
@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_ours_takes_the_fast_path_and_matches_the_readable_engine_in_float32(monkeypatch, name, hidden, batch):
    calls = count_fast_calls(monkeypatch)
    torch.manual_seed(0)
    options = dict(num_layers=2, bidirectional=True, batch_first=True)
    if name == "LSTM":
        options["proj_size"] = 5
    ours = getattr(rnn, name)(6, hidden, impl="ours", **options)
    readable = getattr(rnn, name)(6, hidden, impl="reference", **options)
    readable.load_state_dict(ours.state_dict())
    x = torch.randn(batch, 11, 6)
    lengths = torch.randint(1, 12, (batch,))
    lengths[0] = 11
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    for inputs in (x, packed):
        results = []
        for module in (ours, readable):
            module.zero_grad()
            output, _ = module(inputs)
            rows = output.data if hasattr(output, "batch_sizes") else output  # packed: its rows
            rows.pow(2).sum().backward()
            results.append([rows, *[p.grad.clone() for p in module.parameters()]])
        for got, expected in zip(*results):
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert len(calls) == 2 * 4  # two calls x (2 layers x 2 directions), all on the fast path
    with torch.no_grad():  # inference skips the autograd node
        for got, expected in zip(ours(x)[0], readable(x)[0]):
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert calls[-4:] == [f"infer {ours.mode}"] * 4


def test_inspection_and_reference_run_the_readable_engine(monkeypatch):
    calls = count_fast_calls(monkeypatch)
    lstm = rnn.LSTM(3, 4, impl="ours")
    with rnn.inspect(lstm) as trace:
        lstm(torch.randn(5, 2, 3))
    rnn.GRU(3, 4, impl="reference")(torch.randn(5, 2, 3))
    assert not calls and trace[0, 0]["f"].shape == (5, 2, 4)


def test_without_the_engine_ours_falls_back_with_one_warning(monkeypatch, tmp_path):
    monkeypatch.setattr(fast, "_loaded", {})
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))  # no cached build: it must build, and cannot
    from torch.utils import cpp_extension

    def no_compiler(*args, **kwargs):
        raise RuntimeError("Error building extension 'rnnlab_engine': c++: not found")

    monkeypatch.setattr(cpp_extension, "load", no_compiler)
    torch.manual_seed(1)
    gru = rnn.GRU(3, 4, impl="ours")
    with pytest.warns(RuntimeWarning, match="C\\+\\+ engine could not be built .* c\\+\\+: not found"):
        first = gru(torch.randn(6, 2, 3))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # only once
        second = gru(torch.randn(6, 2, 3))[0]
    assert first.shape == second.shape == (6, 2, 4)
    monkeypatch.setattr(fast, "_loaded", {})
    monkeypatch.setenv("RNNLAB_NO_EXTENSION", "1")
    assert fast.extension() is None


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")  # torch, about itself
def test_auto_runs_our_engine_where_it_measured_faster(monkeypatch):
    calls = count_fast_calls(monkeypatch)
    x = torch.randn(6, 3, 4)
    gru, lstm, tanh, relu = rnn.GRU(4, 5), rnn.LSTM(4, 5), rnn.RNN(4, 5), rnn.RNN(4, 5, nonlinearity="relu")
    wide, projected = rnn.LSTM(4, 512), rnn.LSTM(4, 5, proj_size=3)
    assert not any(layer.uses_native(x) for layer in (gru, tanh, lstm, relu))
    assert wide.uses_native(x) and projected.uses_native(x)
    for layer in (gru, lstm, tanh, relu, wide, projected):
        layer(x)
    assert calls == ["GRU", "LSTM", "RNN_TANH", "RNN_RELU"]  # faster than torch's kernel at the benchmark shapes
    assert not rnn.LSTM(4, 5, zoneout=0.1).uses_native(x)  # a variant torch's kernel lacks: ours
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert gru.uses_native(x)  # under autocast torch's kernel runs in bf16; ours would not
    assert rnn.GRUCell(4, 5).uses_native(x[0])  # a single step: torch's cell kernel


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_many_rows_and_few_features_match_torch_in_float64(name):
    # 2,000 rows of 5 features and 10 units: the weight and input gradients take the transposed products, and
    # the LSTM's step its gate-major blocks of rows with a partial last block (200 sequences = 6 x 32 + 8)
    torch.manual_seed(3)
    reference = getattr(torch.nn, name)(5, 10, dtype=torch.float64)
    ours = getattr(rnn, name)(5, 10, dtype=torch.float64, impl="ours")
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(10, 200, 5, dtype=torch.float64)
    results = []
    for module in (reference, ours):
        leaf = x.clone().requires_grad_()
        output, _ = module(leaf)
        output.pow(2).sum().backward()
        results.append([output, leaf.grad, *[p.grad for p in module.parameters()]])
    for got, expected in zip(results[1], results[0]):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)


def test_a_second_backward_through_the_engine_is_refused_with_a_clear_error():
    lstm = rnn.LSTM(3, 4, impl="ours")
    x = torch.randn(5, 2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match="differentiates once .*create_graph=True is not supported"):
        torch.autograd.grad(lstm(x)[0].sum(), x, create_graph=True)


TINY = """#include <pybind11/pybind11.h>
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("answer", [] { return 42; }); }
"""


def test_a_build_killed_half_way_leaves_nothing_that_blocks_the_next(tmp_path, monkeypatch):
    # The same ``fast.build`` that builds the engine, on a tiny module (seconds instead of minutes).
    source = tmp_path / "tiny.cpp"
    source.write_text(TINY)
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(tmp_path / "cache")}
    script = f"from pathlib import Path; from rnnlab.nn import fast; fast.build('tiny', Path({str(source)!r}), ['-O0'], [])"
    builder = subprocess.Popen([sys.executable, "-c", script], env=env, start_new_session=True)
    cache = tmp_path / "cache" / "rnnlab"
    deadline = time.monotonic() + 600
    while not list(cache.glob("tiny_*.building-*/build.ninja")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(builder.pid, signal.SIGKILL)  # the builder, the compiler and ninja with it
    builder.wait()
    (private,) = cache.glob("tiny_*.building-*")
    assert [folder.name for folder in cache.iterdir()] == [private.name]  # killed before it finished
    (private / "lock").write_text("")  # what torch's own build leaves behind when killed: it must not block
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "cache"))
    started = time.monotonic()
    module = fast.build("tiny", source, ["-O0"], [])
    assert module.answer() == 42 and time.monotonic() - started < 600  # not left waiting on a lock
    (final,) = [folder for folder in cache.iterdir()]  # the dead build's folder is gone, the build in place
    assert final.name == private.name.split(".building")[0] and (final / f"{final.name}.so").exists()
    again = fast.build("tiny", source, ["-O0"], [])  # cached: imported, not built
    assert again.answer() == 42 and (final / f"{final.name}.so").exists()


def test_the_build_is_keyed_by_source_and_flags(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    source = tmp_path / "tiny.cpp"
    source.write_text(TINY)
    fast.build("tiny", source, ["-O0"], [])
    source.write_text(TINY.replace("42", "43"))  # another checkout's engine: its own build, the first kept
    assert fast.build("tiny", source, ["-O0"], []).answer() == 43
    assert len(list((tmp_path / "rnnlab").glob("tiny_*"))) == 2
    assert not list((tmp_path / "rnnlab").glob("*.building-*"))
