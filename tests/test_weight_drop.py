"""weight_drop (DropConnect on the hidden-to-hidden weights) of rnnlab.nn.RNN/LSTM/GRU, against torch.nn run
with the masked weights, in float64 on randomized configurations, on both engines."""

from __future__ import annotations

import itertools
import zlib

import pytest
import torch
import torch.nn.functional as F

from layer_pairs import DTYPE, MODES, flat, make_pair, module_kwargs, pack, random_lengths
from rnnlab import nn as rnn

TOL = 1e-10


def _configs():
    for mode, impl, layers, bidirectional, batch_first, packed in itertools.product(
            MODES, ("ours", "native"), (1, 2), (False, True), (False, True), (False, True)):
        for proj in ((False, True) if mode == "LSTM" else (False,)):
            yield mode, impl, layers, bidirectional, batch_first, packed, proj


CONFIGS = list(_configs())


def _id(config):
    mode, impl, layers, bidirectional, batch_first, packed, proj = config
    return (f"{mode}-{impl}-L{layers}-{'bi' if bidirectional else 'uni'}-{'bf' if batch_first else 'tm'}-"
            f"{'packed' if packed else 'padded'}-{'proj' if proj else 'noproj'}")


def masks_in_parameter_order(module, p: float, seed: int) -> dict:
    """The masks weight_drop draws after torch.manual_seed(seed): 0 or 1 / (1 - p), one per weight_hh."""
    torch.manual_seed(seed)
    return {name: F.dropout(torch.ones_like(weight), p) for name, weight in module.named_parameters()
            if name.startswith("weight_hh")}


@pytest.mark.parametrize("config", CONFIGS, ids=_id)
def test_training_mode_equals_torch_nn_with_masked_weights(config):
    mode, impl, layers, bidirectional, batch_first, packed, proj = config
    gen = torch.Generator().manual_seed(zlib.crc32(_id(config).encode()))
    seq_len, batch, input_size = (int(v) for v in torch.randint(2, 7, (3,), generator=gen))
    hidden = int(torch.randint(3, 7, (1,), generator=gen))
    p = float(torch.empty(1).uniform_(0.1, 0.6, generator=gen))
    options = dict(num_layers=layers, bidirectional=bidirectional, batch_first=batch_first)
    if proj:
        options["proj_size"] = int(torch.randint(1, hidden, (1,), generator=gen))
    torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
    reference, _ = make_pair(mode, input_size, hidden, **options)
    name, extra = module_kwargs(mode)
    ours = getattr(rnn, name)(input_size, hidden, dtype=DTYPE, impl=impl, weight_drop=p, **extra, **options)
    ours.load_state_dict(reference.state_dict())
    masks = masks_in_parameter_order(ours, p, seed=5)
    with torch.no_grad():
        for weight_name, mask in masks.items():
            getattr(reference, weight_name).mul_(mask)

    x = torch.randn(*((batch, seq_len) if batch_first else (seq_len, batch)), input_size, dtype=DTYPE,
                    generator=gen)
    lengths = random_lengths(gen, batch, seq_len) if packed else None
    results = []
    for module in (reference, ours):
        x_leaf = x.clone().requires_grad_()
        torch.manual_seed(5)  # ours draws the same masks again
        outs = flat(module(pack(x_leaf, lengths, batch_first) if packed else x_leaf))
        loss = sum((o * torch.randn(o.shape, generator=torch.Generator().manual_seed(7), dtype=DTYPE)).sum()
                   for o in outs)
        results.append((outs, torch.autograd.grad(loss, [x_leaf, *module.parameters()])))
    (ref_outs, ref_grads), (our_outs, our_grads) = results
    names = [n for n, _ in ours.named_parameters()]
    for got, ref in zip(our_outs, ref_outs):
        torch.testing.assert_close(got, ref, rtol=0, atol=TOL)
    torch.testing.assert_close(our_grads[0], ref_grads[0], rtol=0, atol=TOL)  # the input's gradient
    for weight_name, got, ref in zip(names, our_grads[1:], ref_grads[1:]):
        expected = ref * masks[weight_name] if weight_name in masks else ref  # d(w * mask)/dw = mask
        torch.testing.assert_close(got, expected, rtol=0, atol=TOL)


@pytest.mark.parametrize("mode", MODES)
def test_off_by_default_and_in_eval_mode(mode):
    torch.manual_seed(1)
    reference, plain = make_pair(mode, 4, 5, num_layers=2)
    name, extra = module_kwargs(mode)
    dropped = getattr(rnn, name)(4, 5, num_layers=2, dtype=DTYPE, weight_drop=0.5, **extra)
    dropped.load_state_dict(reference.state_dict())
    x = torch.randn(6, 3, 4, dtype=DTYPE)
    assert plain.weight_drop == 0.0
    for got in (plain(x), dropped.eval()(x)):
        for a, b in zip(flat(got), flat(reference(x))):
            assert torch.equal(a, b) or torch.allclose(a, b, rtol=0, atol=TOL)
    dropped.train()
    first, second = flat(dropped(x))[0], flat(dropped(x))[0]
    assert not torch.allclose(first, second)  # a new mask for each forward call


def test_drop_rate_and_scaling():
    layer = rnn.GRU(4, 64, weight_drop=0.3)
    dropped = layer.call_weights()["weight_hh_l0"]  # (3 * 64, 64)
    assert abs(float((dropped == 0).float().mean()) - 0.3) < 0.02
    kept = dropped != 0
    assert torch.allclose(dropped[kept], layer.weight_hh_l0[kept] / 0.7)
    assert layer.call_weights()["weight_ih_l0"] is layer.weight_ih_l0  # only hidden-to-hidden weights drop
    assert "weight_drop=0.3" in repr(layer)


@pytest.mark.parametrize("bad", [-0.1, 1.0, "0.2", True])
def test_bad_weight_drop_is_refused(bad):
    with pytest.raises(ValueError, match="weight_drop"):
        rnn.LSTM(3, 4, weight_drop=bad)


@pytest.mark.parametrize("mode", MODES)
def test_gradcheck_with_a_fixed_mask(mode):
    torch.manual_seed(0)
    name, extra = module_kwargs(mode)
    layer = getattr(rnn, name)(3, 4, num_layers=2, bidirectional=True, dtype=DTYPE, impl="ours", weight_drop=0.4,
                               **extra)
    names = [n for n, _ in layer.named_parameters()]
    x = torch.randn(5, 2, 3, dtype=DTYPE, requires_grad=True)

    def run(x, *weights):
        torch.manual_seed(9)  # the same masks at every evaluation
        output, _ = torch.func.functional_call(layer, dict(zip(names, weights)), (x,))
        return output

    assert torch.autograd.gradcheck(run, (x, *[p.detach().clone().requires_grad_() for p in layer.parameters()]))
