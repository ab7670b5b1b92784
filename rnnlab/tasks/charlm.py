"""Character language model: learn to predict the next character of a text, then sample from it.

    metrics = train(text_file="input.txt", out="runs/charlm", minutes=10)
    print(sample("runs/charlm", prime="ROMEO:", length=300, temperature=0.8))

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

from .. import checkpoint
from ..data.text import DEFAULT_TEXT, Vocabulary, read_text
from ..errors import UserError
from ..models import ModelConfig, SequenceModel
from ..train import TrainConfig, fit

SMALL_TEXT = 5_000
EVAL_CHARS = 30_000  # validation characters scored at each evaluation during training (all of them at the end)
TRAIN_REPORT_CHARS = 100_000  # training characters scored for the final train_loss

SMALL = dict(arch="lstm", hidden=64, layers=1, embed=16, seq_len=256, dropout=0.0, weight_drop=0.0, val_frac=0.0,
             stateful=False,
             train=dict(steps=150, batch_size=8, lr=1e-2, warmup=0.0, eval_every=50, checkpoint_every=150))
LARGE = dict(arch="lstm", hidden=512, layers=1, embed=64, seq_len=200, dropout=0.2, weight_drop=0.3, val_frac=0.1,
             stateful=False,
             train=dict(steps=20_000, batch_size=32, lr=4e-3, weight_decay=0.05, warmup=0.02, eval_every=200,
                        checkpoint_every=500, precision="auto", ema=0.995))


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
    starts = torch.linspace(0, len(ids) - 1 - length, streams).long()  # (S,)
    rows = starts[:, None] + torch.arange(length)  # (S, L)
    inputs, targets = ids[rows].to(device), ids[rows + 1].to(device)  # (S, L), (S, L)
    total, state = 0.0, None
    for start in range(0, length, segment):
        logits, state = model(inputs[:, start:start + segment], state)  # (S, l, V)
        total += F.cross_entropy(logits.flatten(0, 1), targets[:, start:start + segment].flatten(),
                                 reduction="sum").item()
    return total / targets.numel()


class CharLMTask:
    name = "charlm"

    def __init__(self, text: str, model: ModelConfig, seq_len: int, val_frac: float, vocab: Vocabulary = None,
                 stateful: bool = False):
        if seq_len <= 0:
            raise UserError(f"--seq-len must be > 0, got {seq_len}")
        if not 0 <= val_frac < 1:
            raise UserError(f"--val-frac must be in [0, 1), got {val_frac}")
        self.vocab = vocab or Vocabulary.of(text)
        ids = self.vocab.encode(text)
        if len(ids) < 2:
            raise UserError("the text needs at least 2 characters")
        n_val = int(len(ids) * val_frac)
        if val_frac and n_val < 2:
            raise UserError(f"--val-frac {val_frac} leaves no validation text in {len(ids)} characters")
        self.train_ids, self.val_ids = ids[: len(ids) - n_val], ids[len(ids) - n_val:]
        self.seq_len = min(seq_len, len(self.train_ids) - 1)
        self.val_frac, self.start = val_frac, text[0]
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
        chunk = self.train_ids[starts[:, None] + torch.arange(self.seq_len + 1)]  # (N, T+1)
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
        keep = (~self.fresh).to(device)[None, :, None]  # (1, N, 1)
        state = tuple(s.to(device) * keep for s in self.carried)  # (h,) or (h, c), each (layers, N, H)
        return state if len(state) == 2 else state[0]

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
        self.cursors, self.fresh = tensors["cursors"].clone(), tensors["fresh"].clone()
        self.carried = tuple(tensors[f"state.{i}"].clone() for i in range(2) if f"state.{i}" in tensors) or None

    def evaluate(self, model, device):
        held_out = self.val_ids if len(self.val_ids) else self.train_ids
        return {"val_loss": stream_loss(model, held_out, device, limit=EVAL_CHARS)}

    def report(self, model, device, out_dir):
        train_loss = stream_loss(model, self.train_ids, device, limit=TRAIN_REPORT_CHARS)
        val_loss = stream_loss(model, self.val_ids, device) if len(self.val_ids) else train_loss
        sample = self.start + generate(model, self.vocab, self.start, min(200, 4 * len(self.train_ids)), greedy=False,
                          temperature=0.8, generator=torch.Generator().manual_seed(0))
        return {"train_loss": round(train_loss, 4), "val_loss": round(val_loss, 4),
                "train_chars": len(self.train_ids), "val_chars": len(self.val_ids), "vocab_size": len(self.vocab),
                "sample": sample}

    def state(self):
        return {"model": self.config.to_dict(), "vocab": self.vocab.chars, "seq_len": self.seq_len,
                "val_frac": self.val_frac, "stateful": self.stateful, "start": self.start}


def train(text_file: str | None = None, out: str = "runs/charlm", arch: str | None = None,
          hidden: int | None = None, layers: int | None = None, embed: int | None = None,
          seq_len: int | None = None, dropout: float | None = None, val_frac: float | None = None,
          encoding: str = "utf-8", resume: bool = False, text: str | None = None, stateful: bool | None = None,
          weight_drop: float | None = None, **train_options) -> dict:
    """Train a character model on ``text_file`` (or ``text``, or the built-in text); returns the metrics.

    ``train_options`` are ``TrainConfig`` fields (steps, minutes, batch_size, lr, seed, device, ...);
    those left as None take the defaults for the text's size.
    """
    text = read_text(text_file, encoding) if text_file else (text or DEFAULT_TEXT)
    defaults = SMALL if len(text) < SMALL_TEXT else LARGE
    given = {k: v for k, v in dict(arch=arch, hidden=hidden, layers=layers, embed=embed, seq_len=seq_len,
                                   dropout=dropout, val_frac=val_frac, stateful=stateful,
                                   weight_drop=weight_drop).items() if v is not None}
    options = {**defaults, **given}
    train_given = {k: v for k, v in train_options.items() if v is not None}
    vocab = None
    if resume:
        saved = checkpoint.load(out, "charlm").state
        options.update(saved["model"], seq_len=saved["seq_len"], val_frac=saved["val_frac"],
                       stateful=saved.get("stateful", False),
                       embed=saved["model"]["input_size"], layers=saved["model"]["layers"])
        vocab = Vocabulary(saved["vocab"])
        if set(text) - set(vocab.chars):
            raise UserError(f"--resume: the text has characters the checkpoint in {out} never saw; "
                            "resume with the same --text")
        config = TrainConfig.from_dict({**saved["train"], **train_given})
    else:
        config = TrainConfig.from_dict({**defaults["train"], **train_given})
    vocab_size = len(vocab) if vocab else len(set(text))
    model = ModelConfig(arch=_arch(options["arch"]), input_size=options["embed"], hidden=options["hidden"],
                        layers=options["layers"], dropout=options["dropout"],
                        weight_drop=options["weight_drop"], output_size=vocab_size,
                        vocab_size=vocab_size, readout="steps")
    _check_sizes(model)
    task = CharLMTask(text, model, options["seq_len"], options["val_frac"], vocab, options["stateful"])
    return fit(task, config, out, resume=resume)


def _arch(arch: str) -> str:
    if arch not in ("rnn", "lstm", "gru"):
        raise UserError(f"--arch must be rnn, lstm or gru, got '{arch}'")
    return arch


def _check_sizes(model: ModelConfig) -> None:
    for name in ("hidden", "layers", "input_size"):
        if getattr(model, name) <= 0:
            flag = "--embed" if name == "input_size" else f"--{name}"
            raise UserError(f"{flag} must be > 0, got {getattr(model, name)}")
    for name in ("dropout", "weight_drop"):
        if not 0 <= getattr(model, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be in [0, 1), got {getattr(model, name)}")


def load(model_dir: str | Path) -> tuple[SequenceModel, Vocabulary, dict]:
    saved = checkpoint.load(model_dir, "charlm")
    model = SequenceModel(ModelConfig(**saved.state["model"]))
    checkpoint.load_weights(model, saved.weights, model_dir)
    return model.eval(), Vocabulary(saved.state["vocab"]), saved.state


@torch.no_grad()
def generate(model: SequenceModel, vocab: Vocabulary, prime: str, length: int, temperature: float = 1.0,
             top_k: int = 0, greedy: bool = False, generator: torch.Generator | None = None) -> str:
    """``length`` characters following ``prime``: argmax with ``greedy``, else sampled (temperature, top-k)."""
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
            if top_k:
                kth = scores.topk(min(top_k, len(scores))).values[-1]
                scores = scores.masked_fill(scores < kth, float("-inf"))
            next_id = int(torch.multinomial(scores.softmax(0), 1, generator=generator))
        chosen.append(next_id)
        logits, state = model(torch.tensor([[next_id]], device=device), state)
        last = logits[0, -1]
    return vocab.decode(chosen)


def sample(model_dir: str | Path, prime: str | None = None, length: int = 200, temperature: float = 1.0,
           top_k: int = 0, greedy: bool = False, seed: int | None = None) -> str:
    """The prime followed by ``length`` generated characters."""
    if length < 0:
        raise UserError(f"--length must be >= 0, got {length}")
    if temperature <= 0 and not greedy:
        raise UserError(f"--temperature must be > 0, got {temperature}")
    if top_k < 0:
        raise UserError(f"--top-k must be >= 0, got {top_k}")
    model, vocab, state = load(model_dir)
    prime = state["start"] if not prime else prime
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return prime + generate(model, vocab, prime, length, temperature, top_k, greedy, generator)
