"""The matrix-memory operators -- the gated delta rule and the mLSTM -- in their three forms (the per-step loop,
the chunkwise one in torch and the C++ kernel, with BLAS and with its plain loops) against loops written here from
the papers in another way: the gated delta rule as the matrix product a (I - beta k k^T) S + beta k v^T, the mLSTM
on its unstabilised memories (sigmoid(f) C + exp(i) k v^T), in float64 with every gradient, plus gradcheck and
float32 at T = 2,048."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rnnlab.nn import fast, gated_delta_rule, mlstm

D64 = torch.float64
FORMS = [("reference", 64), ("chunk", 64), ("chunk", 5), ("chunk", 1), ("ours", 64), ("ours", 5), ("ours", 1),
         ("ours-loops", 4)]
ENGINE = fast.extension()  # built wherever the tests run (tests/test_fast_path.py holds it to that)


@pytest.fixture
def form(request):
    """(impl, chunk) for the operators; "ours-loops" is the C++ kernel with its products in plain loops (as where
    torch carries no BLAS)."""
    impl, chunk = request.param
    if impl == "ours-loops":
        before = ENGINE.set_blas(False)
        yield "ours", chunk
        ENGINE.set_blas(before)
    else:
        yield impl, chunk


def relative(got: torch.Tensor, want: torch.Tensor) -> float:
    got, want = got.detach(), want.detach()
    return float((got - want).abs().max() / want.abs().max().clamp(min=1e-300))


def delta_rule_by_matrices(q, k, v, g, beta, scale, s0):
    """S_t = a_t (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T, o_t = S_t^T (scale q_t), per (batch, head)."""
    B, T, H, K = q.shape
    S = torch.zeros(B, H, K, v.shape[-1], dtype=q.dtype) if s0 is None else s0
    eye = torch.eye(K, dtype=q.dtype)
    outputs = []
    for t in range(T):
        a = torch.ones(B, H, 1, 1, dtype=q.dtype) if g is None else torch.exp(g[:, t])[..., None, None]
        b = beta[:, t][..., None, None]
        outer = k[:, t, :, :, None] * k[:, t, :, None, :]  # (B, H, K, K)
        S = a * ((eye - b * outer) @ S) + b * k[:, t, :, :, None] * v[:, t, :, None, :]
        outputs.append((S.transpose(-1, -2) @ (scale * q[:, t, :, :, None]))[..., 0])  # (B, H, V)
    return torch.stack(outputs, dim=1), S


def mlstm_unstabilised(q, k, v, i, f, c0, n0, m0, eps=1e-6):
    """The mLSTM on C-bar_t = sigmoid(f_t) C-bar_{t-1} + exp(i_t) k_t v_t^T (and n-bar alike), C-bar_0 =
    exp(m_0) C_0; h_t = q~^T C-bar / max(|q~^T n-bar|, exp(m_t)) -- the stabilised form times exp(m_t) / exp(m_t)
    -- with m_t from its own recurrence. Returns h and the stabilised last states (C-bar exp(-m), n-bar exp(-m), m)."""
    B, NH, S, DK = q.shape
    C, n, m = c0 * torch.exp(m0)[..., None], n0 * torch.exp(m0), m0
    outputs = []
    for t in range(S):
        C = torch.sigmoid(f[:, :, t])[..., None, None] * C + torch.exp(i[:, :, t])[..., None, None] * (
            k[:, :, t, :, None] * v[:, :, t, None, :])
        n = torch.sigmoid(f[:, :, t])[..., None] * n + torch.exp(i[:, :, t])[..., None] * k[:, :, t]
        m = torch.maximum(F.logsigmoid(f[:, :, t])[..., None] + m, i[:, :, t, None])
        qt = q[:, :, t] * DK ** -0.5
        scaled = torch.exp(-m)  # (B, NH, 1)
        h = scaled * torch.einsum("bhkv,bhk->bhv", C, qt) / (
            torch.maximum(scaled * (qt * n).sum(-1, keepdim=True).abs(), scaled) + eps)
        outputs.append(h)
    return torch.stack(outputs, dim=2), (C * torch.exp(-m)[..., None], n * torch.exp(-m), m)


def delta_inputs(B, T, H, K, V, dtype=D64, gated=True, initial=True, seed=0):
    gen = torch.Generator().manual_seed(seed)
    rand = lambda *shape: torch.randn(*shape, generator=gen, dtype=dtype)
    q, v = rand(B, T, H, K), rand(B, T, H, V)
    k = F.normalize(rand(B, T, H, K), dim=-1)  # the layer normalises k: the delta rule is stable for |k| <= 1
    g = -torch.rand(B, T, H, generator=gen, dtype=dtype) * 0.5 if gated else None
    beta = torch.rand(B, T, H, generator=gen, dtype=dtype)
    s0 = rand(B, H, K, V) if initial else None
    return [x.requires_grad_() if x is not None else None for x in (q, k, v, g, beta, s0)]


def mlstm_inputs(B, NH, S, DK, DV, dtype=D64, initial=True, seed=0):
    gen = torch.Generator().manual_seed(seed)
    rand = lambda *shape: torch.randn(*shape, generator=gen, dtype=dtype)
    q, k, v = rand(B, NH, S, DK), rand(B, NH, S, DK), rand(B, NH, S, DV)
    i, f = 2 * rand(B, NH, S), 2 * rand(B, NH, S) + 3  # forget gates open (bias 3), input gates spread
    states = (rand(B, NH, DK, DV), rand(B, NH, DK), rand(B, NH, 1)) if initial else (None, None, None)
    return [x.requires_grad_() if x is not None else None for x in (q, k, v, i, f, *states)]


def gradients(outputs, inputs, seed=1):
    gen = torch.Generator().manual_seed(seed)
    # the same weights whatever the outputs' dtype: drawn in float64, then cast
    total = sum((o * torch.randn(o.shape, generator=gen, dtype=D64).to(o.dtype)).sum() for o in outputs)
    present = [x for x in inputs if x is not None]
    return torch.autograd.grad(total, present)


@pytest.mark.parametrize("form", FORMS, indirect=True)
@pytest.mark.parametrize("B, T, H, K, V, gated, initial", [
    (2, 13, 3, 4, 5, True, True), (1, 1, 2, 3, 3, True, False), (2, 10, 1, 6, 2, False, True),
    (1, 20, 2, 5, 4, True, True)])
def test_gated_delta_rule_equals_the_matrix_recurrence_with_every_gradient(form, B, T, H, K, V, gated, initial):
    impl, chunk = form
    q, k, v, g, beta, s0 = delta_inputs(B, T, H, K, V, gated=gated, initial=initial, seed=T)
    scale = torch.tensor(0.7, dtype=D64, requires_grad=True)  # a tensor scale gets its gradient too
    inputs = [q, k, v, g, beta, s0, scale]
    before = [x.detach().clone() for x in inputs if x is not None]
    want = delta_rule_by_matrices(q, k, v, g, beta, scale, s0)
    got = gated_delta_rule(q, k, v, g, beta, scale=scale, initial_state=s0, output_final_state=True, impl=impl,
                           chunk=chunk)
    assert relative(got[0], want[0]) < 1e-9 and relative(got[1], want[1]) < 1e-9
    for mine, theirs in zip(gradients(got, inputs), gradients(want, inputs)):
        assert relative(mine, theirs) < 1e-9
    assert all(torch.equal(x, y) for x, y in zip(before, [x for x in inputs if x is not None]))  # nothing in place


def test_gated_delta_rule_defaults_scale_and_leaves_out_the_state():
    q, k, v, g, beta, _ = delta_inputs(1, 6, 2, 4, 3, initial=False)
    o, last = gated_delta_rule(q, k, v, g, beta)
    assert last is None and o.shape == (1, 6, 2, 3)
    want, _ = delta_rule_by_matrices(q, k, v, g, beta, 4 ** -0.5, None)
    assert relative(o, want) < 1e-12


@pytest.mark.parametrize("form", FORMS, indirect=True)
@pytest.mark.parametrize("B, NH, S, DK, DV, initial", [
    (2, 3, 13, 4, 5, True), (1, 2, 1, 3, 3, False), (2, 1, 10, 6, 2, True), (1, 2, 20, 5, 4, False)])
def test_mlstm_equals_the_unstabilised_recurrence_with_every_gradient(form, B, NH, S, DK, DV, initial):
    impl, chunk = form
    q, k, v, i, f, c0, n0, m0 = inputs = mlstm_inputs(B, NH, S, DK, DV, initial=initial, seed=S)
    before = [x.detach().clone() for x in inputs if x is not None]
    if c0 is None:
        zeros = [torch.zeros(shape, dtype=D64) for shape in ((B, NH, DK, DV), (B, NH, DK), (B, NH, 1))]
        want_h, want_states = mlstm_unstabilised(q, k, v, i, f, *zeros)
    else:
        want_h, want_states = mlstm_unstabilised(q, k, v, i, f, c0, n0, m0)
    h, states = mlstm(q, k, v, i, f, c0, n0, m0, return_last_states=True, impl=impl, chunk=chunk)
    assert relative(h, want_h) < 1e-9
    for mine, theirs in zip(states, want_states):
        assert relative(mine, theirs) < 1e-9
    for mine, theirs in zip(gradients([h, *states], inputs), gradients([want_h, *want_states], inputs)):
        assert relative(mine, theirs) < 1e-9
    assert all(torch.equal(x, y) for x, y in zip(before, [x for x in inputs if x is not None]))


@pytest.mark.parametrize("impl", ["chunk", "ours"])
def test_padded_steps_leave_the_mlstm_states_exactly_as_they_were(impl):
    """A length one past a multiple of the chunk: the torch chunkwise form pads 63 steps, the C++ one computes a
    last chunk of one step; their last states equal the loop's to rounding, m included (mlstm_kernels' padding
    with f = +25, i = -25 moves m; ours does not)."""
    q, k, v, i, f, c0, n0, m0 = mlstm_inputs(1, 2, 65, 4, 4)
    _, loop = mlstm(q, k, v, i, f, c0, n0, m0, return_last_states=True, impl="reference")
    _, chunked = mlstm(q, k, v, i, f, c0, n0, m0, return_last_states=True, impl=impl, chunk=64)
    for mine, theirs in zip(chunked, loop):
        assert relative(mine, theirs) < 1e-12


@pytest.mark.parametrize("impl", ["chunk", "ours"])
def test_gradcheck_both_operators(impl):
    q, k, v, g, beta, s0 = delta_inputs(1, 7, 2, 3, 2)
    assert torch.autograd.gradcheck(lambda *x: gated_delta_rule(*x[:5], initial_state=x[5], output_final_state=True,
                                                                chunk=3, impl=impl), (q, k, v, g, beta, s0))
    q, k, v, i, f, c0, n0, m0 = mlstm_inputs(1, 2, 7, 3, 2)
    assert torch.autograd.gradcheck(lambda *x: mlstm(*x, return_last_states=True, chunk=3, impl=impl)[0:1] + mlstm(
        *x, return_last_states=True, chunk=3, impl=impl)[1], (q, k, v, i, f, c0, n0, m0))


@pytest.mark.parametrize("impl", ["chunk", "ours"])
def test_float32_at_two_thousand_steps_stays_within_1e_4_of_the_float64_loop(impl):
    T = 2048
    q, k, v, g, beta, s0 = delta_inputs(1, T, 2, 8, 8, seed=3)
    want = gated_delta_rule(q, k, v, g, beta, initial_state=s0, output_final_state=True, impl="reference")
    wide = [x.detach().float().requires_grad_() for x in (q, k, v, g, beta, s0)]
    got = gated_delta_rule(*wide[:5], initial_state=wide[5], output_final_state=True, impl=impl)
    assert relative(got[0].double(), want[0]) < 1e-4 and relative(got[1].double(), want[1]) < 1e-4
    for mine, theirs in zip(gradients(got, wide), gradients(want, [q, k, v, g, beta, s0])):
        assert relative(mine.double(), theirs) < 1e-4
    inputs = mlstm_inputs(1, 2, T, 8, 8, seed=4)
    want = mlstm(*inputs, return_last_states=True, impl="reference")
    wide = [x.detach().float().requires_grad_() for x in inputs]
    got = mlstm(*wide, return_last_states=True, impl=impl)
    for mine, theirs in zip([got[0], *got[1]], [want[0], *want[1]]):
        assert relative(mine.double(), theirs) < 1e-4
    for mine, theirs in zip(gradients([got[0], *got[1]], wide), gradients([want[0], *want[1]], inputs)):
        assert relative(mine.double(), theirs) < 1e-4


def test_bad_shapes_and_forms_are_refused():
    q, k, v, g, beta, s0 = delta_inputs(1, 4, 2, 3, 3)
    with pytest.raises(ValueError, match="v must be"):
        gated_delta_rule(q, k, v[:, :, :1], g, beta)
    with pytest.raises(ValueError, match="beta must be given"):
        gated_delta_rule(q, k, v, g, None)
    with pytest.raises(ValueError, match="impl must be one of"):
        gated_delta_rule(q, k, v, g, beta, impl="triton")
    q, k, v, i, f, c0, n0, m0 = mlstm_inputs(1, 2, 4, 3, 3)
    with pytest.raises(ValueError, match="given together or not at all"):
        mlstm(q, k, v, i, f, c0)
    with pytest.raises(ValueError, match="chunk must be"):
        mlstm(q, k, v, i, f, chunk=0)


def test_the_kernels_default_on_the_cpu_and_fall_back_to_the_torch_form_elsewhere(monkeypatch):
    """impl="ours" runs the C++ kernel for float32/float64 CPU tensors (an autograd node of its own) and the torch
    chunkwise form where the engine cannot run (here: told that it cannot), with the same numbers."""
    q, k, v, g, beta, s0 = delta_inputs(1, 9, 2, 4, 4)
    inputs = mlstm_inputs(1, 2, 9, 4, 4)
    o, _ = gated_delta_rule(q, k, v, g, beta, initial_state=s0)
    h = mlstm(*inputs)
    assert "Kernel" in type(o.grad_fn).__name__ and "Kernel" in type(h.grad_fn).__name__
    monkeypatch.setattr(fast, "usable", lambda x: False)
    slow, _ = gated_delta_rule(q, k, v, g, beta, initial_state=s0)
    slow_h = mlstm(*inputs)
    assert "Kernel" not in type(slow.grad_fn).__name__ and "Kernel" not in type(slow_h.grad_fn).__name__
    assert relative(slow, o) < 1e-12 and relative(slow_h, h) < 1e-12
