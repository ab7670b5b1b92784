"""Long recordings in classify: the strided convolutional front end (``front``) against its equations written
out, the max-over-steps readout, the defaults that choose them (one line says so), their errors, and a model
with them saved, loaded and exported."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnlab.errors import UserError
from rnnlab.tasks import classify
from rnnlab.tasks.network import ConvFront, ModelConfig, SequenceModel, front_length, front_stages


@pytest.mark.parametrize("stride, stages", [(2, [2]), (4, [4]), (8, [4, 2]), (12, [4, 3]), (16, [4, 4]),
                                            (32, [4, 4, 2]), (6, [6])])
def test_the_stride_is_split_into_stages_of_four_then_what_is_left(stride, stages):
    assert front_stages(stride) == stages
    for length in (1, 5, 16, 17, 1460):
        want = length
        for s in stages:
            want = -(-want // s)
        assert front_length(length, stride) == want


def test_each_stage_is_its_equation_written_out():
    """Output t of a stage of stride s reads input steps (t - 1) s .. (t + 1) s - 1, zeros outside the
    sequence; then GELU. Two stages (stride 12 = 4 x 3), float64, every gradient against autograd's of the loop."""
    torch.manual_seed(0)
    front = ConvFront(2, 5, 12).double()
    x = torch.randn(3, 29, 2, dtype=torch.float64, requires_grad=True)
    got, _ = front(x, None)

    def by_hand(h, conv):
        s, (_, _, width) = conv.stride[0], conv.weight.shape
        steps = -(-h.shape[1] // s)
        outs = []
        for t in range(steps):
            acc = conv.bias.expand(h.shape[0], -1).clone()
            for k in range(width):  # tap k reads step (t - 1) s + k
                step = (t - 1) * s + k
                if 0 <= step < h.shape[1]:
                    acc = acc + h[:, step] @ conv.weight[:, :, k].T
            outs.append(F.gelu(acc))
        return torch.stack(outs, dim=1)

    want = x
    for conv in front.convs:
        want = by_hand(want, conv)
    assert got.shape == (3, front_length(29, 12), 5)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    grads = torch.randn_like(got)
    mine = torch.autograd.grad(got, [x, *front.parameters()], grads)
    theirs = torch.autograd.grad(want, [x, *front.parameters()], grads)
    for a, b in zip(mine, theirs):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(lambda v: front(v, None)[0], (x[:1, :13].detach().requires_grad_(),))


def test_max_readout_is_each_feature_s_largest_value_over_the_real_steps():
    steps = torch.randn(3, 6, 4, dtype=torch.float64)
    lengths = torch.tensor([6, 2, 4])
    got = SequenceModel._max_steps(steps, lengths)
    want = torch.stack([steps[k, :n].max(0).values for k, n in enumerate(lengths.tolist())])
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    torch.testing.assert_close(SequenceModel._max_steps(steps, None), steps.max(1).values, rtol=0, atol=0)


@pytest.mark.parametrize("config, says", [(dict(front=1), "front"), (dict(front=4, readout="steps"), "front"),
                                          (dict(readout="mean"), "readout")])
def test_a_network_refuses_what_it_cannot_build(config, says):
    with pytest.raises(ValueError, match=says):
        SequenceModel(ModelConfig(input_size=2, output_size=3, **config))


def recordings(n: int, steps: int, seed: int):
    """n recordings of ``steps`` steps: class 1 holds a burst somewhere, class 0 none."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, steps, 1)).astype(np.float32) * 0.3
    y = np.arange(n) % 2
    for k in np.flatnonzero(y):
        start = rng.integers(0, steps - 40)
        x[k, start:start + 40, 0] += 3.0
    return x, y


def test_long_recordings_get_a_front_end_and_the_max_by_default_and_one_line_says_so(tmp_path, capsys):
    x, y = recordings(60, 700, 0)
    metrics = classify.train(x=x, y=y, steps=2, out=str(tmp_path / "run"), quiet=False)
    said = capsys.readouterr()
    model = classify.load(tmp_path / "run")
    config = model.network.config
    assert (config.front, config.readout, config.chrono) == (8, "max", 0)  # 700 / 8 -> 88 <= 128 (/ 4 -> 175)
    assert "a convolutional front end reads them 8 steps at a time (88 steps for the gru)" in said.out + said.err
    assert model.options["noise"] == 0.0  # no jitter where a front end reads
    assert model.options["val_frac"] == 0.1 and metrics["val_sequences"] == 4  # 24 per class: a tenth held out
    assert model.predict(x[:5]).shape == (5,)


@pytest.mark.parametrize("options, want", [
    (dict(), (0, "last")),  # 120 steps: read whole
    (dict(front=4), (4, "max")), (dict(front=4, readout="last"), (4, "last")), (dict(readout="max"), (0, "max")),
])
def test_short_sequences_are_read_whole_unless_asked(tmp_path, options, want):
    x, y = recordings(24, 120, 1)
    classify.train(x=x, y=y, steps=1, out=str(tmp_path / "run"), **options)
    config = classify.load(tmp_path / "run").network.config
    assert (config.front, config.readout) == want


def test_pixels_stay_the_long_memory_benchmark_and_small_sets_hold_nothing_out(tmp_path):
    classify.train(pixels=True, steps=1, out=str(tmp_path / "pixels"), hidden=8)  # built-in 8 x 8 digits: 64 steps
    assert classify.load(tmp_path / "pixels").network.config.front == 0
    x, y = recordings(30, 600, 2)  # 12 per class in training: under SMALL_SET
    metrics = classify.train(x=x, y=y, steps=1, out=str(tmp_path / "small"), hidden=8)
    assert metrics["val_sequences"] == 0 and classify.load(tmp_path / "small").options["noise"] == 0.0


@pytest.mark.parametrize("options, says", [(dict(front=1), "front"), (dict(front=-2), "front"),
                                           (dict(front=True), "front"), (dict(readout="mean"), "readout")])
def test_bad_settings_are_one_line(tmp_path, options, says):
    x, y = recordings(24, 120, 3)
    with pytest.raises(UserError, match=says):
        classify.train(x=x, y=y, steps=1, out=str(tmp_path / "run"), **options)


def test_inspect_labels_each_step_of_the_front_end_with_the_input_step_it_starts_at(tmp_path):
    from rnnlab.learn.heatmaps import inspect_model
    x, y = recordings(24, 530, 4)
    np.savez(tmp_path / "rec.npz", x=x[:16], y=y[:16], x_test=x[16:], y_test=y[16:])
    classify.train(npz=str(tmp_path / "rec.npz"), steps=1, hidden=8, out=str(tmp_path / "run"))
    assert classify.load(tmp_path / "run").network.config.front == 8  # 530 -> 67 steps
    inspect_model(tmp_path / "run", tmp_path / "seen", index=1)
    saved = np.load(tmp_path / "seen" / "internals.npz")
    assert saved["labels"].tolist() == [str(8 * t) for t in range(67)]
    assert saved["l0_d0_h"].shape == (67, 8)
