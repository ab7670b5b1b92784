"""checkpoint_steps: the same outputs and gradients as without it (float64, random configurations, with the
variants' masks), and far less kept for backward on a long sequence."""

from __future__ import annotations

import itertools
import zlib

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from layer_pairs import DTYPE, MODES, flat, module_kwargs, random_lengths
from rnnlab import nn as rnn

TOL = 1e-10


def _configs():
    for mode, impl, packed, variants in itertools.product(MODES, ("ours", "reference"), (False, True), (False, True)):
        yield mode, impl, packed, variants


@pytest.mark.parametrize("config", list(_configs()), ids=lambda c: "-".join(map(str, c)))
def test_same_results_as_without(config):
    mode, impl, packed, variants = config
    gen = torch.Generator().manual_seed(zlib.crc32(str(config).encode()))
    pick = lambda n: int(torch.randint(0, n, (1,), generator=gen))  # noqa: E731
    name, kwargs = module_kwargs(mode)
    options = dict(num_layers=1 + pick(2), bidirectional=bool(pick(2)), batch_first=bool(pick(2)))
    if variants:
        options.update(layer_norm=True, recurrent_dropout=0.3, zoneout=0.2, weight_drop=0.2)
    if mode == "LSTM" and pick(2):
        options["proj_size"] = 2
    steps, batch, features = 5 + pick(20), 1 + pick(4), 2 + pick(3)
    results = []
    for every in (0, 1 + pick(6)):
        torch.manual_seed(0)
        module = getattr(rnn, name)(features, 4, dtype=DTYPE, impl=impl, checkpoint_steps=every, **kwargs, **options)
        x = torch.randn((batch, steps, features) if options["batch_first"] else (steps, batch, features),
                        generator=torch.Generator().manual_seed(1), dtype=DTYPE, requires_grad=True)
        inputs = x
        if packed:
            lengths = random_lengths(torch.Generator().manual_seed(2), batch, steps)
            inputs = pack_padded_sequence(x, lengths, batch_first=options["batch_first"], enforce_sorted=False)
        torch.manual_seed(3)
        outs = flat(module(inputs))
        loss = sum((o * torch.randn(o.shape, generator=torch.Generator().manual_seed(4), dtype=DTYPE)).sum()
                   for o in outs)
        results.append((outs, torch.autograd.grad(loss, [x, *module.parameters()])))
    for a, b in zip(results[0][0] + list(results[0][1]), results[1][0] + list(results[1][1])):
        torch.testing.assert_close(b, a, atol=TOL, rtol=0)


def _bytes_kept_for_backward(checkpoint_steps: int) -> int:
    kept = {}  # storage -> bytes: a view (a segment of x) costs nothing of its own

    def pack(tensor):
        kept[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    torch.manual_seed(0)
    module = rnn.LSTM(8, 32, impl="ours", checkpoint_steps=checkpoint_steps)
    x = torch.randn(400, 4, 8)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        output, _ = module(x)
    output.sum().backward()
    return sum(kept.values())


def test_keeps_far_less_for_backward():
    assert _bytes_kept_for_backward(20) * 10 < _bytes_kept_for_backward(0)


def test_bad_value_is_refused():
    with pytest.raises(ValueError, match="checkpoint_steps"):
        rnn.GRU(2, 3, checkpoint_steps=-1)
    with pytest.raises(ValueError, match="native"):
        rnn.GRU(2, 3, checkpoint_steps=10, impl="native")
