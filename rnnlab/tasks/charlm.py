"""Character language model: learn to predict the next character of a text, then sample from it.

    metrics = train(text_file="input.txt", out="runs/charlm", minutes=10)     # or train(text="...")
    model = load("runs/charlm")
    print(model.sample(prime="ROMEO:", length=300, temperature=0.8))

Defaults follow the size of the text. A short text (under 5,000 characters, e.g. "hihello") is learnt by
heart: a small LSTM sees the whole text as one sequence, no validation part, 150 steps. A longer text
gets a 1 x 512 LSTM over 200-character windows (batch 32) with dropout 0.2 before the head and DropConnect
0.3 on the hidden-to-hidden weights, AdamW (lr 4e-3), a cosine schedule over the run (or its --minutes), a
moving average of the weights (decay 0.995) and bf16 autocast where the hardware runs it fast; its last
10 % is held out for validation. Losses are in nats per character. ``stateful=True`` (``--stateful``) reads
the text as parallel streams whose state carries over from batch to batch (truncated backprop through time)
instead of random windows that start from zero; it measured worse on Tiny Shakespeare, so it is off.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ..data.text import DEFAULT_TEXT, Vocabulary, encode_file, encode_text, remap
from ..errors import UserError, check_settings, require
from .network import ModelConfig, SequenceModel
from ..training import Task, fit
from ..training import saved
from .common import NETWORK_EXTRAS, ModelInput, Trained, check_network, network_config, network_guard, resolve

SMALL_TEXT = 5_000
VAL_CHARS = 30_000  # validation characters scored at each evaluation during training (``val_chars``)
PASSAGE = 600  # characters of the held-out text kept in the checkpoint: the passage `rnnlab view` shows first
FINAL_VAL_CHARS = 1_000_000  # at most this many scored for the final val_loss, unless ``val_full``
TRAIN_REPORT_CHARS = 100_000  # training characters scored for the final train_loss
SAMPLE_CHARS = 200  # the sample in metrics.json

OUT = "runs/charlm"
saved.FIELDS["charlm"] = {  # what state.json holds besides the loop's fields (checked when it is read)
    "vocab": saved.Kind(lambda v: saved.TEXTS.test(v) and len(v) > 0 and all(len(c) == 1 for c in v) and
                        len(set(v)) == len(v), "a non-empty list of distinct characters"),
    "seq_len": saved.POSITIVE, "val_frac": saved.FRACTION, "stateful": saved.BOOL, "start": saved.TEXT,
    "passage": saved.TEXT,
    "options.embed": saved.POSITIVE, "options.seq_len": saved.POSITIVE, "options.val_frac": saved.FRACTION,
    "options.stateful": saved.BOOL, "options.val_chars": saved.POSITIVE, "options.val_full": saved.BOOL}
# The defaults, by the size of the text: the task's settings, then the training loop's.
SMALL = {**NETWORK_EXTRAS, **dict(arch="lstm", hidden=64, layers=1, embed=16, seq_len=256, dropout=0.0,
                                  val_frac=0.0, stateful=False)}
SMALL_TRAIN = dict(steps=150, batch_size=8, lr=1e-2, warmup=0.0, eval_every=50, checkpoint_every=150)
LARGE = {**NETWORK_EXTRAS, **dict(arch="lstm", hidden=512, layers=1, embed=64, seq_len=200, dropout=0.2,
                                  weight_drop=0.3, val_frac=0.1, stateful=False)}
LARGE_TRAIN = dict(steps=20_000, batch_size=32, lr=4e-3, weight_decay=0.05, warmup=0.02, eval_every=200,
                   checkpoint_every=500, precision="auto", ema=0.995)


def stream_starts(characters: int, length: int, streams: int) -> torch.Tensor:
    """Where ``streams`` windows of ``length`` (+ 1 for the targets) start, evenly spaced over ``characters``,
    the first at 0 and the last ending at the text's end: integer arithmetic (a float32 ``linspace`` rounds
    positions above 2^24 and put the last window past the end of a 450-million-character text)."""
    span = characters - 1 - length  # the last start
    return torch.arange(streams, dtype=torch.int64) * span // max(streams - 1, 1)  # (S,)


def stream_loss(model: SequenceModel, ids: torch.Tensor, device, limit: int | None = None, streams: int = 32,
                segment: int = 256) -> float:
    """Mean next-character loss over ``ids`` read as ``streams`` parallel streams, state carried along.

    With ``limit``, about ``limit`` characters are scored: the streams then start at evenly spaced places,
    so that the sample covers the whole of ``ids``.
    """
    streams = max(1, min(streams, (len(ids) - 1) // 8))
    length = (len(ids) - 1) // streams
    if limit and limit < len(ids) - 1:
        length = max(1, limit // streams)
    starts = stream_starts(len(ids), length, streams)  # (S,)
    total, state = 0.0, None
    for start in range(0, length, segment):  # gathered segment by segment: memory bounded by the segment
        rows = starts[:, None] + torch.arange(start, min(start + segment, length))  # (S, l)
        inputs, targets = ids[rows].long().to(device), ids[rows + 1].long().to(device)  # (S, l), (S, l)
        logits, state = model(inputs, state)  # (S, l, V)
        total += F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum").item()
    return total / (streams * length)


class CharLMTask(Task):
    name = "charlm"

    def __init__(self, text: str | torch.Tensor, model: ModelConfig, seq_len: int, val_frac: float,
                 vocab: Vocabulary = None, stateful: bool = False, options: dict | None = None):
        """``text``: a string, or its ids (n,) as ``encode_file``/``encode_text`` give them with ``vocab``."""
        check_settings(dict(seq_len=seq_len, val_frac=val_frac), positive=("seq_len",), fractions=("val_frac",))
        if isinstance(text, str):
            ids, self.vocab = encode_text(text, vocab)  # (n,) compact integers
        else:
            ids, self.vocab = text, vocab
        if len(ids) < 2:
            raise UserError("the text needs at least 2 characters")
        n_val = int(len(ids) * val_frac)
        if val_frac and n_val < 2:
            raise UserError(f"val_frac {val_frac} leaves no validation text in {len(ids)} characters", "val_frac")
        self.train_ids, self.val_ids = ids[: len(ids) - n_val], ids[len(ids) - n_val:]  # views, no copies
        self.seq_len = min(seq_len, len(self.train_ids) - 1)
        self.val_frac, self.start = val_frac, self.vocab.chars[int(ids[0])]
        shown = self.val_ids if len(self.val_ids) >= 2 else self.train_ids
        self.passage = self.vocab.decode(shown[:PASSAGE].tolist())  # what ``rnnlab view`` opens with
        self.options = options or {}
        self.val_chars = self.options.get("val_chars", VAL_CHARS)
        self.val_full = self.options.get("val_full", False)
        self.config = model
        self.model = SequenceModel(model)
        self.stateful = stateful and len(self.train_ids) > 4 * (self.seq_len + 1)
        self.cursors = None  # (N,) stateful: where each stream reads next
        self.fresh = None  # (N,) stateful: streams that start over (their state is zeroed)
        self.carried = None  # stateful: the model's state after the last training batch, detached, as a tuple

    def batch(self, generator, size, device):
        """Random windows; with ``stateful``, the next window of each of ``size`` streams read through the text."""
        if self.stateful:
            starts = self._advance(generator, size)  # (N,)
        else:
            windows = len(self.train_ids) - self.seq_len  # distinct start positions
            starts = torch.randint(0, windows, (min(size, windows),), generator=generator)  # (N,)
        chunk = self.train_ids[starts[:, None] + torch.arange(self.seq_len + 1)].long()  # (N, T+1)
        return chunk[:, :-1].to(device), chunk[:, 1:].to(device)

    def _advance(self, generator, size) -> torch.Tensor:
        """Truncated backprop through time: stream i reads the text on from where its last window ended,
        starting over (from a random place among the first T) when it runs out of text."""
        length, span = len(self.train_ids), self.seq_len + 1
        if self.cursors is None or len(self.cursors) != size:
            offsets = torch.randint(0, self.seq_len, (size,), generator=generator)  # (N,)
            self.cursors = torch.arange(size) * ((length - span) // size) + offsets  # (N,) spread over the text
            self.fresh, self.carried = torch.ones(size, dtype=torch.bool), None
        else:
            self.fresh = self.cursors + span > length  # (N,)
            restart = torch.randint(0, self.seq_len, (size,), generator=generator)  # (N,)
            self.cursors = torch.where(self.fresh, restart, self.cursors)
        starts = self.cursors.clone()  # (N,)
        self.cursors += self.seq_len
        return starts

    def loss(self, model, batch):
        inputs, targets = batch  # (N, T), (N, T)
        state = self._carried_state(inputs.device) if self.stateful else None
        logits, state = model(inputs, state)  # (N, T, V)
        if self.stateful:
            self.carried = tuple(s.detach().float() for s in (state if isinstance(state, tuple) else (state,)))
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten())

    def _carried_state(self, device):
        """The state the streams' last windows ended in, zeroed for streams that start over (None: all do)."""
        if self.carried is None or bool(self.fresh.all()):
            return None
        keep = (~self.fresh).to(device)  # (N,)
        # (h,) or (h, c), each (layers, N, H); Mamba's (windows, states), (layers, N, E, ·): N is always dim 1
        state = tuple(s.to(device) * keep.view(1, -1, *[1] * (s.dim() - 2)) for s in self.carried)
        return state if len(state) > 1 else state[0]

    def carry_tensors(self) -> dict:
        """What the loop saves so that a resumed run continues the streams exactly."""
        if not self.stateful or self.cursors is None:
            return {}
        tensors = {"cursors": self.cursors, "fresh": self.fresh}
        tensors.update({f"state.{i}": s.cpu() for i, s in enumerate(self.carried or ())})
        return tensors

    def restore_carry(self, tensors: dict) -> None:
        if not self.stateful or "cursors" not in tensors:
            return
        cursors, fresh = tensors["cursors"], tensors.get("fresh")
        streams = len(cursors) if cursors.dim() == 1 else -1
        fits = (streams > 0 and cursors.dtype == torch.int64 and fresh is not None and fresh.shape == cursors.shape
                and fresh.dtype == torch.bool and bool((cursors >= 0).all()) and int(cursors.max()) < len(self.train_ids))
        expected = self.model.state_shapes(streams) if streams > 0 else ()  # (h,) or the pair's shapes
        for i in range(3):  # (h,), (h, c), Mamba's pair, or a gated block's (h[, c], windows)
            state = tensors.get(f"state.{i}")
            if state is not None:
                fits = fits and state.is_floating_point() and i < len(expected) and tuple(state.shape) == expected[i]
        if not fits:
            raise UserError("checkpoint file training.safetensors: carry.cursors, carry.fresh and carry.state.* do "
                            f"not describe streams through this text ({len(self.train_ids)} training characters)")
        self.cursors, self.fresh = tensors["cursors"].clone(), tensors["fresh"].clone()
        self.carried = tuple(tensors[f"state.{i}"].clone() for i in range(3) if f"state.{i}" in tensors) or None

    def evaluate(self, model, device):
        held_out = self.val_ids if len(self.val_ids) else self.train_ids
        return {"val_loss": stream_loss(model, held_out, device, limit=self.val_chars)}

    def _final_val_chars(self) -> int:
        held_out = len(self.val_ids) or len(self.train_ids)
        return held_out if self.val_full else min(held_out, max(FINAL_VAL_CHARS, self.val_chars))

    def report_cost(self) -> float:
        """The final report's cost in evaluations (what the loop keeps of a time budget for it)."""
        scored = min(TRAIN_REPORT_CHARS, len(self.train_ids)) + (self._final_val_chars() if len(self.val_ids) else 0)
        return (scored + 3 * SAMPLE_CHARS) / min(self.val_chars, len(self.val_ids) or len(self.train_ids))

    def report(self, model, device, out_dir):
        train_loss = stream_loss(model, self.train_ids, device, limit=TRAIN_REPORT_CHARS)
        final = self._final_val_chars()
        val_loss = stream_loss(model, self.val_ids, device, limit=final) if len(self.val_ids) else None
        if len(self.val_ids):  # a text to model: a sample of what it writes
            how = "temperature 0.8"
            sample = self.start + generate(model, self.vocab, self.start, SAMPLE_CHARS, greedy=False,
                                           temperature=0.8, generator=torch.Generator().manual_seed(0))
        else:  # a text to learn by heart (no validation part): its greedy replay, as long as the text
            how = "greedy replay"
            sample = self.start + generate(model, self.vocab, self.start, min(SAMPLE_CHARS, len(self.train_ids) - 1),
                                           greedy=True)
        return {"train_loss": round(train_loss, 4), "val_loss": round(val_loss, 4) if val_loss is not None else None,
                "train_chars": len(self.train_ids), "val_chars": len(self.val_ids),
                "val_scored_chars": min(final, len(self.val_ids)) if len(self.val_ids) else 0,
                "vocab_size": len(self.vocab), "sample": sample, "sample_kind": how}

    def state(self):
        return {"options": self.options, "model": self.config.to_dict(), "vocab": self.vocab.chars,
                "seq_len": self.seq_len, "val_frac": self.val_frac, "stateful": self.stateful, "start": self.start,
                "passage": self.passage}


def train(*, text_file: str | None = None, text: str | None = None, encoding: str | None = None,
          out: str | None = None, resume: bool = False, arch: str | None = None, hidden: int | None = None,
          layers: int | None = None, embed: int | None = None, seq_len: int | None = None,
          dropout: float | None = None, val_frac: float | None = None, stateful: bool | None = None,
          val_chars: int | None = None, val_full: bool | None = None, **train_options) -> dict:
    """Train a character model on ``text_file``, or on ``text`` itself, or on the built-in text; returns the metrics.

    Settings left as None take the defaults for the text's size (``SMALL`` / ``LARGE`` and their ``_TRAIN``);
    ``train_options`` are the training loop's settings (``TrainConfig``: steps, minutes, batch_size, lr, seed,
    device, quiet, ...) and the recurrent layers' variants (``rnnlab.nn.Variants``: weight_drop, layer_norm,
    recurrent_dropout, zoneout). ``resume=True`` continues the run in ``out``. ``val_chars``: validation
    characters scored at each evaluation (default 30,000); the final val_loss scores up to 1,000,000 of them,
    or all with ``val_full=True``. The text is encoded in bounded memory (``rnnlab.data.text.encode_file``).
    """
    if text_file is not None and text is not None:
        raise UserError("give either text_file or text, not both")
    if text_file is not None:
        require(isinstance(text_file, (str, Path)), "text_file", "be a path", type(text_file).__name__)
        ids, vocab = encode_file(text_file, encoding or "utf-8")  # (n,) compact integers, the text's vocabulary
    else:
        text = DEFAULT_TEXT if text is None else text
        require(isinstance(text, str), "text", "be a str", type(text).__name__)
        ids, vocab = encode_text(text)
    out = out or OUT
    small = len(ids) < SMALL_TEXT
    options, config, saved = resolve(
        "charlm", out, resume, dict(arch=arch, hidden=hidden, layers=layers, embed=embed, seq_len=seq_len,
                                    dropout=dropout, val_frac=val_frac, stateful=stateful),
        SMALL if small else LARGE, train_options, SMALL_TRAIN if small else LARGE_TRAIN)
    saved_options = saved.get("options", {}) if saved else {}
    options["val_chars"] = val_chars if val_chars is not None else saved_options.get("val_chars", VAL_CHARS)
    options["val_full"] = val_full if val_full is not None else saved_options.get("val_full", False)
    check_settings(options, positive=("val_chars",))
    require(isinstance(options["val_full"], bool), "val_full", "be True or False", options["val_full"])
    check_network(options)
    if saved:
        unseen = sorted(set(vocab.chars) - set(saved["vocab"]))
        if unseen:
            raise UserError(f"resume: the text has characters the checkpoint in {out} never saw "
                            f"({''.join(unseen[:20])!r}); resume with the same text")
        ids, vocab = remap(ids, vocab, Vocabulary(saved["vocab"]))
    model = network_config(options, length=options["seq_len"], input_size=options["embed"], output_size=len(vocab),
                           vocab_size=len(vocab), readout="steps")
    with network_guard(options):
        task = CharLMTask(ids, model, options["seq_len"], options["val_frac"], vocab, options["stateful"], options)
    return fit(task, config, out, resume=resume)


class CharLM(Trained):
    """A trained character model: ``vocab``, and ``sample(...)`` to write text with it."""

    @property
    def vocab(self) -> Vocabulary:
        return Vocabulary(self.state["vocab"])

    def sample(self, prime: str | None = None, length: int = 200, temperature: float = 1.0, top_k: int = 0,
               greedy: bool = False, seed: int | None = None) -> str:
        """The prime (default: the training text's first character) followed by ``length`` generated characters."""
        check_settings(dict(length=length, top_k=top_k), non_negative=("length", "top_k"))
        if not greedy:
            require(temperature > 0, "temperature", "be > 0", temperature)
        prime = prime or self.state["start"]
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        return prime + generate(self.network, self.vocab, prime, length, temperature, top_k, greedy, generator)

    def model_input(self, text: str | None = None, csv: str | None = None, index: int | None = None) -> ModelInput:
        """``text`` as the network reads it, a column per character (default: a greedy sample of 60)."""
        if csv is not None or index is not None:
            raise UserError("a character model reads --text (default: a greedy sample of its own)")
        if text is None:
            text = self.sample(length=60, greedy=True)
        if not text:
            raise UserError("--text is empty")
        return ModelInput(self.vocab.encode(text)[None], list(text), f"{len(text)} characters")


def load(model_dir: str | Path) -> CharLM:
    """The trained character model saved in ``model_dir`` (a run folder)."""
    return CharLM.read(model_dir, "charlm")


@torch.no_grad()
def generate(model: SequenceModel, vocab: Vocabulary, prime: str, length: int, temperature: float = 1.0,
             top_k: int = 0, greedy: bool = False, generator: torch.Generator | None = None,
             distributions: list | None = None) -> str:
    """``length`` characters following ``prime``: argmax with ``greedy``, else sampled (temperature, top-k);
    ``distributions``, where given, receives each sampled step's probabilities (V,) (``rnnlab view`` draws them)."""
    model.eval()
    device = next(model.parameters()).device
    logits, state = model(vocab.encode(prime)[None].to(device))  # (1, len(prime), V)
    last = logits[0, -1]  # (V,)
    chosen = []
    for _ in range(length):
        if greedy:
            next_id = int(last.argmax())
        else:
            scores = last.float().cpu() / temperature
            if not torch.isfinite(scores).all():  # a barely finite network can overflow: inf wins, NaN never
                top = torch.finfo(scores.dtype).max
                scores = torch.nan_to_num(scores, nan=-top, posinf=top, neginf=-top)
            if top_k:
                kth = scores.topk(min(top_k, len(scores))).values[-1]
                scores = scores.masked_fill(scores < kth, float("-inf"))
            probs = scores.softmax(0)  # (V,)
            next_id = int(torch.multinomial(probs, 1, generator=generator))
            if distributions is not None:
                distributions.append(probs.numpy())
        chosen.append(next_id)
        logits, state = model(torch.tensor([[next_id]], device=device), state)
        last = logits[0, -1]
    return vocab.decode(chosen)


def sample(model_dir: str | Path, **options) -> str:
    """``load(model_dir).sample(**options)``: prime, length, temperature, top_k, greedy, seed."""
    return load(model_dir).sample(**options)
