"""The character language model, through the `rnnlab` command as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from rnnlab.cli import main
from rnnlab.errors import UserError
from rnnlab.tasks.network import ModelConfig
from rnnlab.tasks import charlm, load


def rnnlab(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "rnnlab.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)


@pytest.mark.parametrize("text", ["if you want you", "hihello"])
def test_memorisation_examples_replay_exactly(tmp_path, text):
    (tmp_path / "text.txt").write_text(text, encoding="utf-8")
    trained = rnnlab("charlm", "train", "--text", tmp_path / "text.txt", "--out", tmp_path / "run")
    assert trained.returncode == 0, trained.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {"train_loss", "val_loss", "steps", "seconds"} <= set(metrics)
    assert metrics["steps"] == 150  # the short-text recipe's whole run (its time is in the README's table)
    sampled = rnnlab("charlm", "sample", "--model", tmp_path / "run", "--greedy", "--prime", text[0],
                     "--length", len(text) - 1)
    assert sampled.returncode == 0, sampled.stderr
    assert sampled.stdout == text + "\n"  # the prime and the generated text, nothing else


def test_multibyte_text_trains_and_samples(tmp_path):
    text = "나는 너를 사랑해. 너는 나를 사랑해? " * 3
    (tmp_path / "ko.txt").write_text(text, encoding="utf-8")
    charlm.train(text_file=str(tmp_path / "ko.txt"), out=str(tmp_path / "run"))
    out = charlm.sample(tmp_path / "run", prime="나는", length=20, greedy=True)
    assert out.startswith("나는 너를 사랑해.") and len(out) == 22


def test_sampling_options(tmp_path):
    charlm.train(text="hello world, hello there", out=str(tmp_path / "run"), steps=60)
    greedy = charlm.sample(tmp_path / "run", prime="he", length=15, greedy=True)
    assert charlm.sample(tmp_path / "run", prime="he", length=15, top_k=1) == greedy  # top-1 is argmax
    first = charlm.sample(tmp_path / "run", prime="h", length=30, temperature=1.5, seed=3)
    assert first == charlm.sample(tmp_path / "run", prime="h", length=30, temperature=1.5, seed=3)
    assert charlm.sample(tmp_path / "run", length=5).startswith("h")  # default prime: the text's first char
    for bad in (dict(length=-1), dict(temperature=0), dict(top_k=-2)):
        with pytest.raises(UserError):
            charlm.sample(tmp_path / "run", **bad)


def test_long_text_holds_out_the_last_tenth(tmp_path):
    text = "".join(f"{k} bottles of beer on the wall, {k} bottles of beer.\n" for k in range(120))
    assert len(text) > charlm.SMALL_TEXT
    metrics = charlm.train(text=text, out=str(tmp_path / "run"), steps=3, hidden=16, embed=8, eval_every=3,
                           batch_size=4)
    assert metrics["val_chars"] == int(len(text) * 0.1)
    assert metrics["train_chars"] + metrics["val_chars"] == len(text)
    assert metrics["val_loss"] > 0 and metrics["train_loss"] > 0


def test_the_long_text_recipe_takes_another_architecture(tmp_path):
    """The recipe's DropConnect belongs to its LSTM: --arch mingru (which has no W_hh to drop) trains without
    it, and asking for it by name is still refused."""
    text = "".join(f"{k} bottles of beer on the wall, {k} bottles of beer.\n" for k in range(120))
    assert charlm.LARGE["weight_drop"] > 0
    metrics = charlm.train(text=text, out=str(tmp_path / "run"), arch="mingru", layers=2, steps=2, hidden=16,
                           embed=8, eval_every=2, batch_size=4)
    assert metrics["val_loss"] > 0
    assert load(tmp_path / "run").network.config.variants.weight_drop == 0
    with pytest.raises(UserError, match="mingru has no weight_drop"):
        charlm.train(text=text, out=str(tmp_path / "bad"), arch="mingru", weight_drop=0.3, steps=2)


def in_process(capsys, *args) -> tuple[int, str]:
    """The command run in this process (``rnnlab.cli.main``, what the script runs; the installed script's own
    runs are in test_user_errors.py): (exit status, what it wrote to stderr)."""
    try:
        status = main([str(a) for a in args])
    except SystemExit as stop:  # argparse's own messages (an unknown choice) exit from the parser
        status = stop.code
    return status, capsys.readouterr().err


def test_bad_text_files_give_one_clear_line(tmp_path, capsys):
    (tmp_path / "latin.txt").write_bytes("line one\ncaf\xe9 au lait\n".encode("latin-1"))
    (tmp_path / "empty.txt").write_bytes(b"")
    cases = [
        (["--text", tmp_path / "missing.txt"], "text file not found"),
        (["--text", tmp_path / "empty.txt"], "is empty"),
        (["--text", tmp_path / "latin.txt"], "not valid utf-8: byte 0xe9 at offset 12 (line 2, column 4)"),
        (["--text", tmp_path / "latin.txt", "--encoding", "klingon"], "--encoding 'klingon' is unknown"),
        (["--hidden", "0"], "--hidden must be > 0"),
        (["--steps", "-3"], "--steps must be > 0"),
        (["--arch", "transformer"], "invalid choice"),
    ]
    for args, message in cases:
        status, err = in_process(capsys, "charlm", "train", "--out", tmp_path / "run", *args)
        assert status == 2
        assert message in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
    status, err = in_process(capsys, "charlm", "train", "--text", tmp_path / "latin.txt", "--encoding", "latin-1",
                             "--quiet", "--out", tmp_path / "l1")
    assert status == 0, err
    status, err = in_process(capsys, "charlm", "sample", "--model", tmp_path / "l1", "--prime", "Z")
    assert status == 2 and "not in the model's vocabulary: 'Z'" in err


def _stateful_task(text, seq_len=10, dropout=0.0, arch="lstm"):
    torch.manual_seed(0)  # the same initial weights whatever ran before (a Mamba's state matters ~4e-3 here)
    config = ModelConfig(arch=arch, input_size=8, hidden=16, dropout=dropout, output_size=len(set(text)),
                         vocab_size=len(set(text)), readout="steps")
    return charlm.CharLMTask(text, config, seq_len=seq_len, val_frac=0.1, stateful=True)


BEER = "".join(f"{k} bottles of beer on the wall, {k} bottles of beer.\n" for k in range(120))


def test_stateful_streams_read_on_where_the_last_window_ended():
    task = _stateful_task(BEER)
    generator = torch.Generator().manual_seed(0)
    first_inputs, first_targets = task.batch(generator, 4, "cpu")
    second_inputs, _ = task.batch(generator, 4, "cpu")
    assert torch.equal(second_inputs[:, 0], first_targets[:, -1])
    both = torch.cat([first_inputs, second_inputs], dim=1)  # (4, 2T)
    text_ids = task.train_ids
    for row in both:
        found = [s for s in range(len(text_ids) - 20) if torch.equal(text_ids[s:s + 20], row)]
        assert found, "each stream reads one contiguous piece of the text"


@pytest.mark.parametrize("arch", ["lstm", "mamba"])  # Mamba's state: (convolution windows, SSM states)
def test_stateful_loss_carries_the_state_exactly(arch):
    """Two consecutive windows scored one after the other = the model run over both at once."""
    task = _stateful_task(BEER, arch=arch)
    model = task.model.eval()
    generator = torch.Generator().manual_seed(1)
    first = task.batch(generator, 3, "cpu")
    with torch.no_grad():
        task.loss(model, first)
        second = task.batch(generator, 3, "cpu")
        carried = task.loss(model, second)
        inputs = torch.cat([first[0], second[0]], dim=1)  # (3, 2T)
        logits, _ = model(inputs)  # (3, 2T, V)
        whole = F.cross_entropy(logits[:, 10:].flatten(0, 1), second[1].flatten())
        cold = F.cross_entropy(model(second[0])[0].flatten(0, 1), second[1].flatten())
    assert torch.allclose(carried, whole, atol=1e-6)
    assert not torch.allclose(carried, cold, atol=1e-4)  # the carried state makes a difference


def test_stateful_stream_that_runs_out_of_text_starts_over_cold():
    text = "".join(chr(97 + (k * 7) % 26) for k in range(5_100))
    task = _stateful_task(text, seq_len=500)
    model = task.model.eval()
    generator = torch.Generator().manual_seed(2)
    seen = []
    with torch.no_grad():
        for _ in range(12):
            inputs, targets = task.batch(generator, 2, "cpu")
            state = task._carried_state("cpu")
            loss = task.loss(model, (inputs, targets))
            if bool(task.fresh.any()) and not bool(task.fresh.all()):
                seen.append(1)
                row = int(task.fresh.nonzero()[0])
                assert float(state[0][0, row].abs().sum()) == 0 and float(state[1][0, row].abs().sum()) == 0
                assert int(task.cursors[row]) - 500 < 500  # from a place among the first seq_len characters
                assert torch.equal(inputs[row], task.train_ids[task.cursors[row] - 500:task.cursors[row]])
            del loss
    assert seen, "a stream ran out of text and started over"


@pytest.mark.parametrize("characters", [1_000, 16_777_217, 40_000_001, 450_737_488])
def test_validation_streams_start_inside_the_text_at_any_size(characters):
    """The streams' windows (each ``length`` + 1 characters) start evenly spaced from 0, the last one ending
    exactly at the text's end, also past 2^24 characters (where a float32 linspace rounded the starts)."""
    from rnnlab.tasks.charlm import stream_starts
    length, streams = 313, 32
    starts = stream_starts(characters, length, streams)
    assert starts.dtype == torch.int64 and starts[0] == 0
    assert starts[-1] + length + 1 == characters
    gaps = starts.diff()
    assert (gaps >= 0).all() and gaps.max() - gaps.min() <= 1
    assert stream_starts(characters, length, 1).tolist() == [0]


def _naive(text: str):
    """The encoding as a per-character loop would write it (the reference for the chunked one)."""
    chars = sorted(set(text))
    return [chars.index(c) for c in text], chars


@pytest.mark.parametrize("chunk", [7, 1 << 20])
def test_chunked_encoding_equals_the_naive_one(tmp_path, monkeypatch, chunk):
    from rnnlab.data import text as text_module
    monkeypatch.setattr(text_module, "CHUNK", chunk)  # chunk boundaries inside multi-byte characters
    cases = {"ascii": "hello world\nthe quick brown fox\n" * 5, "utf-8": "héllo wörld — αβγ 🙂 ok\n" * 5}
    for name, text in cases.items():
        (tmp_path / f"{name}.txt").write_text(text, encoding="utf-8")
        expected_ids, expected_chars = _naive(text)
        for ids, vocab in (text_module.encode_file(tmp_path / f"{name}.txt"), text_module.encode_text(text)):
            assert ids.tolist() == expected_ids and vocab.chars == expected_chars and ids.dtype == torch.uint8
    latin = "café au lait, crème brûlée\n" * 3
    (tmp_path / "latin.txt").write_bytes(latin.encode("latin-1"))
    ids, vocab = text_module.encode_file(tmp_path / "latin.txt", "latin-1")
    assert vocab.decode(ids) == latin
    many = "".join(chr(0x4E00 + k) for k in range(300))  # more than 256 distinct characters: int16
    ids, vocab = text_module.encode_text(many * 2)
    assert ids.dtype == torch.int16 and vocab.decode(ids) == many * 2


def test_a_bad_byte_in_a_later_chunk_is_named_by_offset_line_and_column(tmp_path, monkeypatch):
    from rnnlab.data import text as text_module
    monkeypatch.setattr(text_module, "CHUNK", 16)
    raw = "ok line\n".encode() * 5 + "é".encode() + b"ab\xffcd\n"
    (tmp_path / "bad.txt").write_bytes(raw)
    with pytest.raises(UserError, match=r"not valid utf-8: byte 0xff at offset 44 \(line 6, column 5\)"):
        text_module.encode_file(tmp_path / "bad.txt")


def test_a_stateful_mamba_resumes_its_streams(tmp_path):
    """The carried state is saved and read back in the shapes of the network's own state (Mamba's pair)."""
    options = dict(text=BEER, arch="mamba", hidden=8, layers=2, embed=8, seq_len=20, stateful=True,
                   out=str(tmp_path / "run"), quiet=True)
    charlm.train(**options, steps=3)
    metrics = charlm.train(**options, steps=5, resume=True)
    assert metrics["steps"] == 5


def test_resume_maps_a_text_onto_the_checkpoint_vocabulary(tmp_path):
    charlm.train(text="abcabcabd", out=str(tmp_path / "run"), steps=4)
    metrics = charlm.train(text="abcabcab", out=str(tmp_path / "run"), steps=8, resume=True)  # no 'd': ids kept
    assert metrics["steps"] == 8
    with pytest.raises(UserError, match="resume: the text has characters the checkpoint in .* never saw \\('z'\\)"):
        charlm.train(text="abcz", out=str(tmp_path / "run"), steps=12, resume=True)


def test_encoding_a_big_file_takes_no_object_per_character(tmp_path):
    import tracemalloc
    from rnnlab.data.text import encode_file
    path = tmp_path / "big.txt"
    line = "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer\n"
    path.write_text(line * (20_000_000 // len(line)))  # 20 MB: a list of ints would take 160 MB and more
    for extra in ("", "é"):
        if extra:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(extra)
        tracemalloc.start()
        ids, vocab = encode_file(path)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert len(ids) == len(path.read_text(encoding="utf-8")) and ids.dtype == torch.uint8
        assert peak < len(ids) + 40_000_000, peak  # the ids themselves plus chunks of bounded size


def test_a_text_beyond_2_to_the_24_characters_trains_and_validates(tmp_path):
    path = tmp_path / "long.txt"
    line = "the quick brown fox jumps over the lazy dog\n"
    path.write_text(line * (17_000_000 // len(line)))  # > 2^24 characters: float32 positions would round
    metrics = charlm.train(text_file=str(path), out=str(tmp_path / "run"), hidden=16, embed=8, seq_len=32,
                           steps=2, eval_every=1, val_chars=5_000, quiet=True)
    assert metrics["train_chars"] + metrics["val_chars"] == 17_000_000 // len(line) * len(line)
    assert metrics["val_scored_chars"] == charlm.FINAL_VAL_CHARS and metrics["val_loss"] > 0


class WorkClock:
    """A clock that moves only by the work done, so that a time budget is tested the same on any machine."""

    def __init__(self):
        self.now = 1_000.0

    def perf_counter(self) -> float:
        return self.now


def test_minutes_bound_the_whole_run_the_final_scoring_included(tmp_path, monkeypatch):
    from rnnlab.training import loop
    clock = WorkClock()
    monkeypatch.setattr(loop, "time", clock)  # the loop's only clock is time.perf_counter
    real_batch, real_loss = charlm.CharLMTask.batch, charlm.stream_loss

    def batch(self, *args):
        clock.now += 1.0  # a training step: one second
        return real_batch(self, *args)

    def scored(model, ids, device, limit=None, **options):
        clock.now += min(limit or len(ids), len(ids)) / 10_000  # scoring: a second per 10,000 characters
        return real_loss(model, ids, device, limit=limit, **options)

    monkeypatch.setattr(charlm.CharLMTask, "batch", batch)
    monkeypatch.setattr(charlm, "stream_loss", scored)
    line = "the quick brown fox jumps over the lazy dog, again and again\n"
    text = line * (600_000 // len(line))  # half held out, all of it scored at the end (val_full): 30 s
    began = clock.now
    metrics = charlm.train(text=text, out=str(tmp_path / "run"), hidden=16, embed=8, seq_len=16, batch_size=4,
                           val_frac=0.5, val_full=True, steps=100_000, eval_every=10, minutes=1.0, quiet=True)
    report = (charlm.TRAIN_REPORT_CHARS + metrics["val_chars"]) / 10_000  # what the final report cost
    assert metrics["val_scored_chars"] == metrics["val_chars"] > 250_000 and report > 30
    assert clock.now - began <= 60.0  # the budget bounds the steps, the evaluations and the final report
    assert clock.now - began > 60.0 - 2 * (1.0 + 3.0)  # ... and uses it: within a step and an evaluation
    assert checkpoint_step(tmp_path / "run") == metrics["steps"] > 5


def checkpoint_step(run_dir):
    from rnnlab.training import checkpoint
    return checkpoint.load(run_dir).state["run"]["step"]


def test_a_text_learnt_by_heart_reports_its_replay_and_no_validation_loss(tmp_path):
    metrics = charlm.train(text="hihello", out=str(tmp_path), quiet=True)
    replay = charlm.sample(tmp_path, prime="h", length=6, greedy=True)
    assert (metrics["sample"], metrics["sample_kind"]) == (replay, "greedy replay") and len(replay) == 7
    assert metrics["val_chars"] == 0 and metrics["val_loss"] is None and metrics["train_loss"] > 0
