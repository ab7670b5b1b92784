"""``rnnlab.nn.linear_scan``: h_t = a_t * h_{t-1} + b_t, against the recurrence written as a plain loop under
autograd (float64: outputs and the gradients of a, b and h0), gradcheck, and the log-space form's accuracy."""

from __future__ import annotations

import pytest
import torch

from rnnlab.nn import linear_scan

DTYPE = torch.float64


def naive(a, b, h0):
    """The recurrence one step at a time, torch's autograd for the gradients."""
    h = h0 if h0 is not None else torch.zeros_like(b[:, 0])
    steps = []
    for t in range(b.shape[1]):
        h = a[:, t] * h + b[:, t]
        steps.append(h)
    return torch.stack(steps, dim=1)


def _inputs(n, steps, hidden, seed, positive=False, with_h0=True, dtype=DTYPE):
    gen = torch.Generator().manual_seed(seed)
    a = torch.rand(n, steps, hidden, generator=gen, dtype=dtype) * 1.2  # some |a| > 1 too
    b = torch.randn(n, steps, hidden, generator=gen, dtype=dtype)
    h0 = torch.randn(n, hidden, generator=gen, dtype=dtype) if with_h0 else None
    if positive:
        b, h0 = b.abs() + 0.1, h0.abs() + 0.1 if h0 is not None else None
        a = a.clamp(min=0.05)
    else:
        a = a - 0.3  # negative decays too: the scan does not care
    return [t.requires_grad_() if t is not None else None for t in (a, b, h0)]


@pytest.mark.parametrize("impl", ["ours", "reference", "log"])
@pytest.mark.parametrize("with_h0", [True, False])
@pytest.mark.parametrize("n, steps, hidden, seed", [(1, 1, 1, 0), (3, 7, 5, 1), (2, 40, 3, 2), (5, 13, 16, 3)])
def test_matches_the_loop_with_every_gradient(impl, with_h0, n, steps, hidden, seed):
    a, b, h0 = _inputs(n, steps, hidden, seed, positive=impl == "log", with_h0=with_h0)
    leaves = [t for t in (a, b, h0) if t is not None]
    weights = torch.randn(n, steps, hidden, generator=torch.Generator().manual_seed(9), dtype=DTYPE)
    results = []
    for run in (naive, lambda a, b, h0: linear_scan(a, b, h0, impl=impl)):
        h = run(a, b, h0)
        results.append((h, torch.autograd.grad((h * weights).sum(), leaves)))
    (expected, expected_grads), (got, got_grads) = results
    tolerance = 1e-9 if impl == "log" else 1e-12
    torch.testing.assert_close(got, expected, atol=tolerance, rtol=tolerance)
    for g, e in zip(got_grads, expected_grads):
        torch.testing.assert_close(g, e, atol=tolerance, rtol=tolerance)


def test_gradcheck():
    a, b, h0 = _inputs(2, 6, 3, 5)
    for impl in ("ours", "reference"):
        assert torch.autograd.gradcheck(lambda a, b, h0: linear_scan(a, b, h0, impl=impl), (a, b, h0))
    a, b, h0 = _inputs(2, 6, 3, 6, positive=True)
    assert torch.autograd.gradcheck(lambda a, b, h0: linear_scan(a, b, h0, impl="log"), (a, b, h0))


def test_in_float32_the_loop_stays_exact_over_long_sequences_and_the_log_space_form_drifts():
    """The lesson's measurement: relative error against float64 at T = 4,096 with minGRU-like a, b."""
    gen = torch.Generator().manual_seed(0)
    z = torch.rand(4, 4096, 8, generator=gen, dtype=DTYPE) * 0.5 + 0.01  # the update gate
    a, b = 1 - z, z * (torch.rand(4, 4096, 8, generator=gen, dtype=DTYPE) + 0.5)  # a in (0.49, 0.99), b > 0
    exact = naive(a, b, None)
    errors = {impl: ((linear_scan(a.float(), b.float(), impl=impl).double() - exact).abs() / exact.abs()).max().item()
              for impl in ("ours", "reference", "log")}
    assert errors["ours"] < 1e-5 and errors["reference"] < 1e-5
    assert errors["log"] > 3 * errors["reference"]


def test_the_compiled_scan_is_built_and_taken(monkeypatch):
    """On the CPU the default runs the C++ loop (a wide H, split into blocks of units, and non-contiguous
    inputs included), equal to the reference loop."""
    from rnnlab.nn import fast
    assert fast.extension() is not None and fast.usable(torch.empty(0))
    calls = []
    real = fast.extension().scan_forward
    monkeypatch.setattr(fast, "extension", lambda: type("E", (), {
        "scan_forward": staticmethod(lambda *args: (calls.append("forward"), real(*args))[1]),
        "scan_backward": staticmethod(fast._loaded["module"].scan_backward)})())
    a, b, h0 = _inputs(3, 9, 150, 8)
    a_t = a.detach().transpose(0, 1).contiguous().transpose(0, 1).requires_grad_()  # same values, strided
    got = linear_scan(a_t, b, h0)
    expected = linear_scan(a, b, h0, impl="reference")
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)
    assert calls == ["forward"]


def test_mistakes_are_clear():
    a = torch.rand(2, 3, 4)
    with pytest.raises(ValueError, match="same shape"):
        linear_scan(a, torch.rand(2, 3, 5))
    with pytest.raises(ValueError, match="h0 must have shape"):
        linear_scan(a, a, torch.rand(2, 3))
    with pytest.raises(ValueError, match="impl must be one of"):
        linear_scan(a, a, impl="fast")
    with pytest.raises(ValueError, match="needs a > 0, b > 0"):
        linear_scan(a, -a, impl="log")
    with pytest.raises(ValueError, match="empty"):
        linear_scan(a[:, :0], a[:, :0])


def test_the_compiled_scan_flushes_subnormals_and_leaves_the_thread_as_it_was():
    """A state that would fall below float32's smallest normal number (1.2e-38) is zero in the C++ loop (the
    reference keeps the subnormal 1e-40); after the call, float32 arithmetic outside it keeps subnormals."""
    a, b = torch.full((1, 2, 8), 1e-10), torch.zeros(1, 2, 8)
    h0 = torch.full((1, 8), 1e-30)
    assert (linear_scan(a, b, h0, impl="ours") == 0).all()
    assert (linear_scan(a, b, h0, impl="reference")[:, 0] > 0).all()
    assert (torch.tensor([1e-30]) * torch.tensor([1e-10])).item() > 0
