"""The variants torch.nn lacks -- layer_norm, recurrent_dropout, zoneout (and weight_drop with them) -- against
the naive per-step loop written straight from the papers (``rnnlab.nn.reference``) under autograd, in float64,
on both of our engines. The reference draws its masks with the same calls, in the same order, as the layers,
so a seed gives both the same masks.
"""

from __future__ import annotations

import itertools
import zlib

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from layer_pairs import DTYPE, MODES, flat, lstm_rows_whole, lstm_units_split, module_kwargs, random_lengths
from rnnlab import nn as rnn
from rnnlab.nn.reference import recurrent_layer

TOL = 1e-10


def naive(module, x, hx, seed):
    """The module's forward on time-major padded ``x`` (T, B, D), one step at a time: rnnlab.nn.reference."""
    return recurrent_layer(module, x, hx, seed)


def _configs():
    for mode, layer_norm_on, rd, zone, wd, impl in itertools.product(
            MODES, (False, True), (0.0, 0.3), (0.0, 0.25), (0.0, 0.2), ("ours", "reference")):
        if layer_norm_on or rd or zone:
            yield mode, layer_norm_on, rd, zone, wd, impl


CONFIGS = list(_configs())


def _id(config):
    mode, layer_norm_on, rd, zone, wd, impl = config
    return f"{mode}-ln{int(layer_norm_on)}-rd{rd}-zo{zone}-wd{wd}-{impl}"


def _random_module(config, gen, **extra):
    mode, layer_norm_on, rd, zone, wd, impl = config
    name, kwargs = module_kwargs(mode)
    pick = lambda n: int(torch.randint(0, n, (1,), generator=gen))  # noqa: E731
    hidden = 3 + pick(4)
    options = dict(num_layers=1 + pick(2), bidirectional=bool(pick(2)), bias=bool(pick(4)),
                   dropout=0.0)
    if options["num_layers"] > 1:
        options["dropout"] = 0.3 * pick(2)
    if mode == "LSTM" and pick(2):
        options["proj_size"] = 1 + pick(hidden - 1)
    options.update(extra)
    torch.manual_seed(pick(10**6))
    module = getattr(rnn, name)(2 + pick(3), hidden, dtype=DTYPE, impl=impl, layer_norm=layer_norm_on,
                                recurrent_dropout=rd, zoneout=zone, weight_drop=wd, **kwargs, **options)
    with torch.no_grad():  # gains and shifts away from 1 and 0, so that a mix-up shows
        for param_name, param in module.named_parameters():
            if param_name.startswith("ln_"):
                param.add_(0.3 * torch.randn(param.shape, generator=gen, dtype=DTYPE))
    return module


def _loss_and_grads(outs, leaves):
    weights = torch.Generator().manual_seed(7)
    loss = sum((o * torch.randn(o.shape, generator=weights, dtype=DTYPE)).sum() for o in outs)
    return torch.autograd.grad(loss, leaves)


@pytest.mark.parametrize("config", CONFIGS, ids=_id)
def test_matches_the_papers(config):
    check_against_the_papers(config)


def check_against_the_papers(config, **extra):
    gen = torch.Generator().manual_seed(zlib.crc32(_id(config).encode()))
    module = _random_module(config, gen, **extra)
    steps, batch = 2 + int(torch.randint(0, 5, (1,), generator=gen)), 1 + int(torch.randint(0, 4, (1,), generator=gen))
    x = torch.randn(steps, batch, module.input_size, generator=gen, dtype=DTYPE)
    states = module.num_layers * (2 if module.bidirectional else 1)
    hx = [torch.randn(states, batch, module.proj_size or module.hidden_size, generator=gen, dtype=DTYPE)]
    if module.mode == "LSTM":
        hx.append(torch.randn(states, batch, module.hidden_size, generator=gen, dtype=DTYPE))
    for training in (True, False):
        module.train(training)
        results = []
        for run in (naive, lambda m, x, hx, seed: (torch.manual_seed(seed), m(x, hx))[1]):
            x_leaf = x.clone().requires_grad_()
            hx_leaves = [h.clone().requires_grad_() for h in hx]
            hx_arg = tuple(hx_leaves) if module.mode == "LSTM" else hx_leaves[0]
            outs = flat(run(module, x_leaf, hx_arg, 11))
            results.append((outs, _loss_and_grads(outs, [x_leaf, *hx_leaves, *module.parameters()])))
        (naive_outs, naive_grads), (our_outs, our_grads) = results
        for a, b in zip(naive_outs + list(naive_grads), our_outs + list(our_grads)):
            assert a.shape == b.shape
            torch.testing.assert_close(b, a, atol=TOL, rtol=0)


@pytest.mark.parametrize("config", [c for c in CONFIGS if c[0] == "LSTM" and c[-1] == "ours"], ids=_id)
def test_lstm_with_its_units_split_between_threads_matches_the_papers(config):
    with lstm_units_split():  # zoneout (and DropConnect's weights) split; layer norm, recurrent dropout (in
        check_against_the_papers(config, proj_size=0)  # training) and a projection do not


@pytest.mark.parametrize("config", [c for c in CONFIGS if c[0] == "LSTM" and c[-1] == "ours"], ids=_id)
def test_lstm_with_whole_rows_matches_the_papers(config):
    with lstm_rows_whole():  # each row's units as one loop (from 32 hidden units up): zoneout, dropout, projection
        check_against_the_papers(config)


@pytest.mark.parametrize("mode", MODES)
def test_packed_unsorted_engines_agree_and_eval_matches_each_sequence_alone(mode):
    """Packed input with unsorted lengths: the fast path equals the readable engine in training (same masks),
    and in evaluation each sequence's output equals running it alone through the naive loop."""
    gen = torch.Generator().manual_seed(zlib.crc32(mode.encode()))
    config = (mode, True, 0.3, 0.25, 0.2, "ours")
    ours = _random_module(config, gen, batch_first=True)
    reference = _random_module(config[:-1] + ("reference",), torch.Generator().manual_seed(zlib.crc32(mode.encode())),
                               batch_first=True)
    batch, steps = 4, 6
    x = torch.randn(batch, steps, ours.input_size, generator=gen, dtype=DTYPE)
    lengths = random_lengths(gen, batch, steps)
    results = []
    for module in (ours, reference):
        x_leaf = x.clone().requires_grad_()
        torch.manual_seed(3)
        outs = flat(module(pack_padded_sequence(x_leaf, lengths, batch_first=True, enforce_sorted=False)))
        results.append((outs, _loss_and_grads(outs, [x_leaf, *module.parameters()])))
    for a, b in zip(results[0][0] + list(results[0][1]), results[1][0] + list(results[1][1])):
        torch.testing.assert_close(a, b, atol=TOL, rtol=0)

    ours.eval()
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    output, state = ours(packed)
    padded, _ = torch.nn.utils.rnn.pad_packed_sequence(output, batch_first=True)
    h_n = state[0] if mode == "LSTM" else state
    for k in range(batch):
        alone, alone_state = naive(ours, x[k, :lengths[k]].unsqueeze(1), None, 0)
        torch.testing.assert_close(padded[k, :lengths[k]], alone[:, 0], atol=TOL, rtol=0)
        alone_h = alone_state[0] if mode == "LSTM" else alone_state
        torch.testing.assert_close(h_n[:, k], alone_h[:, 0], atol=TOL, rtol=0)


@pytest.mark.parametrize("impl", ["ours", "reference"])
@pytest.mark.parametrize("mode", MODES)
def test_gradcheck_every_variant(mode, impl):
    name, kwargs = module_kwargs(mode)
    for variant in (dict(layer_norm=True), dict(recurrent_dropout=0.4), dict(zoneout=0.3)):
        torch.manual_seed(0)
        module = getattr(rnn, name)(3, 4, num_layers=2, bidirectional=True, dtype=DTYPE, impl=impl, **kwargs,
                                    **variant)
        x = torch.randn(3, 2, 3, dtype=DTYPE, requires_grad=True)
        params = tuple(module.parameters())

        def run(x, *weights):
            torch.manual_seed(1)  # the same masks at every evaluation
            return flat(torch.func.functional_call(module, dict(zip(dict(module.named_parameters()), weights)),
                                                   (x,)))
        # fast mode: one random projection of the Jacobian (every entry of it is held to the papers above)
        assert torch.autograd.gradcheck(run, (x, *params), fast_mode=True), (mode, variant)


def test_gradcheck_lstm_with_its_units_split_between_threads():
    torch.manual_seed(0)
    for variant in (dict(), dict(zoneout=0.3), dict(weight_drop=0.3)):
        module = rnn.LSTM(2, 3, bidirectional=True, dtype=DTYPE, impl="ours", **variant)
        x = torch.randn(4, 3, 2, dtype=DTYPE, requires_grad=True)
        lengths = torch.tensor([2, 4, 1])

        def run(x, *weights):
            torch.manual_seed(1)
            packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
            return flat(torch.func.functional_call(module, dict(zip(dict(module.named_parameters()), weights)),
                                                   (packed,)))
        with lstm_units_split():
            assert torch.autograd.gradcheck(run, (x, *module.parameters())), variant


@pytest.mark.parametrize("mode", MODES)
def test_seeded_training_is_deterministic_and_masks_differ_between_calls(mode):
    name, kwargs = module_kwargs(mode)
    module = getattr(rnn, name)(3, 8, recurrent_dropout=0.5, zoneout=0.5, **kwargs)
    x = torch.randn(5, 2, 3)
    runs = []
    for seed in (1, 1, 2):
        torch.manual_seed(seed)
        runs.append(flat(module(x))[0])
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])
    module.eval()
    assert torch.equal(flat(module(x))[0], flat(module(x))[0])


def test_recurrent_dropout_keeps_one_mask_per_sequence():
    """With no input the state is driven by W_hh h only: a unit dropped at step 1 is dropped at every step."""
    torch.manual_seed(0)
    module = rnn.RNN(1, 6, bias=False, recurrent_dropout=0.5, impl="reference")
    with torch.no_grad():
        module.weight_ih_l0.zero_()
        module.weight_hh_l0.copy_(torch.eye(6))
    h0 = torch.ones(1, 3, 6)
    torch.manual_seed(4)
    output, _ = module(torch.zeros(4, 3, 1), h0)  # h_t = tanh(mask * h_{t-1})
    alive = output[0] != 0  # (3, 6)
    assert 0 < alive.sum() < alive.numel()
    for t in range(1, 4):
        assert torch.equal(output[t] != 0, alive)


def test_zoneout_evaluation_is_the_expectation_of_training():
    torch.manual_seed(0)
    module = rnn.GRU(2, 3, zoneout=0.4, dtype=DTYPE)
    x = torch.randn(1, 1, 2, dtype=DTYPE)  # one step: training is p * h0 + (1 - p) * h~ on average
    h0 = torch.randn(1, 1, 3, dtype=DTYPE)
    samples = torch.stack([module(x.expand(1, 20000, 2), h0.expand(1, 20000, 3))[0] for _ in range(5)])
    module.eval()
    expected = module(x, h0)[0]
    torch.testing.assert_close(samples.mean((0, 2)), expected[:, 0], atol=0.01, rtol=0)


def test_off_by_default_identical_to_torch_and_no_extra_parameters():
    torch.manual_seed(0)
    theirs = torch.nn.LSTM(3, 4, num_layers=2)
    torch.manual_seed(0)
    ours = rnn.LSTM(3, 4, num_layers=2)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    torch.manual_seed(0)
    normed = rnn.LSTM(3, 4, num_layers=2, layer_norm=True)
    for name, value in theirs.state_dict().items():  # layer norm draws nothing: the same weights as torch.nn
        assert torch.equal(normed.state_dict()[name], value)
    assert torch.equal(normed.ln_gain_c_l1, torch.ones(4)) and torch.equal(normed.ln_shift_hh_l0, torch.zeros(16))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="zoneout"):
        rnn.LSTM(2, 3, zoneout=1.0)
    with pytest.raises(ValueError, match="recurrent_dropout"):
        rnn.GRU(2, 3, recurrent_dropout=-0.1)
    with pytest.raises(TypeError, match="layer_norm"):
        rnn.RNN(2, 3, layer_norm=1)
    with pytest.raises(ValueError, match="native"):
        rnn.LSTM(2, 3, layer_norm=True, impl="native")


def test_inspection_sees_the_variants():
    torch.manual_seed(0)
    module = rnn.LSTM(2, 3, layer_norm=True, zoneout=0.5)
    x = torch.randn(6, 2, 2)
    torch.manual_seed(1)
    expected = module(x)
    with rnn.inspect(module) as trace:
        torch.manual_seed(1)
        output, (h_n, c_n) = module(x)
    torch.testing.assert_close(output, expected[0])
    torch.testing.assert_close(trace[0, 0]["h"], output)
    torch.testing.assert_close(trace[0, 0]["c"][-1], c_n[0])  # the zoned-out cell state, as carried


@pytest.mark.parametrize("impl", ["ours", "reference"])
@pytest.mark.parametrize("mode", MODES)
def test_cells_take_layer_norm_and_zoneout_as_one_step_of_the_layer(mode, impl):
    """A cell with layer_norm and zoneout is the layer run for one step (same weights, same masks)."""
    name, kwargs = module_kwargs(mode)
    torch.manual_seed(0)
    cell = getattr(rnn, name + "Cell")(3, 4, dtype=DTYPE, impl=impl, layer_norm=True, zoneout=0.3, **kwargs)
    layer = getattr(rnn, name)(3, 4, dtype=DTYPE, impl=impl, layer_norm=True, zoneout=0.3, **kwargs)
    with torch.no_grad():
        for param_name, param in cell.named_parameters():
            param.copy_(torch.randn(param.shape, dtype=DTYPE))
            getattr(layer, param_name + "_l0").copy_(param)
    x = torch.randn(5, 3, dtype=DTYPE)
    state = [torch.randn(5, 4, dtype=DTYPE) for _ in range(2 if mode == "LSTM" else 1)]
    for training in (True, False):
        cell.train(training)
        layer.train(training)
        torch.manual_seed(2)
        ours = cell(x, tuple(state) if mode == "LSTM" else state[0])
        torch.manual_seed(2)
        _, final = layer(x.unsqueeze(0), tuple(s.unsqueeze(0) for s in state) if mode == "LSTM" else state[0][None])
        for a, b in zip(ours if mode == "LSTM" else (ours,), final if mode == "LSTM" else (final,)):
            torch.testing.assert_close(a, b[0], atol=TOL, rtol=0)
    cell.train()
    params = tuple(cell.parameters())

    def run(x, *weights):
        torch.manual_seed(1)
        return torch.func.functional_call(cell, dict(zip(dict(cell.named_parameters()), weights)), (x,))
    assert torch.autograd.gradcheck(run, (x.clone().requires_grad_(), *params))


def test_variant_tensors_go_to_the_engine_in_their_declared_order():
    from dataclasses import fields

    from rnnlab.nn.variants import VariantTensors
    names = [f.name for f in fields(VariantTensors)]
    tensors = VariantTensors(**{name: torch.tensor(float(k)) for k, name in enumerate(names)})
    assert [float(t) for t in tensors.as_tuple()] == list(map(float, range(len(names))))
    assert len(names) == 9  # what engine.RecurrentLayer and the C++ engine take after the weights
