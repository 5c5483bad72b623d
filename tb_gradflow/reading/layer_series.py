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
from tb_gradflow.layer_norms import grouping, layer_of, reduce_layers
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


def _version_layers(
    values: VersionValues, rows: np.ndarray, layers: dict[str, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """States and norms of the layers present in one version at its `rows`.

    Works on the transposed columns (a variable a row), so that each layer's variables are
    consecutive rows that one `reduceat` sums. Returns (layer indices, states [present, rows],
    norms [present, rows]).
    """
    of = np.array([layers[layer_of(v.name)] for v in values.graph.variables], np.int64)
    present, column = np.unique(of, return_inverse=True)
    perm, starts = grouping(column)
    every = len(rows) == len(values.steps)  # every row (one version, no step logged twice)
    states = values.variable_states[:, perm].T if every else values.variable_states[rows][:, perm].T
    norms = values.variable_norms[:, perm].T if every else values.variable_norms[rows][:, perm].T
    states, norms = np.ascontiguousarray(states), np.ascontiguousarray(norms)  # [vars, r] by layer
    out_states, out_norms = reduce_layers(states, norms, starts)
    return present, out_states, out_norms


def layer_series(series: TagSeries, columns: int | None = None) -> LayerSeries:
    """Every layer's norm at every logged step, or at `columns` of them when there are more.

    The columns kept are evenly spaced, the first and the last step among them. Rows follow the
    last graph version's data flow; layers that only earlier versions have come after.
    """
    versions = list(series.versions.values())
    order: list[tuple[str, list[str]]] = []
    seen: set[str] = set()
    for values in reversed(versions):
        for layer, names in layer_order(values.graph):
            if layer not in seen:
                seen.add(layer)
                order.append((layer, names))
    index = {layer: i for i, (layer, _) in enumerate(order)}
    all_steps = series.steps
    kept = _sample(len(all_steps), columns)
    steps = [all_steps[i] for i in kept]
    column_of = {s: c for c, s in enumerate(steps)}
    states = np.full((len(order), len(steps)), ABSENT, np.uint8)
    norms = np.full((len(order), len(steps)), np.nan)
    lo, hi = math.inf, -math.inf
    live_rows: dict[str, list[int]] = {gid: [] for gid in series.versions}
    for step in all_steps:  # the rows `where` points at (a step logged twice keeps one)
        gid, row = series.where[step]
        live_rows[gid].append(row)
    for gid, values in series.versions.items():
        live = np.array(live_rows[gid], np.int64)
        if len(live) == 0 or len(values.graph.variables) == 0:
            continue
        present, v_states, v_norms = _version_layers(values, live, index)
        ok = (v_states == _FLOWING) & np.isfinite(v_norms)
        if ok.any():
            lo, hi = min(lo, float(v_norms[ok].min())), max(hi, float(v_norms[ok].max()))
        live_steps = values.steps[live].tolist()
        pick = [(k, column_of[s]) for k, s in enumerate(live_steps) if s in column_of]
        if pick:
            src, dst = np.array([p[0] for p in pick]), np.array([p[1] for p in pick])
            states[np.ix_(present, dst)] = v_states[:, src]
            norms[np.ix_(present, dst)] = v_norms[:, src]
    return LayerSeries(
        layers=[layer for layer, _ in order],
        variables=[names for _, names in order],
        steps=steps,
        count=len(all_steps),
        states=states,
        norms=norms,
        range=None if lo == math.inf else [lo, hi],
    )


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
