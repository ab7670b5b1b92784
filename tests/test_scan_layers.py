"""MinGRU, MinLSTM (Feng et al. 2024) and RGLRU (De et al. 2024) against their papers' equations as per-step loops
(``rnnlab.nn.reference``), in float64 on every combination of layers, directions, bias, h_0 and the scan's form:
outputs, h_n and every gradient; packed with unsorted lengths, unbatched, batch_first; gradcheck; inspect."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnlab import nn as rnn
from rnnlab.nn import registry, scan_layers

DTYPE = torch.float64
TOL = 1e-10
ARCHS = ("mingru", "minlstm", "rglru")
IMPLS = {"mingru": ("ours", "reference", "log"), "minlstm": ("ours", "reference", "log"),
         "rglru": ("ours", "reference")}  # RG-LRU's b may be negative: no log space
CONFIGS = [(arch, *rest) for arch in ARCHS
           for rest in itertools.product((1, 2, 3), (False, True), (False, True), (False, True), IMPLS[arch])]


def _module(layers, bidirectional, bias, impl, seed, arch="mingru", **options):
    torch.manual_seed(seed)
    return registry.get(arch).layer(3, 4, num_layers=layers, bidirectional=bidirectional, bias=bias, impl=impl,
                                    dtype=DTYPE, **options)


def _grads(output, leaves):
    weights = torch.randn(output.shape, generator=torch.Generator().manual_seed(7), dtype=DTYPE)
    return torch.autograd.grad((output * weights).sum(), leaves)


@pytest.mark.parametrize("arch, layers, bidirectional, bias, with_h0, impl", CONFIGS)
def test_matches_the_paper_with_every_gradient(arch, layers, bidirectional, bias, with_h0, impl):
    seed = layers * 16 + bidirectional * 8 + bias * 4 + with_h0 * 2 + (impl == "log") + 100 * ARCHS.index(arch)
    module = _module(layers, bidirectional, bias, impl, seed, arch)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(6, 2, 3, generator=gen, dtype=DTYPE, requires_grad=True)  # (L, N, H_in)
    dirs = 2 if bidirectional else 1
    h0 = torch.randn(layers * dirs, 2, 4, generator=gen, dtype=DTYPE).abs().requires_grad_() if with_h0 else None
    leaves = [x, *([h0] if with_h0 else []), *module.parameters()]
    results = []
    for run in (registry.get(arch).reference, lambda m, x, hx: m(x, hx)):
        output, h_n = run(module, x, h0)
        results.append(((output, h_n), _grads(torch.cat([output.flatten(), h_n.flatten()]), leaves)))
    (expected, expected_grads), (got, got_grads) = results
    for g, e in zip([*got, *got_grads], [*expected, *expected_grads]):
        torch.testing.assert_close(g, e, atol=TOL, rtol=1e-9 if impl == "log" else 0)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_unsorted_each_sequence_as_if_alone(arch, bidirectional):
    module = _module(2, bidirectional, True, "ours", 3, arch, batch_first=True)
    x = torch.randn(4, 7, 3, dtype=DTYPE)
    lengths = torch.tensor([3, 7, 1, 5])
    packed_out, h_n = module(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    padded, got_lengths = pad_packed_sequence(packed_out, batch_first=True)
    assert got_lengths.tolist() == lengths.tolist()
    for k, length in enumerate(lengths.tolist()):
        alone, alone_h_n = module(x[k:k + 1, :length])
        torch.testing.assert_close(padded[k, :length], alone[0], atol=TOL, rtol=0)
        torch.testing.assert_close(h_n[:, k], alone_h_n[:, 0], atol=TOL, rtol=0)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_fused_engine_packed_with_h0_matches_the_torch_operations_with_every_gradient(arch, bidirectional, monkeypatch):
    """The C++ loop with the gates inside (impl="ours") against the same layer in torch operations
    (impl="reference": coefficients, masks past each end, flips for the reverse direction, linear_scan)."""
    calls = []
    original = scan_layers.FusedScan.apply
    monkeypatch.setattr(scan_layers.FusedScan, "apply", lambda *args: calls.append(args[0]) or original(*args))
    ours, reference = (_module(2, bidirectional, True, impl, 11, arch, batch_first=True)
                       for impl in ("ours", "reference"))
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(4, 7, 3, generator=gen, dtype=DTYPE, requires_grad=True)
    h0 = torch.randn(2 * (1 + bidirectional), 4, 4, generator=gen, dtype=DTYPE, requires_grad=True)
    lengths = torch.tensor([3, 7, 1, 5])
    results = []
    for module in (ours, reference):
        packed_out, h_n = module(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False), h0)
        padded, _ = pad_packed_sequence(packed_out, batch_first=True)
        padded = padded * (torch.arange(7) < lengths[:, None]).unsqueeze(-1)  # past each end: not an output
        results.append((padded, h_n, *_grads(torch.cat([padded.flatten(), h_n.flatten()]),
                                               [x, h0, *module.parameters()])))
    assert calls == [registry.get(arch).layer.kind] * (2 * (1 + bidirectional))  # every layer and direction fused
    for got, expected in zip(*results):
        torch.testing.assert_close(got, expected, atol=TOL, rtol=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_batch_first_and_unbatched_are_the_same_numbers(arch):
    module = _module(2, True, True, "reference", 5, arch)
    batch_first = _module(2, True, True, "reference", 5, arch, batch_first=True)
    x = torch.randn(6, 3, 3, dtype=DTYPE)  # (L, N, H_in)
    output, h_n = module(x)
    assert output.shape == (6, 3, 8) and h_n.shape == (4, 3, 4)
    torch.testing.assert_close(batch_first(x.transpose(0, 1))[0], output.transpose(0, 1))
    alone, alone_h_n = module(x[:, 1])  # unbatched (L, H_in)
    torch.testing.assert_close(alone, output[:, 1])
    torch.testing.assert_close(alone_h_n, h_n[:, 1])


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("impl", ["ours", "reference"])
def test_gradcheck(arch, impl):
    module = _module(2, True, True, impl, 2, arch)
    x = torch.randn(4, 2, 3, dtype=DTYPE, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, *params: module(x)[0], (x, *module.parameters()))


@pytest.mark.parametrize("arch, gates", [("mingru", ("z",)), ("minlstm", ("f'", "i'")), ("rglru", ("a", "i"))])
def test_inspect_shows_the_gates_and_h(arch, gates):
    module = _module(1, True, True, "reference", 1, arch, batch_first=True)
    x = torch.randn(2, 5, 3, dtype=DTYPE)
    with rnn.inspect(module) as trace:
        output, _ = module(x)
    assert tuple(trace[0, 1]) == (*gates, "h")
    for gate in gates:
        assert trace[0, 0][gate].shape == (2, 5, 4) and ((trace[0, 0][gate] > 0) & (trace[0, 0][gate] < 1)).all()
    if arch == "minlstm":  # the normalised gates sum to one
        torch.testing.assert_close(trace[0, 0]["f'"] + trace[0, 0]["i'"], torch.ones(2, 5, 4, dtype=DTYPE))
    torch.testing.assert_close(torch.cat([trace[0, 0]["h"], trace[0, 1]["h"]], -1), output)


def test_parameters_and_mistakes():
    module = rnn.MinGRU(3, 4, num_layers=2, bidirectional=True)
    assert {name: tuple(p.shape) for name, p in module.named_parameters()} == {
        "weight_ih_l0": (8, 3), "bias_ih_l0": (8,), "weight_ih_l0_reverse": (8, 3), "bias_ih_l0_reverse": (8,),
        "weight_ih_l1": (8, 8), "bias_ih_l1": (8,), "weight_ih_l1_reverse": (8, 8), "bias_ih_l1_reverse": (8,)}
    with pytest.raises(RuntimeError, match="input_size"):
        module(torch.randn(5, 2, 4))
    with pytest.raises(RuntimeError, match="Expected hidden size"):
        module(torch.randn(5, 2, 3), torch.zeros(1, 2, 4))
    with pytest.raises(ValueError, match="impl must be"):
        rnn.MinGRU(3, 4, impl="native")
    packed = pack_padded_sequence(torch.randn(5, 2, 3), torch.tensor([5, 2]))
    with pytest.raises(ValueError, match="packed sequences with impl='reference'"):
        rnn.MinGRU(3, 4, impl="log")(packed)


def test_rglru_decays_start_where_the_paper_puts_them():
    torch.manual_seed(0)
    module = rnn.RGLRU(3, 2000, dtype=DTYPE)
    decay = torch.sigmoid(module.lambda_l0) ** 8  # a_t at r_t = 1
    assert decay.min() >= 0.9 - 1e-12 and decay.max() <= 0.999 + 1e-12
    assert abs(decay.mean().item() - 0.9495) < 0.005  # uniform on [0.9, 0.999]
    with pytest.raises(ValueError, match="log-space scan does not apply"):
        rnn.RGLRU(3, 4, impl="log")
    assert [name for name, _ in rnn.RGLRU(3, 4).named_parameters()] == ["weight_ih_l0", "bias_ih_l0", "lambda_l0"]


@pytest.mark.parametrize("arch", ARCHS)
def test_in_float32_the_fused_engine_stays_within_1e5_of_float64_at_4096_steps(arch):
    torch.manual_seed(1)
    exact = registry.get(arch).layer(8, 64, dtype=DTYPE)  # one stream: its 64 units split between the threads
    fused = registry.get(arch).layer(8, 64)
    fused.load_state_dict({k: v.float() for k, v in exact.state_dict().items()})
    x = torch.randn(4096, 1, 8, dtype=DTYPE)  # (L, N = 1, H_in)
    expected, expected_h_n = registry.get(arch).reference(exact, x, None)
    got, got_h_n = fused(x.float())
    scale = expected.abs().max()
    assert ((got.double() - expected).abs().max() / scale).item() < 1e-5
    assert ((got_h_n.double() - expected_h_n).abs().max() / scale).item() < 1e-5


@pytest.mark.parametrize("impl", ["ours", "reference"])
def test_saturated_gates_keep_every_gradient_finite(impl):
    """minLSTM with both gates at sigmoid(-100) (f + i underflows when squared) and RG-LRU with a -> 1
    (the exact derivative of sqrt(1 - a^2) is infinite there; Griffin's bound holds it) in float32."""
    for arch in ("minlstm", "rglru"):
        module = registry.get(arch).layer(3, 4, impl=impl)
        with torch.no_grad():
            module.bias_ih_l0.fill_(-100.0 if arch == "minlstm" else 0.0)
            if arch == "rglru":
                module.bias_ih_l0[:4] = -30.0  # r = sigmoid(-30): a = sigmoid(lambda)^(8 r) rounds to 1
        x = torch.randn(5, 2, 3, requires_grad=True)
        output, h_n = module(x)
        output.sum().backward()
        grads = [x.grad, *(p.grad for p in module.parameters())]
        assert torch.isfinite(output).all() and all(torch.isfinite(g).all() for g in grads), arch


@pytest.mark.parametrize("features", [2, 40])
def test_the_input_projection_equals_f_linear_with_every_gradient(features):
    """``project`` (W_ih x_t + b_ih with its own backward) against ``F.linear`` in float64: few input features
    over many steps take the transposed products (the weight and input gradients), more features the direct
    ones."""
    torch.manual_seed(features)
    x = torch.randn(4, 3000, features, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(24, features, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(24, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(4, 3000, 24, dtype=torch.float64)
    got = scan_layers.project(x, weight, bias)
    expected = torch.nn.functional.linear(x, weight, bias)
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)
    grads = torch.autograd.grad((got * upstream).sum(), (x, weight, bias))
    expected_grads = torch.autograd.grad((expected * upstream).sum(), (x, weight, bias))
    for g, e in zip(grads, expected_grads):
        torch.testing.assert_close(g, e, atol=1e-9, rtol=1e-12)
    small = (torch.randn(3, 5, features, dtype=torch.float64, requires_grad=True),
             torch.randn(6, features, dtype=torch.float64, requires_grad=True), None)
    assert torch.autograd.gradcheck(scan_layers.project, small)
    assert torch.autograd.gradgradcheck(scan_layers.project, small)


@pytest.mark.parametrize("arch", ARCHS)
def test_under_bf16_autocast_the_layers_train_near_their_float32_numbers(arch):
    """``--precision bf16`` (autocast) on the fused engine: the projection runs in bf16, the scan in float32
    (the engine has no bf16 loop), and every gradient comes back in the parameters' dtype."""
    torch.manual_seed(3)
    module = registry.get(arch).layer(6, 16, num_layers=2, bidirectional=True)
    x = torch.randn(4, 30, 6)  # (L, N, H_in)
    expected, _ = module(x)
    expected_grads = torch.autograd.grad(expected.square().sum(), list(module.parameters()))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, h_n = module(x)
        assert h_n.dtype == torch.float32
    grads = torch.autograd.grad(got.float().square().sum(), list(module.parameters()))
    assert ((got.float() - expected).abs().max() / expected.abs().max()).item() < 0.05
    for grad, want, parameter in zip(grads, expected_grads, module.parameters()):
        assert grad.dtype == parameter.dtype
        assert ((grad - want).norm() / want.norm()).item() < 0.1
