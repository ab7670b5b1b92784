"""Speed of the modern recurrences (rnnlab.nn.MinGRU, MinLSTM, RGLRU, Mamba, the matrix memories) and of their
scans, against torch.nn and, for Mamba, against mamba.py (``pip install mambapy``, the public CPU Mamba in plain
torch).

Seven tables, every contender of a table timed in turn within each repeat (interleaved), medians, ratios:

1. The scan ``linear_scan`` (forward + backward) on (N, T, H) float32, beside one ``torch.add(a, b, out=c)`` of
   that shape -- the cheapest pass over memory there is -- for each of its forms: the C++ loop (impl="ours"),
   the loop in torch operations (impl="reference") and the log-space form (impl="log").
2. A layer's training step (forward + backward of output.sum(), B = 32, input = hidden = 256) and its inference
   (forward under no_grad) at T = 256 and 1,024: torch.nn.GRU and LSTM, our MinGRU, MinLSTM and RGLRU, and the
   modern layers' own input projection (one Linear(256, G * 256) over all steps, forward + backward) -- the
   floor under them, since they have no recurrent product.
3. Stepping one token at a time with a carried state (what sampling does), batch 1: torch.nn.GRU against
   MinGRU, MinLSTM, RGLRU and Mamba, per token.
4. Mamba's ``selective_scan`` (forward + backward, with D, z, delta's bias and softplus) on (batch 8, dim 512,
   L 1,024, N 16) float32: the C++ kernel (impl="ours"), the per-step loop (impl="reference") and the same
   arithmetic as plain-torch parallel scan (mamba.py's ``pscan``, Blelloch's, over (B, L, D, N) tensors).
5. A ``Mamba(256, 256)`` layer's training step (B = 32) at T = 256 and 1,024 against torch.nn.GRU(256, 256),
   mamba.py's one-layer Mamba (the same block), and the layer without its scan: the forward + backward of its
   in_proj, conv1d, x_proj, dt_proj and out_proj alone (the GEMM floor).
6. The matrix memories ``gated_delta_rule`` and ``mlstm`` (forward + backward) at (B 8, H 4, T 2,048, K = V = 64)
   float32: the C++ kernel (impl="ours"), the chunkwise form in torch operations (chunk 64), the per-step loop,
   and where installed (``pip install -e .[bench]``) transformers' ``torch_chunk_gated_delta_rule`` (Qwen3-Next's
   torch form) and mlstm_kernels' chunkwise ``mlstm_chunkwise__native_autograd``, with the largest relative
   difference of each one's output from ours. ``--loop-repeats`` repeats (the loops take seconds).
7. A matrix-memory layer's training step (B = 32, input = hidden = 256, two layers' worth of nothing: one layer)
   at T = 256 and 1,024: rnnlab's GatedDeltaNet and MLSTM beside MinGRU, Mamba and torch.nn.GRU of that width.

    python benchmarks/modern.py [--repeats 7] [--threads N] [--lengths 256,1024] [--tables 1,2,3,4,5,6,7]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from rnnlab import nn as rnn
from timing import interleaved

BATCH, SIZE = 32, 256
MODERN = ("MinGRU", "MinLSTM", "RGLRU")


def scan_table(repeats: int) -> None:
    torch.manual_seed(0)
    shape = (32, 1024, 256)
    c = torch.empty(shape)
    a, b = torch.rand(shape) * 0.5 + 0.5, torch.rand(shape) + 0.1  # positive: the log-space form applies
    a.requires_grad_(), b.requires_grad_()
    grad = torch.randn(shape)

    def scan(impl):
        def run():
            a.grad = b.grad = None
            rnn.linear_scan(a, b, impl=impl).backward(grad)
        return run

    runs = {"torch.add(a, b, out=c)": lambda: torch.add(a.detach(), b.detach(), out=c)}
    runs.update({f"linear_scan impl={impl!r}, forward + backward": scan(impl) for impl in ("ours", "reference", "log")})
    t = interleaved(runs, repeats)
    add = t["torch.add(a, b, out=c)"]
    print(f"\n### The scan on {shape} float32\n\n| what | time | / torch.add |\n|---|---|---|")
    for name, seconds in t.items():
        print(f"| {name} | {seconds * 1e3:.2f} ms | {seconds / add:.1f} |", flush=True)


def layer_table(lengths, repeats: int) -> None:
    print(f"\n### A layer, B = {BATCH}, input = hidden = {SIZE}, float32\n")
    print("| T | layer | train step | torch.nn.GRU / this | this / its Linear | inference | torch.nn.GRU / this |")
    print("|---|---|---|---|---|---|---|")
    for steps in lengths:
        torch.manual_seed(0)
        x = torch.randn(steps, BATCH, SIZE)
        layers = {"torch.nn.GRU": torch.nn.GRU(SIZE, SIZE), "torch.nn.LSTM": torch.nn.LSTM(SIZE, SIZE)}
        layers.update({name: getattr(rnn, name)(SIZE, SIZE) for name in MODERN})
        projections = {g: torch.nn.Linear(SIZE, g * SIZE) for g in (2, 3)}  # minGRU's (2H rows), the others' (3H)
        inputs = x.clone().requires_grad_()  # the projection's gradient reaches its input, as the layers' does
        grads = {g: torch.randn(steps, BATCH, g * SIZE) for g in projections}

        def train(module):
            def run():
                module.zero_grad(set_to_none=True)
                module(x)[0].sum().backward()
            return run

        def project(g):
            def run():
                projections[g].zero_grad(set_to_none=True)
                inputs.grad = None
                projections[g](inputs).backward(grads[g])
            return run

        def infer(module):
            def run():
                with torch.no_grad():
                    module(x)
            return run

        runs = {("train", name): train(m) for name, m in layers.items()}
        runs.update({("project", g): project(g) for g in projections})
        runs.update({("infer", name): infer(m) for name, m in layers.items()})
        t = interleaved(runs, repeats)
        for name, layer in layers.items():
            own = t["project", getattr(layer, "gates", 0)] if name in MODERN else None
            floor = f"{t['train', name] / own:.2f}" if own else "-"
            print(f"| {steps} | {name} | {t['train', name] * 1e3:.1f} ms | "
                  f"{t['train', 'torch.nn.GRU'] / t['train', name]:.2f} | {floor} | "
                  f"{t['infer', name] * 1e3:.1f} ms | {t['infer', 'torch.nn.GRU'] / t['infer', name]:.2f} |",
                  flush=True)
        for g in projections:
            print(f"| {steps} | Linear({SIZE}, {g * SIZE}) forward + backward | {t['project', g] * 1e3:.1f} ms | "
                  f"| | | |")


def stepping_table(repeats: int, tokens: int = 64) -> None:
    torch.manual_seed(0)
    xs = torch.randn(tokens, 1, 1, SIZE)  # one token at a time: (L = 1, N = 1, H_in)
    layers = {"torch.nn.GRU": torch.nn.GRU(SIZE, SIZE)}
    layers.update({name: getattr(rnn, name)(SIZE, SIZE) for name in (*MODERN, "Mamba")})

    def step(module):
        def run():
            with torch.no_grad():
                h = None
                for x in xs:
                    _, h = module(x, h)
        return run

    t = interleaved({name: step(m) for name, m in layers.items()}, repeats)
    print(f"\n### Stepping one token with a carried state, batch 1, input = hidden = {SIZE}\n")
    print("| layer | per token | torch.nn.GRU / this |\n|---|---|---|")
    for name, seconds in t.items():
        print(f"| {name} | {seconds / tokens * 1e6:.1f} us | {t['torch.nn.GRU'] / seconds:.2f} |", flush=True)


def mamba_py():
    """mamba.py's modules (the bench extra), or None."""
    try:
        from mambapy import mamba, pscan
    except ImportError:
        print("(mamba.py is not installed: pip install mambapy -- its columns are left out)")
        return None
    return mamba, pscan.pscan


def parallel_scan(u, delta, A, B, C, D, z, delta_bias, pscan):
    """``selective_scan``'s arithmetic as a plain-torch parallel scan (mamba.py's formulation): every step's
    decay and input made at once as (B, L, D, N) tensors, then Blelloch's scan over L."""
    dt = F.softplus(delta + delta_bias[:, None]).transpose(1, 2)  # (B, L, D)
    decay = torch.exp(dt[..., None] * A)  # (B, L, D, N)
    let_in = (dt * u.transpose(1, 2))[..., None] * B.transpose(1, 2)[:, :, None, :]  # (B, L, D, N)
    states = pscan(decay, let_in)  # (B, L, D, N)
    y = (states @ C.transpose(1, 2)[..., None]).squeeze(-1) + D * u.transpose(1, 2)  # (B, L, D)
    return (y * F.silu(z.transpose(1, 2))).transpose(1, 2)


def selective_scan_table(repeats: int) -> None:
    torch.manual_seed(0)
    batch, dim, steps, state = 8, 512, 1024, 16
    u, z = torch.randn(batch, dim, steps), torch.randn(batch, dim, steps)
    delta = torch.randn(batch, dim, steps) * 0.5 - 2
    A = -torch.arange(1.0, state + 1).repeat(dim, 1)
    B, C = torch.randn(batch, state, steps), torch.randn(batch, state, steps)
    D, bias = torch.ones(dim), torch.zeros(dim)
    inputs = [t.requires_grad_() for t in (u, delta, A, B, C, D, z, bias)]
    grad = torch.randn(batch, dim, steps)

    def run(form):
        def call():
            for t in inputs:
                t.grad = None
            form(*inputs).backward(grad)
        return call

    runs = {f"selective_scan impl={impl!r}": run(lambda *args, impl=impl: rnn.selective_scan(
        *args, delta_softplus=True, impl=impl)) for impl in ("ours", "reference")}
    found = mamba_py()
    if found:
        runs["parallel scan in torch (mamba.py's pscan)"] = run(lambda *args: parallel_scan(*args, pscan=found[1]))
    t = interleaved(runs, repeats)
    ours = t["selective_scan impl='ours'"]
    print(f"\n### selective_scan, forward + backward, (batch, dim, L, N) = {(batch, dim, steps, state)} float32\n")
    print("| form | time | this / ours |\n|---|---|---|")
    for name, seconds in t.items():
        print(f"| {name} | {seconds * 1e3:.1f} ms | {seconds / ours:.1f} |", flush=True)


def without_scan(layer):
    """One training step of ``layer`` (an rnnlab Mamba of one layer) with its scan left out: the norm, in_proj,
    conv1d, x_proj, dt_proj, the gate and out_proj, forward + backward -- what the layer costs beside its scan."""
    block = layer.layers[0]
    mixer = block.mixer

    def run(x):
        layer.zero_grad(set_to_none=True)
        u, z = mixer.in_proj(block.norm(x)).chunk(2, dim=-1)  # (N, L, E)
        u = F.silu(F.conv1d(F.pad(u.transpose(1, 2), (mixer.d_conv - 1, 0)), mixer.conv1d.weight, mixer.conv1d.bias,
                            groups=mixer.d_inner)).transpose(1, 2)  # (N, L, E)
        dt, B, C = mixer.x_proj(u).split([mixer.dt_rank, mixer.d_state, mixer.d_state], dim=-1)
        y = (u + F.softplus(mixer.dt_proj(dt))) * F.silu(z)  # stands where the scan's output would
        (layer.norm_f(x + mixer.out_proj(y)).sum() + B.sum() + C.sum()).backward()
    return run


def mamba_layer_table(lengths, repeats: int) -> None:
    found = mamba_py()
    print(f"\n### A Mamba layer's training step, B = {BATCH}, input = hidden = {SIZE} (d_inner 512, N 16), float32\n")
    print("| T | layer | train step | this / rnnlab Mamba |\n|---|---|---|---|")
    for steps in lengths:
        torch.manual_seed(0)
        x = torch.randn(BATCH, steps, SIZE)
        ours = rnn.Mamba(SIZE, SIZE, batch_first=True)
        layers = {"rnnlab.nn.Mamba": ours, "torch.nn.GRU": torch.nn.GRU(SIZE, SIZE, batch_first=True)}
        if found:
            layers["mamba.py Mamba (pscan)"] = found[0].Mamba(found[0].MambaConfig(d_model=SIZE, n_layers=1))

        def train(module):
            def run():
                module.zero_grad(set_to_none=True)
                out = module(x)
                (out[0] if isinstance(out, tuple) else out).sum().backward()
            return run

        runs = {name: train(m) for name, m in layers.items()}
        floor = without_scan(ours)
        runs["rnnlab.nn.Mamba without its scan (projections + conv)"] = lambda: floor(x)
        t = interleaved(runs, repeats)
        for name, seconds in t.items():
            print(f"| {steps} | {name} | {seconds * 1e3:.0f} ms | {seconds / t['rnnlab.nn.Mamba']:.2f} |", flush=True)


def libraries() -> dict:
    """The other projects' torch forms of the two operators that are installed: {name: (operator, function)}."""
    found = {}
    try:
        from transformers.models.qwen3_next.modeling_qwen3_next import torch_chunk_gated_delta_rule
        found["transformers torch_chunk_gated_delta_rule"] = ("gated_delta_rule", torch_chunk_gated_delta_rule)
    except ImportError:
        pass
    try:
        from mlstm_kernels.torch.chunkwise.native import mlstm_chunkwise__native_autograd
        found["mlstm_kernels native_autograd"] = ("mlstm", mlstm_chunkwise__native_autograd)
    except ImportError:
        pass
    return found


def matrix_memory_table(repeats: int, steps: int = 2048) -> None:
    torch.manual_seed(0)
    B, H, K = 8, 4, 64
    q, k, v = torch.randn(B, steps, H, K), F.normalize(torch.randn(B, steps, H, K), dim=-1), torch.randn(B, steps, H, K)
    g, beta = -torch.rand(B, steps, H) * 0.1, torch.rand(B, steps, H)
    delta = [t.requires_grad_() for t in (q, k, v, g, beta)]
    heads = [t.transpose(1, 2).contiguous().requires_grad_() for t in (q, k, v)]  # (B, H, T, K): mlstm's layout
    gates = [torch.randn(B, H, steps).requires_grad_(), (torch.randn(B, H, steps) + 3).requires_grad_()]
    inputs = {"gated_delta_rule": delta, "mlstm": heads + gates}

    def run(form, inputs):
        def call():
            for t in inputs:
                t.grad = None
            out = form(*inputs)
            (out[0] if isinstance(out, tuple) else out).sum().backward()
        return call

    runs, forms = {}, {}
    for impl in ("ours", "chunk", "reference"):
        forms[f"gated_delta_rule impl={impl!r}"] = lambda *x, impl=impl: rnn.gated_delta_rule(*x, impl=impl)[0]
        forms[f"mlstm impl={impl!r}"] = lambda *x, impl=impl: rnn.mlstm(*x, impl=impl)
    others = libraries()
    for name, (op, function) in others.items():
        forms[name] = ((lambda *x, f=function: f(*x, use_qk_l2norm_in_kernel=False)[0]) if op == "gated_delta_rule"
                       else (lambda *x, f=function: f(*x, chunk_size=64)))
    differences = {}
    for name, form in forms.items():
        op = name.split()[0] if name.split()[0] in inputs else others[name][0]
        runs[name] = run(form, inputs[op])
        if "reference" not in name:
            with torch.no_grad():
                mine, theirs = forms[f"{op} impl='ours'"](*inputs[op]), form(*inputs[op])
            differences[name] = float((theirs - mine).abs().max() / mine.abs().max())
    t = interleaved(runs, repeats)
    print(f"\n### Matrix memories, forward + backward, (B, H, T, K = V) = {(B, H, steps, K)} float32\n")
    print("| operator | form | time | this / ours | max relative difference from ours |\n|---|---|---|---|---|")
    for op in inputs:
        ours = t[f"{op} impl='ours'"]
        for name, seconds in t.items():
            if name.startswith(op) or others.get(name, ("",))[0] == op:
                difference = f"{differences[name]:.1e}" if name in differences else "-"
                print(f"| {op} | {name} | {seconds * 1e3:,.0f} ms | {seconds / ours:.1f} | {difference} |", flush=True)


def matrix_layer_table(lengths, repeats: int) -> None:
    print(f"\n### A matrix-memory layer's training step, B = {BATCH}, input = hidden = {SIZE}, float32\n")
    print("| T | layer | train step | this / rnnlab GatedDeltaNet |\n|---|---|---|---|")
    for steps in lengths:
        torch.manual_seed(0)
        x = torch.randn(BATCH, steps, SIZE)
        layers = {"rnnlab.nn.GatedDeltaNet": rnn.GatedDeltaNet(SIZE, SIZE, batch_first=True),
                  "rnnlab.nn.MLSTM": rnn.MLSTM(SIZE, SIZE, batch_first=True),
                  "rnnlab.nn.MinGRU": rnn.MinGRU(SIZE, SIZE, batch_first=True),
                  "rnnlab.nn.Mamba": rnn.Mamba(SIZE, SIZE, batch_first=True),
                  "torch.nn.GRU": torch.nn.GRU(SIZE, SIZE, batch_first=True)}

        def train(module):
            def run():
                module.zero_grad(set_to_none=True)
                module(x)[0].sum().backward()
            return run

        t = interleaved({name: train(m) for name, m in layers.items()}, repeats)
        for name, seconds in t.items():
            print(f"| {steps} | {name} | {seconds * 1e3:.0f} ms | {seconds / t['rnnlab.nn.GatedDeltaNet']:.2f} |",
                  flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--lengths", default="256,1024", help="the sequence lengths T of the layer tables")
    parser.add_argument("--tables", default="1,2,3,4,5,6,7", help="which tables (module docstring)")
    parser.add_argument("--loop-repeats", type=int, default=3, help="repeats of table 6 (its loops take seconds)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rnn.fast.extension()  # built and loaded (and malloc set to reuse freed blocks) before anything is timed
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU, median of {args.repeats}")
    lengths, tables = [int(n) for n in args.lengths.split(",")], {int(n) for n in args.tables.split(",")}
    for number, table in ((1, lambda: scan_table(args.repeats)), (2, lambda: layer_table(lengths, args.repeats)),
                          (3, lambda: stepping_table(args.repeats)), (4, lambda: selective_scan_table(args.repeats)),
                          (5, lambda: mamba_layer_table(lengths, args.repeats)),
                          (6, lambda: matrix_memory_table(args.loop_repeats)),
                          (7, lambda: matrix_layer_table(lengths, args.repeats))):
        if number in tables:
            table()


if __name__ == "__main__":
    main()
