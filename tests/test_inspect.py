"""rnnlab.nn.inspect: per-step gates and states, checked against the cell equations and the layer outputs."""

from __future__ import annotations

import pytest
import torch

from layer_pairs import pack
from rnnlab import nn as rnn


def test_lstm_gates_satisfy_the_cell_equations():
    torch.manual_seed(0)
    lstm = rnn.LSTM(3, 5, num_layers=2, bidirectional=True)  # impl="auto": inspect switches to our engine
    assert lstm.uses_native()
    x = torch.randn(6, 2, 3)
    with rnn.inspect(lstm) as trace:
        assert not lstm.uses_native()
        output, (h_n, c_n) = lstm(x)
    assert lstm.uses_native()
    assert sorted(trace.keys()) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for layer in range(2):
        fwd, rev = trace[layer, 0], trace[layer, 1]
        for steps in (fwd, rev):
            assert set(steps) == {"i", "f", "g", "o", "c", "h"}
            assert all(v.shape == (6, 2, 5) for v in steps.values())
            torch.testing.assert_close(steps["h"], steps["o"] * steps["c"].tanh())
            for gate in "ifo":
                assert ((steps[gate] > 0) & (steps[gate] < 1)).all()
        # c_t = f_t * c_{t-1} + i_t * g_t, forward in time for direction 0, backward for direction 1
        torch.testing.assert_close(fwd["c"][1:], fwd["f"][1:] * fwd["c"][:-1] + fwd["i"][1:] * fwd["g"][1:])
        torch.testing.assert_close(rev["c"][:-1], rev["f"][:-1] * rev["c"][1:] + rev["i"][:-1] * rev["g"][:-1])
        torch.testing.assert_close(c_n[2 * layer], fwd["c"][-1])
        torch.testing.assert_close(c_n[2 * layer + 1], rev["c"][0])
    torch.testing.assert_close(output, torch.cat((trace[1, 0]["h"], trace[1, 1]["h"]), dim=2))
    # first step of layer 0 from the weights, by hand
    pre = x[0] @ lstm.weight_ih_l0.T + lstm.bias_ih_l0 + lstm.bias_hh_l0  # h_{-1} = 0
    i, f, g, o = pre.chunk(4, dim=1)
    torch.testing.assert_close(trace[0, 0]["i"][0], i.sigmoid())
    torch.testing.assert_close(trace[0, 0]["g"][0], g.tanh())


def test_gru_gates_and_layout():
    torch.manual_seed(1)
    gru = rnn.GRU(3, 4, batch_first=True)
    h0 = torch.randn(1, 2, 4)
    x = torch.randn(2, 5, 3)
    with rnn.inspect(gru) as trace:
        output, h_n = gru(x, h0)
    steps = trace[0, 0]
    assert set(steps) == {"r", "z", "n", "h"} and steps["z"].shape == (2, 5, 4)  # batch_first layout
    h_prev = torch.cat((h0.transpose(0, 1), steps["h"][:, :-1]), dim=1)
    torch.testing.assert_close(steps["h"], (1 - steps["z"]) * steps["n"] + steps["z"] * h_prev)
    torch.testing.assert_close(steps["h"], output)


def test_packed_and_unbatched_layouts():
    rnn_layer = rnn.RNN(3, 4, bidirectional=True)
    x = torch.randn(5, 3, 3)
    lengths = torch.tensor([2, 5, 3])
    with rnn.inspect(rnn_layer) as trace:
        output, _ = rnn_layer(pack(x, lengths, False))
        padded, _ = torch.nn.utils.rnn.pad_packed_sequence(output)
        h = torch.cat((trace[0, 0]["h"], trace[0, 1]["h"]), dim=2)  # (T, N, 8), caller's batch order
        torch.testing.assert_close(h, padded)
        assert (trace[0, 0]["h"][2:, 0] == 0).all()  # past the end of sequence 0
        rnn_layer(x[:, 0])
        assert trace[0, 0]["h"].shape == (5, 4) and len(trace.calls) == 2


def test_cell_inspection_and_misuse():
    cell = rnn.LSTMCell(3, 4)
    with rnn.inspect(cell) as trace:
        h, c = cell(torch.randn(2, 3))
    torch.testing.assert_close(trace[0, 0]["c"], c)
    torch.testing.assert_close(trace[0, 0]["h"], h)
    with pytest.raises(TypeError, match="rnnlab.nn recurrent layer"):
        with rnn.inspect(torch.nn.LSTM(3, 4)):
            pass
    with pytest.raises(LookupError, match="nothing recorded"):
        with rnn.inspect(cell) as empty:
            empty[0, 0]


@pytest.mark.parametrize("impl", ["reference", "ours"])
def test_inspection_does_not_change_training(impl):
    """Inspection runs the readable engine: bit for bit the same as impl="reference"; the C++ fast path of
    impl="ours" agrees with it to float32 rounding."""
    torch.manual_seed(2)
    lstm = rnn.LSTM(3, 4, impl=impl)
    x = torch.randn(4, 2, 3)
    plain = torch.autograd.grad(lstm(x)[0].sum(), list(lstm.parameters()))
    with rnn.inspect(lstm):
        inspected = torch.autograd.grad(lstm(x)[0].sum(), list(lstm.parameters()))
    for a, b in zip(plain, inspected):
        assert torch.equal(a, b) if impl == "reference" else torch.allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN_TANH", "RNN_RELU"])
def test_inference_is_recorded_by_replay_as_the_step_loop_records_it(mode, monkeypatch):
    """Recording without gradients replays the gates of all steps at once from the C++ forward's outputs
    (``engine.replay_internals``): the same internals as the step loop's, in float64 to 1e-12, layer by layer,
    from given initial states; a reverse direction and a run that needs gradients keep the loop."""
    from rnnlab.nn import engine
    torch.manual_seed(1)
    layer = {"LSTM": rnn.LSTM, "GRU": rnn.GRU}.get(mode, rnn.RNN)(
        4, 6, num_layers=2, batch_first=True, dtype=torch.float64,
        **({"nonlinearity": "relu" if mode == "RNN_RELU" else "tanh"} if mode.startswith("RNN") else {}))
    x = torch.randn(3, 9, 4, dtype=torch.float64)
    h0 = torch.randn(2, 3, 6, dtype=torch.float64)
    state = (h0, torch.randn(2, 3, 6, dtype=torch.float64)) if mode == "LSTM" else h0
    runs, used = {}, []
    original = engine.replay_internals
    monkeypatch.setattr(engine, "replay_internals", lambda *a: used.append(1) or original(*a))
    for replay in (True, False):
        monkeypatch.setattr(engine, "REPLAY", replay)
        with torch.no_grad(), rnn.inspect(layer) as trace:
            output = layer(x, state)[0]
        runs[replay] = (output, {key: dict(trace[key]) for key in trace.keys()})
    assert len(used) == 2  # both layers replayed, then none
    torch.testing.assert_close(runs[True][0], runs[False][0], rtol=0, atol=1e-12)
    for key, named in runs[False][1].items():
        assert set(runs[True][1][key]) == set(named)
        for name, values in named.items():
            torch.testing.assert_close(runs[True][1][key][name], values, rtol=0, atol=1e-12)
