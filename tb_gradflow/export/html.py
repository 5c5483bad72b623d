"""The exported page: the tab's own code and the data, inlined into one HTML file.

Nothing in it reaches the network (its Content-Security-Policy forbids it); the layout worker
starts from a blob: URL made from inlined source, which works from file:// (TensorBoard's CSP
forbids blob: workers, so the tab inside TensorBoard keeps its same-origin worker file). Names
from the logdir are only ever in the base64 payload and the escaped title: text, never markup.
"""
from __future__ import annotations

import base64
import hashlib
import html
import importlib.resources
import os
from typing import Any

from tb_gradflow.export import bundle
from tb_gradflow.reading.reader import TagSeries


def content_security_policy(script: str) -> str:
    """The page's CSP: only the one inline script whose source is `script` may run (by its
    SHA-256), so that markup injected into the page some day cannot run a script of its own.
    Styles are set by the script at run time, hence 'unsafe-inline' for styles only."""
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    return (
        f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; "
        "img-src data:; worker-src blob:; connect-src 'none'; base-uri 'none'; form-action 'none'"
    )


class BundleMissing(RuntimeError):
    """The built frontend is not in the package (a source checkout without `npm run build`)."""


def _static(package: str, name: str) -> str:
    try:
        return importlib.resources.files(package).joinpath(name).read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise BundleMissing(f"{package}/{name} is missing: build the frontend (cd frontend && npm run build)") from e


def _inline_script(source: str) -> str:
    """The source as it may sit between <script> tags: esbuild escapes "</script" in strings;
    anything else that would end the element is refused rather than mangled."""
    lowered = source.lower()
    if "</script" in lowered or "<!--" in lowered:
        raise BundleMissing("the export bundle contains '</script' or '<!--'; it cannot be inlined")
    return source


def page(data: dict[str, Any], title: str) -> str:
    """The whole HTML document."""
    app = _inline_script(_static("tb_gradflow.export", "static/export.js"))
    worker = base64.b64encode(_static("tb_gradflow.plugin", "static/layout_worker.js").encode()).decode()
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{content_security_policy(app)}\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(title)} · Gradient Flow</title></head>\n<body>\n"
        f"<script type=\"application/octet-stream\" id=\"gradflow-data\">{bundle.encode(data)}</script>\n"
        f"<script type=\"application/octet-stream\" id=\"gradflow-worker\">{worker}</script>\n"
        f"<script>{app}</script>\n</body></html>\n"
    )


def initial_view(series: dict[tuple[str, str], TagSeries], step: int | None) -> dict[str, Any]:
    """Opens at the first series; a second run with the same tag is shown beside it."""
    run, tag = next(iter(series))
    others = [r for (r, t) in series if t == tag and r != run]
    return {"run": run, "tag": tag, "step": step, "compare": others[0] if others else None}


def export_logdir(
    series: dict[tuple[str, str], TagSeries], path: str, step: int | None = None, title: str = "gradflow"
) -> int:
    """Writes the page for these series to `path`; returns its size in bytes."""
    text = page(bundle.payload(series, initial_view(series, step)), title)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return len(text.encode("utf-8"))
