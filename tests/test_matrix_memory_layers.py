"""GatedDeltaNet and MLSTM beyond the registry's contract: both operator forms give the same layer, the state
carries a sequence across calls and through one-token steps, a packed batch ends each sequence in the state it
would have alone, the papers' initialisations, gradcheck."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from rnnlab import nn as rnn
from rnnlab.nn import reference

DTYPE = torch.float64
LAYERS = {"gdn": rnn.GatedDeltaNet, "mlstm": rnn.MLSTM}


def _layer(name, impl="ours", **options):
    torch.manual_seed(0)
    return LAYERS[name](3, 8, num_layers=2, dtype=DTYPE, impl=impl, **options)


@pytest.mark.parametrize("impl", ["ours", "chunk"])
@pytest.mark.parametrize("name", LAYERS)
def test_the_loop_and_the_chunks_give_the_same_layer_and_gradients(name, impl):
    chunked, looped = _layer(name, impl=impl), _layer(name, impl="reference")
    looped.load_state_dict(chunked.state_dict())
    x = torch.randn(70, 2, 3, dtype=DTYPE, requires_grad=True)  # longer than a chunk of 64
    out, state = chunked(x)
    again, state_again = looped(x)
    torch.testing.assert_close(out, again, atol=1e-10, rtol=0)
    for got, want in zip(state, state_again):
        torch.testing.assert_close(got, want, atol=1e-10, rtol=0)
    grads = torch.autograd.grad((out ** 2).sum() + (state[1] ** 2).sum(), [x, *chunked.parameters()])
    expected = torch.autograd.grad((again ** 2).sum() + (state_again[1] ** 2).sum(), [x, *looped.parameters()])
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("name", LAYERS)
def test_the_state_carries_the_sequence_across_calls_and_one_token_steps(name):
    layer = _layer(name)
    x = torch.randn(9, 2, 3, dtype=DTYPE)
    whole, final = layer(x)
    first, state = layer(x[:4])
    rest, state = layer(x[4:], state)
    torch.testing.assert_close(torch.cat([first, rest]), whole, atol=1e-10, rtol=0)
    steps, state = [], None
    for t in range(9):
        out, state = layer(x[t:t + 1], state)
        steps.append(out)
    torch.testing.assert_close(torch.cat(steps), whole, atol=1e-10, rtol=0)
    for got, want in zip(state, final):
        torch.testing.assert_close(got, want, atol=1e-10, rtol=0)
    expected, expected_state = reference.matrix_memory_layer(layer, x[4:], layer(x[:4])[1])
    torch.testing.assert_close(rest, expected, atol=1e-10, rtol=0)


@pytest.mark.parametrize("name", LAYERS)
def test_a_packed_batch_ends_each_sequence_in_its_own_state(name):
    layer = _layer(name)
    lengths = torch.tensor([7, 2, 5])
    x = torch.randn(7, 3, 3, dtype=DTYPE)
    _, (windows, memories) = layer(pack_padded_sequence(x, lengths, enforce_sorted=False))
    for b, n in enumerate(lengths.tolist()):
        _, (alone_windows, alone_memories) = layer(x[:n, b:b + 1])
        torch.testing.assert_close(windows[:, b:b + 1], alone_windows, atol=1e-12, rtol=0)
        torch.testing.assert_close(memories[:, b:b + 1], alone_memories, atol=1e-12, rtol=0)


def test_the_papers_initialisations():
    torch.manual_seed(0)
    gdn = rnn.GatedDeltaNet(4, 128, num_layers=2)
    mixer = gdn.layers[0].mixer
    assert (mixer.num_heads, mixer.head_dim, mixer.head_v_dim) == (2, 64, 128)
    A = torch.exp(mixer.A_log)
    assert ((A > 0) & (A < 16)).all()
    dt = torch.nn.functional.softplus(mixer.dt_bias)
    assert ((dt >= 1e-4 - 1e-9) & (dt <= 0.1 + 1e-6)).all()
    mlstm = rnn.MLSTM(4, 16, num_layers=2)
    cell = mlstm.layers[1].mixer
    assert cell.num_heads == 4 and cell.head_dim == 8 and cell.d_inner == 32
    torch.testing.assert_close(cell.fgate.bias, torch.linspace(3.0, 6.0, 4))
    assert (cell.fgate.weight == 0).all() and (cell.igate.weight == 0).all()
    assert (cell.learnable_skip == 1).all() and (cell.outnorm == 1).all()
    assert abs(float(cell.igate.bias.detach().std()) - 0.1) < 0.2  # N(0, 0.1) over 4 heads
    with pytest.raises(ValueError, match="multiple of num_heads"):
        rnn.MLSTM(4, 5, num_heads=4)
    with pytest.raises(ValueError, match="impl must be one of"):
        rnn.GatedDeltaNet(4, 8, impl="triton")


@pytest.mark.parametrize("name", LAYERS)
def test_gradcheck(name):
    torch.manual_seed(0)
    layer = LAYERS[name](2, 4, dtype=DTYPE)
    x = torch.randn(5, 1, 2, dtype=DTYPE, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp: layer(inp)[0], (x,))


def test_resetting_every_module_in_any_order_gives_the_papers_initialisation():
    layer = rnn.MLSTM(4, 16)
    for module in reversed(list(layer.modules())):  # the training loop resets every module it finds
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    cell = layer.layers[0].mixer
    torch.testing.assert_close(cell.fgate.bias, torch.linspace(3.0, 6.0, 4))
    assert (cell.igate.weight == 0).all() and abs(float(cell.proj_up.weight.std()) - (2 / 80) ** 0.5) < 0.03
