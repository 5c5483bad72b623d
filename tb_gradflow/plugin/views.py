"""The JSON bodies of the routes in docs/routes.md, built from a cached series.

A graph version's structure is the same at every step, so its JSON is encoded once per read of
the series (`CachedSeries.derived`) and only the per-step columns are encoded per request. Bodies
are returned as strings; `http_util.Respond` then only compresses them.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from tb_gradflow import vocabulary as V
from tb_gradflow.cli import diagnosis_json
from tb_gradflow.format.records import cut_points, decode_norm
from tb_gradflow.plugin.params import not_found
from tb_gradflow.proto import gradflow_pb2
from tb_gradflow.reading.cache import CachedSeries
from tb_gradflow.reading.reader import TagSeries, VersionValues
from tb_gradflow.report import _json_norm as json_norm
from tb_gradflow.timeline import live_rows as _live_rows  # the one spelling of NaN/Inf in our JSON

_STATE_NAMES = np.array(V.STATES, dtype=object)


def encode(value: Any) -> str:
    """Compact JSON; NaN and Inf must have been spelled as strings before (allow_nan=False)."""
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


def _fields(pairs: dict[str, str]) -> str:
    """`"key":value,...` from already-encoded values, to splice into an object."""
    return ",".join(f"{encode(k)}:{v}" for k, v in pairs.items())


def _norms(codes: np.ndarray, norms: np.ndarray) -> list[Any]:
    states = _STATE_NAMES[codes].tolist()
    return [json_norm(decode_norm(s, n)) for s, n in zip(states, norms.tolist())]


def runs_json(series_by_run: dict[str, dict[str, TagSeries]]) -> str:
    return encode(
        {
            run: {
                tag: {
                    "steps": [s.steps[0], s.last_step],
                    "count": len(s.steps),
                    "graph_versions": len(s.versions),
                    "description": s.description,
                }
                for tag, s in sorted(tags.items())
            }
            for run, tags in sorted(series_by_run.items())
        }
    )


@dataclasses.dataclass(frozen=True)
class _VersionParts:
    """The step-independent JSON of one graph version."""

    op_fields: str
    variable_fields: str
    cut_points: str
    variable_names: np.ndarray  # object array, to select names by state with a mask


def _version_parts(graph: gradflow_pb2.Graph) -> _VersionParts:
    ops = graph.ops
    op_columns = {
        "name": [op.name for op in ops],
        "type": [op.type for op in ops],
        "scope": [op.name.rpartition("/")[0] for op in ops],
        "inputs": [list(op.inputs) for op in ops],
        "variable_inputs": [list(op.variable_inputs) for op in ops],
        "parent": [op.parent for op in ops],
        "shape": [list(op.output_shapes) for op in ops],
        "dtype": [list(op.output_dtypes) for op in ops],
        "source": [op.source for op in ops],
        "measured": [op.measured for op in ops],
        "cause": [V.CAUSES[op.cause] for op in ops],
        "cause_detail": [op.cause_detail for op in ops],
        "starved": [list(op.starved_variables) for op in ops],
    }
    cut_indices = [i for i, op in enumerate(ops) if op.cause]
    cuts = [
        {"op": i, **cut.to_dict(), "detail": cut.detail}
        for i, cut in zip(cut_indices, cut_points(graph))
    ]
    names = [v.name for v in graph.variables]
    return _VersionParts(
        op_fields=_fields({k: encode(v) for k, v in op_columns.items()}),
        variable_fields=_fields(
            {"name": encode(names), "shape": encode([v.shape for v in graph.variables])}
        ),
        cut_points=encode(cuts),
        variable_names=np.array(names, dtype=object),
    )


def _lookup_step(series: TagSeries, step: int | None) -> tuple[int, VersionValues, int]:
    """(step, its version's values, its row); 404 for a step that was not logged."""
    if step is None:
        step = series.last_step
    if step not in series.where:
        raise not_found(f"step {step} is not logged (steps {series.steps[0]} to {series.last_step})")
    graph_id, row = series.where[step]
    return step, series.versions[graph_id], row


def graph_json(run: str, tag: str, cached: CachedSeries, step: int | None) -> str:
    series = _readable(cached)
    step, values, row = _lookup_step(series, step)
    graph = values.graph
    parts: _VersionParts = cached.derived(("graph", graph.graph_id), lambda: _version_parts(graph))
    numbers = cached.derived("version_numbers", lambda: {gid: i + 1 for i, gid in enumerate(series.versions)})
    op_codes, var_codes = values.op_states[row], values.variable_states[row]
    loss = float(values.losses[row])
    head = {
        "run": run,
        "tag": tag,
        "step": step,
        "steps": [series.steps[0], series.last_step],
        "count": len(series.steps),
        "graph_id": graph.graph_id,
        "graph_version": numbers[graph.graph_id],
        "graph_versions": len(series.versions),
        "loss": None if np.isnan(loss) else json_norm(loss),
        "fallback_reason": graph.fallback_reason or None,
    }
    ops = "{%s,%s}" % (
        parts.op_fields,
        _fields(
            {
                "state": encode(_STATE_NAMES[op_codes].tolist()),
                "norm": encode(_norms(op_codes, values.op_norms[row])),
            }
        ),
    )
    variables = "{%s,%s}" % (
        parts.variable_fields,
        _fields(
            {
                "state": encode(_STATE_NAMES[var_codes].tolist()),
                "norm": encode(_norms(var_codes, values.variable_norms[row])),
            }
        ),
    )

    def names_in(state: str) -> str:
        return encode(parts.variable_names[var_codes == V.STATE_CODE[state]].tolist())

    return "{%s}" % _fields(
        {
            **{k: encode(v) for k, v in head.items()},
            "ops": ops,
            "variables": variables,
            "cut_points": parts.cut_points,
            "starved_variables": names_in(V.NONE),
            "zero_variables": names_in(V.ZERO),
            "nonfinite_variables": names_in(V.NONFINITE),
        }
    )


def history_json(run: str, tag: str, cached: CachedSeries, kind: str, name: str) -> str:
    """Every step whose graph version has the op (kind "op") or variable ("variable") `name`."""
    series = _readable(cached)
    live = cached.derived("live_rows", lambda: _live_rows(series))
    steps, codes, norms = [], [], []
    for gid, values in series.versions.items():
        index = (values.op_index() if kind == "op" else values.variable_index()).get(name)
        if index is None:
            continue
        rows = live[gid]
        states = values.op_states if kind == "op" else values.variable_states
        all_norms = values.op_norms if kind == "op" else values.variable_norms
        steps.append(values.steps[rows])
        codes.append(states[rows, index])
        norms.append(all_norms[rows, index])
    if not steps:
        raise not_found(f"no {kind} named {name!r} in run {run!r}, tag {tag!r}")
    order = np.argsort(np.concatenate(steps), kind="stable")
    step_array = np.concatenate(steps)[order]
    code_array = np.concatenate(codes)[order]
    return "{%s}" % _fields(
        {
            "run": encode(run),
            "tag": encode(tag),
            kind: encode(name),
            "steps": encode(step_array.tolist()),
            "states": encode(_STATE_NAMES[code_array].tolist()),
            "norms": encode(_norms(code_array, np.concatenate(norms)[order])),
        }
    )


def diagnosis_view(cached: CachedSeries, step: int | None) -> str:
    """`tb-gradflow report --json` for one run and tag, at `step`: the CLI's own function."""
    series = _readable(cached)
    step, _, _ = _lookup_step(series, step)
    return encode({"step": step, **diagnosis_json(series, step)})


def _readable(cached: CachedSeries) -> TagSeries:
    if cached.series is None:
        raise not_found("no readable steps for this run and tag")
    return cached.series
