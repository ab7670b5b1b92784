"""``rnnlab.nn.Mamba``: the paper's block against its reference loop (float64, every gradient, both forms of
the scan, states in and out, packed and bidirectional), mamba.py's weights, the paper's initialisation, and the
state carried from call to call (a one-token step)."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnlab.nn import Mamba, inspect, reference

DTYPE = torch.float64


def _layer(**options) -> Mamba:
    torch.manual_seed(0)
    options = {"d_state": 4, "expand": 2, **options}
    return Mamba(3, 6, dtype=DTYPE, **options)


def _state(layer: Mamba, batch: int, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(shape, generator=gen, dtype=DTYPE) for shape in layer.state_shapes(batch))


def _all_close(got, want, tolerance=1e-10):
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=tolerance, rtol=0)


@pytest.mark.parametrize("impl", ["ours", "reference"])
@pytest.mark.parametrize("options", [dict(num_layers=2, bidirectional=True, dropout=0.3),
                                     dict(num_layers=3, d_conv=2, bias=True, conv_bias=False, dt_rank=3),
                                     dict(d_conv=1, expand=1.5)])
@pytest.mark.parametrize("given_state", [False, True])
def test_matches_the_paper_step_by_step_with_every_gradient(impl, options, given_state):
    layer = _layer(impl=impl, **options).train()
    x = torch.randn(7, 2, 3, dtype=DTYPE, requires_grad=True)  # (L, N, H_in)
    hx = tuple(s.requires_grad_() for s in _state(layer, 2)) if given_state else None
    torch.manual_seed(5)
    out, (windows, states) = layer(x, hx)
    torch.manual_seed(5)
    want, (want_windows, want_states) = reference.mamba_layer(layer, x, hx)
    _all_close((out, windows, states), (want, want_windows, want_states))
    leaves = [x, *layer.parameters(), *(hx or ())]
    weights = [torch.randn_like(t) for t in (out, windows, states)]
    got = torch.autograd.grad(sum((t * w).sum() for t, w in zip((out, windows, states), weights)), leaves)
    expected = torch.autograd.grad(sum((t * w).sum() for t, w in zip((want, want_windows, want_states), weights)),
                                   leaves)
    _all_close(got, expected)


def test_gradcheck():
    layer = _layer(num_layers=2, d_state=2, expand=1)
    x = torch.randn(5, 2, 3, dtype=DTYPE, requires_grad=True)
    hx = tuple(s.requires_grad_() for s in _state(layer, 2))
    assert torch.autograd.gradcheck(lambda x, w, s: layer(x, (w, s))[0], (x, *hx))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_sequences_end_where_they_end(bidirectional):
    """Each sequence of a packed batch, output and final state, equals itself alone: padding changes nothing."""
    layer = _layer(num_layers=2, bidirectional=bidirectional, batch_first=True)
    x = torch.randn(4, 9, 3, dtype=DTYPE)
    lengths = torch.tensor([9, 2, 5, 1])
    packed, (windows, states) = layer(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    padded, _ = pad_packed_sequence(packed, batch_first=True)
    for k, length in enumerate(lengths.tolist()):
        alone, (alone_windows, alone_states) = layer(x[k:k + 1, :length])
        torch.testing.assert_close(padded[k, :length], alone[0])
        torch.testing.assert_close(windows[:, k], alone_windows[:, 0])
        torch.testing.assert_close(states[:, k], alone_states[:, 0])


@pytest.mark.parametrize("grad", [True, False])  # each block stepped in torch operations; without a gradient, one C++ call
def test_the_state_carries_a_sequence_on_one_token_at_a_time(grad):
    layer = _layer(num_layers=2, conv_bias=grad).eval()
    x = torch.randn(8, 2, 3, dtype=DTYPE)
    whole, final = layer(x)
    with torch.set_grad_enabled(grad):
        first, state = layer(x[:3])
        steps = [first]
        for t in range(3, 8):  # a step: one token with the state carried
            out, state = layer(x[t:t + 1], state)
            steps.append(out)
    torch.testing.assert_close(torch.cat(steps), whole, atol=1e-12, rtol=0)
    _all_close(state, final, 1e-12)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("batch", [1, 3, 11])  # up to 8 rows the C++ step's own products, beyond torch's GEMM
@pytest.mark.parametrize("options", [dict(num_layers=3, bias=True), dict(num_layers=1, conv_bias=False, d_conv=2),
                                     dict(num_layers=2, d_conv=1, expand=1.5, batch_first=True)])
def test_the_one_call_step_equals_the_step_in_torch_operations(dtype, batch, options):
    torch.manual_seed(2)
    layer = Mamba(5, 8, d_state=4, dtype=dtype, **options).eval()
    state = tuple(s.to(dtype) for s in _state(layer, batch))
    x = torch.randn(batch, 1, 5, dtype=dtype) if layer.batch_first else torch.randn(1, batch, 5, dtype=dtype)
    want, want_state = layer(x, state)  # with a gradient to record: each block's step in torch operations
    with torch.no_grad():
        got, got_state = layer(x, state)  # without: the whole stack in one C++ call
        unbatched, unbatched_state = layer(x[0] if not layer.batch_first else x[:, 0],
                                           tuple(s[:, 0] for s in state)) if batch == 1 else (None, None)
    tolerance = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(got, want.detach(), atol=tolerance, rtol=0)
    _all_close(got_state, [s.detach() for s in want_state], tolerance)
    if unbatched is not None:  # (L, H) input and (layers, E, ·) states
        torch.testing.assert_close(unbatched, want.detach().reshape(1, 8), atol=tolerance, rtol=0)
        _all_close(unbatched_state, [s.detach()[:, 0] for s in want_state], tolerance)


def test_mamba_py_weights_load_and_compute_the_same():
    mambapy = pytest.importorskip("mambapy.mamba", reason="the dev extra installs mambapy")
    config = mambapy.MambaConfig(d_model=8, n_layers=2, d_state=4, pscan=False)
    torch.manual_seed(3)
    theirs = mambapy.Mamba(config).double()
    ours = Mamba(8, 8, num_layers=2, d_state=4, batch_first=True, dtype=DTYPE)
    assert set(theirs.state_dict()) == {k for k in ours.state_dict() if k.startswith("layers.")}
    ours.load_state_dict(theirs.state_dict(), strict=False)  # ours adds only the final norm, weight 1
    x = torch.randn(2, 11, 8, dtype=DTYPE)
    want = F.rms_norm(theirs(x), (8,), eps=1e-5)
    torch.testing.assert_close(ours(x)[0], want, atol=1e-10, rtol=0)


@torch.no_grad()
def test_the_paper_s_initialisation_survives_resetting_every_module():
    layer = Mamba(4, 32, num_layers=4, d_state=8, dtype=DTYPE)
    for module in layer.modules():  # as the training loop seeds a run
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    mixer = layer.layers[2].mixer
    torch.testing.assert_close(-torch.exp(mixer.A_log), -torch.arange(1.0, 9.0, dtype=DTYPE).expand(64, 8))
    dt = F.softplus(mixer.dt_proj.bias)
    assert bool((dt >= 0.001 * (1 - 1e-9)).all()) and bool((dt <= 0.1 * (1 + 1e-9)).all())
    assert dt.log().std() > 0.8  # log-uniform over [log 0.001, log 0.1]: std 4.6 / sqrt(12) = 1.33
    bound = mixer.dt_rank ** -0.5
    assert mixer.dt_rank == 2 and float(mixer.dt_proj.weight.abs().max()) <= bound
    assert bool((mixer.D == 1).all())
    linear_bound = 1 / 64 ** 0.5  # torch.nn.Linear's kaiming-uniform bound over 64 inputs, halved (4 layers)
    assert float(mixer.out_proj.weight.abs().max()) <= linear_bound / 2 + 1e-12
    assert float(mixer.out_proj.weight.abs().max()) > 0.8 * linear_bound / 2


def test_inspect_records_what_the_layer_selects():
    layer = _layer(num_layers=2)
    x = torch.randn(6, 2, 3, dtype=DTYPE)
    with inspect(layer) as trace:
        output, _ = layer(x)
    assert set(trace.keys()) == {(0, 0), (1, 0)}
    assert tuple(trace[1, 0]) == ("delta", "state_norm", "h")
    torch.testing.assert_close(trace[1, 0]["h"], output)  # the last layer passes on the normalised stream
    mixer = layer.layers[0].mixer
    assert trace[0, 0]["delta"].shape == (6, 2, mixer.d_inner) and bool((trace[0, 0]["delta"] > 0).all())
    assert trace[0, 0]["state_norm"].shape == (6, 2, mixer.d_inner) and bool((trace[0, 0]["state_norm"] >= 0).all())


def test_mistakes_are_named():
    with pytest.raises(ValueError, match="d_state must be"):
        Mamba(3, 4, d_state=0)
    with pytest.raises(ValueError, match="impl must be"):
        Mamba(3, 4, impl="log")
    layer = _layer()
    with pytest.raises(RuntimeError, match="Expected states of shape"):
        layer(torch.randn(5, 2, 3, dtype=DTYPE), (_state(layer, 2)[0], torch.zeros(1, 2, 12, 3, dtype=DTYPE)))
    with pytest.raises(RuntimeError, match="a pair"):
        layer(torch.randn(5, 2, 3, dtype=DTYPE), torch.zeros(1, 2, 6))


def test_under_bf16_autocast_the_residual_stream_stays_float32():
    """Autocast runs the projections in bf16; the residual stream and the norms stay in the weights' float32
    (a bf16 stream met float32 norm weights: torch's slow path and a warning at every call)."""
    torch.manual_seed(0)
    layer = Mamba(5, 8, num_layers=2, d_state=4, batch_first=True)
    x = torch.randn(2, 6, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, (windows, states) = layer(x)
    assert out.dtype == torch.float32 and states.dtype == torch.float32
    torch.testing.assert_close(out, layer(x)[0], atol=0.1, rtol=0)  # bf16's rounding, not another function
