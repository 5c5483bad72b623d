"""The JSON bodies of the routes in docs/routes.md, built from a cached series.

A graph version's structure is the same at every step, so its JSON is encoded once per read of
the series (`CachedSeries.derived`) and only the per-step columns are encoded per request. Bodies
are returned as strings; `http_util.Respond` then only compresses them.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from tb_gradflow import route_json as R
from tb_gradflow import vocabulary as V
from tb_gradflow.json_values import NORM_DIGITS
from tb_gradflow.plugin import groups
from tb_gradflow.plugin.params import not_found
from tb_gradflow.proto import gradflow_pb2
from tb_gradflow.reading.cache import CachedSeries
from tb_gradflow.reading.fast_loader_names import why_unreadable
from tb_gradflow.reading.layer_series import layer_rows, layer_series, layer_series_json
from tb_gradflow.reading.reader import TagSeries, VersionValues
from tb_gradflow.route_json import STATE_NAMES as _STATE_NAMES
from tb_gradflow.route_json import encode, presence_json
from tb_gradflow.route_json import norms_json as _norms
from tb_gradflow.route_json import splice as _fields
from tb_gradflow.timeline import live_rows as _live_rows

__all__ = ["NORM_DIGITS", "encode", "presence_json", "runs_json", "graph_json", "history_json",
           "diagnosis_view", "graph_groups_json"]


_sampled = R.sampled


def runs_json(series_by_run: dict[str, dict[str, TagSeries]]) -> str:
    """The `runs` route's body."""
    return encode(R.runs_body(series_by_run))


def notices_json(series_by_run: dict[str, dict[str, TagSeries]], unreadable: list[tuple[str, str]],
                 fast_loader: bool) -> str:
    """What the tab must tell the user about data it cannot show in full: series served as a
    sample, and listed runs whose names the fast loader cannot read (docs/routes.md)."""
    notices = [
        {"kind": "sampled", "run": run, "tag": tag, "text": f"{run} / {tag}: {s.sampled}"}
        for run, tags in sorted(series_by_run.items()) for tag, s in sorted(tags.items()) if s.sampled
    ]
    for run, tag in sorted(unreadable):
        why = why_unreadable(run, tag) if fast_loader else None
        if why:
            text = f"run {run!r} is missing: {why}"
            notices.append({"kind": "unreadable_name", "run": run, "tag": tag, "text": text})
    return encode({"notices": notices})


@dataclasses.dataclass(frozen=True)
class _VersionParts:
    """The step-independent JSON of one graph version."""

    op_fields: str
    variable_fields: str
    cut_points: str
    variable_names: np.ndarray  # object array, to select names by state with a mask


def _version_parts(graph: gradflow_pb2.Graph) -> _VersionParts:
    all_ops = list(range(len(graph.ops)))
    return _VersionParts(
        op_fields=_fields({k: encode(v) for k, v in R.op_columns(graph, all_ops).items()}),
        variable_fields=_fields({k: encode(v) for k, v in R.variable_columns(graph).items()}),
        cut_points=encode(R.cut_points_json(graph)),
        variable_names=np.array([v.name for v in graph.variables], dtype=object),
    )


def _lookup_step(series: TagSeries, step: int | None) -> tuple[int, VersionValues, int]:
    """(step, its version's values, its row); 404 for a step that was not logged."""
    if step is None:
        step = series.last_step
    if step not in series.where:
        if series.sampled:
            raise not_found(f"step {step} is not among the steps served: {series.sampled}")
        raise not_found(f"step {step} is not logged (steps {series.steps[0]} to {series.last_step})")
    graph_id, row = series.where[step]
    return step, series.versions[graph_id], row


def graph_json(run: str, tag: str, cached: CachedSeries, step: int | None) -> str:
    """The `graph` route's body at `step` (default the last): the version's structure, encoded
    once, and this step's columns."""
    series = _readable(cached)
    step, values, row = _lookup_step(series, step)
    graph = values.graph
    parts: _VersionParts = cached.derived(("graph", graph.graph_id), lambda: _version_parts(graph))
    numbers = cached.derived("version_numbers", lambda: R.version_numbers(series))
    op_codes, var_codes = values.op_states[row], values.variable_states[row]
    head = R.graph_head(run, tag, series, graph, numbers, step, R.loss_json(values.losses[row]))
    ops = "{{{},{}}}".format(
        parts.op_fields,
        _fields(
            {
                "state": encode(_STATE_NAMES[op_codes].tolist()),
                "norm": encode(_norms(op_codes, values.op_norms[row])),
                "presence": encode(presence_json(values.presence_codes("op", row))),
                **{k: encode(v) for k, v in R.unit_and_loop_columns(values, row, range(len(graph.ops))).items()},
            }
        ),
    )
    variables = "{{{},{}}}".format(
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

    return "{" + _fields(
        {
            **{k: encode(v) for k, v in head.items()},
            "ops": ops,
            "variables": variables,
            "cut_points": parts.cut_points,
            "starved_variables": names_in(V.NONE),
            "zero_variables": names_in(V.ZERO),
            "nonfinite_variables": names_in(V.NONFINITE),
        }
    ) + "}"


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
    return "{" + _fields(
        {
            "run": encode(run),
            "tag": encode(tag),
            kind: encode(name),
            "steps": encode(step_array.tolist()),
            "states": encode(_STATE_NAMES[code_array].tolist()),
            "norms": encode(_norms(code_array, np.concatenate(norms)[order])),
            "presences": encode(presence_json(np.concatenate(presences)[order])),
            **{k: encode(v) for k, v in _sampled(series).items()},
        }
    ) + "}"


def diagnosis_view(cached: CachedSeries, step: int | None) -> str:
    """`tb-gradflow report --json` for one run and tag, at `step`: the CLI's own function,
    computed once per step and read of the series (seconds on a 230,000-op graph)."""
    series = _readable(cached)
    step, _, _ = _lookup_step(series, step)
    return cached.derived(("diagnosis", step), lambda: encode(R.diagnosis_body(series, step)))


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
    numbers = cached.derived("version_numbers", lambda: R.version_numbers(series))
    body = {
        "run": run, "tag": tag, "step": step, "steps": [series.steps[0], series.last_step],
        "count": len(series.steps), "graph_id": graph.graph_id, "graph_version": numbers[graph.graph_id],
        "graph_versions": len(series.versions), "group": group, "ops_total": len(graph.ops),
        "ops_in_group": len(layout.subtree), **_sampled(series),
        "groups": {
            "name": layout.group_names,
            "ops": np.bincount(layout.child_of_op, minlength=len(layout.group_names))[
                : len(layout.group_names)
            ].tolist(),
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
            **R.unit_and_loop_columns(values, row, layout.direct_ops),
        },
    }
    return encode(body)


def layers_view(run: str, tag: str, cached: CachedSeries, columns: int) -> str:
    """Each layer's gradient norm at (up to `columns` of) the logged steps: the layers view's
    heatmap, the numbers `tb-gradflow report --json` prints under "layers"."""
    series = _readable(cached)
    rows = cached.derived("layer_rows", lambda: layer_rows(series))
    body = cached.derived(("layers", columns), lambda: encode(layer_series_json(layer_series(series, columns, rows))))
    return "{{{},{}".format(_fields({"run": encode(run), "tag": encode(tag)}), body[1:])


def _readable(cached: CachedSeries) -> TagSeries:
    if cached.series is None:
        raise not_found("no readable steps for this run and tag")
    return cached.series
