"""Construction, parameters, state dicts, dropout and errors of rnnlab.nn.RNN/LSTM/GRU, compared with torch.nn."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from layer_pairs import DTYPE, MODES, make_pair, module_kwargs
from rnnlab import nn as rnn

CONFIGS = [dict(), dict(num_layers=3, bidirectional=True), dict(num_layers=2, bias=False, batch_first=True)]


def both(mode, *args, **kwargs):
    """torch.nn and rnnlab modules built from the same seed."""
    name, extra = module_kwargs(mode)
    torch.manual_seed(5)
    reference = getattr(torch.nn, name)(*args, **extra, **kwargs)
    torch.manual_seed(5)
    ours = getattr(rnn, name)(*args, **extra, **kwargs)
    return reference, ours


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("options", CONFIGS + [dict(proj_size=3, num_layers=2, bidirectional=True)])
def test_same_parameters_and_initialisation(mode, options):
    if "proj_size" in options and mode != "LSTM":
        pytest.raises(ValueError, both, mode, 6, 8, **options)
        return
    reference, ours = both(mode, 6, 8, **options)
    ref_params, our_params = dict(reference.named_parameters()), dict(ours.named_parameters())
    assert list(ref_params) == list(our_params)
    for name in ref_params:
        assert ref_params[name].shape == our_params[name].shape
        assert torch.equal(ref_params[name], our_params[name]), name  # same draws from the same seed
        assert our_params[name].abs().max() <= 1 / math.sqrt(8)
    assert [[p.shape for p in layer] for layer in reference.all_weights] == \
           [[p.shape for p in layer] for layer in ours.all_weights]
    assert repr(reference).replace("torch.nn", "") == repr(ours)


@pytest.mark.parametrize("mode", MODES)
def test_state_dict_round_trips_both_ways(mode):
    options = dict(num_layers=2, bidirectional=True, proj_size=2) if mode == "LSTM" else dict(num_layers=2)
    reference, ours = make_pair(mode, 3, 5, **options)  # torch -> ours (strict)
    x = torch.randn(4, 2, 3, dtype=DTYPE)
    name, extra = module_kwargs(mode)
    fresh_torch = getattr(torch.nn, name)(3, 5, dtype=DTYPE, **extra, **options)
    fresh_torch.load_state_dict(ours.state_dict())  # ours -> torch (strict)
    for module in (ours, fresh_torch):
        got, want = module(x), reference(x)
        torch.testing.assert_close(got[0], want[0], rtol=0, atol=1e-12)


def test_dtype_and_device_arguments():
    lstm = rnn.LSTM(3, 4, dtype=torch.float64, device="cpu")
    assert all(p.dtype == torch.float64 and p.device.type == "cpu" for p in lstm.parameters())
    assert lstm.float().weight_ih_l0.dtype == torch.float32


def _identity_probe(p: float) -> rnn.RNN:
    """2-layer relu RNN whose second layer returns its own input: h1_t = relu(I x1_t) = x1_t for x1 >= 0."""
    model = rnn.RNN(6, 6, num_layers=2, nonlinearity="relu", dropout=p, impl="ours", dtype=DTYPE)
    with torch.no_grad():
        model.weight_ih_l0.uniform_(0.0, 1.0)
        model.weight_hh_l0.uniform_(0.0, 0.1)
        model.bias_ih_l0.fill_(0.1)
        model.weight_ih_l1.copy_(torch.eye(6))
        for name in ("weight_hh_l1", "bias_hh_l0", "bias_ih_l1", "bias_hh_l1"):
            getattr(model, name).zero_()
    return model


def test_dropout_between_layers_keeps_the_right_rate_and_rescales():
    torch.manual_seed(0)
    p = 0.3
    model = _identity_probe(p)
    x = torch.rand(50, 40, 6, dtype=DTYPE)  # positive inputs, so layer 0 outputs are positive
    with rnn.inspect(model) as trace:
        output, _ = model(x)
    layer0 = trace[0, 0]["h"]  # (T, N, 6) before dropout
    kept = output != 0
    keep_rate = kept.double().mean().item()
    assert abs(keep_rate - (1 - p)) < 0.02  # 12,000 draws: sd ~ 0.004
    torch.testing.assert_close(output[kept], layer0[kept] / (1 - p))


def test_dropout_is_deterministic_under_a_seed_and_off_in_eval():
    model = rnn.GRU(4, 5, num_layers=3, dropout=0.5, impl="ours")
    x = torch.randn(7, 3, 4)
    torch.manual_seed(1)
    first, _ = model(x)
    torch.manual_seed(1)
    again, _ = model(x)
    torch.manual_seed(2)
    other, _ = model(x)
    assert torch.equal(first, again) and not torch.equal(first, other)
    model.eval()
    reference = torch.nn.GRU(4, 5, num_layers=3, dropout=0.5).eval()
    reference.load_state_dict(model.state_dict())
    torch.testing.assert_close(model(x)[0], reference(x)[0])


def test_dropout_warning_for_one_layer():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rnn.LSTM(3, 4, dropout=0.2)
    assert any("num_layers greater than 1" in str(w.message) for w in caught)


@pytest.mark.parametrize("args,kwargs", [
    ((3, 4), dict(dropout=1.5)), ((3, 4), dict(dropout=True)), ((3, 4), dict(bias=1)),
    ((3, 4), dict(batch_first="yes")), ((3.0, 4), {}), ((0, 4), {}), ((3, 4.0), {}), ((3, 0), {}),
    ((3, 4), dict(num_layers=0)), ((3, 4), dict(proj_size=-1)), ((3, 4), dict(proj_size=4)),
])
def test_constructor_errors_match_torch(args, kwargs):
    with pytest.raises(Exception) as expected:
        torch.nn.LSTM(*args, **kwargs)
    with pytest.raises(expected.type) as got:
        rnn.LSTM(*args, **kwargs)
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("name", ["RNN", "GRU"])
def test_rnn_and_gru_refuse_proj_size_like_torch(name):
    for kwargs in (dict(proj_size=2), dict(nonlinearity="sigmoid") if name == "RNN" else dict(proj_size=1)):
        with pytest.raises(Exception) as expected:
            getattr(torch.nn, name)(3, 4, **kwargs)
        with pytest.raises(expected.type) as got:
            getattr(rnn, name)(3, 4, **kwargs)
        assert str(got.value) == str(expected.value)


def test_unknown_impl_is_refused():
    with pytest.raises(ValueError, match="impl must be one of"):
        rnn.GRU(3, 4, impl="fast")


def _forward_error_cases(mode):
    lstm = mode == "LSTM"
    state = lambda *shape: (torch.randn(*shape), torch.randn(*shape)) if lstm else torch.randn(*shape)  # noqa
    x = torch.randn(5, 2, 3)
    cases = [
        (torch.randn(5, 2, 2, 3), None),  # rank 4
        (torch.randn(5, 2, 7), None),  # wrong input_size
        (x.double(), None),  # wrong dtype
        (x, state(2, 4)),  # batched input, 2-D hx
        (torch.randn(5, 3), state(1, 1, 4)),  # unbatched input, 3-D hx
        (x, state(2, 2, 4)),  # wrong number of layers
        (x, state(1, 3, 4)),  # wrong batch
        (x, state(1, 2, 5)),  # wrong hidden size
        (torch.nn.utils.rnn.pack_sequence([torch.randn(4, 7), torch.randn(2, 7)]), None),  # packed, wrong size
    ]
    if lstm:
        cases += [(x, (torch.randn(1, 2, 4), torch.randn(1, 2, 5))), (x, (torch.randn(1, 2, 4), torch.randn(2, 4)))]
    return cases


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("impl", ["ours", "native"])
def test_forward_errors_match_torch(mode, impl):
    name, extra = module_kwargs(mode)
    reference = getattr(torch.nn, name)(3, 4, **extra)
    ours = getattr(rnn, name)(3, 4, impl=impl, **extra)
    for x, hx in _forward_error_cases(mode):
        with pytest.raises(Exception) as expected:
            reference(x, hx)
        with pytest.raises(expected.type) as got:
            ours(x, hx)
        if "mat1 and mat2" in str(expected.value):  # torch.nn.LSTM skips its check on packed input
            assert str(got.value) == "input.size(-1) must be equal to input_size. Expected 3, got 7"
        else:
            assert str(got.value) == str(expected.value)


def test_projection_error_names_both_shapes():
    lstm = rnn.LSTM(3, 4, proj_size=2)
    with pytest.raises(RuntimeError, match=r"Expected hidden\[0\] size \(1, 2, 2\), got \[1, 2, 4\]"):
        lstm(torch.randn(5, 2, 3), (torch.randn(1, 2, 4), torch.randn(1, 2, 4)))
