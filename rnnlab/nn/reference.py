"""The recurrences as the papers write them: one function per step, a plain loop over time, autograd for the
gradients. Slow on purpose and short enough to check by eye; the tests hold every rnnlab layer (both engines,
every variant) to these in float64, outputs, final states and every gradient.

    output, state = reference.recurrent_layer(lstm, x, hx, seed=11)   # x: (L, N, H_in), time-major, padded

Each step takes the two pre-activations as the layer computes them, ``a = W_ih x_t (+ b_ih)`` and
``b = W_hh h_{t-1} (+ b_hh)`` (with layer norm, each normalised before its bias), and the previous state:

    RNN   (Elman 1990)                    h_t = tanh(a + b)                    (or relu)
    LSTM  (Hochreiter & Schmidhuber 1997;  i, f, g, o = a + b;  c_t = s(f) c_{t-1} + s(i) tanh(g);
           gates as in torch.nn)          h_t = s(o) tanh(c_t)                (then W_hr h_t with proj_size)
    GRU   (Cho et al. 2014; torch.nn's    r = s(a_r + b_r);  z = s(a_z + b_z);  n = tanh(a_n + r b_n);
           form: r scales W_hn h + b_hn)  h_t = (1 - z) n + z h_{t-1}

and, for the layers whose gates read only the input (``scan_layers.py``; ``input_gated_layer`` and a step):
    minGRU (Feng et al. 2024)           z = s(W_z x_t + b_z);  h~ = g(W_h x_t + b_h);  h_t = (1 - z) h_{t-1} + z h~
    minLSTM (the same paper)            f, i = s(.); h~ = g(.);  h_t = f / (f + i) h_{t-1} + i / (f + i) h~
    RG-LRU (De et al. 2024, Griffin)    r, i = s(.); v = W_v x_t + b_v;  a = sigmoid(lambda)^(8 r);
                                        h_t = a h_{t-1} + sqrt(1 - a^2) (i v)

and the variants on top: layer norm (Ba, Kiros & Hinton 2016), recurrent dropout (Gal & Ghahramani 2016),
zoneout (Krueger et al. 2016), DropConnect on W_hh (Wan et al. 2013; Merity et al. 2017's AWD-LSTM).

The loop draws its masks with the same calls, in the same order, as ``RNNBase.call_weights`` and
``RNNBase.layer_variants``: weight_drop's per weight_hh first, then per layer and direction the recurrent
dropout mask (B, P) and zoneout's (L*N, P) and, for LSTM, (L*N, H); then dropout between layers. So a seed
gives the layer and its reference the same masks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .masks import ones_with_probability

EPS = 1e-5  # layer norm's epsilon, as in torch.nn.LayerNorm


def layer_norm(v: Tensor, gain: Tensor, shift: Tensor) -> Tensor:
    """Ba et al. 2016: normalise each row over its features, then scale and shift."""
    mean = v.mean(-1, keepdim=True)
    var = ((v - mean) ** 2).mean(-1, keepdim=True)
    return (v - mean) / torch.sqrt(var + EPS) * gain + shift


def rnn_step(a: Tensor, b: Tensor, h: Tensor, c, nonlinearity: str = "tanh", norm_c=None):
    """Elman: h_t = tanh(a + b), or relu. Returns (h_t, None)."""
    return (torch.tanh(a + b) if nonlinearity == "tanh" else torch.relu(a + b)), None


def lstm_step(a: Tensor, b: Tensor, h: Tensor, c: Tensor, nonlinearity=None, norm_c=None):
    """LSTM with gates i, f, g, o in torch.nn's order; ``norm_c`` (layer norm) normalises c_t before tanh."""
    i, f, g, o = (a + b).chunk(4, 1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    c_out = norm_c(c_new) if norm_c is not None else c_new
    return torch.sigmoid(o) * torch.tanh(c_out), c_new


def gru_step(a: Tensor, b: Tensor, h: Tensor, c, nonlinearity=None, norm_c=None):
    """GRU in torch.nn's form: the reset gate scales the whole recurrent term of n, W_hn h + b_hn."""
    (a_r, a_z, a_n), (b_r, b_z, b_n) = a.chunk(3, 1), b.chunk(3, 1)
    r, z = torch.sigmoid(a_r + b_r), torch.sigmoid(a_z + b_z)
    return (1 - z) * torch.tanh(a_n + r * b_n) + z * h, None


STEPS = {"RNN_TANH": rnn_step, "RNN_RELU": rnn_step, "LSTM": lstm_step, "GRU": gru_step}


def _ones(p: float, like: Tensor, *shape: int) -> Tensor:
    """Each entry 1 with probability p, from rnnlab's mask generator (tested on its own in test_masks.py)."""
    return ones_with_probability(p, shape, like)


def recurrent_layer(module, x: Tensor, hx=None, seed: int | None = None):
    """``module``'s forward (an rnnlab ``RNN``, ``LSTM`` or ``GRU``, any variants) on time-major padded
    ``x`` (L, N, H_in), one step at a time under autograd: (output (L, N, D*H_out), h_n or (h_n, c_n))."""
    if seed is not None:
        torch.manual_seed(seed)
    params = dict(module.named_parameters())
    if module.training and module.weight_drop:  # DropConnect, one mask per weight_hh, in parameter order
        for name in list(params):
            if name.startswith("weight_hh"):
                params[name] = params[name] * F.dropout(torch.ones_like(params[name]), module.weight_drop)
    steps, batch = x.shape[:2]
    hidden, state_size, mode = module.hidden_size, module.proj_size or module.hidden_size, module.mode
    lstm, dirs = mode == "LSTM", 2 if module.bidirectional else 1
    if hx is None:
        hx = (x.new_zeros(module.num_layers * dirs, batch, state_size),
              x.new_zeros(module.num_layers * dirs, batch, hidden))
        hx = hx if lstm else hx[0]
    h0, c0 = hx if lstm else (hx, None)
    nonlinearity = "relu" if mode == "RNN_RELU" else "tanh"
    p_rd, p_zone = module.recurrent_dropout, module.zoneout
    layer_input, h_n, c_n = x, [], []
    for layer in range(module.num_layers):
        outputs = []
        for direction in range(dirs):
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            get = lambda name: params.get(name + suffix)  # noqa: E731
            rd = zone_h = zone_c = None
            if module.training and p_rd:
                rd = _ones(1 - p_rd, x, batch, state_size) / (1 - p_rd)
            if module.training and p_zone:
                zone_h = _ones(p_zone, x, steps * batch, state_size).view(steps, batch, -1)
                if lstm:
                    zone_c = _ones(p_zone, x, steps * batch, hidden).view(steps, batch, -1)
            norm_c = (lambda c: layer_norm(c, get("ln_gain_c"), get("ln_shift_c"))) if module.layer_norm else None
            k = layer * dirs + direction
            h, c = h0[k], c0[k] if lstm else None
            out = [None] * steps
            for t in (reversed(range(steps)) if direction else range(steps)):
                a = layer_input[t] @ get("weight_ih").t()
                b = (h * rd if rd is not None else h) @ get("weight_hh").t()
                if module.layer_norm:
                    a = layer_norm(a, get("ln_gain_ih"), get("ln_shift_ih"))
                    b = layer_norm(b, get("ln_gain_hh"), get("ln_shift_hh"))
                if module.bias:
                    a, b = a + get("bias_ih"), b + get("bias_hh")
                h_new, c_new = STEPS[mode](a, b, h, c, nonlinearity, norm_c)
                if module.proj_size:
                    h_new = h_new @ get("weight_hr").t()
                if p_zone:  # keep the previous value with probability p (in evaluation: with weight p)
                    d_h = zone_h[t] if zone_h is not None else p_zone
                    h_new = d_h * h + (1 - d_h) * h_new
                    if lstm:
                        d_c = zone_c[t] if zone_c is not None else p_zone
                        c_new = d_c * c + (1 - d_c) * c_new
                h, c = h_new, c_new
                out[t] = h
            outputs.append(torch.stack(out))  # (L, N, H_out)
            h_n.append(h)
            c_n.append(c)
        layer_input = torch.cat(outputs, -1)  # (L, N, D*H_out)
        if module.dropout and module.training and layer < module.num_layers - 1:
            layer_input = F.dropout(layer_input, module.dropout)
    final = torch.stack(h_n)  # (layers*D, N, H_out)
    return layer_input, ((final, torch.stack(c_n)) if lstm else final)


def _g(v: Tensor) -> Tensor:
    """minGRU's and minLSTM's activation of the candidate: v + 0.5 for v >= 0, sigmoid(v) below."""
    return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))


def min_gru_step(pre: Tensor, h: Tensor, get) -> Tensor:
    """Feng et al. 2024: z = s(W_z x + b_z), h~ = g(W_h x + b_h), h_t = (1 - z) h_{t-1} + z h~."""
    gate, candidate = pre.chunk(2, 1)
    z = torch.sigmoid(gate)
    return (1 - z) * h + z * _g(candidate)


def min_lstm_step(pre: Tensor, h: Tensor, get) -> Tensor:
    """Feng et al. 2024: f, i = s(.), h~ = g(.), f' = f / (f + i), i' = i / (f + i), h_t = f' h_{t-1} + i' h~."""
    forget, keep_in, candidate = pre.chunk(3, 1)
    f, i = torch.sigmoid(forget), torch.sigmoid(keep_in)
    return f / (f + i) * h + i / (f + i) * _g(candidate)


def rg_lru_step(pre: Tensor, h: Tensor, get) -> Tensor:
    """De et al. 2024 (Griffin): r, i = s(.), v = W_v x + b_v, a = sigmoid(lambda)^(8 r),
    h_t = a h_{t-1} + sqrt(1 - a^2) (i v)."""
    reset, gate, value = pre.chunk(3, 1)
    r, i = torch.sigmoid(reset), torch.sigmoid(gate)
    a = torch.sigmoid(get("lambda")) ** (8 * r)
    return a * h + torch.sqrt(1 - a ** 2) * (i * value)


def input_gated_layer(module, x: Tensor, hx=None, seed: int | None = None, step=None):
    """A layer whose gates read only the input (``scan_layers.py``), one step at a time on time-major padded
    ``x`` (L, N, H_in): pre = W_ih x_t + b_ih, then the architecture's ``step``; stacked, bidirectional,
    dropout between layers. Returns (output (L, N, D*H), h_n (layers*D, N, H))."""
    if seed is not None:
        torch.manual_seed(seed)
    params = dict(module.named_parameters())
    steps, batch = x.shape[:2]
    dirs = 2 if module.bidirectional else 1
    h0 = hx if hx is not None else x.new_zeros(module.num_layers * dirs, batch, module.hidden_size)
    layer_input, h_n = x, []
    for layer in range(module.num_layers):
        outputs = []
        for direction in range(dirs):
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            get = lambda name: params.get(name + suffix)  # noqa: E731
            h, out = h0[layer * dirs + direction], [None] * steps
            for t in (reversed(range(steps)) if direction else range(steps)):
                pre = layer_input[t] @ get("weight_ih").t()
                if module.bias:
                    pre = pre + get("bias_ih")
                h = step(pre, h, get)
                out[t] = h
            outputs.append(torch.stack(out))  # (L, N, H)
            h_n.append(h)
        layer_input = torch.cat(outputs, -1)  # (L, N, D*H)
        if module.dropout and module.training and layer < module.num_layers - 1:
            layer_input = F.dropout(layer_input, module.dropout)
    return layer_input, torch.stack(h_n)


def min_gru_layer(module, x: Tensor, hx=None, seed: int | None = None):
    return input_gated_layer(module, x, hx, seed, min_gru_step)


def min_lstm_layer(module, x: Tensor, hx=None, seed: int | None = None):
    return input_gated_layer(module, x, hx, seed, min_lstm_step)


def rg_lru_layer(module, x: Tensor, hx=None, seed: int | None = None):
    return input_gated_layer(module, x, hx, seed, rg_lru_step)


def mamba_mixer_step(h: Tensor, window: Tensor, state: Tensor, get):
    """Gu & Dao 2023, one step of the mixer (their Figure 3 and Algorithm 2) on h (N, H), with the last K - 1
    inputs of the convolution ``window`` (N, E, K-1) and the SSM state (N, E, S): (out (N, H), window, state)."""
    x, z = F.linear(h, get("in_proj.weight"), get("in_proj.bias")).chunk(2, dim=-1)  # (N, E) each
    taps = torch.cat((window, x[..., None]), dim=-1)  # (N, E, K)   the K latest inputs, oldest first
    conv = (taps * get("conv1d.weight")[:, 0]).sum(-1)  # depthwise: each channel its own K weights
    if get("conv1d.bias") is not None:
        conv = conv + get("conv1d.bias")
    u = F.silu(conv)  # (N, E)
    state_size = get("A_log").shape[1]
    dt, B, C = F.linear(u, get("x_proj.weight")).split([get("dt_proj.weight").shape[1], state_size, state_size], -1)
    dt = F.softplus(F.linear(dt, get("dt_proj.weight"), get("dt_proj.bias")))  # (N, E)
    A = -torch.exp(get("A_log"))  # (E, S)
    state = torch.exp(dt[..., None] * A) * state + (dt * u)[..., None] * B[:, None, :]  # (N, E, S)
    y = (state * C[:, None, :]).sum(-1) + get("D") * u  # (N, E)
    out = F.linear(y * F.silu(z), get("out_proj.weight"), get("out_proj.bias"))  # (N, H)
    return out, taps[..., 1:], state


def _rms_norm(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def mamba_layer(module, x: Tensor, hx=None, seed: int | None = None):
    """``rnnlab.nn.Mamba``'s forward one step at a time on time-major ``x`` (L, N, H_in): the input projection,
    per layer x + mixer(RMSNorm(x)) with the mixer's step above, a final RMSNorm; the reverse stack reads each
    sequence back to front. Returns (output (L, N, D*H), (windows, states))."""
    return block_stack_layer(module, x, hx, seed, mamba_mixer_step, _rms_norm)


def block_stack_layer(module, x: Tensor, hx, seed: int | None, step, norm):
    """A stack of pre-norm residual blocks (``rnnlab.nn.block_stack``) one step at a time on time-major ``x``
    (L, N, H_in): the input projection, per layer x + mixer(norm(x)) with the mixer's ``step(x (N, H), window,
    state, get) -> (out, window, state)`` (``get(name)``: the mixer's parameter, or the norm's epsilon), a final
    norm; the reverse stack reads each sequence back to front. Returns (output (L, N, D*H), (windows, states))."""
    if seed is not None:
        torch.manual_seed(seed)
    params = dict(module.named_parameters())
    steps, batch = x.shape[:2]
    dirs, layers = module.num_directions, module.num_layers * module.num_directions
    windows0, states0 = hx if hx is not None else tuple(x.new_zeros(s) for s in module.state_shapes(batch))
    stream = F.linear(x, params["input_proj.weight"], params["input_proj.bias"]) if "input_proj.weight" in params else x
    eps = module.norm_f.eps
    outputs, windows, states = [], [None] * layers, [None] * layers
    for direction, stack in enumerate(("layers", "layers_reverse")[:dirs]):
        h = stream.flip(0) if direction else stream  # (L, N, H)
        for k in range(module.num_layers):
            def get(name, stack=stack, k=k):
                return eps if name.endswith("eps") else params.get(f"{stack}.{k}.mixer.{name}")
            at = k * dirs + direction
            window, state, out = windows0[at], states0[at], []
            for t in range(steps):
                o, window, state = step(norm(h[t], params[f"{stack}.{k}.norm.weight"], eps), window, state, get)
                out.append(o)
            out = torch.stack(out, dim=1)  # (N, L, H): the layer's layout, so that a seed gives the same mask
            if module.dropout and module.training and k < module.num_layers - 1:
                out = F.dropout(out, module.dropout)
            h = h + out.transpose(0, 1)
            windows[at], states[at] = window, state
        h = norm(h, params["norm_f" + stack[len("layers"):] + ".weight"], eps)
        outputs.append(h.flip(0) if direction else h)
    return torch.cat(outputs, -1), (torch.stack(windows), torch.stack(states))


def _conv_step(window: Tensor, x: Tensor, weight: Tensor, bias: Tensor | None):
    """A depthwise causal convolution's step: the window (N, C, W-1) of earlier inputs and x (N, C) -> (the
    output (N, C), the window moved on)."""
    taps = torch.cat((window, x[..., None]), dim=-1)  # (N, C, W)   the W latest inputs, oldest first
    out = (taps * weight[:, 0]).sum(-1)
    return (out + bias if bias is not None else out), taps[..., 1:]


def gated_delta_step(x: Tensor, window: Tensor, S: Tensor, get):
    """Yang, Kautz & Hatamizadeh 2024, one step of fla's GatedDeltaNet mixer on x (N, H), with the window of
    [q; k; v]'s convolution (N, C, W-1) and the memory S (N, h, K, V): (out (N, H), window, S)."""
    h, K, V = S.shape[1:]
    qkv = torch.cat([F.linear(x, get(f"{p}_proj.weight"), get(f"{p}_proj.bias")) for p in "qkv"], dim=-1)
    weight = torch.cat([get(f"{p}_conv1d.weight") for p in "qkv"])  # (C, 1, W)
    u, window = _conv_step(window, qkv, weight, None)
    q, k, v = F.silu(u).split([h * K, h * K, h * V], dim=-1)
    q, k, v = q.view(-1, h, K), k.view(-1, h, K), v.view(-1, h, V)
    q = q / torch.sqrt((q * q).sum(-1, keepdim=True) + 1e-6)  # L2, per head
    k = k / torch.sqrt((k * k).sum(-1, keepdim=True) + 1e-6)
    beta = torch.sigmoid(F.linear(x, get("b_proj.weight")))[..., None, None]  # (N, h, 1, 1)
    alpha = torch.exp(-torch.exp(get("A_log")) * F.softplus(F.linear(x, get("a_proj.weight")) + get("dt_bias")))
    kk = k[..., :, None] * k[..., None, :]  # (N, h, K, K)   k k^T
    S = alpha[..., None, None] * (S - beta * kk @ S) + beta * k[..., :, None] * v[..., None, :]  # the delta rule
    o = (S * (q * K ** -0.5)[..., :, None]).sum(-2)  # (N, h, V)   S^T (scale q)
    o = _rms_norm(o, get("o_norm.weight"), get("o_norm.eps"))
    o = o * F.silu(F.linear(x, get("g_proj.weight"), get("g_proj.bias")).view(-1, h, V))
    return F.linear(o.flatten(1), get("o_proj.weight"), get("o_proj.bias")), window, S


def mlstm_step(x: Tensor, window: Tensor, memory: Tensor, get):
    """Beck et al. 2024, one step of xLSTM's mLSTM block (its Figure 10 and equations 19-27) on x (N, H), with the
    convolution's window (N, E, W-1) and the memory (N, h, K, K + 2) = [C, n, m]: (out (N, H), window, memory)."""
    h, K = memory.shape[1:3]
    C, n, m = memory[..., :K], memory[..., K], memory[..., 0, K + 1]  # (N, h, K, K), (N, h, K), (N, h)
    inner, z = F.linear(x, get("proj_up.weight"), get("proj_up.bias")).chunk(2, dim=-1)  # (N, E) each
    conv, window = _conv_step(window, inner, get("conv1d.weight"), get("conv1d.bias"))
    c = F.silu(conv)

    def headwise(name, t):  # block-diagonal: each block of the input through its own small matrix
        weight = get(f"{name}.weight")  # (blocks, out, in)
        return (weight @ t.view(-1, weight.shape[0], weight.shape[2], 1)).flatten(1)
    q, k, v = headwise("q_proj", c), headwise("k_proj", c), headwise("v_proj", inner)  # (N, E)
    gates_in = torch.cat((q, k, v), dim=-1)
    i = F.linear(gates_in, get("igate.weight"), get("igate.bias"))  # (N, h) exponential input gate
    log_f = F.logsigmoid(F.linear(gates_in, get("fgate.weight"), get("fgate.bias")))  # sigmoid forget gate
    m_new = torch.maximum(log_f + m, i)  # the stabiliser
    f_s, i_s = torch.exp(log_f + m - m_new), torch.exp(i - m_new)  # (N, h)
    q, k, v = q.view(-1, h, K) * K ** -0.5, k.view(-1, h, K), v.view(-1, h, K)
    C = f_s[..., None, None] * C + i_s[..., None, None] * k[..., :, None] * v[..., None, :]
    n = f_s[..., None] * n + i_s[..., None] * k
    numerator = (C * q[..., :, None]).sum(-2)  # (N, h, K)   C^T q
    denominator = torch.maximum((n * q).sum(-1).abs(), torch.exp(-m_new)) + 1e-6  # (N, h)
    out = numerator / denominator[..., None]
    centred = out - out.mean(-1, keepdim=True)  # the per-head norm
    out = (centred / torch.sqrt(centred.pow(2).mean(-1, keepdim=True) + get("norm_eps"))).flatten(1) * get("outnorm")
    out = (out + get("learnable_skip") * c) * F.silu(z)
    memory = torch.cat((C, n[..., None], m_new[..., None, None].expand(-1, h, K, 1)), dim=-1)
    return F.linear(out, get("proj_down.weight"), get("proj_down.bias")), window, memory


def _layer_norm(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    centred = x - x.mean(-1, keepdim=True)
    return centred / torch.sqrt(centred.pow(2).mean(-1, keepdim=True) + eps) * weight


def matrix_memory_layer(module, x: Tensor, hx=None, seed: int | None = None):
    """``rnnlab.nn.GatedDeltaNet``'s or ``MLSTM``'s forward one step at a time on time-major ``x`` (L, N, H_in)
    (``block_stack_layer``): RMSNorm blocks around ``gated_delta_step`` for gated DeltaNet, LayerNorm blocks
    without bias around ``mlstm_step`` for the mLSTM. Returns (output (L, N, D*H), (windows, memories))."""
    delta = type(module).__name__ == "GatedDeltaNet"
    return block_stack_layer(module, x, hx, seed, gated_delta_step if delta else mlstm_step,
                             _rms_norm if delta else _layer_norm)
