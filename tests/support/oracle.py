"""The reference the capture tests check against: a plain eager `tf.GradientTape`."""
from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from tb_gradflow.capture.variables import variable_name


def tape_states(
    loss_fn: Callable[..., Any],
    args: Sequence[Any],
    variables: Sequence[Any],
    names: Sequence[str] | None = None,
) -> dict[str, str]:
    """State of each variable object's gradient as a plain eager GradientTape sees it.

    Keyed by `names` (one per variable, as the test expects the report to name them), else by
    each variable's own path or name; two distinct objects under one key are an error, never
    merged, so a test cannot pass by comparing one entry for two variables.
    """
    if names is None:
        names = [variable_name(v) for v in variables]
    assert len(names) == len(variables), "one name per variable"
    owners: dict[str, int] = {}
    for v, name in zip(variables, names, strict=False):
        if owners.setdefault(name, id(v)) != id(v):
            raise AssertionError(f"two variable objects are both named {name!r}: pass names=")
    tf_vars = [v if isinstance(v, tf.Variable) else v.value for v in variables]
    with tf.GradientTape() as tape:
        loss = loss_fn(*args)
    grads = tape.gradient(loss, tf_vars)
    states = {}
    for name, g in zip(names, grads, strict=False):
        if g is None:
            state = "none"
        else:
            values = tf.convert_to_tensor(g).numpy()
            if not np.all(np.isfinite(values)):
                state = "nonfinite"
            elif not np.any(values):
                state = "zero"
            else:
                state = "flowing"
        states[name] = state
    return states


def report_states(report) -> dict[str, str]:
    return {name: record.state for name, record in report.variables.items()}


@functools.lru_cache(maxsize=64)
def _git_top(folder: str) -> str | None:
    top = subprocess.run(["git", "-C", folder, "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    return top.stdout.strip() if top.returncode == 0 else None


def shown_path(path: str) -> str:
    """How a source names `path`: relative to its git repository's root (asked of git itself),
    else to the working directory when below it, else absolute."""
    path = os.path.abspath(path)
    base = _git_top(os.path.dirname(path)) or os.getcwd()
    rel = os.path.relpath(path, base)
    return path if rel.startswith("..") else rel


def line_of(path: str, marker: str) -> str:
    """`path:LINE` of the line carrying `marker`, as the report spells sources."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if marker in line:
                return f"{shown_path(path)}:{number}"
    raise AssertionError(f"marker {marker!r} not in {path}")
