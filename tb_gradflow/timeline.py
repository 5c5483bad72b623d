"""What holds across all logged steps of one run and tag: the norm range, the first NaN/Inf step
and where the graph version changed.

A colour or an axis that means the same at every step needs the range over all steps, which only
the reader has; the tab gets it from the `diagnosis` route instead of rescaling per step.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tb_gradflow import vocabulary as V
from tb_gradflow.reading.reader import TagSeries

_FLOWING = V.STATE_CODE[V.FLOWING]
_NONFINITE = V.STATE_CODE[V.NONFINITE]


def live_rows(series: TagSeries) -> dict[str, np.ndarray]:
    """Per version, the rows that `where` still points at (a step logged twice keeps one row)."""
    rows: dict[str, list[int]] = {gid: [] for gid in series.versions}
    for step in series.steps:
        gid, row = series.where[step]
        rows[gid].append(row)
    return {gid: np.array(r, dtype=np.int64) for gid, r in rows.items()}


def _range(pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[float] | None:
    """[smallest, largest] finite positive norm of flowing entries; None when there is none."""
    lo, hi = np.inf, -np.inf
    for states, norms in pairs:
        ok = (states == _FLOWING) & np.isfinite(norms) & (norms > 0)
        if ok.any():
            lo = min(lo, float(norms[ok].min()))
            hi = max(hi, float(norms[ok].max()))
    return None if lo == np.inf else [lo, hi]


def timeline(series: TagSeries) -> dict[str, Any]:
    """`norm_range` {"ops", "variables"}: [lo, hi] over all logged steps (flowing values only);
    `first_nonfinite_step`: the first step with a NaN or Inf gradient anywhere, or None;
    `version_changes`: [{"step", "graph_version"}] at each step whose graph version differs from
    the step before (the first step included)."""
    rows = live_rows(series)
    op_pairs, var_pairs = [], []
    first_bad: int | None = None
    for gid, values in series.versions.items():
        r = rows[gid]
        if len(r) == 0:
            continue
        op_pairs.append((values.op_states[r], values.op_norms[r]))
        var_pairs.append((values.variable_states[r], values.variable_norms[r]))
        bad = (values.op_states[r] == _NONFINITE).any(axis=1) | (values.variable_states[r] == _NONFINITE).any(axis=1)
        if bad.any():
            step = int(values.steps[r][bad].min())
            first_bad = step if first_bad is None else min(first_bad, step)
    numbers = {gid: i + 1 for i, gid in enumerate(series.versions)}
    changes, previous = [], None
    for step in series.steps:
        gid = series.where[step][0]
        if gid != previous:
            changes.append({"step": step, "graph_version": numbers[gid]})
            previous = gid
    return {
        "norm_range": {"ops": _range(op_pairs), "variables": _range(var_pairs)},
        "first_nonfinite_step": first_bad,
        "version_changes": changes,
    }
