"""rnnlab.nn.RNN/LSTM/GRU against torch.nn in float64: outputs, final states and every gradient.

Every combination of mode x layers x bias x batch_first x bidirectional x proj_size (LSTM) x input kind
(batched, unbatched, packed with unsorted lengths) x with/without hx, each with random sizes and weights.
"""

from __future__ import annotations

import itertools
import warnings
import zlib

import pytest
import torch

from layer_pairs import DEVICE, DTYPE, MODES, flat, lstm_rows_whole, lstm_units_split, make_pair, pack, random_lengths

TOL = 1e-10


def _configs():
    for mode, layers, bias, batch_first, bidirectional, kind, with_hx in itertools.product(
            MODES, (1, 2, 3), (True, False), (False, True), (False, True),
            ("batched", "unbatched", "packed"), (False, True)):
        for proj in ((False, True) if mode == "LSTM" else (False,)):
            yield mode, layers, bias, batch_first, bidirectional, proj, kind, with_hx


CONFIGS = list(_configs())


def _id(config):
    mode, layers, bias, batch_first, bidirectional, proj, kind, with_hx = config
    return (f"{mode}-L{layers}-{'bias' if bias else 'nobias'}-{'bf' if batch_first else 'tm'}-"
            f"{'bi' if bidirectional else 'uni'}-{'proj' if proj else 'noproj'}-{kind}-{'hx' if with_hx else 'nohx'}")


def test_every_combination_is_covered():
    # 3 non-LSTM modes * 144 + LSTM * 144 * 2 (proj)
    assert len(CONFIGS) == 3 * 144 + 288


@pytest.mark.parametrize("impl", ["ours", "reference"])  # the C++ fast path and the readable engine
@pytest.mark.parametrize("config", CONFIGS, ids=_id)
def test_matches_torch(config, impl):
    mode, layers, bias, batch_first, bidirectional, proj, kind, with_hx = config
    gen = torch.Generator().manual_seed(zlib.crc32(_id(config).encode()))
    rand = lambda *shape: torch.randn(*shape, generator=gen, dtype=DTYPE).to(DEVICE)  # noqa: E731
    seq_len, batch, input_size = (int(v) for v in torch.randint(1, 7, (3,), generator=gen))
    hidden = int(torch.randint(2, 7, (1,), generator=gen))
    proj_size = int(torch.randint(1, hidden, (1,), generator=gen)) if proj else 0
    options = dict(num_layers=layers, bias=bias, batch_first=batch_first, bidirectional=bidirectional)
    if proj_size:
        options["proj_size"] = proj_size
    torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
    reference, ours = make_pair(mode, input_size, hidden, impl=impl, **options)

    states = layers * (2 if bidirectional else 1)
    x = rand(*((batch, seq_len) if batch_first else (seq_len, batch)), input_size)
    if kind == "unbatched":
        x = x[0] if batch_first else x[:, 0]
    batch_shape = () if kind == "unbatched" else (batch,)
    hx_leaves = []
    if with_hx:
        hx_leaves = [rand(states, *batch_shape, proj_size or hidden)]
        if mode == "LSTM":
            hx_leaves.append(rand(states, *batch_shape, hidden))
    lengths = random_lengths(gen, batch, seq_len) if kind == "packed" else None

    results = []
    for module in (reference, ours):
        x_leaf = x.clone().requires_grad_()
        leaves = [h.clone().requires_grad_() for h in hx_leaves]
        inp = pack(x_leaf, lengths, batch_first) if kind == "packed" else x_leaf
        hx = None if not leaves else (tuple(leaves) if mode == "LSTM" else leaves[0])
        outs = flat(module(inp, hx))
        weights = torch.Generator().manual_seed(7)
        loss = sum((o * torch.randn(o.shape, generator=weights, dtype=DTYPE).to(DEVICE)).sum() for o in outs)
        grads = torch.autograd.grad(loss, [x_leaf, *leaves, *module.parameters()])
        results.append((outs, grads))

    (ref_outs, ref_grads), (our_outs, our_grads) = results
    assert len(ref_outs) == len(our_outs) and len(ref_grads) == len(our_grads)
    for ref, got in zip(ref_outs + list(ref_grads), our_outs + list(our_grads)):
        assert ref.shape == got.shape
        torch.testing.assert_close(got, ref, rtol=0, atol=TOL)


@pytest.mark.parametrize("config", [config for config in CONFIGS if config[0] == "LSTM"], ids=_id)
def test_lstm_with_its_units_split_between_threads_matches_torch(config):
    with lstm_units_split():  # with a projection the loop does not split: those configurations check that
        test_matches_torch(config, "ours")


@pytest.mark.parametrize("config", [config for config in CONFIGS if config[0] == "LSTM"][::3], ids=_id)
def test_lstm_with_whole_rows_matches_torch(config):
    with lstm_rows_whole():  # the step of each row as one loop, as from 32 hidden units up
        test_matches_torch(config, "ours")


@pytest.mark.parametrize("config", [config for config in CONFIGS if config[0] == "LSTM" and not config[5]][::8],
                         ids=_id)
def test_lstm_split_blocks_run_by_fewer_threads_match_torch(config):
    with lstm_units_split(team=1):  # a region nested in another gets one thread: it runs every block
        test_matches_torch(config, "ours")


@pytest.mark.parametrize("impl", ["auto", "native"])
@pytest.mark.parametrize("mode", MODES)
def test_other_engines_match_torch_too(mode, impl):
    torch.manual_seed(3)
    reference, ours = make_pair(mode, 5, 7, impl=impl, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(4, 6, 5, dtype=DTYPE).to(DEVICE)
    lengths = torch.tensor([6, 2, 5, 3])
    with warnings.catch_warnings():  # on a GPU: no "weights are not part of single contiguous chunk" either
        warnings.simplefilter("error")
        for inp in (x, pack(x, lengths, True)):
            for ref, got in zip(flat(reference(inp)), flat(ours(inp))):
                torch.testing.assert_close(got, ref, rtol=0, atol=TOL)


@pytest.mark.parametrize("impl", ["ours", "reference"])
@pytest.mark.parametrize("mode", MODES)
def test_gradcheck(mode, impl):
    torch.manual_seed(0)
    options = dict(num_layers=2, bidirectional=True, proj_size=2) if mode == "LSTM" else dict(num_layers=2,
                                                                                             bidirectional=True)
    _, ours = make_pair(mode, 3, 4, impl=impl, **options)
    params = list(ours.parameters())
    names = [name for name, _ in ours.named_parameters()]
    x = torch.randn(4, 3, 3, dtype=DTYPE).to(DEVICE).requires_grad_()
    lengths = torch.tensor([2, 4, 1])
    h_size = 2 if mode == "LSTM" else 4
    h0 = torch.randn(4, 3, h_size, dtype=DTYPE).to(DEVICE).requires_grad_()
    c0 = torch.randn(4, 3, 4, dtype=DTYPE).to(DEVICE).requires_grad_()

    def run(x, h0, c0, *weights):
        hx = (h0, c0) if mode == "LSTM" else h0
        output, state = torch.func.functional_call(ours, dict(zip(names, weights)), (pack(x, lengths, False), hx))
        return (output.data, *(state if mode == "LSTM" else (state,)))

    assert torch.autograd.gradcheck(run, (x, h0, c0, *[p.detach().clone().requires_grad_() for p in params]))
