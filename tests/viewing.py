"""Small trained runs for the tests of ``rnnlab view``, and one with a planted unit.

``quote_model`` trains a tiny LSTM character model, then sets unit 0 of its layer by hand to track whether the
text is inside double quotes: the quote character alone reaches it (embedding feature 0), its forget gate
closes and its input gate opens on a quote, and its candidate flips the sign of what it held (tanh(20 (0.2 -
h_prev))): after an opening quote c ~ +1, after the closing one c ~ -1, so h_0 ~ +0.76 inside quotes (the
opening quote included) and <= 0 outside. A hypothesis "inside quotes" must rank this unit first.
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path

from safetensors.torch import load_file, save_file

QUOTED = ('"hi" she said. "hello," he said, and she said "oh". he had said "so."\n' * 40)
INSIDE = '"[^"]*"'  # a quoted span, both quotes included (the closing one already reads as outside)


def quote_model(out: Path, hidden: int = 16) -> Path:
    from rnnlab.tasks import charlm
    charlm.train(text=QUOTED, out=str(out), arch="lstm", hidden=hidden, embed=8, steps=3, quiet=True)
    path = out / "checkpoint" / "model.safetensors"
    weights = load_file(str(path))
    vocab = json.loads((out / "checkpoint" / "state.json").read_text())["vocab"]
    embedding = weights["embedding.weight"]  # (V, 8)
    embedding[:, 0] = 0.0
    embedding[vocab.index('"'), 0] = 1.0  # feature 0: "this is a quote"
    w_ih, w_hh = weights["rnn.weight_ih_l0"], weights["rnn.weight_hh_l0"]  # (4H, 8), (4H, H): gates i, f, g, o
    b_ih, b_hh = weights["rnn.bias_ih_l0"], weights["rnn.bias_hh_l0"]
    i, f, g, o = 0, hidden, 2 * hidden, 3 * hidden  # unit 0's row in each gate
    for row in (i, f, g, o):
        w_ih[row], w_hh[row], b_ih[row], b_hh[row] = 0.0, 0.0, 0.0, 0.0
    w_ih[i, 0], b_ih[i] = 20.0, -10.0  # open on a quote
    w_ih[f, 0], b_ih[f] = -20.0, 10.0  # forget on a quote, keep otherwise
    w_hh[g, 0], b_ih[g] = -20.0, 4.0  # the opposite of what it held (positive from nothing)
    b_ih[o] = 10.0  # show it
    save_file(weights, str(path))
    return out


def post(url: str, route: str, body, headers: dict | None = None, raw: bytes | None = None) -> tuple[int, dict]:
    """(status, JSON answer) of a POST to the view server at ``url``."""
    host, port = url.split("//")[1].rstrip("/").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    data = raw if raw is not None else json.dumps(body).encode()
    connection.request("POST", f"/api/{route}", body=data,
                       headers={"Content-Type": "application/json", **(headers or {})})
    response = connection.getresponse()
    status, answer = response.status, response.read()
    connection.close()
    return status, json.loads(answer)


def get(url: str, path: str, headers: dict | None = None) -> tuple[int, bytes, dict]:
    host, port = url.split("//")[1].rstrip("/").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    result = response.status, response.read(), dict(response.getheaders())
    connection.close()
    return result
