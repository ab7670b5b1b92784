"""The page: ``assets/`` (one HTML shell, one stylesheet, the shared script and one script per task; vanilla
JavaScript, SVG and canvas, nothing fetched from elsewhere), served as files or inlined into one exported file.

An exported page carries its answers in a JSON script element, keyed as ``answers.key`` names them; its
scripts are inline, so its Content-Security-Policy allows exactly those (by their SHA-256), and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import json
from importlib import resources
from pathlib import Path

from ..errors import UserError

ASSETS = {"view.css": "text/css; charset=utf-8", "view.js": "text/javascript; charset=utf-8",
          "charlm.js": "text/javascript; charset=utf-8", "forecast.js": "text/javascript; charset=utf-8",
          "classify.js": "text/javascript; charset=utf-8", "memory.js": "text/javascript; charset=utf-8"}
SCRIPT = {"charlm": "charlm.js", "forecast": "forecast.js", "forecast_panel": "forecast.js",
          "classify": "classify.js", "regress": "classify.js", "memory": "memory.js"}


def asset(name: str) -> str:
    """A packaged asset's text (only names in ``ASSETS``)."""
    if name not in ASSETS and name != "view.html":
        raise KeyError(name)
    return resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")


def page_html(task: str) -> str:
    """The served page: the shell with the stylesheet and scripts as links to /static/."""
    head = '<link rel="stylesheet" href="/static/view.css">'
    scripts = "".join(f'<script src="/static/{name}"></script>' for name in ("view.js", SCRIPT[task]))
    return asset("view.html").replace("<!--head-->", head).replace("<!--scripts-->", scripts)


def inline_script(code: str) -> str:
    return "<script>" + code.replace("</script", "<\\/script") + "</script>"


def export(run_dir: str | Path, out: str | Path, text: str | None = None, csv=None, data=None) -> Path:
    """Write the page of the run in ``run_dir`` into ``out`` as one self-contained HTML file, with the model's
    answers for the given input precomputed (``text``: a character model's passage; ``csv``/``data``: a
    forecaster's series): it opens with no server, offline; typing and sampling are off."""
    from ..tasks import load
    from ..training.checkpoint import write_text_atomic
    from .answers import viewer
    seen = viewer(load(run_dir), text=text, csv=csv, data=data)
    bundle = {"info": seen.info(), "answers": seen.precomputed()}
    payload = json.dumps(bundle, allow_nan=False, ensure_ascii=False).replace("</", "<\\/")
    codes = [asset("view.js"), asset(SCRIPT[seen.trained.task])]
    hashes = " ".join("'sha256-" + base64.b64encode(hashlib.sha256(code.replace("</script", "<\\/script")
                                                                   .encode()).digest()).decode() + "'"
                      for code in codes)
    policy = (f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; img-src data:; "
              "base-uri 'none'; form-action 'none'")
    head = (f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
            f"<style>{asset('view.css')}</style>"
            f'<script type="application/json" id="rnnlab-bundle">{payload}</script>')
    html = asset("view.html").replace("<!--head-->", head).replace(
        "<!--scripts-->", "".join(inline_script(code) for code in codes))
    out = Path(out)
    if out.is_dir():
        raise UserError(f"--export {out} is a folder: give a file name (page.html)", "export")
    write_text_atomic(out, html)
    return out
