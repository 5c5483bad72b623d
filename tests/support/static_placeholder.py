"""Makes sure the package has a `static/index.js` to serve while a test runs.

The frontend build writes the real file; in a tree where it was not built yet, a placeholder
stands in and is removed afterwards, unless the build replaced it meanwhile.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from tb_gradflow.plugin.static_files import STATIC_DIR

PLACEHOLDER = b"// placeholder written by tests/support/static_placeholder.py\nexport function render() {}\n"


@contextlib.contextmanager
def static_index() -> Iterator[str]:
    """Yields the path of `static/index.js`, which exists for the duration."""
    path = os.path.join(STATIC_DIR, "index.js")
    made_dir = not os.path.isdir(STATIC_DIR)
    os.makedirs(STATIC_DIR, exist_ok=True)
    placed = False
    try:
        with open(path, "xb") as f:
            f.write(PLACEHOLDER)
        placed = True
    except FileExistsError:
        pass
    try:
        yield path
    finally:
        if placed:
            with contextlib.suppress(OSError):
                with open(path, "rb") as f:
                    still_ours = f.read() == PLACEHOLDER
                if still_ours:
                    os.unlink(path)
        if made_dir:
            with contextlib.suppress(OSError):
                os.rmdir(STATIC_DIR)  # only if empty
