"""rnnlab.nn.RNNCell/LSTMCell/GRUCell against the torch.nn cells, in float64."""

from __future__ import annotations

import itertools

import pytest
import torch

from rnnlab import nn as rnn

DTYPE = torch.float64
CELLS = [("RNNCell", {"nonlinearity": "tanh"}), ("RNNCell", {"nonlinearity": "relu"}), ("LSTMCell", {}),
         ("GRUCell", {})]


def make_cells(name, extra, impl="ours", **options):
    torch.manual_seed(11)
    reference = getattr(torch.nn, name)(4, 5, dtype=DTYPE, **extra, **options)
    torch.manual_seed(11)
    ours = getattr(rnn, name)(4, 5, dtype=DTYPE, impl=impl, **extra, **options)
    return reference, ours


@pytest.mark.parametrize("impl", ["ours", "reference"])
@pytest.mark.parametrize("cell,bias,batched,with_hx", [
    (cell, bias, batched, with_hx) for cell, bias, batched, with_hx in
    itertools.product(range(len(CELLS)), (True, False), (True, False), (True, False))])
def test_cell_matches_torch(cell, bias, batched, with_hx, impl):
    name, extra = CELLS[cell]
    reference, ours = make_cells(name, extra, impl=impl, bias=bias)
    assert [n for n, _ in reference.named_parameters()] == [n for n, _ in ours.named_parameters()]
    for p, q in zip(reference.parameters(), ours.parameters()):
        assert torch.equal(p, q)  # same seed, same initialisation
    lstm = name == "LSTMCell"
    shape = (3,) if batched else ()
    x = torch.randn(*shape, 4, dtype=DTYPE)
    hx = [torch.randn(*shape, 5, dtype=DTYPE) for _ in range(2 if lstm else 1)] if with_hx else []
    results = []
    for module in (reference, ours):
        x_leaf = x.clone().requires_grad_()
        leaves = [h.clone().requires_grad_() for h in hx]
        state = None if not leaves else (tuple(leaves) if lstm else leaves[0])
        out = module(x_leaf, state)
        outs = list(out) if lstm else [out]
        loss = sum((o * torch.arange(o.numel(), dtype=DTYPE).reshape(o.shape).cos()).sum() for o in outs)
        results.append(outs + list(torch.autograd.grad(loss, [x_leaf, *leaves, *module.parameters()])))
    for ref, got in zip(*results):
        assert ref.shape == got.shape
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell", range(len(CELLS)))
def test_cell_gradcheck(cell):
    name, extra = CELLS[cell]
    _, ours = make_cells(name, extra)
    names = [n for n, _ in ours.named_parameters()]
    lstm = name == "LSTMCell"

    def run(x, h, c, *weights):
        out = torch.func.functional_call(ours, dict(zip(names, weights)), (x, (h, c) if lstm else h))
        return out if lstm else (out,)

    inputs = [torch.randn(3, 4, dtype=DTYPE), torch.randn(3, 5, dtype=DTYPE), torch.randn(3, 5, dtype=DTYPE)]
    inputs += [p.detach().clone() for p in ours.parameters()]
    assert torch.autograd.gradcheck(run, [t.requires_grad_() for t in inputs])


@pytest.mark.parametrize("cell", range(len(CELLS)))
def test_cell_errors_match_torch(cell):
    name, extra = CELLS[cell]
    reference, ours = make_cells(name, extra)
    lstm = name == "LSTMCell"
    state = lambda *shape: tuple(torch.randn(*shape, dtype=DTYPE) for _ in range(2)) if lstm else torch.randn(  # noqa
        *shape, dtype=DTYPE)
    cases = [
        (torch.randn(2, 3, 4, dtype=DTYPE), None),  # input rank
        (torch.randn(3, 7, dtype=DTYPE), None),  # input_size
        (torch.randn(3, 4, dtype=DTYPE), state(2, 5)),  # batch of hx
        (torch.randn(3, 4, dtype=DTYPE), state(3, 6)),  # hidden_size of hx
        (torch.randn(3, 4, dtype=DTYPE), state(1, 3, 5)),  # rank of hx
    ]
    for x, hx in cases:
        with pytest.raises(Exception) as expected:
            reference(x, hx)
        with pytest.raises(expected.type) as got:
            ours(x, hx)
        assert str(got.value) == str(expected.value)
    with pytest.raises(RuntimeError, match="float32"):
        ours(torch.randn(3, 4, dtype=torch.float32))
