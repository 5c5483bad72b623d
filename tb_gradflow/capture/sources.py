"""Finds the user's line that created an op, skipping TensorFlow, Keras and our own frames."""
from __future__ import annotations

import functools
import os
import sys

from tb_gradflow.capture.tf_internals import Operation


def _package_dirs() -> tuple[str, ...]:
    dirs = []
    for name in ("tensorflow", "keras", "tf_keras", "tb_gradflow", "absl", "tensorboard"):
        module = sys.modules.get(name)
        for path in getattr(module, "__path__", []) or []:
            dirs.append(os.path.realpath(path) + os.sep)
    return tuple(dirs)


_SKIP_DIRS: tuple[str, ...] | None = None
_STDLIB = os.path.realpath(os.path.dirname(os.__file__)) + os.sep


@functools.lru_cache(maxsize=4096)
def is_library_file(filename: str) -> bool:
    global _SKIP_DIRS
    if _SKIP_DIRS is None:
        _SKIP_DIRS = _package_dirs()
    real = os.path.realpath(filename)
    return (
        real.startswith(_SKIP_DIRS)
        or real.startswith(_STDLIB)
        or "__autograph_generated_file" in filename
        or filename.startswith("<")
    )


def user_source(op: Operation) -> str:
    """`path/to/file.py:LINE` of the innermost user frame, relative to the cwd when below it."""
    try:
        frames = op.traceback
    except Exception:  # imported ops and some C++-built ops carry no Python traceback
        return ""
    for frame in reversed(list(frames)):
        filename, lineno = frame[0], frame[1]
        if not is_library_file(filename):
            return f"{_display_path(filename)}:{lineno}"
    return ""


def _display_path(filename: str) -> str:
    try:
        rel = os.path.relpath(filename)
    except ValueError:
        return filename
    return filename if rel.startswith("..") else rel
