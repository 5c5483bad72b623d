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
from tb_gradflow.diagnosis import diagnosis_json
from tb_gradflow.format import presence as P
from tb_gradflow.format.records import cut_points, decode_norm
from tb_gradflow.plugin import groups
from tb_gradflow.plugin.params import not_found
from tb_gradflow.proto import gradflow_pb2
from tb_gradflow.reading.cache import CachedSeries
from tb_gradflow.reading.reader import TagSeries, VersionValues
from tb_gradflow.json_values import json_float as json_norm
from tb_gradflow.timeline import live_rows as _live_rows  # the one spelling of NaN/Inf in our JSON

_STATE_NAMES = np.array(V.STATES, dtype=object)


def encode(value: Any) -> str:
    """Compact JSON; NaN and Inf must have been spelled as strings before (allow_nan=False)."""
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


def _fields(pairs: dict[str, str]) -> str:
    """`"key":value,...` from already-encoded values, to splice into an object."""
    return ",".join(f"{encode(k)}:{v}" for k, v in pairs.items())


# Significant digits of norms in JSON: float32 holds about 7, a stored op norm about 2 (4.4 %).
NORM_DIGITS = 6


def _rounded(norms: np.ndarray) -> np.ndarray:
    """Finite nonzero norms rounded to NORM_DIGITS significant digits, as float64 values whose
    shortest repr is that short: a third of the JSON that float32-to-float64 repr gives."""
    x = norms.astype(np.float64)
    ok = np.isfinite(x) & (x != 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = (NORM_DIGITS - 1) - np.floor(np.log10(np.abs(np.where(ok, x, 1.0)))).astype(np.int64)
    exact = ok & (shift >= 0) & (shift <= 22)  # powers of ten exact in float64: one rounding
    out = x.copy()
    scale = np.power(10.0, shift[exact])
    out[exact] = np.round(x[exact] * scale) / scale
    for i in np.flatnonzero(ok & ~exact).tolist():  # norms above 1e5 or below 1e-17: rare
        out[i] = float(f"{x[i]:.{NORM_DIGITS}g}")
    return out


def _norms(codes: np.ndarray, norms: np.ndarray) -> list[Any]:
    """JSON norms: null for no norm (NaN unless the state is nonfinite), "inf"/"nan" spelled."""
    values = _rounded(norms).astype(object)
    finite = np.isfinite(norms)
    nonfinite_state = codes == V.STATE_CODE[V.NONFINITE]
    values[~finite & ~nonfinite_state & np.isnan(norms)] = None
    for i in np.flatnonzero(~finite & (nonfinite_state | ~np.isnan(norms))).tolist():
        values[i] = json_norm(decode_norm(V.STATES[codes[i]], float(norms[i])))
    return values.tolist()


def presence_json(codes: np.ndarray) -> list[float | None]:
    """Presence codes (format/presence.py) for JSON: null where unknown, else the fraction
    rounded to 4 decimals (it is within 1/254 of the measured one anyway)."""
    values = P.from_codes(codes).astype(np.float64)
    return [None if np.isnan(p) else round(p, 4) for p in values.tolist()]


def runs_json(series_by_run: dict[str, dict[str, TagSeries]]) -> str:
    return encode(
        {
            run: {
                tag: {
                    "steps": [s.steps[0], s.last_step],
                    "count": len(s.steps),
                    "graph_versions": len(s.versions),
                    "description": s.description,
                    "ops": len(s.versions[s.where[s.last_step][0]].graph.ops),
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
    op_columns = groups.op_columns(graph, list(range(len(ops))))
    cut_indices = [i for i, op in enumerate(ops) if op.cause]
    cuts = [
        {"op": i, **cut.to_dict(), "detail": cut.detail}
        for i, cut in zip(cut_indices, cut_points(graph))
    ]
    names = [v.name for v in graph.variables]
    return _VersionParts(
        op_fields=_fields({k: encode(v) for k, v in op_columns.items()}),
        variable_fields=_fields(
            {"name": encode(names), "shape": encode([v.shape for v in graph.variables]),
             "sparse_gradient": encode([v.sparse_gradient for v in graph.variables])}
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
                "presence": encode(presence_json(values.presence_codes("op", row))),
            }
        ),
    )
    variables = "{%s,%s}" % (
        parts.variable_fields,
        _fields(
            {
                "state": encode(_STATE_NAMES[var_codes].tolist()),
                "norm": encode(_norms(var_codes, values.variable_norms[row])),
                "presence": encode(presence_json(values.presence_codes("variable", row))),
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
    steps, codes, norms, presences = [], [], [], []
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
        presences.append(values.presence_codes(kind, rows, index))
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
            "presences": encode(presence_json(np.concatenate(presences)[order])),
        }
    )


def diagnosis_view(cached: CachedSeries, step: int | None) -> str:
    """`tb-gradflow report --json` for one run and tag, at `step`: the CLI's own function,
    computed once per step and read of the series (seconds on a 230,000-op graph)."""
    series = _readable(cached)
    step, _, _ = _lookup_step(series, step)
    return cached.derived(("diagnosis", step), lambda: encode({"step": step, **diagnosis_json(series, step)}))


def graph_groups_json(run: str, tag: str, cached: CachedSeries, step: int | None, group: str) -> str:
    """One name-scope group of the graph at `step`: its child groups (counts), its own ops and
    the edges between children (docs/routes.md, `graph_groups`)."""
    series = _readable(cached)
    step, values, row = _lookup_step(series, step)
    graph = values.graph
    index = cached.derived(("group_index", graph.graph_id), lambda: groups.GroupIndex.of(graph))
    layout = cached.derived(("group", graph.graph_id, group), lambda: groups.group_layout(index, graph, group))
    op_codes = values.op_states[row]
    direct = np.array(layout.direct_ops, np.int64)
    numbers = cached.derived("version_numbers", lambda: {gid: i + 1 for i, gid in enumerate(series.versions)})
    body = {
        "run": run, "tag": tag, "step": step, "steps": [series.steps[0], series.last_step],
        "count": len(series.steps), "graph_id": graph.graph_id, "graph_version": numbers[graph.graph_id],
        "graph_versions": len(series.versions), "group": group, "ops_total": len(graph.ops),
        "ops_in_group": len(layout.subtree),
        "groups": {
            "name": layout.group_names,
            "ops": np.bincount(layout.child_of_op, minlength=len(layout.group_names))[: len(layout.group_names)].tolist(),
            "states": groups.group_state_counts(layout, op_codes),
            "cut_points": layout.cut_counts,
            "inputs": layout.group_inputs,
        },
        "ops": {
            "index": layout.direct_ops,
            **layout.op_fields,
            "input_children": layout.op_input_children,
            "state": _STATE_NAMES[op_codes[direct]].tolist(),
            "norm": _norms(op_codes[direct], values.op_norms[row][direct]),
            "presence": presence_json(values.presence_codes("op", row, direct)),
        },
    }
    return encode(body)


def _readable(cached: CachedSeries) -> TagSeries:
    if cached.series is None:
        raise not_found("no readable steps for this run and tag")
    return cached.series
