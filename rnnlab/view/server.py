"""The HTTP server of ``rnnlab view``: the standard library's ``ThreadingHTTPServer``.

Why that and not Starlette + uvicorn: the page is one user's (or a class's) window into one model, a few
requests a second, each a model call that runs one at a time anyway (``lock``); a thread per connection is all
the concurrency that needs, and no dependency means nothing more to install, audit or keep compatible. What a
local server needs, it does itself:

- it binds 127.0.0.1 unless told otherwise (``serve`` warns in one line when it is not a loopback address);
- the Host header must name this server -- localhost, a loopback or literal IP address, this machine's name --
  which defeats DNS rebinding (a hostile page whose domain is made to resolve to 127.0.0.1 sends its own name);
- anything but a plain GET must come from the page's own origin (Origin, when a browser sends one) and be
  ``application/json``, which a cross-site form cannot send;
- the client never sends a path: routes are a fixed list, static files a fixed list of packaged assets, and a
  parameter that looks like one (``..``) is refused;
- bodies over ``MAX_BODY`` are refused before they are read, text must be UTF-8, JSON must parse to an object;
  every refusal is a 4xx with one line of JSON ({"error": ...}), never a traceback;
- the answers are JSON and the page renders user text as text; a Content-Security-Policy allows only the
  page's own scripts and styles and connections to itself.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import sys
import threading
import webbrowser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ..errors import UserError
from .answers import LIMITS, Refused, Viewer, viewer
from .page import ASSETS, asset, page_html

MAX_BODY = 4 * LIMITS["upload"] // 3 + 65_536  # an upload's base64 and the JSON around it
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'self'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-store", "Cross-Origin-Resource-Policy": "same-origin"}
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ViewServer(ThreadingHTTPServer):
    """One model's page: ``viewer`` answers, ``lock`` makes its model calls one at a time."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], viewer: Viewer, quiet: bool = True) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, Handler)
        self.viewer, self.quiet, self.lock = viewer, quiet, threading.Lock()
        self.names = {"localhost", socket.gethostname().lower(), socket.getfqdn().lower()}
        self.info = json.dumps(viewer.info()).encode()
        self.page = page_html(viewer.trained.task).encode()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    def host_allowed(self, header: str | None) -> bool:
        """The Host header names this server: a literal IP address, localhost or this machine's name, at its port."""
        if not header:
            return False
        name, _, port = header.rpartition(":") if not header.endswith("]") else (header, "", "")
        if port and port != str(self.server_address[1]):
            return False
        name = (name or header).strip("[]").lower()
        try:
            ipaddress.ip_address(name)
            return True
        except ValueError:
            return name in self.names


class Handler(BaseHTTPRequestHandler):
    server: ViewServer
    server_version = "rnnlab-view"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the standard library's name)
        if not self.server.quiet:
            sys.stderr.write(f"rnnlab view: {self.address_string()} {format % args}\n")

    def send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def refuse(self, status: int, message: str) -> None:
        self.send(status, json.dumps({"error": message}).encode(), "application/json")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's own refusals (a malformed request line, an unknown method): one line of JSON."""
        self.close_connection = True
        self.refuse(code, message or "bad request")

    def checked(self) -> bool:
        if not self.server.host_allowed(self.headers.get("Host")):
            self.refuse(403, "this server answers requests addressed to it (localhost or its address), not "
                             f"{self.headers.get('Host')!r}")
            return False
        return True

    def do_GET(self) -> None:
        if not self.checked():
            return
        path = self.path.split("?", 1)[0]
        if path == "/":
            self.send(200, self.server.page, "text/html; charset=utf-8")
        elif path.startswith("/static/") and path[len("/static/"):] in ASSETS:
            name = path[len("/static/"):]
            self.send(200, asset(name).encode(), ASSETS[name])
        elif path == "/api/info":
            self.send(200, self.server.info, "application/json")
        else:
            self.refuse(404, f"no page {path[:80]!r} here")

    do_HEAD = do_GET

    def do_POST(self) -> None:
        if not self.checked():
            return
        origin = self.headers.get("Origin")
        if origin is not None and not self.same_origin(origin):
            return self.refuse(403, f"requests from {origin[:80]!r} are not answered: only this page's own")
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            return self.refuse(415, "send JSON (Content-Type: application/json)")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return self.refuse(411, "a Content-Length is needed")
        if not 0 <= length <= MAX_BODY:
            self.close_connection = True
            return self.refuse(413, f"the request is {length:,} bytes; at most {MAX_BODY:,} are read")
        body = self.rfile.read(length)
        path = self.path.split("?", 1)[0]
        if not path.startswith("/api/"):
            return self.refuse(404, f"no page {path[:80]!r} here")
        try:
            params = json.loads(body.decode("utf-8"))
        except UnicodeDecodeError:
            return self.refuse(400, "the request is not UTF-8 text")
        except ValueError:
            return self.refuse(400, "the request is not well-formed JSON")
        if not isinstance(params, dict):
            return self.refuse(400, "the request must be a JSON object of parameters")
        if any(isinstance(v, str) and (".." in v and ("/" in v or "\\" in v)) for v in params.values()):
            return self.refuse(400, "parameters are never paths")
        try:
            with self.server.lock:  # one model call at a time: concurrent clients queue
                answer = self.server.viewer.answer(path[len("/api/"):], params)
            body = json.dumps(answer, allow_nan=False).encode()
        except Refused as refusal:
            return self.refuse(refusal.status, str(refusal))
        except Exception as err:  # a model failure is the server's, said in one line; it keeps serving
            sys.stderr.write(f"rnnlab view: {path}: {type(err).__name__}: {err}\n")
            return self.refuse(500, f"the model could not answer ({type(err).__name__})")
        self.send(200, body, "application/json")

    def same_origin(self, origin: str) -> bool:
        scheme, _, rest = origin.partition("://")
        return scheme == "http" and rest == self.headers.get("Host")

    def do_PUT(self) -> None:
        self.refuse(405, "only GET and POST are answered")

    do_DELETE = do_PATCH = do_OPTIONS = do_PUT


class Running:
    """A server started with ``block=False``: ``url``, ``stop()``; shown in a notebook as the page itself."""

    def __init__(self, server: ViewServer) -> None:
        self.server = server
        self.thread = threading.Thread(target=server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _repr_html_(self) -> str:
        return f'<iframe src="{self.url}" width="100%" height="720" style="border:0"></iframe>'

    def __repr__(self) -> str:
        return f"rnnlab view at {self.url}"


def serve(run_dir: str | Path, port: int = 8008, host: str = "127.0.0.1", open_browser: bool = False,
          text: str | None = None, csv=None, data=None, block: bool = True, quiet: bool = True):
    """Serve the page of the run in ``run_dir`` on ``host:port`` (port 0: any free one). ``text``: a character
    model's opening passage; ``csv``/``data``: a forecaster's series to show. ``block=False`` returns a
    ``Running`` server (``url``, ``stop()``) instead of serving until Ctrl-C."""
    from ..tasks import load
    run_dir = Path(run_dir)
    if not (run_dir / "checkpoint").exists() and not (run_dir / "state.json").exists():
        raise UserError(f"no trained run in {run_dir} (a run folder holds checkpoint/)", "model")
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise UserError(f"port must be a whole number in 0 .. 65535, got {port!r}", "port")
    seen = viewer(load(run_dir), text=text, csv=csv, data=data)
    try:
        server = ViewServer((host, port), seen, quiet=quiet)
    except OSError as err:
        raise UserError(f"cannot serve on {host}:{port}: {err.strerror or err}", "port") from None
    if host not in LOOPBACK:
        print(f"rnnlab view: serving on {host}: anyone who can reach this machine on port "
              f"{server.server_address[1]} can use the page", file=sys.stderr)
    if not block:
        return Running(server)
    print(f"rnnlab view: {server.url} (Ctrl-C stops it)", flush=True)
    if open_browser:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return None
