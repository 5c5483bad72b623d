"""The tab's files, served from this package only.

A request path is untrusted: it is checked against a strict pattern (no "..", no hidden names,
no backslashes) and then resolved, following symlinks, to a regular file that must lie inside
`static/`. Only known file types are served, each with its own content type.
"""
from __future__ import annotations

import os
import re

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")

CONTENT_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
    ".wasm": "application/wasm",
}

# Path components: letters, digits, "_", "-", "." but never starting with "." (so no "." or "..").
_SAFE_PATH = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}(/[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}){0,7}")


def resolve(relative: str, root: str = STATIC_DIR) -> tuple[str, str] | None:
    """(absolute path, content type) of the file `relative` names under `root`, or None."""
    if not _SAFE_PATH.fullmatch(relative):
        return None
    content_type = CONTENT_TYPES.get(os.path.splitext(relative)[1].lower())
    if content_type is None:
        return None
    real_root = os.path.realpath(root)
    path = os.path.realpath(os.path.join(real_root, relative))
    if os.path.commonpath([real_root, path]) != real_root or not os.path.isfile(path):
        return None
    return path, content_type
