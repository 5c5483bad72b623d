"""Finds the user's line that created an op, and the library line below it.

An op's traceback runs from the outermost frame to the one that built the op. The source is the
innermost frame in the user's own code: not in an installed package (site-packages,
dist-packages), the standard library, tb_gradflow or code autograph generated. When a
third-party library sits between that frame and TensorFlow (tensorflow_probability, keras_hub),
its innermost frame is kept too, as the library source, for whoever owns that library. In a
notebook a cell runs from a file the kernel wrote to a temporary directory; the source names the
cell as IPython does (`Cell In[3], line 2`), never that file.
"""
from __future__ import annotations

import functools
import os
import re
import sys
import sysconfig
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the PyTorch capture reads frames here too, without TensorFlow
    from tb_gradflow.capture.tf_internals import Operation

USER, THIRD_PARTY, FRAMEWORK = "user", "third_party", "framework"

_INSTALLED = re.compile(r"[/\\](site|dist)-packages[/\\]")
# Installed packages whose frames are plumbing to the user, never a useful library line.
_FRAMEWORK = re.compile(r"[/\\](site|dist)-packages[/\\](tensorflow|keras|tf_keras|absl|tensorboard|torch)[/\\]")
# Our own package, wherever it is installed from (an editable install is not in site-packages).
_OWN_DIR = os.path.realpath(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))) + os.sep
_KERNEL_CELL = re.compile(r"[/\\]ipykernel_\d+[/\\][^/\\]+\.py$")
_IPYTHON_INPUT = re.compile(r"^<ipython-input-(\d+)-[0-9a-f]+>$")


@functools.lru_cache(maxsize=1)
def _stdlib_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths.get("stdlib"), paths.get("platstdlib"), os.path.dirname(os.__file__)}
    return tuple(os.path.realpath(d) + os.sep for d in dirs if d)


def _is_notebook_cell(filename: str) -> bool:
    return bool(_KERNEL_CELL.search(filename) or _IPYTHON_INPUT.match(filename))


@functools.lru_cache(maxsize=4096)
def frame_kind(filename: str) -> str:
    """USER, THIRD_PARTY (an installed package we do not know) or FRAMEWORK (skipped quietly)."""
    if _is_notebook_cell(filename):
        return USER
    if "__autograph_generated_file" in filename or filename.startswith("<"):
        return FRAMEWORK
    real = os.path.realpath(filename)
    if _INSTALLED.search(real):  # before the standard library: a venv's lib/ holds both
        return FRAMEWORK if _FRAMEWORK.search(real) else THIRD_PARTY
    if real.startswith((_OWN_DIR, *_stdlib_dirs())):
        return FRAMEWORK
    return USER


def is_library_file(filename: str) -> bool:
    """Whether a frame in `filename` is someone else's code, not the user's."""
    return frame_kind(filename) != USER


def _notebook_cell(filename: str) -> str:
    """IPython's label for the cell a kernel compiled into `filename`."""
    match = _IPYTHON_INPUT.match(filename)
    if match:
        return f"Cell In[{match.group(1)}]"
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    number = getattr(getattr(shell, "compile", None), "_filename_map", {}).get(filename)
    return f"Cell In[{number}]" if number is not None else "notebook cell"


def frame_text(filename: str, lineno: int) -> str:
    """`path/to/file.py:LINE`, relative to the cwd when below it, or a notebook cell's label."""
    if _is_notebook_cell(filename):
        return f"{_notebook_cell(filename)}, line {lineno}"
    try:
        rel = os.path.relpath(filename)
    except ValueError:
        rel = ".."
    return f"{filename if rel.startswith('..') else rel}:{lineno}"


def op_sources(op: Operation) -> tuple[str, str]:
    """(the user's line, the innermost third-party library line inside it or "")."""
    try:
        frames = list(op.traceback)
    except Exception:  # imported ops and some C++-built ops carry no Python traceback
        return "", ""
    library = ""
    for frame in reversed(frames):
        filename, lineno = frame[0], frame[1]
        kind = frame_kind(filename)
        if kind == USER:
            return frame_text(filename, lineno), library
        if kind == THIRD_PARTY and not library:
            library = frame_text(filename, lineno)
    return "", library


def user_source(op: Operation) -> str:
    """The innermost user frame that created `op`, as `op_sources` spells it."""
    return op_sources(op)[0]
