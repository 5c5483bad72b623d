"""Finds the user's line that created an op, and the library line below it.

An op's traceback runs from the outermost frame to the one that built the op. The source is the
innermost frame in the user's own code: not in an installed package (site-packages,
dist-packages), the standard library, tb_gradflow or code autograph generated. When a
third-party library sits between that frame and TensorFlow (tensorflow_probability, keras_hub),
its innermost frame is kept too, as the library source, for whoever owns that library. In a
notebook a cell runs from a file the kernel wrote to a temporary directory; the source names the
cell as IPython does (`Cell In[3], line 2`), never that file.

A source travels with the logdir, so it names the file relative to the root of the git
repository that holds it (`pkg/train.py:42`, the same from any working directory or scheduler),
else relative to the working directory when below it. The absolute path is kept apart, in this
process, for local "open in editor" use (`absolute_source`). Nothing here imports TensorFlow:
the torch backend calls `relative_source_path` too.
"""
from __future__ import annotations

import functools
import os
import re
import sys
import sysconfig
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only a type: this module stays free of TensorFlow
    from tb_gradflow.capture.tf_internals import Operation

USER, THIRD_PARTY, FRAMEWORK = "user", "third_party", "framework"

_INSTALLED = re.compile(r"[/\\](site|dist)-packages[/\\]")
# Installed packages whose frames are plumbing to the user, never a useful library line.
_FRAMEWORK = re.compile(r"[/\\](site|dist)-packages[/\\](tensorflow|keras|tf_keras|absl|tensorboard)[/\\]")
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


@functools.lru_cache(maxsize=1024)
def git_root(directory: str) -> str | None:
    """The top folder of the git repository (or worktree) holding `directory`, or None.

    A repository's root holds `.git`: a folder, or a file in a worktree or a submodule.
    """
    current = directory
    while True:
        if os.path.exists(os.path.join(current, ".git")):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def _below(path: str, folder: str) -> str | None:
    """`path` relative to `folder` when it lies inside it, else None."""
    try:
        rel = os.path.relpath(path, folder)
    except ValueError:  # another drive on Windows
        return None
    return None if rel == os.pardir or rel.startswith(os.pardir + os.sep) else rel


def relative_source_path(filename: str, cwd: str | None = None) -> str:
    """The path a source names for `filename`: one that means the same on another machine.

    Args:
      filename: a source file, as a frame or traceback names it (absolute or relative to `cwd`).
      cwd: the working directory that relative names and the fallback refer to (default: the
        process's own).

    Returns:
      The path relative to the root of the git repository holding the file (`pkg/train.py`);
      else relative to `cwd` when the file is below it; else the absolute path. Separators are
      `/` on every system, as in a repository.
    """
    return _relative(filename, os.path.abspath(cwd) if cwd is not None else os.getcwd())


@functools.lru_cache(maxsize=4096)
def _relative(filename: str, base: str) -> str:
    path = os.path.normpath(os.path.join(base, filename))
    root = git_root(os.path.dirname(path))
    rel = (_below(path, root) if root is not None else None) or _below(path, base)
    return (rel if rel is not None else path).replace(os.sep, "/")


# Shown source ("pkg/train.py:42") -> the absolute "path:line" it came from, in this process.
_ABSOLUTE: dict[str, str] = {}
_ABSOLUTE_KEPT = 65536


def absolute_source(source: str) -> str:
    """The absolute `path:LINE` behind a source this process wrote, for "open in editor".

    Sources in a logdir are relative (they travel); this is the local path, never shown by
    default. A source written by another process is looked for below the git root of the
    working directory, then below the working directory itself.

    Returns:
      The absolute `path:LINE`, or "" when the file is not found here (or `source` names a
      notebook cell).
    """
    if source in _ABSOLUTE:
        return _ABSOLUTE[source]
    path, sep, line = source.rpartition(":")
    if not sep or not line.isdigit():
        return ""
    cwd = os.getcwd()
    for base in (git_root(cwd), cwd):
        if base is not None and os.path.isfile(os.path.join(base, path)):
            return f"{os.path.normpath(os.path.join(base, path))}:{line}"
    return ""


def frame_text(filename: str, lineno: int) -> str:
    """`path/to/file.py:LINE` as `relative_source_path` names it, or a notebook cell's label."""
    if _is_notebook_cell(filename):
        return f"{_notebook_cell(filename)}, line {lineno}"
    shown = f"{relative_source_path(filename)}:{lineno}"
    if shown not in _ABSOLUTE and len(_ABSOLUTE) < _ABSOLUTE_KEPT:
        _ABSOLUTE[shown] = f"{os.path.abspath(filename)}:{lineno}"
    return shown


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
