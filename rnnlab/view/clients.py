"""Clients for a character model's page, to load its server as people do (the load test in tests/test_view.py
and ``benchmarks/view_load.py``; ``crowd`` starts them): each ``typist`` types a passage a few characters at a
time, asking for the activations of what it has typed after each keystroke pause, and samples now and then; a
``probe`` asks for the activations of 1,000 new characters at a time and keeps each request's latency."""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Tally:
    """What the clients saw: each request's (route, HTTP status, seconds), from every thread."""

    requests: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, route: str, status: int, seconds: float) -> None:
        with self.lock:
            self.requests.append((route, status, seconds))

    def statuses(self) -> set:
        return {status for _, status, _ in self.requests}

    def latencies(self, route: str) -> list:
        return [seconds for name, status, seconds in self.requests if name == route and status == 200]


def ask(url: str, route: str, params: dict, tally: Tally) -> int:
    """POST one question to the page's server at ``url``; its status (0: no answer at all) goes into ``tally``."""
    host, port = url.split("//")[1].rstrip("/").rsplit(":", 1)
    started = time.perf_counter()
    try:
        connection = http.client.HTTPConnection(host, int(port), timeout=120)
        connection.request("POST", f"/api/{route}", body=json.dumps(params).encode(),
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        status = response.status
        connection.close()
    except OSError:
        status = 0
    tally.add(route, status, time.perf_counter() - started)
    return status


def typist(url: str, text: str, until: float, tally: Tally, seed: int, pause: float = 0.15) -> None:
    """Types ``text`` on from its first 50 characters, 1-5 characters per keystroke pause; every tenth request
    a sample of 100 characters; starts over when the text runs out."""
    rng = random.Random(seed)
    typed = 50
    asked = 0
    while time.time() < until:
        typed = typed + rng.randint(1, 5) if typed < len(text) else 50
        ask(url, "activations", {"text": text[:typed], "layer": 0, "name": "h"}, tally)
        asked += 1
        if asked % 10 == 0:
            ask(url, "sample", {"prime": text[:20], "length": 100, "temperature": 0.8, "seed": asked}, tally)
        time.sleep(pause)


def probe(url: str, text: str, until: float, tally: Tally, every: float = 0.5, size: int = 1000) -> None:
    """Asks for the activations of ``size`` characters not asked before, every ``every`` seconds."""
    start = 0
    while time.time() < until:
        if start + size > len(text):
            start = 0
        ask(url, "activations", {"text": text[start:start + size], "layer": 0, "name": "h"}, tally)
        start += size + 1
        time.sleep(every)


def crowd(url: str, texts: list[str], seconds: float, probe_text: str | None = None) -> tuple[Tally, Tally]:
    """``len(texts)`` typists (one per text) and, with ``probe_text``, a probe, for ``seconds``: (the typists'
    tally, the probe's)."""
    until = time.time() + seconds
    typed, probed = Tally(), Tally()
    threads = [threading.Thread(target=typist, args=(url, text, until, typed, k)) for k, text in enumerate(texts)]
    if probe_text is not None:
        threads.append(threading.Thread(target=probe, args=(url, probe_text, until, probed)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return typed, probed
