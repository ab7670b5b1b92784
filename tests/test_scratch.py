"""rnnlab.scratch (NumPy, from scratch) against torch.nn in float64: outputs, dx and every weight gradient."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from rnnlab.learn import scratch

TOL = 1e-10


@pytest.mark.parametrize("kind, bias, seed", list(itertools.product(["RNN", "LSTM"], [True, False], range(4))))
def test_time_layers_match_torch(kind, bias, seed):
    rng = np.random.default_rng(seed)
    N, T, D, H = (int(v) for v in rng.integers(1, 7, 4))
    torch.manual_seed(seed)
    layer = getattr(torch.nn, kind)(D, H, bias=bias, batch_first=True, dtype=torch.float64)
    ours = scratch.from_torch(layer)
    xs = rng.standard_normal((N, T, D))
    dhs = rng.standard_normal((N, T, H))

    x = torch.tensor(xs, requires_grad=True)
    hs_torch, _ = layer(x)
    hs_torch.backward(torch.tensor(dhs))
    hs = ours.forward(xs)
    dxs = ours.backward(dhs)

    np.testing.assert_allclose(hs, hs_torch.detach().numpy(), atol=TOL, rtol=0)
    np.testing.assert_allclose(dxs, x.grad.numpy(), atol=TOL, rtol=0)
    dWx, dWh, db = ours.grads
    np.testing.assert_allclose(dWx, layer.weight_ih_l0.grad.numpy().T, atol=TOL, rtol=0)
    np.testing.assert_allclose(dWh, layer.weight_hh_l0.grad.numpy().T, atol=TOL, rtol=0)
    if bias:  # b stands for both torch biases, which get the same gradient
        np.testing.assert_allclose(db, layer.bias_ih_l0.grad.numpy(), atol=TOL, rtol=0)
        np.testing.assert_allclose(db, layer.bias_hh_l0.grad.numpy(), atol=TOL, rtol=0)


@pytest.mark.parametrize("kind", ["RNN", "LSTM"])
def test_stateful_carries_the_state_between_calls(kind):
    torch.manual_seed(0)
    layer = getattr(torch.nn, kind)(3, 5, batch_first=True, dtype=torch.float64)
    xs = np.random.default_rng(1).standard_normal((2, 8, 3))
    whole = layer(torch.tensor(xs))[0].detach().numpy()
    stateful = scratch.from_torch(layer, stateful=True)
    halves = np.concatenate([stateful.forward(xs[:, :4]), stateful.forward(xs[:, 4:])], axis=1)
    np.testing.assert_allclose(halves, whole, atol=TOL, rtol=0)
    fresh = scratch.from_torch(layer)  # not stateful: every call starts from zeros
    assert not np.allclose(np.concatenate([fresh.forward(xs[:, :4]), fresh.forward(xs[:, 4:])], axis=1), whole)
    stateful.reset_state()
    np.testing.assert_allclose(stateful.forward(xs[:, :4]), whole[:, :4], atol=TOL, rtol=0)


def test_shapes_are_the_books():
    D, H = 3, 4
    lstm = scratch.TimeLSTM(np.zeros((D, 4 * H)), np.zeros((H, 4 * H)), np.zeros(4 * H))
    hs = lstm.forward(np.ones((2, 5, D)))
    assert hs.shape == (2, 5, H) and len(lstm.layers) == 5  # one cached cell per step
    assert lstm.backward(np.ones_like(hs)).shape == (2, 5, D)
    assert [g.shape for g in lstm.grads] == [(D, 4 * H), (H, 4 * H), (4 * H,)]


def test_from_torch_refuses_what_it_cannot_mirror():
    with pytest.raises(ValueError):
        scratch.from_torch(torch.nn.LSTM(3, 4, num_layers=2))
    with pytest.raises(ValueError):
        scratch.from_torch(torch.nn.RNN(3, 4, nonlinearity="relu"))
