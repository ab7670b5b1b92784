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
from ..nn import registry
from .answers import LIMITS, Refused, Viewer, key, number, packed, packed_exact, rounded, text_of, whole

TOP = 5  # next characters shown under each character
CACHED_TEXTS = 16  # texts whose answers are kept (typing asks for the same text's other layers, then a longer one)
PRIME = 500  # characters a sample may start from


@dataclass
class Read:
    """What the network made of a text: ``internals`` {(layer, direction): {name: [pieces (T_k, H) of the T
    steps, oldest first]}}, ``logp`` (T, V)
    log-probabilities of the next character, the ``state`` it ended in, and ``common``: what every answer on
    the text holds (the top 5 next characters, their probabilities, the loss of what came)."""

    internals: dict
    logp: torch.Tensor
    state: object
    common: dict


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
                "names": list(registry.get(self.trained.network.config.arch).recorded),
                "layer_count": len(self.layer_keys),
                "metrics": {k: summary[k] for k in ("val_loss", "val_bpc", "train_loss", "steps") if k in summary}}

    def activations(self, params: dict) -> dict:
        """The recorded quantity ``name`` of one layer over ``text`` (a packed (T, H); every quantity when no
        name is given), and per character the top 5 next characters with their probabilities and the loss
        (nats) of the character that came next."""
        text = text_of(params, "text", LIMITS["text"])
        unknown = self.unknown(text)
        if unknown:
            raise Refused(f"the model never saw {unknown!r}: its vocabulary has {len(self.vocab.chars)} characters")
        layer = whole(params, "layer", 0, 0, len(self.layer_keys) - 1)
        names = list(registry.get(self.trained.network.config.arch).recorded)
        name = params.get("name")
        if name is not None and name not in names:
            raise Refused(f"name must be one of {', '.join(names)}, got {str(name)[:40]!r}")
        asked = (text, layer, name)
        with self.cache_lock:
            if asked in self.answers:
                self.answers.move_to_end(asked)
                return self.answers[asked]
        read = self.read_text(text)
        where = self.layer_keys[layer]
        answer = {"layer": layer, "direction": where[1], **read.common,
                  "names": {n: packed(np.concatenate(pieces)) for n, pieces in read.internals[where].items()
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
        ids = self.encode(text[len(before):])  # (1, T - t0): the characters not read yet
        logits, internals, state = run_recorded(self.trained, ids, earlier.state if earlier else None, final=True)
        logp = torch.log_softmax(logits[0].double(), dim=-1).cpu()  # (T - t0, V)
        internals = {where: {name: [values] for name, values in named.items()} for where, named in internals.items()}
        if earlier:  # the pieces read before, then this one: joined only when a quantity is asked for
            logp = torch.cat([earlier.logp, logp])  # (T, V)
            internals = {where: {name: earlier.internals[where][name] + pieces for name, pieces in named.items()}
                         for where, named in internals.items()}
        everything = self.encode(text)[0]  # (T,)
        top_p, top_ids = logp.exp().topk(min(TOP, logp.shape[1]), dim=-1)  # (T, 5) each
        came = -logp[:-1].gather(1, everything[1:, None])[:, 0]  # (T-1,) nats of what came next
        common = {"top": packed_exact(top_ids.numpy(), "uint16"),  # (T, 5) the likeliest next characters
                  "p": packed_exact(np.rint(top_p.numpy() * 65535), "uint16"),  # (T, 5) their probabilities
                  "loss": packed_exact(np.append(came.numpy(), np.nan), "float32")}  # (T,) NaN: nothing came
        read = Read(internals, logp, state, common)
        with self.cache_lock:
            self.read[text] = read
            while len(self.read) > CACHED_TEXTS:
                self.read.popitem(last=False)
        return read

    @torch.no_grad()
    def sample(self, params: dict) -> dict:
        """``length`` characters after ``prime`` at ``temperature`` (seeded), with each step's whole distribution."""
        prime = text_of(params, "prime", PRIME)
        unknown = self.unknown(prime)
        if unknown:
            raise Refused(f"the prime has characters the model never saw ({unknown!r})")
        length = whole(params, "length", 200, 1, LIMITS["sample"])
        temperature = number(params, "temperature", 1.0, *LIMITS["temperature"])
        seed = whole(params, "seed", 0, 0, 2 ** 31 - 1)
        generator = torch.Generator().manual_seed(seed)
        network, device = self.trained.network, self.trained.device
        logits, state = network(self.encode(prime).to(device))  # (1, P, V)
        last = logits[0, -1].double().cpu()  # (V,)
        chosen, distributions = [], []
        for _ in range(length):
            probs = torch.softmax(torch.nan_to_num(last / temperature), dim=0)  # (V,)
            next_id = int(torch.multinomial(probs, 1, generator=generator))
            chosen.append(next_id)
            distributions.append(probs.numpy())
            logits, state = network(torch.tensor([[next_id]], device=device), state)
            last = logits[0, -1].double().cpu()
        return {"prime": prime, "chosen": chosen, "text": self.vocab.decode(chosen),
                "probs": rounded(np.stack(distributions), 5), "temperature": temperature, "seed": seed}

    def precomputed(self) -> dict:
        names = list(registry.get(self.trained.network.config.arch).recorded)
        return {key("activations", {"layer": n, "name": name, "text": self.passage}):
                self.activations({"layer": n, "name": name, "text": self.passage})
                for n in range(len(self.layer_keys)) for name in names}
