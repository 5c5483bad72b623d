"""Each layer's gradient norm at every logged step: the layers x steps picture of issue 17.

Which layer a variable belongs to and a layer's norm at a step (the L2 norm over its variables'
norms) follow tb_gradflow/layer_norms.py, the one rule that the scalars written with
`scalars=True` share. Rows are in data-flow order, inputs first: a variable's depth is that of
the first op on its data path that depends on the model's inputs, so that variable reads (which
have no inputs) do not pull the last block to the front.

One pure function of the reader's column arrays serves the plugin's `layers` route, the CLI
(`report --json` and `report --layers`) and the HTML export, so all three show the same numbers.
"""
from __future__ import annotations

import collections
import dataclasses
import math
from typing import Any

import numpy as np

from tb_gradflow import vocabulary as V
from tb_gradflow.json_values import rounded_norms
from tb_gradflow.layer_norms import flowing_range, grouping, layer_of, reduce_layers
from tb_gradflow.proto import gradflow_pb2
from tb_gradflow.reading.reader import TagSeries, VersionValues

_FLOWING = V.STATE_CODE[V.FLOWING]
_ZERO = V.STATE_CODE[V.ZERO]
_NONE = V.STATE_CODE[V.NONE]
_NONFINITE = V.STATE_CODE[V.NONFINITE]
# A layer absent from the graph version of a step (a retrace that dropped it).
ABSENT = 255


@dataclasses.dataclass(frozen=True)
class LayerSeries:
    """Layers (rows, inputs first) by logged steps (columns).

    `states` holds a state code per cell (vocabulary.STATE_CODE, or ABSENT) and `norms` the
    layer's norm (NaN where there is none). `range` is the smallest and largest flowing norm over
    every logged step, also when only some steps are kept as columns: the colour scale.
    """

    layers: list[str]
    variables: list[list[str]]
    steps: list[int]
    count: int
    states: np.ndarray  # uint8 [layers, columns]
    norms: np.ndarray  # float64 [layers, columns]
    range: list[float] | None


def data_depths(graph: gradflow_pb2.Graph) -> np.ndarray:
    """Per op, its distance from the model's inputs; -1 for an op that depends on variables only.

    An op without inputs is an input (depth 0) unless it reads a variable (-1).
    """
    n = len(graph.ops)
    depth = np.full(n, -1, np.int64)
    pending = np.array([len(op.inputs) for op in graph.ops], np.int64)
    consumers: list[list[int]] = [[] for _ in range(n)]
    for i, op in enumerate(graph.ops):
        for j in op.inputs:
            consumers[j].append(i)
    ready = collections.deque(i for i in range(n) if pending[i] == 0)
    for i in ready:
        depth[i] = -1 if graph.ops[i].variable_inputs else 0
    while ready:
        i = ready.popleft()
        for k in consumers[i]:
            if depth[i] >= 0:
                depth[k] = max(depth[k], depth[i] + 1)
            pending[k] -= 1
            if pending[k] == 0:
                ready.append(k)
    return depth


def variable_depths(graph: gradflow_pb2.Graph) -> list[float]:
    """Per variable, how deep in the network it is used (inf when never on a data path).

    That is the smallest data depth reached from the ops that read it, following their outputs
    until an op that depends on the inputs: one pass over the ops from the loss back.
    """
    depth = data_depths(graph)
    order = np.argsort(depth, kind="stable")  # not a topological order for depth -1 ops: below
    consumers: list[list[int]] = [[] for _ in graph.ops]
    for i, op in enumerate(graph.ops):
        for j in op.inputs:
            consumers[j].append(i)
    # reached[i]: the smallest data depth on a path from op i down its outputs (itself included)
    levels = depth.tolist()
    reached = [float(d) if d >= 0 else math.inf for d in levels]
    for i in _consumers_first(graph, consumers, order):
        if levels[i] < 0:
            for k in consumers[i]:
                if reached[k] < reached[i]:
                    reached[i] = reached[k]
    out = [math.inf] * len(graph.variables)
    for i, op in enumerate(graph.ops):
        for v in op.variable_inputs:
            out[v] = min(out[v], reached[i])
    return out


def _consumers_first(
    graph: gradflow_pb2.Graph, consumers: list[list[int]], order: np.ndarray
) -> list[int]:
    """Ops in an order where every op comes after the ops that consume its output.

    That is a reverse topological order; ops on a cycle (never in a real graph) come last.
    """
    pending = [len(c) for c in consumers]
    ready = [i for i in range(len(graph.ops)) if pending[i] == 0]
    out: list[int] = []
    while ready:
        i = ready.pop()
        out.append(i)
        for j in graph.ops[i].inputs:
            pending[j] -= 1
            if pending[j] == 0:
                ready.append(j)
    if len(out) < len(graph.ops):
        seen = set(out)
        out += [int(i) for i in order[::-1] if int(i) not in seen]
    return out


def layer_order(graph: gradflow_pb2.Graph) -> list[tuple[str, list[str]]]:
    """(layer, its variable names) in data-flow order: by depth, then by first variable index."""
    depths = variable_depths(graph)
    rows: dict[str, tuple[float, int, list[str]]] = {}
    for i, v in enumerate(graph.variables):
        layer = layer_of(v.name)
        depth, first, names = rows.get(layer, (math.inf, i, []))
        rows[layer] = (min(depth, depths[i]), min(first, i), names + [v.name])
    ordered = sorted(rows.items(), key=lambda kv: (kv[1][0], kv[1][1]))
    return [(layer, names) for layer, (_, _, names) in ordered]


# Steps whose layer norms are summed at once for the colour scale: a few MB, so that every pass
# over them stays in the cache (over 10,000 steps at once, fresh pages cost a third of the time).
_RANGE_CHUNK = 512


@dataclasses.dataclass(frozen=True)
class _VersionGrouping:
    """Where one graph version's variables go: the series' layers present in it (ascending), the
    variables' order that puts each layer's together, and the first of each layer in that order."""

    present: np.ndarray
    perm: np.ndarray
    starts: np.ndarray


@dataclasses.dataclass(frozen=True)
class LayerRows:
    """What every width of one series' layers x steps picture shares, made once per read: the
    layers in order with their variables, where each version's variables go, and the colour
    scale over every logged step (LayerSeries.range). Walking a 5,000-op graph's data flow and
    summing 10,000 steps took most of a new width's time."""

    order: list[tuple[str, list[str]]]
    groupings: dict[str, _VersionGrouping]  # graph id -> its grouping (versions with variables)
    range: list[float] | None


def layer_rows(series: TagSeries) -> LayerRows:
    """The rows of `series`' picture: in the last graph version's data flow, then layers that
    only earlier versions have; and its colour scale."""
    order: list[tuple[str, list[str]]] = []
    seen: set[str] = set()
    for values in reversed(list(series.versions.values())):
        for layer, names in layer_order(values.graph):
            if layer not in seen:
                seen.add(layer)
                order.append((layer, names))
    index = {layer: i for i, (layer, _) in enumerate(order)}
    groupings: dict[str, _VersionGrouping] = {}
    bounds: list[tuple[float, float]] = []
    for gid, (live, _) in _rows_by_version(series, series.steps).items():
        values = series.versions[gid]
        if not live or len(values.graph.variables) == 0:
            continue
        g = groupings[gid] = _version_grouping(values.graph, index)
        for start in range(0, len(live), _RANGE_CHUNK):
            scale = flowing_range(*_by_layer(values, live[start:start + _RANGE_CHUNK], g), g.starts)
            if scale is not None:
                bounds.append(scale)
    scale_range = [min(b[0] for b in bounds), max(b[1] for b in bounds)] if bounds else None
    return LayerRows(order, groupings, scale_range)


def _version_grouping(graph: gradflow_pb2.Graph, layers: dict[str, int]) -> _VersionGrouping:
    of = np.array([layers[layer_of(v.name)] for v in graph.variables], np.int64)
    present, column = np.unique(of, return_inverse=True)
    perm, starts = grouping(column)
    return _VersionGrouping(present, perm, starts)


def _by_layer(values: VersionValues, rows: list[int], g: _VersionGrouping) -> tuple[np.ndarray, np.ndarray]:
    """The variables' (states, norms) at `rows`, transposed (a variable a row, each layer's
    consecutive), so that one `reduceat` sums each layer."""
    at = np.array(rows, np.int64)
    return values.variable_states[at].T[g.perm], values.variable_norms[at].T[g.perm]


def layer_series(series: TagSeries, columns: int | None = None, rows: LayerRows | None = None) -> LayerSeries:
    """Every layer's norm at every logged step, or at `columns` of them when there are more.

    The columns kept are evenly spaced, the first and the last step among them; only they are
    reduced. `rows`: `layer_rows(series)`, when the caller keeps it between widths.
    """
    rows = layer_rows(series) if rows is None else rows
    all_steps = series.steps
    steps = [all_steps[i] for i in _sample(len(all_steps), columns)]
    states = np.full((len(rows.order), len(steps)), ABSENT, np.uint8)
    norms = np.full((len(rows.order), len(steps)), np.nan)
    for gid, (kept, positions) in _rows_by_version(series, steps).items():
        g = rows.groupings.get(gid)
        if not kept or g is None:
            continue
        v_states, v_norms = reduce_layers(*_by_layer(series.versions[gid], kept, g), g.starts)
        dst = np.array(positions, np.int64)
        states[np.ix_(g.present, dst)] = v_states
        norms[np.ix_(g.present, dst)] = v_norms
    return LayerSeries(
        layers=[layer for layer, _ in rows.order],
        variables=[names for _, names in rows.order],
        steps=steps,
        count=len(all_steps),
        states=states,
        norms=norms,
        range=rows.range,
    )


def _rows_by_version(series: TagSeries, steps: list[int]) -> dict[str, tuple[list[int], list[int]]]:
    """Per graph id, the rows `steps` are at in its values and their positions in `steps` (the
    row `where` points at: a step logged twice keeps one)."""
    out: dict[str, tuple[list[int], list[int]]] = {gid: ([], []) for gid in series.versions}
    for position, step in enumerate(steps):
        gid, row = series.where[step]
        out[gid][0].append(row)
        out[gid][1].append(position)
    return out


def _sample(n: int, columns: int | None) -> list[int]:
    """Indices of `columns` evenly spaced items of n, first and last included (all if fewer)."""
    if columns is None or n <= columns:
        return list(range(n))
    if columns == 1:
        return [n - 1]
    # floor(x + 0.5), not round(): the exported page samples the same way (heatmap_model.ts)
    return sorted({math.floor(i * (n - 1) / (columns - 1) + 0.5) for i in range(columns)})


def _json_norms(states: np.ndarray, norms: np.ndarray) -> list[list[float | str | None]]:
    """Norms as JSON values, a list per layer.

    Null for none or absent, "inf"/"nan" spelled, others rounded as the routes round every norm
    (json_values.rounded_norms); at once for all cells (30,000 of them for ResNet50 at 300 columns).
    """
    values = rounded_norms(norms).astype(object)
    values[np.isinf(norms)] = "inf"
    values[np.isnan(norms)] = "nan"
    values[(states == _NONE) | (states == ABSENT)] = None
    return values.tolist()


_STATE_JSON = np.array([*V.STATES, *[None] * (256 - len(V.STATES))], dtype=object)


def layer_series_json(s: LayerSeries) -> dict[str, Any]:
    """The JSON of docs/routes.md `layers`, less run and tag.

    Per layer its name, variables, and per column its state (null where the layer is absent from
    the step's graph) and norm (null for none).
    """
    states = _STATE_JSON[s.states].tolist()
    norms = _json_norms(s.states, s.norms)
    return {
        "steps": s.steps,
        "count": s.count,
        "range": None if s.range is None else rounded_norms(np.asarray(s.range, np.float64)).tolist(),
        "layers": [
            {"name": name, "variables": names, "states": row_states, "norms": row_norms}
            for name, names, row_states, row_norms in zip(
                s.layers, s.variables, states, norms, strict=True
            )
        ],
    }


_BARS = "▁▂▃▄▅▆▇█"
# What a sparkline shows for a cell with no colour: no gradient, all-zero, NaN/Inf, absent.
SPARK_MARKS = {_NONE: "·", _ZERO: "0", _NONFINITE: "!", ABSENT: " "}
SPARK_LEGEND = "· no gradient, 0 zero, ! NaN/Inf"


def sparkline(states: np.ndarray, norms: np.ndarray, scale: list[float] | None) -> str:
    """One layer's row as text: a bar per column on the run's log scale, marks for the rest."""
    lo, hi = (math.log10(scale[0]), math.log10(scale[1])) if scale else (0.0, 0.0)
    out = []
    for state, norm in zip(states.tolist(), norms.tolist(), strict=True):
        if state != _FLOWING or not math.isfinite(norm) or norm <= 0:
            out.append(SPARK_MARKS.get(state, "!"))
            continue
        f = 1.0 if hi <= lo else (math.log10(norm) - lo) / (hi - lo)
        out.append(_BARS[min(len(_BARS) - 1, max(0, int(f * len(_BARS))))])
    return "".join(out)
