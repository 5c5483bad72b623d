"""One logged step as Google's Model Explorer reads it: a graph JSON and per-node data overlays.

Model Explorer (`pip install ai-edge-model-explorer`) draws a `GraphCollection` JSON file
(`label`, `graphs[]`, each graph's `nodes[]` with `id`, `label`, `namespace`, `incomingEdges`)
and colours its nodes from node-data files (`GraphNodeData`: `results` keyed by node id, with a
colour `gradient` or `thresholds`, or a colour per result). Its own GraphDef adapter numbers
nodes 0, 1, 2..., which data keyed by our op names would not match, so the graph is written
here too: node ids are our op names, namespaces their name scopes, labels their op types.
Variables are nodes as well (`variable:NAME`), in their layer's namespace, so that a starved
variable shows beside the cut that starves it.

Overlays written (file name: what it colours):
  - `gradient_state.json`: the op's state as a string category (`cut: numpy_function`,
    `flowing`, `zero`, `none`, `nonfinite`), each with the tab's colour;
  - `log_norm.json`: log10 of the gradient's L2 norm, on a colour gradient (ops whose norm is
    unknown or zero have no entry);
  - `presence.json`: the fraction of the gradient's elements that are nonzero and finite, on
    fixed thresholds (under 10 % red, as the diagnosis calls it out);
  - `dead_units.json`: the fraction of a layer's units that pass no gradient, when the logged
    ops carry `dead_units` and `units` (written only then).
Names come from a logdir and are data here, never markup (Model Explorer shows them as text).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from typing import Any

from tb_gradflow import vocabulary as V
from tb_gradflow.proto import gradflow_pb2
from tb_gradflow.reading.reader import TagSeries
from tb_gradflow.report import OpRecord, Report, VariableRecord

GRAPH_FILE = "graph.json"
STATE_FILE = "gradient_state.json"
LOG_NORM_FILE = "log_norm.json"
PRESENCE_FILE = "presence.json"
DEAD_UNITS_FILE = "dead_units.json"
VARIABLE_PREFIX = "variable:"

# Background and text colour of each state, as the Gradient Flow tab draws them
# (frontend/src/styles.ts).
STATE_COLOURS: dict[str, tuple[str, str]] = {
    V.FLOWING: ("#d2e3fc", "#202124"),
    V.ZERO: ("#f2b600", "#2b2100"),
    V.NONE: ("#e8eaed", "#5f6368"),
    V.NONFINITE: ("#7b1fa2", "#ffffff"),
}
CUT_COLOURS = ("#d50000", "#ffffff")
# log10(norm): pale for the smallest norm of the step, deep blue for the largest.
NORM_GRADIENT = [
    {"stop": 0, "bgColor": "#f1f3f4", "textColor": "#202124"},
    {"stop": 1, "bgColor": "#1565c0", "textColor": "#ffffff"},
]
# Presence is a fraction, so its colours are fixed: each threshold is an upper bound.
PRESENCE_THRESHOLDS = [
    {"value": V.PRESENCE_GATE_THRESHOLD, "bgColor": "#d50000", "textColor": "#ffffff"},
    {"value": 0.5, "bgColor": "#f2b600", "textColor": "#2b2100"},
    {"value": 0.999, "bgColor": "#fde293", "textColor": "#202124"},
    {"value": 1.0, "bgColor": "#ceead6", "textColor": "#202124"},
]
DEAD_UNITS_GRADIENT = [
    {"stop": 0, "bgColor": "#ceead6", "textColor": "#202124"},
    {"stop": 1, "bgColor": "#d50000", "textColor": "#ffffff"},
]


def namespace_of(name: str) -> str:
    """The name scopes of an op or variable name: all but its last component."""
    return name.rpartition("/")[0]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _op_attrs(
    op: OpRecord, proto: gradflow_pb2.Op, cut_text: str, starves: tuple[str, ...]
) -> list[dict[str, str]]:
    attrs = {
        "name": op.name,
        "gradient": cut_text or op.state,
        "norm": _text(op.norm),
        "presence": _text(op.presence),
        "source": op.source,
        "library_source": proto.library_source,
        "cause_detail": proto.cause_detail,
        "starves": ", ".join(starves),
        "output_shapes": ", ".join(proto.output_shapes),
        "output_dtypes": ", ".join(proto.output_dtypes),
    }
    return [{"key": k, "value": v} for k, v in attrs.items() if v]


def graph_nodes(report: Report, graph: gradflow_pb2.Graph) -> list[dict[str, Any]]:
    """Model Explorer's `nodes[]` for one graph version: ops, then the variables they read."""
    cuts = {c.op_name: c for c in report.cut_points}
    variable_names = [v.name for v in graph.variables]
    readers: dict[str, list[str]] = {}
    nodes: list[dict[str, Any]] = []
    for op, proto in zip(report.ops, graph.ops, strict=True):
        cut = cuts.get(op.name)
        edges = [
            {"sourceNodeId": source, "sourceNodeOutputId": "0", "targetNodeInputId": str(i)}
            for i, source in enumerate(op.inputs)
        ]
        for index in proto.variable_inputs:
            readers.setdefault(variable_names[index], []).append(op.name)
            edges.append(
                {
                    "sourceNodeId": VARIABLE_PREFIX + variable_names[index],
                    "sourceNodeOutputId": "0",
                    "targetNodeInputId": str(len(edges)),
                }
            )
        nodes.append(
            {
                "id": op.name,
                "label": op.type,
                "namespace": namespace_of(op.name),
                "incomingEdges": edges,
                "attrs": _op_attrs(
                    op,
                    proto,
                    f"cut: {cut.cause}" if cut else "",
                    cut.starved_variables if cut else (),
                ),
            }
        )
    for name, var in report.variables.items():
        attrs = {
            "name": name,
            "gradient": var.state,
            "norm": _text(var.norm),
            "shape": var.shape,
            "presence": _text(var.presence),
            "read_by": ", ".join(readers.get(name, [])),
        }
        nodes.append(
            {
                "id": VARIABLE_PREFIX + name,
                "label": name.rpartition("/")[2],
                "namespace": namespace_of(name),
                "incomingEdges": [],
                "attrs": [{"key": k, "value": v} for k, v in attrs.items() if v],
            }
        )
    return nodes


def graph_collection(
    label: str, graph_id: str, report: Report, graph: gradflow_pb2.Graph
) -> dict[str, Any]:
    """The `GraphCollection` JSON Model Explorer loads from a `.json` file."""
    return {"label": label, "graphs": [{"id": graph_id, "nodes": graph_nodes(report, graph)}]}


def _records(report: Report) -> list[tuple[str, OpRecord | VariableRecord]]:
    """Every node id with the record its values come from."""
    return [
        *((op.name, op) for op in report.ops),
        *((VARIABLE_PREFIX + name, var) for name, var in report.variables.items()),
    ]


def state_data(report: Report) -> dict[str, Any]:
    """`GraphNodeData`: each node's gradient state as a string, coloured as in the tab."""
    cuts = {c.op_name: c.cause for c in report.cut_points}
    results = {}
    for node_id, record in _records(report):
        cause = cuts.get(node_id)
        bg, fg = CUT_COLOURS if cause else STATE_COLOURS[record.state]
        results[node_id] = {
            "value": f"cut: {cause}" if cause else record.state,
            "bgColor": bg,
            "textColor": fg,
        }
    return {
        "name": "gradient state",
        "results": results,
        "showExpandedSummaryOnGroupNode": True,
        "showLabelCountColumnsInChildrenStatsTable": True,
    }


def log_norm_data(report: Report) -> dict[str, Any]:
    """`GraphNodeData`: log10 of each gradient norm that is known, finite and not zero."""
    results = {
        node_id: {"value": round(math.log10(r.norm), 4)}
        for node_id, r in _records(report)
        if r.norm is not None and math.isfinite(r.norm) and r.norm > 0
    }
    return {"name": "log10 gradient norm", "results": results, "gradient": NORM_GRADIENT}


def presence_data(report: Report) -> dict[str, Any]:
    """`GraphNodeData`: the fraction of each gradient's elements that are nonzero and finite."""
    results = {
        node_id: {"value": round(r.presence, 4)}
        for node_id, r in _records(report)
        if r.presence is not None
    }
    return {"name": "gradient presence", "results": results, "thresholds": PRESENCE_THRESHOLDS}


def dead_units_data(report: Report) -> dict[str, Any] | None:
    """`GraphNodeData`: the fraction of units passing no gradient, from ops' `dead_units`/`units`.

    The place for the dead-unit counts that capture adds to ops; None while no op carries them.
    """
    results = {}
    for op in report.ops:
        dead, units = getattr(op, "dead_units", None), getattr(op, "units", None)
        if dead is not None and units:
            results[op.name] = {"value": round(dead / units, 4)}
    if not results:
        return None
    return {"name": "dead units (fraction)", "results": results, "gradient": DEAD_UNITS_GRADIENT}


# In the order `--node_data_paths` should list them: Model Explorer colours the graph by the last.
OVERLAYS: list[tuple[str, Callable[[Report], dict[str, Any] | None]]] = [
    (LOG_NORM_FILE, log_norm_data),
    (PRESENCE_FILE, presence_data),
    (DEAD_UNITS_FILE, dead_units_data),
    (STATE_FILE, state_data),
]


def _write_json(path: str, data: Any) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, allow_nan=False)
    os.replace(tmp, path)


def export_model_explorer(
    series: TagSeries, folder: str, step: int | None = None, label: str = "gradflow"
) -> list[str]:
    """Writes the graph and overlays of one logged step (default: the last) into `folder`.

    Args:
      series: the run and tag to export.
      folder: an existing folder or one whose parent exists; created if missing.
      step: a logged step of `series`.
      label: the collection's label, shown in Model Explorer's graph selector.

    Returns:
      The paths written, the graph first.
    """
    step = series.last_step if step is None else step
    graph_id, _ = series.where[step]
    graph = series.versions[graph_id].graph
    report = series.report(step)
    os.makedirs(folder, exist_ok=True)
    name = f"{series.run} · {series.name} · step {step}"
    written = [os.path.join(folder, GRAPH_FILE)]
    _write_json(written[0], graph_collection(label, name, report, graph))
    for file_name, make in OVERLAYS:
        data = make(report)
        if data is not None:
            written.append(os.path.join(folder, file_name))
            _write_json(written[-1], data)
    return written
