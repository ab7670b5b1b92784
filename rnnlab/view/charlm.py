"""A character model's page: every unit and gate per character, layer by layer; the model's top 5 next
characters and the loss of the character that came; sampling with each step's distribution.

Finding units by hypothesis (rank the units whose activity separates marked characters from the rest) runs in
the page on these same activations, so that an exported page can do it with no server.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock

import numpy as np
import torch

from ..errors import UserError
from ..learn.heatmaps import run_recorded
from ..tasks.charlm import generate
from ..nn import registry
from .answers import LIMITS, Refused, Viewer, key, number, packed, packed_exact, rounded, text_of, whole

TOP = 5  # next characters shown under each character
CACHED_TEXTS = 16  # texts whose answers are kept (typing asks for the same text's other layers, then a longer one)
PRIME = 500  # characters a sample may start from


@dataclass
class Read:
    """What the network made of a text of T characters: ``internals`` {(layer, direction): {name: [pieces
    (T_k, H) of the T steps, oldest first]}}, ``last_logp`` (V,) the log-probabilities of the character after
    it, the ``state`` it ended in, and per character the ``top`` 5 next characters (T, 5), their probabilities
    ``top_p`` (T, 5) and the ``loss`` (T,) of the character that came (NaN at the last)."""

    internals: dict
    last_logp: torch.Tensor
    state: object
    top: np.ndarray
    top_p: np.ndarray
    loss: np.ndarray


class CharViewer(Viewer):
    routes = ("activations", "sample")

    def __init__(self, trained, text: str | None = None) -> None:
        super().__init__(trained)
        self.vocab = trained.vocab
        passage = text if text is not None else trained.state.get("passage") or trained.sample(length=300,
                                                                                               greedy=True)
        unknown = self.unknown(passage)
        if unknown:
            raise UserError(f"the text has characters the model never saw ({unknown!r}); give a text in its "
                            "vocabulary", "text")
        self.passage = passage[:LIMITS["text"]]
        self.names = list(registry.get(trained.network.config.arch).recorded)  # what each layer records
        self.layer_keys = sorted(run_recorded(trained, self.encode(self.vocab.chars[0]))[1])  # (layer, direction)
        self.answers: OrderedDict[tuple, dict] = OrderedDict()  # (text, layer, name) -> its answer, newest last
        self.read: OrderedDict[str, Read] = OrderedDict()  # text -> what the network made of it
        self.cache_lock = Lock()

    def unknown(self, text: str) -> str:
        return "".join(sorted(set(text) - set(self.vocab.chars)))[:20]

    def encode(self, text: str) -> torch.Tensor:
        return self.vocab.encode(text)[None]  # (1, T)

    def info(self) -> dict:
        summary = self.trained.summary
        return {**super().info(), "vocab": list(self.vocab.chars), "passage": self.passage,
                "names": self.names,
                "layer_count": len(self.layer_keys),
                "metrics": {k: summary[k] for k in ("val_loss", "val_bpc", "train_loss", "steps") if k in summary}}

    def activations(self, params: dict) -> dict:
        """The recorded quantity ``name`` of one layer over ``text`` (a packed (T, H); every quantity when no
        name is given), and per character the top 5 next characters with their probabilities and the loss
        (nats) of the character that came next. ``since`` k > 0: only characters k.. of each (the page holds
        the first k from its last request, the same text before more was typed), and the loss at k - 1."""
        text = text_of(params, "text", LIMITS["text"])
        unknown = self.unknown(text)
        if unknown:
            raise Refused(f"the model never saw {unknown!r}: its vocabulary has {len(self.vocab.chars)} characters")
        layer = whole(params, "layer", 0, 0, len(self.layer_keys) - 1)
        since = whole(params, "since", 0, 0, len(text))
        name = params.get("name")
        if name is not None and name not in self.names:
            raise Refused(f"name must be one of {', '.join(self.names)}, got {str(name)[:40]!r}")
        asked = (text, layer, name, since)
        with self.cache_lock:
            if asked in self.answers:
                self.answers.move_to_end(asked)
                return self.answers[asked]
        read = self.read_text(text)
        where = self.layer_keys[layer]
        answer = {"layer": layer, "direction": where[1], "since": since, "length": len(text),
                  "top": packed_exact(read.top[since:], "uint16"),  # (T - k, 5) the likeliest next characters
                  "p": packed_exact(np.rint(read.top_p[since:] * 65535), "uint16"),  # (T - k, 5) their probabilities
                  "loss": packed_exact(read.loss[max(since - 1, 0):], "float32"),  # (T - k (+ 1),) NaN: none came
                  "names": {n: packed(np.concatenate(pieces)[since:]) for n, pieces in read.internals[where].items()
                            if name is None or n == name}}
        with self.cache_lock:
            self.answers[asked] = answer
            while len(self.answers) > CACHED_TEXTS * 4:
                self.answers.popitem(last=False)
        return answer

    def read_text(self, text: str) -> "Read":
        """What the network makes of ``text``. What typing sends is the text it sent before and a little more:
        the network reads on from the state the longest text already read ended in, so a keystroke costs its
        own characters, not the whole text again."""
        with self.cache_lock:
            if text in self.read:
                self.read.move_to_end(text)
                return self.read[text]
            before = max((done for done in self.read if text.startswith(done)), key=len, default="")
            earlier = self.read.get(before)
        ids = self.encode(text[len(before):])[0]  # (T - t0,) the characters not read yet
        logits, internals, state = run_recorded(self.trained, ids[None], earlier.state if earlier else None,
                                                final=True)
        logp = torch.log_softmax(logits[0].double(), dim=-1).cpu()  # (T - t0, V)
        top_p, top = logp.exp().topk(min(TOP, logp.shape[1]), dim=-1)  # (T - t0, 5) each
        came = -logp[:-1].gather(1, ids[1:, None])[:, 0].numpy()  # (T - t0 - 1,) nats of what came next
        internals = {where: {name: [values] for name, values in named.items()} for where, named in internals.items()}
        loss = np.append(came, np.nan)  # (T - t0,) the last character: nothing came yet
        if earlier:  # the pieces read before, then this one: joined only when a quantity is asked for
            internals = {where: {name: earlier.internals[where][name] + pieces for name, pieces in named.items()}
                         for where, named in internals.items()}
            boundary = -float(earlier.last_logp[ids[0]])  # what the first new character cost
            loss = np.concatenate([earlier.loss[:-1], [boundary], loss])
            top, top_p = np.concatenate([earlier.top, top.numpy()]), np.concatenate([earlier.top_p, top_p.numpy()])
        else:
            top, top_p = top.numpy(), top_p.numpy()
        read = Read(internals, logp[-1], state, top, top_p, loss)
        with self.cache_lock:
            self.read[text] = read
            while len(self.read) > CACHED_TEXTS:
                self.read.popitem(last=False)
        return read

    def sample(self, params: dict) -> dict:
        """``length`` characters after ``prime`` at ``temperature`` (seeded), with each step's whole distribution."""
        prime = text_of(params, "prime", PRIME)
        unknown = self.unknown(prime)
        if unknown:
            raise Refused(f"the prime has characters the model never saw ({unknown!r})")
        length = whole(params, "length", 200, 1, LIMITS["sample"])
        temperature = number(params, "temperature", 1.0, *LIMITS["temperature"])
        seed = whole(params, "seed", 0, 0, 2 ** 31 - 1)
        distributions = []  # (V,) per step
        text = generate(self.trained.network, self.vocab, prime, length, temperature,
                        generator=torch.Generator().manual_seed(seed), distributions=distributions)
        return {"prime": prime, "chosen": self.vocab.encode(text).tolist(), "text": text,
                "probs": rounded(np.stack(distributions), 5), "temperature": temperature, "seed": seed}

    def precomputed(self) -> dict:
        return {key("activations", {"layer": n, "name": name, "since": 0, "text": self.passage}):
                self.activations({"layer": n, "name": name, "since": 0, "text": self.passage})
                for n in range(len(self.layer_keys)) for name in self.names}
