"""``rnnlab.nn.selective_scan`` (Mamba's S6) against the recurrence written from the paper as a plain loop under
autograd: float64, both forms, every optional argument on and off, both layouts of B and C, outputs, the last
state and the gradient of every input to 1e-9 relative; gradcheck; float32 over 2,048 steps against float64."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from rnnlab.nn import selective_scan

DTYPE = torch.float64


def paper(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, h0=None):
    """Gu & Dao 2023, Algorithm 2, one step at a time: (out (batch, dim, L), h_L (batch, dim, N))."""
    batch, dim, steps = u.shape
    if delta_bias is not None:
        delta = delta + delta_bias[:, None]
    if delta_softplus:
        delta = torch.log1p(torch.exp(delta))
    B = B if B.dim() == 4 else B[:, None]  # (batch, G, N, L)
    C = C if C.dim() == 4 else C[:, None]
    group_b = [d // (dim // B.shape[1]) for d in range(dim)]  # the group channel d reads
    group_c = [d // (dim // C.shape[1]) for d in range(dim)]
    h = h0 if h0 is not None else u.new_zeros(batch, dim, A.shape[1])
    outputs = []
    for t in range(steps):
        A_bar = torch.exp(delta[:, :, t, None] * A)  # (batch, dim, N)   zero-order hold of A
        B_bar = delta[:, :, t, None] * B[:, group_b, :, t]  # (batch, dim, N)   dt B, as mamba-ssm's reference
        h = A_bar * h + B_bar * u[:, :, t, None]
        y = torch.einsum("bdn,bdn->bd", C[:, group_c, :, t], h)
        if D is not None:
            y = y + D * u[:, :, t]
        if z is not None:
            y = y * z[:, :, t] * torch.sigmoid(z[:, :, t])
        outputs.append(y)
    return torch.stack(outputs, dim=-1), h


def _inputs(batch, dim, steps, state, b_groups, c_groups, seed, dtype=DTYPE, optional=True):
    """Random inputs; ``b_groups`` / ``c_groups`` 0 for the (batch, N, L) layout, else G of (batch, G, N, L)."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=1.0, shift=0.0):
        return (torch.randn(*shape, generator=gen, dtype=DTYPE) * scale + shift).to(dtype).requires_grad_()

    def grouped(groups):
        return rand(batch, state, steps) if groups == 0 else rand(batch, groups, state, steps)

    values = dict(u=rand(batch, dim, steps), delta=rand(batch, dim, steps, scale=0.5, shift=-1.0),
                  A=(-torch.rand(dim, state, generator=gen, dtype=DTYPE) * 2 - 0.1).to(dtype).requires_grad_(),
                  B=grouped(b_groups), C=grouped(c_groups))
    if optional:
        values.update(D=rand(dim), z=rand(batch, dim, steps), delta_bias=rand(dim, scale=0.3),
                      h0=rand(batch, dim, state))
    return values


def _relative(got: torch.Tensor, want: torch.Tensor) -> float:
    """max |got - want| / max |want|, the measure of the issue."""
    return ((got - want).abs().max() / want.abs().max().clamp(min=1e-300)).item()


def _compare(values, options, impl, chunk=64, tolerance=1e-9, reference_values=None):
    """Outputs, the last state and every gradient of ``selective_scan`` against ``paper`` (run on
    ``reference_values``, a float64 copy, when given)."""
    reference_values = reference_values or values
    results = []
    for run, given in ((None, reference_values), (impl, values)):
        names = [k for k, v in given.items() if v is not None]
        kwargs = {k: given.get(k) if options.get(k, True) else None for k in ("D", "z", "delta_bias")}
        h0 = given.get("h0") if options.get("h0", True) else None
        softplus = options.get("softplus", True)
        if run is None:
            out, last = paper(given["u"], given["delta"], given["A"], given["B"], given["C"], **kwargs,
                              delta_softplus=softplus, h0=h0)
        else:
            out, last = selective_scan(given["u"], given["delta"], given["A"], given["B"], given["C"], **kwargs,
                                       delta_softplus=softplus, return_last_state=True, initial_state=h0,
                                       impl=run, chunk=chunk)
        gen = torch.Generator().manual_seed(99)
        w_out = torch.randn(out.shape, generator=gen, dtype=DTYPE).to(out.dtype)
        w_last = torch.randn(last.shape, generator=gen, dtype=DTYPE).to(out.dtype)
        leaves = [given[k] for k in names]
        grads = torch.autograd.grad((out * w_out).sum() + (last * w_last).sum(), leaves, allow_unused=True)
        results.append((out, last, dict(zip(names, grads))))
    (out_want, last_want, grads_want), (out_got, last_got, grads_got) = results
    assert out_got.dtype == values["u"].dtype and last_got.dtype == values["u"].dtype
    assert _relative(out_got.double(), out_want) <= tolerance
    assert _relative(last_got.double(), last_want) <= tolerance
    for name, want in grads_want.items():
        if want is None:  # an argument switched off
            assert grads_got[name] is None, name
            continue
        assert _relative(grads_got[name].double(), want) <= tolerance, name


LAYOUTS = [(0, 0), (1, 0), (2, 3), (3, 0), (0, 6)]  # (G of B, G of C); 0 = (batch, N, L)
OPTIONS = ["D", "z", "delta_bias", "softplus", "h0"]


@pytest.mark.parametrize("impl", ["ours", "reference"])
@pytest.mark.parametrize("b_groups, c_groups", LAYOUTS)
@pytest.mark.parametrize("steps, chunk", [(1, 64), (70, 64), (23, 5)])
def test_matches_the_paper_with_every_gradient(impl, b_groups, c_groups, steps, chunk):
    values = _inputs(2, 6, steps, 4, b_groups, c_groups, seed=steps + 10 * b_groups + c_groups)
    _compare(values, {}, impl, chunk)


@pytest.mark.parametrize("impl", ["ours", "reference"])
@pytest.mark.parametrize("switched", list(itertools.product([True, False], repeat=len(OPTIONS))))
def test_every_optional_argument_on_and_off(impl, switched):
    values = _inputs(2, 4, 9, 3, 2, 0, seed=sum(switched))
    _compare(values, dict(zip(OPTIONS, switched)), impl, chunk=4)


def test_gradcheck():
    values = _inputs(2, 4, 7, 3, 2, 0, seed=3)
    names = ["u", "delta", "A", "B", "C", "D", "z", "delta_bias", "h0"]
    for impl in ("ours", "reference"):
        def run(u, delta, A, B, C, D, z, delta_bias, h0):
            out, last = selective_scan(u, delta, A, B, C, D, z, delta_bias, True, True, initial_state=h0,
                                       impl=impl, chunk=3)
            return out, last
        assert torch.autograd.gradcheck(run, tuple(values[k] for k in names))


def test_float32_over_2048_steps_stays_within_1e_4_of_float64():
    wide = _inputs(2, 8, 2048, 16, 0, 0, seed=5)
    narrow = {k: v.detach().float().requires_grad_() for k, v in wide.items()}
    _compare(narrow, {}, "ours", tolerance=1e-4, reference_values=wide)


def test_inputs_are_left_as_they_were_and_out_alone_is_returned():
    values = _inputs(2, 4, 9, 3, 0, 2, seed=8)
    before = {k: v.detach().clone() for k, v in values.items()}
    out = selective_scan(values["u"], values["delta"], values["A"], values["B"], values["C"], values["D"],
                         values["z"], values["delta_bias"], delta_softplus=True)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 4, 9)
    for name, value in values.items():
        assert torch.equal(value.detach(), before[name]), name


def test_the_last_state_carries_on_where_the_scan_stopped():
    """Two halves with the first's last state as the second's initial state equal the whole."""
    values = _inputs(1, 4, 20, 3, 0, 0, seed=6, optional=False)
    u, delta, A, B, C = (values[k].detach() for k in ("u", "delta", "A", "B", "C"))
    whole, last = selective_scan(u, delta, A, B, C, return_last_state=True)
    first, middle = selective_scan(u[..., :8], delta[..., :8], A, B[..., :8], C[..., :8], return_last_state=True)
    second, end = selective_scan(u[..., 8:], delta[..., 8:], A, B[..., 8:], C[..., 8:], return_last_state=True,
                                 initial_state=middle)
    torch.testing.assert_close(torch.cat((first, second), -1), whole)
    torch.testing.assert_close(end, last)


def test_softplus_is_torch_s_and_comes_after_the_bias():
    values = _inputs(1, 3, 5, 2, 0, 0, seed=2, optional=False)
    u, delta, A, B, C = (values[k].detach() for k in ("u", "delta", "A", "B", "C"))
    bias = torch.full((3,), 30.0, dtype=DTYPE)  # softplus(delta + 30) = delta + 30 (torch's threshold 20)
    torch.testing.assert_close(selective_scan(u, delta, A, B, C, delta_bias=bias, delta_softplus=True),
                               selective_scan(u, F.softplus(delta + 30.0), A, B, C))


@pytest.mark.parametrize("change, message", [
    (dict(u=torch.zeros(2, 4)), "u must be"),
    (dict(A=torch.zeros(5, 3)), "A must be"),
    (dict(B=torch.zeros(2, 3, 3, 9)), "B must be"),
    (dict(C=torch.zeros(2, 3, 8)), "C must be"),
    (dict(D=torch.zeros(3)), "D must be"),
    (dict(delta=torch.zeros(2, 4, 8)), "delta must have"),
])
def test_wrong_shapes_are_named(change, message):
    values = {k: v.detach().float() for k, v in _inputs(2, 4, 9, 3, 0, 0, seed=1).items()}
    values.update(change)
    with pytest.raises(ValueError, match=message):
        selective_scan(values["u"], values["delta"], values["A"], values["B"], values["C"], values["D"])


def test_views_laid_out_step_major_give_the_same_numbers():
    """The Mamba layer passes u, delta, B, C and z as transposed views of (batch, L, ·) projections: read through
    their strides, they give what their contiguous copies give, gradients included."""
    values = _inputs(2, 6, 13, 4, 0, 0, seed=12)
    names = ["u", "delta", "A", "B", "C", "D", "z", "delta_bias", "h0"]
    step_major = {k: values[k].detach().transpose(-1, -2).contiguous().transpose(-1, -2).requires_grad_()
                  if k in ("u", "delta", "B", "C", "z") else values[k] for k in names}
    assert step_major["u"].stride(1) == 1 and step_major["B"].stride(1) == 1
    results = []
    for given in (values, step_major):
        out, last = selective_scan(*(given[k] for k in names[:-1]), delta_softplus=True, return_last_state=True,
                                   initial_state=given["h0"], chunk=4)
        grads = torch.autograd.grad((out * out).sum() + last.sum(), [given[k] for k in names])
        results.append((out, last, grads))
    for got, want in zip(results[1][:2] + tuple(results[1][2]), results[0][:2] + tuple(results[0][2])):
        torch.testing.assert_close(got, want, atol=1e-12, rtol=0)
