"""The data an exported file carries: every step of the chosen series, compact, from which the
page answers the same questions as the plugin's routes (see frontend/src/export_source.ts).

Per graph version, the structure is the `graph` route's fields without its per-step columns,
made by the plugin's own functions (tb_gradflow/route_json.py), so the page shows exactly what
the tab shows; the per-step values are matrices: state codes (uint8), norms as the routes write
them (their significant digits, int32, and power of ten, int8: `route_json.norm_digits`) and
presence codes (uint8, format/presence.py) of every op and variable at every logged step. Each
matrix is stored one op (or variable) after another, and its bytes split into planes (all first
bytes, then all second bytes ...): a norm changes little from step to step, so the high planes
compress to almost nothing. Those matrices are binary blobs after the JSON: the page
reads a 4-byte length, that much JSON (where `{"blob": i}` stands for blob i; `blob_sizes` lists
their lengths), then the blobs. The whole is gzip-compressed and base64-encoded.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
import struct
from typing import Any

import numpy as np

from tb_gradflow import route_json as R
from tb_gradflow import vocabulary as V
from tb_gradflow.reading.layer_series import layer_series, layer_series_json
from tb_gradflow.reading.reader import TagSeries, VersionValues

# 2: norms as the routes' digits and powers of ten, where 1 had float32 norms the page rounded.
FORMAT = 2


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def byte_planes(matrix: np.ndarray, dtype: str) -> bytes:
    """[steps, items] as items-major, then split into the bytes of each value."""
    columns = np.ascontiguousarray(matrix.T, dtype=dtype)
    width = columns.dtype.itemsize
    planes = columns.view(np.uint8).reshape(-1, width).T
    return np.ascontiguousarray(planes).tobytes()


def _structure(run: str, tag: str, series: TagSeries, values: VersionValues) -> dict[str, Any]:
    """The `graph` route's body, less what changes from step to step."""
    graph = values.graph
    return {
        **R.graph_head(run, tag, series, graph, R.version_numbers(series), at_step=False),
        "ops": R.op_columns(graph, list(range(len(graph.ops)))),
        "variables": R.variable_columns(graph),
        "cut_points": R.cut_points_json(graph),
    }


def _norm_blobs(codes: np.ndarray, norms: np.ndarray) -> tuple[bytes, bytes]:
    digits, exponents = R.norm_digits(codes, norms)
    return byte_planes(digits, "<i4"), byte_planes(exponents, "i1")


def _version(run: str, tag: str, series: TagSeries, values: VersionValues) -> dict[str, Any]:
    rows = np.arange(len(values.steps))
    op_digits, op_exponents = _norm_blobs(values.op_states, values.op_norms)
    variable_digits, variable_exponents = _norm_blobs(values.variable_states, values.variable_norms)
    return {
        "structure": _structure(run, tag, series, values),
        "rows": len(rows),
        "losses": [R.loss_json(x) for x in values.losses],
        "op_states": byte_planes(values.op_states, "u1"),
        "op_norm_digits": op_digits,
        "op_norm_exponents": op_exponents,
        "variable_states": byte_planes(values.variable_states, "u1"),
        "variable_norm_digits": variable_digits,
        "variable_norm_exponents": variable_exponents,
        "op_presence": byte_planes(values.presence_codes("op", rows), "u1"),
        "variable_presence": byte_planes(values.presence_codes("variable", rows), "u1"),
        **_unit_rows(values, rows),
    }


def _unit_rows(values: VersionValues, rows: np.ndarray) -> dict[str, Any]:
    """Dead units and loops' iteration norms by op index, one entry per step row; the page
    spreads them over the ops as the routes do. Nothing for a graph without them."""
    units, loops = values.unit_and_loop_ops()
    if not units and not loops:
        return {}
    per_row = [R.unit_and_loop_values(values, int(r)) for r in rows]
    return {
        "units": units,
        "unit_rows": [{"dead_units": dead, "iteration_norms": norms} for _, dead, norms in per_row],
    }


def thin(series: TagSeries, max_steps: int, keep: int | None = None) -> TagSeries:
    """At most `max_steps` of the logged steps, evenly spaced, the first and last (and `keep`)
    among them: the values of the steps kept are exact, the others are left out."""
    steps = series.steps
    if len(steps) <= max_steps:
        return series
    picks = {steps[round(i * (len(steps) - 1) / max(1, max_steps - 1))] for i in range(max_steps)}
    if keep in series.where:
        picks.add(keep)
    versions: dict[str, VersionValues] = {}
    where: dict[int, tuple[str, int]] = {}
    for gid, values in series.versions.items():
        rows = [
            r
            for r, step in enumerate(values.steps.tolist())
            if step in picks and series.where[step] == (gid, r)
        ]
        if not rows:
            continue
        versions[gid] = dataclasses.replace(
            values,
            steps=values.steps[rows],
            op_states=values.op_states[rows],
            op_norms=values.op_norms[rows],
            variable_states=values.variable_states[rows],
            variable_norms=values.variable_norms[rows],
            op_presence=None if values.op_presence is None else values.op_presence[rows],
            variable_presence=None
            if values.variable_presence is None
            else values.variable_presence[rows],
            losses=values.losses[rows],
            wall_times=values.wall_times[rows],
            dead_units=None if values.dead_units is None else values.dead_units[rows],
            iteration_norms=None
            if values.iteration_norms is None
            else [values.iteration_norms[r] for r in rows],
            _op_index=None,
            _variable_index=None,
        )
        where.update({int(step): (gid, i) for i, step in enumerate(versions[gid].steps.tolist())})
    return dataclasses.replace(series, versions=versions, steps=sorted(where), where=where)


def series_payload(series: TagSeries) -> dict[str, Any]:
    """One run and tag: its versions, and for each logged step where its values are."""
    order = list(series.versions)
    return {
        "versions": [_version(series.run, series.name, series, series.versions[g]) for g in order],
        "steps": series.steps,
        "where": [[order.index(series.where[s][0]), series.where[s][1]] for s in series.steps],
        "diagnosis": R.diagnosis_body(series, series.last_step),
        # the `layers` route's body over the file's steps; the page samples it to its width
        "layers": layer_series_json(layer_series(series, R.LAYER_COLUMNS)),
    }


def payload(
    all_series: dict[tuple[str, str], TagSeries], initial: dict[str, Any]
) -> dict[str, Any]:
    """Everything the page needs; `initial` is the view it opens at (run, tag, step, compare)."""
    by_run: dict[str, dict[str, TagSeries]] = {}
    for (run, tag), s in all_series.items():
        by_run.setdefault(run, {})[tag] = s
    return {
        "format": FORMAT,
        # lookup tables from the codes the page holds to the routes' JSON values
        "state_names": list(V.STATES),
        "presence_values": R.presence_values(),
        "norm_specials": list(R.NORM_SPECIALS),
        "norm_special_exponent": R.SPECIAL_EXPONENT,
        "runs": R.runs_body(by_run),
        "series": {
            run: {tag: series_payload(s) for tag, s in tags.items()} for run, tags in by_run.items()
        },
        "initial": initial,
    }


def encode(data: dict[str, Any]) -> str:
    """base64 of gzip of (JSON length, JSON, blobs): what the page's DecompressionStream reads."""
    blobs: list[bytes] = []

    def pull(value: Any) -> Any:
        if isinstance(value, bytes):
            blobs.append(value)
            return {"blob": len(blobs) - 1}
        if isinstance(value, dict):
            return {k: pull(v) for k, v in value.items()}
        if isinstance(value, list):
            return [pull(v) for v in value]
        return value

    head = pull(data)
    head["blob_sizes"] = [len(b) for b in blobs]
    text = json.dumps(head, allow_nan=False, separators=(",", ":")).encode("utf-8")
    body = b"".join([struct.pack("<I", len(text)), text, *blobs])
    return _b64(gzip.compress(body, compresslevel=6, mtime=0))
