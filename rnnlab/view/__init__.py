"""``rnnlab view``: a live page into a trained network of any task, served on this machine or written as one
self-contained HTML file.

    rnnlab view --model runs/shakespeare                      # http://127.0.0.1:8008
    rnnlab view --model runs/shakespeare --export page.html --text passage.txt

    from rnnlab import view
    view.serve("runs/shakespeare", port=8008)                  # blocks; Ctrl-C stops it
    view.export("runs/shakespeare", "page.html", text="ROMEO: But soft")

The rooms: ``answers`` (what the page asks a model, one ``Viewer`` per task: ``charlm``, ``forecast``,
``classify``, ``memory``), ``server`` (the HTTP server: routes, the checks a local server needs, one model
call at a time), ``page`` (the page itself, from the packaged ``assets``; exported with the answers inlined).
"""

from __future__ import annotations

from .page import export
from .server import serve

__all__ = ["serve", "export"]
