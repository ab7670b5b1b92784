"""``rnnlab view`` without a browser: the answers, the checks of a local server, bad requests, concurrent
clients, the exported page (the browser tests: test_view_browser.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading

import numpy as np
import pytest

from rnnlab import view
from rnnlab.cli import main
from rnnlab.errors import UserError
from rnnlab.view.answers import packed
from viewing import INSIDE, QUOTED, get, post, quote_model


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return quote_model(tmp_path_factory.mktemp("view") / "quotes")


@pytest.fixture(scope="module")
def served(run):
    running = view.serve(run, port=0, block=False)
    yield running.url
    running.stop()


def unpack(p: dict) -> np.ndarray:
    data = np.frombuffer(base64.b64decode(p["data"]), dtype=np.uint8).astype(np.float64)
    return (p["lo"] + data * (p["hi"] - p["lo"]) / 255).reshape(p["rows"], p["cols"])


def exact(p: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(p["data"]), dtype="<u2" if p["kind"] == "uint16" else "<f4").reshape(
        p["shape"])


def test_packed_round_trip_within_a_step():
    values = np.random.default_rng(0).normal(size=(7, 5))
    back = unpack(packed(values))
    assert back.shape == (7, 5)
    assert np.abs(back - values).max() <= (values.max() - values.min()) / 255 / 2 + 1e-12


def test_page_info_and_assets(served):
    status, page, headers = get(served, "/")
    assert status == 200 and b"/static/charlm.js" in page
    policy = headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe" not in policy
    status, body, _ = get(served, "/api/info")
    info = json.loads(body)
    assert status == 200 and info["task"] == "charlm" and info["hidden"] == 16 and info["layer_count"] == 1
    assert info["names"] == ["i", "f", "g", "o", "c", "h"] and '"' in info["vocab"] and info["passage"]
    for name in ("view.js", "view.css", "charlm.js"):
        assert get(served, f"/static/{name}")[0] == 200


def test_activations_are_the_networks_own(served, run):
    """Every quantity per character as the network computes it (within the packing's step), the top 5 and the
    loss of what came next from the network's own logits."""
    import torch
    from rnnlab.learn.heatmaps import run_recorded
    from rnnlab.tasks import load
    text = QUOTED[:120]
    status, answer = post(served, "activations", {"text": text, "layer": 0})
    assert status == 200
    trained = load(run)
    ids = trained.vocab.encode(text)[None]
    logits, internals = run_recorded(trained, ids)
    for name, values in internals[0, 0].items():
        got = unpack(answer["names"][name])
        assert got.shape == (len(text), 16)
        assert np.abs(got - values).max() <= (values.max() - values.min()) / 255 / 2 + 1e-6
    logp = torch.log_softmax(logits[0].double(), -1)
    top, p, loss = (exact(answer[name]) for name in ("top", "p", "loss"))
    assert top.shape == (len(text), 5) and (top[5] == logp[5].topk(5).indices.numpy()).all()
    assert np.allclose(p[5] / 65535, logp[5].exp().topk(5).values.numpy(), atol=1e-4)
    came = [-logp[t, ids[0, t + 1]].item() for t in range(len(text) - 1)]
    assert np.allclose(loss[:-1], came, atol=1e-4) and np.isnan(loss[-1])


def test_the_planted_unit_tracks_quotes(served):
    """The hypothesis the page ranks by (correlation with the marks) puts the planted unit first."""
    text = QUOTED[:400]
    status, answer = post(served, "activations", {"text": text, "layer": 0})
    h = unpack(answer["names"]["h"])
    marks = np.zeros(len(text))
    for match in re.finditer(INSIDE, text):
        marks[match.start():match.end()] = 1
    r = [abs(np.corrcoef(h[:, unit], marks)[0, 1]) for unit in range(h.shape[1])]
    assert int(np.argmax(r)) == 0 and r[0] > 0.8


def test_sampling_gives_each_steps_distribution(served):
    status, answer = post(served, "sample", {"prime": '"hi', "length": 30, "temperature": 0.7, "seed": 3})
    assert status == 200 and len(answer["text"]) == 30 and len(answer["probs"]) == 30
    assert all(abs(sum(p) - 1) < 1e-3 for p in answer["probs"])
    assert all(p[c] > 0 for p, c in zip(answer["probs"], answer["chosen"]))
    again = post(served, "sample", {"prime": '"hi', "length": 30, "temperature": 0.7, "seed": 3})[1]
    assert again["text"] == answer["text"]  # seeded


@pytest.mark.parametrize("route, body, status, says", [
    ("activations", {"text": "x" * 6000}, 413, "at most 5,000"),
    ("activations", {"text": "hi ZZ"}, 400, "never saw"),
    ("activations", {"text": ""}, 400, "empty"),
    ("activations", {"text": "hi", "layer": 3}, 400, "layer"),
    ("activations", {"text": "hi", "name": "zz"}, 400, "name must be one of i, f, g, o, c, h"),
    ("activations", {"text": 5}, 400, "text"),
    ("sample", {"prime": "hi", "temperature": 1e9}, 400, "temperature"),
    ("sample", {"prime": "hi", "length": 10_000}, 400, "length"),
    ("sample", {"prime": "../etc/passwd"}, 400, "paths"),
    ("nothing", {}, 404, "no question"),
])
def test_bad_requests_get_one_line(served, route, body, status, says):
    got, answer = post(served, route, body)
    assert got == status and says in answer["error"] and "\n" not in answer["error"]
    assert post(served, "activations", {"text": "hi"})[0] == 200  # and it keeps serving


def test_malformed_bodies(served):
    refusal = post(served, "activations", None, raw=b"\xff\xfe not utf-8")[1]["error"]
    assert refusal.startswith("the request is not UTF-8")
    assert "JSON" in post(served, "activations", None, raw=b"{'text': ")[1]["error"]
    assert post(served, "activations", None, raw=b"[1, 2]")[0] == 400
    assert post(served, "activations", {"text": "hi"}, headers={"Content-Type": "text/plain"})[0] == 415
    assert get(served, "/static/../checkpoint/state.json")[0] == 404
    assert get(served, "/nothing")[0] == 404


def test_a_huge_body_is_refused_before_it_is_read(served):
    host, port = served.split("//")[1].rstrip("/").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /api/activations HTTP/1.1\r\nHost: " + f"{host}:{port}".encode() +
                     b"\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n" + b"{" * 1000)
        reply = b""
        while b"at most" not in reply:  # the server answers and closes without reading the 100 MB
            part = sock.recv(4096)
            if not part:
                break
            reply += part
        reply = reply.decode()
    assert reply.startswith("HTTP/1.1 413") and "at most" in reply
    assert post(served, "activations", {"text": "hi"})[0] == 200


def test_host_and_origin_are_checked(served):
    """DNS rebinding (a foreign Host) and cross-site requests (a foreign Origin) are refused."""
    port = served.rstrip("/").rsplit(":", 1)[1]
    assert get(served, "/api/info", {"Host": f"evil.example:{port}"})[0] == 403
    assert get(served, "/api/info", {"Host": f"localhost:{port}"})[0] == 200
    status, answer = post(served, "activations", {"text": "hi"}, headers={"Origin": "http://evil.example"})
    assert status == 403 and "evil.example" in answer["error"]
    assert post(served, "activations", {"text": "hi"}, headers={"Origin": served.rstrip("/")})[0] == 200


def test_concurrent_clients_are_all_answered(served):
    """Twenty clients at once, typing and sampling: every request answered, none refused."""
    results = []

    def client(k: int) -> None:
        for n in range(3):
            results.append(post(served, "activations", {"text": QUOTED[:50 + 10 * k + n], "layer": 0})[0])
            results.append(post(served, "sample", {"prime": '"', "length": 20, "seed": k})[0])

    threads = [threading.Thread(target=client, args=(k,)) for k in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 120


def test_export_is_one_file_with_its_answers(run, tmp_path):
    page = view.export(run, tmp_path / "page.html", text=QUOTED[:80])
    html = page.read_text()
    bundle = json.loads(re.search(r'<script type="application/json" id="rnnlab-bundle">(.*?)</script>', html,
                                  re.S).group(1))
    assert bundle["info"]["passage"] == QUOTED[:80]
    assert 'activations{"layer":0,"name":"h","since":0,"text":' + json.dumps(QUOTED[:80]) + "}" in bundle["answers"]
    assert "/static/" not in html and "http://" not in html.replace("http://www.w3.org", "")  # nothing fetched
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', html).group(1)
    for code in re.findall(r"<script>(.*?)</script>", html, re.S):  # each inline script allowed by its hash
        digest = base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy


def test_cli_and_user_errors(run, tmp_path, capsys):
    assert main(["view", "--model", str(run), "--export", str(tmp_path / "p.html")]) == 0
    assert (tmp_path / "p.html").exists()
    assert main(["view", "--model", str(tmp_path / "none")]) == 2
    assert "no trained run" in capsys.readouterr().err
    (tmp_path / "t.txt").write_text("hi ZZ")
    assert main(["view", "--model", str(run), "--text", str(tmp_path / "t.txt"), "--export", "x.html"]) == 2
    assert "never saw" in capsys.readouterr().err
    with pytest.raises(UserError, match="port"):
        view.serve(run, port=70000)


def test_typing_reads_on_from_the_text_before(run):
    """A longer text is read on from the state the shorter one ended in: the same answers as read whole."""
    from rnnlab.tasks import load
    from rnnlab.view.answers import viewer
    typed, fresh = viewer(load(run)), viewer(load(run))
    typed.activations({"text": QUOTED[:70]})
    typed.activations({"text": QUOTED[:100]})
    assert set(typed.read) == {QUOTED[:70], QUOTED[:100]}
    on, whole = typed.activations({"text": QUOTED[:130]}), fresh.activations({"text": QUOTED[:130]})
    for name in whole["names"]:
        a, b = unpack(on["names"][name]), unpack(whole["names"][name])
        assert np.abs(a - b).max() <= (b.max() - b.min()) / 255 + 1e-6
    assert on["top"] == whole["top"] and np.allclose(exact(on["loss"])[:-1], exact(whole["loss"])[:-1], atol=1e-3)


def test_twenty_clients_typing_and_sampling_for_30_seconds(served):
    """The load of issue 38: 20 clients on loopback, each typing (an activation request per keystroke pause)
    and sampling for 30 s, and a probe asking for new texts: every request answered, none refused."""
    from rnnlab.view.clients import crowd
    texts = [QUOTED[k:k + 600] for k in range(20)]
    typed, probed = crowd(served, texts, seconds=30, probe_text=QUOTED * 3)
    routes = [route for route, _, _ in typed.requests]
    assert typed.statuses() == {200} and probed.statuses() == {200}
    assert routes.count("activations") >= 20 * 30 and routes.count("sample") >= 20 and len(probed.requests) >= 10
    assert post(served, "activations", {"text": QUOTED[:30]})[0] == 200


def test_since_sends_only_the_characters_after_those_the_page_holds(served):
    """The page asks for characters k.. of a text whose first k it holds: the same values as the whole text's
    from k on, and the losses from k - 1 (what came after character k - 1 is known only now)."""
    text = QUOTED[:90]
    whole = post(served, "activations", {"text": text, "name": "c"})[1]
    part = post(served, "activations", {"text": text, "name": "c", "since": 61})[1]
    assert part["since"] == 61 and part["length"] == 90 and list(part["names"]) == ["c"]
    assert np.abs(unpack(part["names"]["c"]) - unpack(whole["names"]["c"])[61:]).max() < 2 * (
        unpack(whole["names"]["c"]).max() - unpack(whole["names"]["c"]).min()) / 255
    assert (exact(part["top"]) == exact(whole["top"])[61:]).all()
    assert np.allclose(exact(part["loss"]), exact(whole["loss"])[60:], equal_nan=True)
    assert post(served, "activations", {"text": text, "since": 91})[0] == 400
