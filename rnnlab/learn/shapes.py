"""What goes into and comes out of ``torch.nn.RNN`` / ``LSTM`` / ``GRU`` -- and of every other registered
architecture (minGRU, minLSTM, RG-LRU, Mamba, gated DeltaNet, mLSTM) -- for one configuration, checked.

    explain_shapes("lstm", input_size=10, hidden_size=20, num_layers=2, bidirectional=True)

returns an ``Explanation``: every parameter's name and shape, the shapes of input, h_0 (c_0), output,
h_n (c_n) with each dimension named as the PyTorch docs name them, how to split the two directions, and
which slices of ``output`` and ``h_n`` are the same numbers. Nothing in it is written from memory alone:
``explain_shapes`` runs the configuration through ``torch.nn`` on random numbers and compares every shape
and every equality with what came out, and refuses (AssertionError) to state anything that did not hold.
An architecture torch.nn lacks runs on rnnlab's layer, whose output is checked first against the paper's
per-step loop (``rnnlab.nn.reference``). The block stacks' state is a pair, (convolution windows, the mixers'
states), with their own sizes: Mamba's E = expand * H_cell, S = d_state, R = dt_rank, K = d_conv; gated
DeltaNet's h heads, K key and V value sizes, W = conv_size; the mLSTM's E inner channels, h heads of K = E / h,
b = qkv_blocksize, W = conv_size.

Names: L sequence length, N batch size, D = 2 if bidirectional else 1, H_in input_size, H_cell hidden_size,
H_out proj_size if > 0 else hidden_size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..errors import UserError
from ..nn import registry



@dataclass
class Explanation:
    """The checked answer of ``explain_shapes``. ``parameters``: name -> shape; ``tensors``: name -> shape;
    ``dims``: name -> the dimension names of that shape; ``formulas``: parameter name -> its shape in symbols;
    ``splits`` and ``equalities``: statements, each verified on a real run."""

    config: dict
    sizes: dict
    parameters: dict = field(default_factory=dict)
    formulas: dict = field(default_factory=dict)
    tensors: dict = field(default_factory=dict)
    dims: dict = field(default_factory=dict)
    splits: list = field(default_factory=list)
    equalities: list = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps({"config": self.config, "sizes": self.sizes, "parameters": self.parameters,
                           "tensors": self.tensors, "dims": self.dims, "splits": self.splits,
                           "equalities": self.equalities}, indent=2)

    def table(self) -> str:
        """The explanation as text: one table of parameters, one of tensors, then splits and equalities."""
        sizes = ", ".join(f"{name} = {value}" for name, value in self.sizes.items() if name.isidentifier())
        w = max([22] + [len(name) + 1 for name in self.parameters])  # the name column
        lines = [f"{self.config.get('module', 'torch.nn')}.{self.config['class']}({_arguments(self.config)})",
                 f"  {sizes}", "",
                 f"  {'parameter':<{w}} {'shape':<14} in symbols"]
        for name, shape in self.parameters.items():
            lines.append(f"  {name:<{w}} {_shape(shape):<14} {self.formulas[name]}")
        lines += ["", f"  {'tensor':<{w}} {'shape':<14} dimensions"]
        for name, shape in self.tensors.items():
            lines.append(f"  {name:<{w}} {_shape(shape):<14} ({', '.join(self.dims[name])})")
        lines += ["", "splitting directions and layers"] + [f"  {line}" for line in self.splits]
        where = self.config.get("module", "torch.nn")
        lines += ["", f"the same numbers (each evaluated as written, on a run of {where})"]
        lines += [f"  {line}" for line in self.equalities]
        return "\n".join(lines)


def explain_shapes(mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
                   batch_first: bool = False, proj_size: int = 0, seq_len: int = 5, batch: int = 3,
                   unbatched: bool = False, lengths: list[int] | None = None) -> Explanation:
    """Explain, and check on ``torch.nn``, the shapes of one recurrent layer configuration (see the module
    docstring). ``lengths``: a packed batch of sequences of these lengths (then ``batch`` and ``seq_len``
    follow from them). A combination torch refuses is a ``UserError`` with torch's own rule. An architecture
    without a torch.nn twin (minGRU, minLSTM, RG-LRU, Mamba) is explained on rnnlab's layer, whose output is
    first checked against the paper's loop (``rnnlab.nn.reference``) on the same input."""
    mode = mode.lower()
    explained = registry.names()
    if mode not in explained:
        raise UserError(f"mode must be one of {', '.join(explained)}, got {mode!r}", "mode")
    arch = registry.get(mode)
    if unbatched and lengths:
        raise UserError("a packed batch (lengths) cannot also be unbatched", "unbatched")
    if lengths:
        if any(not isinstance(n, int) or n < 1 for n in lengths):
            raise UserError(f"lengths must be whole numbers >= 1, got {lengths}", "lengths")
        batch, seq_len = len(lengths), max(lengths)
    for name, value in (("seq_len", seq_len), ("batch", batch)):
        if not isinstance(value, int) or value < 1:
            raise UserError(f"{name} must be a whole number >= 1, got {value!r}", name)
    cls = arch.torch_twin or arch.layer.__name__
    options = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first)
    if proj_size:
        if not arch.proj_size:
            raise UserError("proj_size argument is only supported for LSTM, not RNN or GRU" if arch.torch_twin
                            else f"proj_size is an LSTM's (torch.nn.LSTM's); {mode} has none", "proj_size")
        options["proj_size"] = proj_size
    try:
        if arch.torch_twin:
            module = getattr(torch.nn, cls)(input_size, hidden_size, dtype=torch.float64, **options)
        else:
            module = arch.build(input_size, hidden_size, dtype=torch.float64, **options)
    except (ValueError, TypeError, RuntimeError) as err:
        where = "torch.nn" if arch.torch_twin else "rnnlab.nn"
        raise UserError(f"{where}.{cls} refuses this configuration: {err}") from None

    D, H_out = 2 if bidirectional else 1, proj_size or hidden_size
    sizes = {"L": seq_len, "N": batch, "D": D, "H_in": input_size, "H_cell": hidden_size, "H_out": H_out,
             "num_layers": num_layers}
    if mode in STACKS:  # the mixer's sizes
        sizes.update(STACKS[mode]["sizes"](module.layers[0].mixer))
    config = {"class": cls, "module": "torch.nn" if arch.torch_twin else "rnnlab.nn", "input_size": input_size,
              "hidden_size": hidden_size, "num_layers": num_layers, "bidirectional": bidirectional,
              "batch_first": batch_first, "proj_size": proj_size, "unbatched": unbatched,
              "lengths": list(lengths) if lengths else None}
    explanation = Explanation(config, sizes)
    if mode in STACKS:
        _stack_parameters(explanation, module, STACKS[mode]["formulas"])
    else:
        _parameters(explanation, module, arch.gates)

    generator = torch.Generator().manual_seed(0)
    x = torch.randn((batch, seq_len, input_size) if batch_first else (seq_len, batch, input_size),
                    generator=generator, dtype=torch.float64)
    if unbatched:
        x = x[0] if batch_first else x[:, 0]
    inputs = pack_padded_sequence(x, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False) \
        if lengths else x
    with torch.no_grad():
        output, state = module(inputs)
        if not arch.torch_twin:
            _against_reference(arch, module, x, output, config)
    if mode in STACKS:  # the state is the pair (convolution windows, the mixers' states), not an output
        names = STACKS[mode]["state"]
        _tensors(explanation, x, output, {}, {name: (tensor, dims) for (name, dims), tensor in zip(names, state)})
        _splits(explanation, output, None)
        explanation.equalities.append(f"(none: {arch.layer.__name__}'s state is each mixer's convolution window "
                                      f"and {STACKS[mode]['what']}, not its output; the last step of output is "
                                      "read where a final state is wanted)")
        return explanation
    h_n, c_n = state if arch.math.has_cell_state else (state, None)
    _tensors(explanation, x, output, {"h_0": (h_n, ["H_out"]), "c_0": (c_n, ["H_cell"])},
             {"h_n": (h_n, ["H_out"]), "c_n": (c_n, ["H_cell"])})
    _splits(explanation, output, h_n)
    _equalities(explanation, output, h_n)
    return explanation


def _against_reference(arch, module, x, output, config: dict) -> None:
    """The layer's output equals the paper's loop's (``arch.reference``) on the same input, each sequence of a
    packed batch alone: what is explained is what the equations compute."""
    batch_first, lengths = config["batch_first"], config["lengths"]
    if lengths is not None:
        padded, _ = pad_packed_sequence(output, batch_first=batch_first)
        for b, length in enumerate(lengths):
            alone = (x[b, :length] if batch_first else x[:length, b])[:, None]  # (L_b, 1, H_in)
            got = padded[b, :length] if batch_first else padded[:length, b]
            assert torch.allclose(got, arch.reference(module, alone)[0][:, 0], atol=1e-10, rtol=0), "reference"
        return
    if config["unbatched"]:
        steps, got = x[:, None], output
    else:
        steps = x.transpose(0, 1) if batch_first else x  # (L, N, H_in)
        got = output.transpose(0, 1) if batch_first else output
    expected = arch.reference(module, steps)[0]  # (L, N, D*H)
    assert torch.allclose(got, expected[:, 0] if config["unbatched"] else expected, atol=1e-10, rtol=0), "reference"


MAMBA_FORMULAS = {"mixer.in_proj.weight": "(2*E, H_cell)", "mixer.conv1d.weight": "(E, 1, K)",
                  "mixer.conv1d.bias": "(E,)", "mixer.x_proj.weight": "(R+2*S, E)", "mixer.dt_proj.weight": "(E, R)",
                  "mixer.dt_proj.bias": "(E,)", "mixer.A_log": "(E, S)", "mixer.D": "(E,)",
                  "mixer.out_proj.weight": "(H_cell, E)", "mixer.in_proj.bias": "(2*E,)",
                  "mixer.out_proj.bias": "(H_cell,)"}
GDN_FORMULAS = {"mixer.q_proj.weight": "(h*K, H_cell)", "mixer.k_proj.weight": "(h*K, H_cell)",
                "mixer.v_proj.weight": "(h*V, H_cell)", "mixer.a_proj.weight": "(h, H_cell)",
                "mixer.b_proj.weight": "(h, H_cell)", "mixer.g_proj.weight": "(h*V, H_cell)",
                "mixer.q_conv1d.weight": "(h*K, 1, W)", "mixer.k_conv1d.weight": "(h*K, 1, W)",
                "mixer.v_conv1d.weight": "(h*V, 1, W)", "mixer.A_log": "(h,)", "mixer.dt_bias": "(h,)",
                "mixer.o_norm.weight": "(V,)", "mixer.o_proj.weight": "(H_cell, h*V)",
                "mixer.q_proj.bias": "(h*K,)", "mixer.k_proj.bias": "(h*K,)", "mixer.v_proj.bias": "(h*V,)",
                "mixer.g_proj.bias": "(h*V,)", "mixer.o_proj.bias": "(H_cell,)"}
MLSTM_FORMULAS = {"mixer.proj_up.weight": "(2*E, H_cell)", "mixer.conv1d.weight": "(E, 1, W)",
                  "mixer.conv1d.bias": "(E,)", "mixer.q_proj.weight": "(E/b, b, b)",
                  "mixer.k_proj.weight": "(E/b, b, b)",
                  "mixer.v_proj.weight": "(E/b, b, b)", "mixer.igate.weight": "(h, 3*E)", "mixer.igate.bias": "(h,)",
                  "mixer.fgate.weight": "(h, 3*E)", "mixer.fgate.bias": "(h,)", "mixer.outnorm": "(E,)",
                  "mixer.learnable_skip": "(E,)", "mixer.proj_down.weight": "(H_cell, E)",
                  "mixer.proj_up.bias": "(2*E,)", "mixer.proj_down.bias": "(H_cell,)"}
COMMON = {"input_proj.weight": "(H_cell, H_in)", "input_proj.bias": "(H_cell,)", "norm.weight": "(H_cell,)",
          "norm_f.weight": "(H_cell,)"}
# the layers that are a stack of pre-norm residual blocks around a mixer (rnnlab.nn.mamba, .matrix_memory):
# each mixer's sizes, its parameters in symbols, and its state pair's names and dimensions
STACKS = {
    "mamba": {"sizes": lambda m: dict(E=m.d_inner, S=m.d_state, R=m.dt_rank, K=m.d_conv, **{"K-1": m.d_conv - 1}),
              "formulas": MAMBA_FORMULAS, "state": (("windows_n", ["E", "K-1"]), ("states_n", ["E", "S"])),
              "what": "SSM state"},
    "gdn": {"sizes": lambda m: dict(h=m.num_heads, K=m.head_dim, V=m.head_v_dim, W=m.conv_size,
                                    C=m.channels, **{"W-1": m.conv_size - 1}),
            "formulas": GDN_FORMULAS, "state": (("windows_n", ["C", "W-1"]), ("memories_n", ["h", "K", "V"])),
            "what": "memory S (C = 2*h*K + h*V channels: q, k and v's)"},
    "mlstm": {"sizes": lambda m: dict(E=m.d_inner, h=m.num_heads, K=m.head_dim, b=m.q_proj.weight.shape[-1],
                                      W=m.conv_size, **{"E/b": m.q_proj.weight.shape[0], "K+2": m.head_dim + 2,
                                                        "W-1": m.conv_size - 1}),
              "formulas": MLSTM_FORMULAS, "state": (("windows_n", ["E", "W-1"]), ("memories_n", ["h", "K", "K+2"])),
              "what": "memory [C, n, m] (K = E / h)"},
}


def _stack_parameters(explanation: Explanation, module, formulas: dict) -> None:
    """A block stack's parameters (``STACKS``), each checked against its formula."""
    for name, param in module.named_parameters():
        key = name.split(".", 2)[2] if name.startswith("layers") else name.replace("_reverse", "")
        formula = COMMON.get(key) or formulas[key]
        assert _evaluate(formula, explanation.sizes) == list(param.shape), (name, formula, param.shape)
        explanation.parameters[name], explanation.formulas[name] = list(param.shape), formula


def _parameters(explanation: Explanation, module, gates: int) -> None:
    g = f"{gates}*H_cell" if gates > 1 else "H_cell"
    for name, param in module.named_parameters():
        kind, layer = name.rsplit("_l", 1)
        first = layer.split("_")[0] == "0"
        formula = {"weight_ih": f"({g}, {'H_in' if first else 'D*H_out'})", "weight_hh": f"({g}, H_out)",
                   "bias_ih": f"({g},)", "bias_hh": f"({g},)", "weight_hr": "(H_out, H_cell)",
                   "lambda": "(H_cell,)"}[kind]
        shape = list(param.shape)
        assert _evaluate(formula, explanation.sizes) == shape, (name, formula, shape)
        explanation.parameters[name], explanation.formulas[name] = shape, formula


def _tensors(explanation: Explanation, x, output, before: dict, after: dict) -> None:
    """Input, the states given (``before``), output and the states returned (``after``), each state as
    {name: (tensor or None, its dimensions after (D*num_layers, N))}: every shape checked against its
    dimensions' names."""
    c, s = explanation.config, explanation.sizes
    time_major = ["L", "N"] if not c["batch_first"] else ["N", "L"]
    if c["unbatched"]:
        time_major = ["L"]
    state_dims = ["D*num_layers"] + ([] if c["unbatched"] else ["N"])
    packed = c["lengths"] is not None
    named = {
        "input": (x, ["sum(lengths)", "H_in"] if packed else time_major + ["H_in"]),
        **{name: (tensor, state_dims + tail) for name, (tensor, tail) in before.items()},
        "output": (output.data if packed else output,
                   ["sum(lengths)", "D*H_out"] if packed else time_major + ["D*H_out"]),
        **{name: (tensor, state_dims + tail) for name, (tensor, tail) in after.items()},
    }
    if packed:  # the packed input's .data, as the packed output's
        named["input"] = (torch.empty(sum(c["lengths"]), s["H_in"]), named["input"][1])
    sizes = {**s, "sum(lengths)": sum(c["lengths"]) if packed else 0}
    for name, (tensor, dims) in named.items():
        if tensor is None:
            continue
        assert [_evaluate(d, sizes) for d in dims] == list(tensor.shape), (name, dims, tensor.shape)
        explanation.tensors[name], explanation.dims[name] = list(tensor.shape), dims


def _holds(left: str, right: str, env: dict) -> bool:
    """Whether the two printed expressions give equal tensors on this run (they are evaluated as written)."""
    return torch.equal(eval(left, {}, env), eval(right, {}, env))  # noqa: S307 -- our own expressions


def _splits(explanation: Explanation, output, h_n) -> None:
    c, s = explanation.config, explanation.sizes
    env = {"output": output, "h_n": h_n, **s}
    name = "output"
    if c["lengths"] is not None:
        env["padded"], env["lengths"] = pad_packed_sequence(output, batch_first=c["batch_first"])
        explanation.splits.append("padded, lengths = pad_packed_sequence(output"
                                  + (", batch_first=True)" if c["batch_first"] else ")"))
        name = "padded"
    lead = "L" if c["unbatched"] else ("N, L" if c["batch_first"] else "L, N")
    state = "num_layers, D" + ("" if c["unbatched"] else ", N")
    views = [(f"{name}.view({lead}, D, H_out)", "[..., 0, :] forward, [..., 1, :] backward"
              if s["D"] == 2 else "one direction")]
    if h_n is not None:  # (Mamba's state is no h_n)
        views.append((f"h_n.view({state}, H_out)", "[k, d] is layer k, direction d"))
    for view, meaning in views:
        shape = list(eval(view, {}, env).shape)  # noqa: S307 -- our own expression, run as printed
        explanation.splits.append(f"{view} -> {_shape(shape)}: {meaning}")


def _equalities(explanation: Explanation, output, h_n) -> None:
    """Which slices of output are which final states: each statement's two sides are evaluated as printed."""
    c, s = explanation.config, explanation.sizes
    D = s["D"]
    env = {"output": output, "h_n": h_n, "H_out": s["H_out"]}
    statements = []
    if c["lengths"] is not None:
        env["padded"], lengths = pad_packed_sequence(output, batch_first=c["batch_first"])
        last, first = ("[b, lengths[b] - 1", "[b, 0") if c["batch_first"] else ("[lengths[b] - 1, b", "[0, b")
        checks = [(f"padded{last}, :H_out]", f"h_n[{-D}][b]", "for every sequence b: the last layer's forward "
                   "final state is each sequence's last valid step, not padded's last row")]
        if D == 2:
            checks.append((f"padded{first}, H_out:]", "h_n[-1][b]", "for every sequence b: the backward "
                           "direction ends at step 0"))
        for left, right, meaning in checks:
            assert all(_holds(left, right, {**env, "b": b, "lengths": lengths}) for b in range(len(lengths)))
            statements.append(f"{left} == {right} {meaning}")
    else:
        last, first = {(True, False): ("[-1", "[0"), (True, True): ("[-1", "[0"),
                       (False, False): ("[-1, :", "[0, :"), (False, True): ("[:, -1", "[:, 0")}[
            (c["unbatched"], c["batch_first"])]
        if D == 1:
            left, right = f"output{last}]", "h_n[-1]"
            assert _holds(left, right, env)
            statements.append(f"{left} == {right}: the last layer's final state is its output at the last step")
        else:
            checks = [(f"output{last}, :H_out]", "h_n[-2]", ": the last layer's forward final state"),
                      (f"output{first}, H_out:]", "h_n[-1]", ": its backward final state, at step 0")]
            for left, right, meaning in checks:
                assert _holds(left, right, env)
                statements.append(f"{left} == {right}{meaning}")
            if s["L"] > 1:  # with one step, the last step is step 0
                wrong = f"output{last}, H_out:]"
                assert not _holds(wrong, "h_n[-1]", env)
                statements.append(f"{wrong} != h_n[-1]: the backward direction starts at the last step, "
                                  "so its output there has read one step only")
    if s["num_layers"] > 1:  # no step and direction of output holds a lower layer's final state
        steps = env.get("padded", output)
        slices = [steps[..., d * s["H_out"]:(d + 1) * s["H_out"]] for d in range(D)]
        lower = h_n[:-D]
        assert all(not torch.isclose(part.reshape(-1, part.shape[-1]).unsqueeze(1),
                                     state.reshape(-1, state.shape[-1]).unsqueeze(0)).all(-1).any()
                   for part in slices for state in lower)
        statements.append(f"h_n[:{-D}] (the lower layers' final states) appear nowhere in output: output is the "
                          "last layer's, and its feature size is D*H_out whatever num_layers is")
    explanation.equalities.extend(statements)


def _evaluate(expression: str, sizes: dict):
    """'(4*H_cell, H_in)' -> [80, 10]; 'D*H_out' -> 40."""
    if expression.startswith("("):
        return [_evaluate(part, sizes) for part in expression.strip("(),").split(",") if part.strip()]
    if "+" in expression:
        return sum(_evaluate(term, sizes) for term in expression.split("+"))
    if expression.strip() in sizes:  # a size named with its arithmetic ("K-1", "E/b")
        return sizes[expression.strip()]
    value = 1
    for factor in expression.strip().split("*"):
        value *= int(factor) if factor.isdigit() else sizes[factor]
    return value


def _shape(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _arguments(config: dict) -> str:
    args = [str(config["input_size"]), str(config["hidden_size"])]
    defaults = {"num_layers": 1, "bidirectional": False, "batch_first": False, "proj_size": 0}
    args += [f"{name}={config[name]}" for name, default in defaults.items() if config[name] != default]
    return ", ".join(args)
