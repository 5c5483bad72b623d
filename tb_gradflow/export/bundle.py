"""The data an exported file carries: every step of the chosen series, compact, from which the
page answers the same questions as the plugin's routes (see frontend/src/export_source.ts).

Per graph version, the structure is the `graph` route's body without its per-step columns (so
the page shows exactly what the tab shows), and the per-step values are matrices: state codes
(uint8), norms (float32, exact) and presence codes (uint8, format/presence.py) of every op and
variable at every logged step. Each matrix is
stored one op (or variable) after another, and its float bytes split into four planes (all
first bytes, then all second bytes ...): a norm changes little from step to step, so the exponent
planes compress to almost nothing. Those matrices are binary blobs after the JSON: the page
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

from tb_gradflow import vocabulary as V
from tb_gradflow.format import presence as P
from tb_gradflow.plugin.views import diagnosis_view, graph_json, presence_json, runs_json
from tb_gradflow.reading.cache import CachedSeries
from tb_gradflow.reading.reader import TagSeries, VersionValues
from tb_gradflow.json_values import json_float as json_norm

FORMAT = 1
_PER_STEP_COLUMNS = ("state", "norm", "presence")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def byte_planes(matrix: np.ndarray, dtype: str) -> bytes:
    """[steps, items] as items-major, then split into the bytes of each value."""
    columns = np.ascontiguousarray(matrix.T, dtype=dtype)
    width = columns.dtype.itemsize
    planes = columns.view(np.uint8).reshape(-1, width).T
    return np.ascontiguousarray(planes).tobytes()


def _structure(run: str, tag: str, cached: CachedSeries, step: int) -> dict[str, Any]:
    """The `graph` route's body at `step`, less what changes from step to step."""
    body = json.loads(graph_json(run, tag, cached, step))
    for part in ("ops", "variables"):
        for column in _PER_STEP_COLUMNS:
            del body[part][column]
    for key in ("step", "loss", "starved_variables", "zero_variables", "nonfinite_variables"):
        del body[key]
    return body


def _version(run: str, tag: str, cached: CachedSeries, values: VersionValues) -> dict[str, Any]:
    steps = values.steps.tolist()
    losses = [None if np.isnan(x) else json_norm(float(x)) for x in values.losses.tolist()]
    return {
        "structure": _structure(run, tag, cached, _a_step_of(cached.series, values)),
        "rows": len(steps),
        "losses": losses,
        "op_states": byte_planes(values.op_states, "u1"),
        "op_norms": byte_planes(values.op_norms, "<f4"),
        "variable_states": byte_planes(values.variable_states, "u1"),
        "variable_norms": byte_planes(values.variable_norms, "<f4"),
        "op_presence": byte_planes(values.presence_codes("op", np.arange(len(steps))), "u1"),
        "variable_presence": byte_planes(values.presence_codes("variable", np.arange(len(steps))), "u1"),
    }


def _a_step_of(series: TagSeries, values: VersionValues) -> int:
    """A logged step whose values live in this version (the route needs one to answer)."""
    gid = values.graph.graph_id
    return next(s for s in series.steps if series.where[s][0] == gid)


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
        rows = [r for r, step in enumerate(values.steps.tolist()) if step in picks and series.where[step] == (gid, r)]
        if not rows:
            continue
        versions[gid] = dataclasses.replace(
            values, steps=values.steps[rows], op_states=values.op_states[rows], op_norms=values.op_norms[rows],
            variable_states=values.variable_states[rows], variable_norms=values.variable_norms[rows],
            op_presence=None if values.op_presence is None else values.op_presence[rows],
            variable_presence=None if values.variable_presence is None else values.variable_presence[rows],
            losses=values.losses[rows], wall_times=values.wall_times[rows], _op_index=None, _variable_index=None,
        )
        where.update({int(step): (gid, i) for i, step in enumerate(versions[gid].steps.tolist())})
    return dataclasses.replace(series, versions=versions, steps=sorted(where), where=where)


def series_payload(series: TagSeries) -> dict[str, Any]:
    """One run and tag: its versions, and for each logged step where its values are."""
    cached = CachedSeries(series, freshness=())
    order = list(series.versions)
    return {
        "versions": [_version(series.run, series.name, cached, series.versions[g]) for g in order],
        "steps": series.steps,
        "where": [[order.index(series.where[s][0]), series.where[s][1]] for s in series.steps],
        "diagnosis": json.loads(diagnosis_view(cached, None)),
    }


def payload(all_series: dict[tuple[str, str], TagSeries], initial: dict[str, Any]) -> dict[str, Any]:
    """Everything the page needs; `initial` is the view it opens at (run, tag, step, compare)."""
    by_run: dict[str, dict[str, TagSeries]] = {}
    for (run, tag), s in all_series.items():
        by_run.setdefault(run, {})[tag] = s
    return {
        "format": FORMAT,
        "state_names": list(V.STATES),
        # what each presence code reads as in the routes' JSON, so the page answers the same
        "presence_values": presence_json(np.arange(P.LEVELS + 2, dtype=np.uint8)),
        "runs": json.loads(runs_json(by_run)),
        "series": {run: {tag: series_payload(s) for tag, s in tags.items()} for run, tags in by_run.items()},
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
