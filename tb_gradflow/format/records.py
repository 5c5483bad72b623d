"""Graph and Step protos to and from the report: the one place where the format meets the model."""
from __future__ import annotations

import math
import weakref
from typing import Sequence

import numpy as np

from tb_gradflow import vocabulary as V
from tb_gradflow.format.metadata import FormatError
from tb_gradflow.proto import gradflow_pb2
from tb_gradflow.report import CutPoint, OpRecord, Report, VariableRecord


def encode_step(
    graph_id: str,
    op_states: Sequence[str],
    op_norms: Sequence[float | None],
    variable_states: Sequence[str],
    variable_norms: Sequence[float | None],
    loss: float | None,
) -> gradflow_pb2.Step:
    nan = float("nan")
    return encode_step_arrays(
        graph_id,
        np.array([V.STATE_CODE[s] for s in op_states], np.uint8),
        np.array([nan if n is None else n for n in op_norms], np.float32),
        np.array([V.STATE_CODE[s] for s in variable_states], np.uint8),
        np.array([nan if n is None else n for n in variable_norms], np.float32),
        loss,
    )


def encode_step_arrays(
    graph_id: str,
    op_codes: np.ndarray,
    op_norms: np.ndarray,
    variable_codes: np.ndarray,
    variable_norms: np.ndarray,
    loss: float | None,
) -> gradflow_pb2.Step:
    """The Step of state codes (proto State values) and norms, NaN meaning "no norm"."""
    return gradflow_pb2.Step(
        graph_id=graph_id,
        op_states=op_codes.astype(np.uint8).tobytes(),
        op_norms=op_norms.astype(np.float32).tolist(),
        variable_states=variable_codes.astype(np.uint8).tobytes(),
        variable_norms=variable_norms.astype(np.float32).tolist(),
        loss=float("nan") if loss is None else loss,
    )


def decode_step(data: bytes) -> gradflow_pb2.Step:
    step = gradflow_pb2.Step()
    try:
        step.ParseFromString(data)
    except Exception as e:
        raise FormatError(f"malformed gradflow step: {e}") from e
    return step


def decode_graph(data: bytes) -> gradflow_pb2.Graph:
    graph = gradflow_pb2.Graph()
    try:
        graph.ParseFromString(data)
    except Exception as e:
        raise FormatError(f"malformed gradflow graph: {e}") from e
    return graph


_STATE_BYTES = bytes(range(len(V.STATES)))


def check_aligned(graph: gradflow_pb2.Graph, step: gradflow_pb2.Step) -> None:
    if step.graph_id != graph.graph_id:
        raise FormatError(f"step refers to graph {step.graph_id!r}, not {graph.graph_id!r}")
    n_ops, n_vars = len(graph.ops), len(graph.variables)
    if (len(step.op_states), len(step.op_norms)) != (n_ops, n_ops) or (
        len(step.variable_states), len(step.variable_norms)
    ) != (n_vars, n_vars):
        raise FormatError("step values do not match the graph's ops and variables")
    # bytes.translate runs in C: this check is on the plugin's reload path for every step.
    if (step.op_states + step.variable_states).translate(None, _STATE_BYTES):
        raise FormatError("unknown gradient state in step")


def decode_state(code: int) -> str:
    return V.STATES[code]


def decode_norm(state: str, norm: float) -> float | None:
    """NaN marks "no norm" (state none, or not measured); a nonfinite gradient keeps its Inf/NaN."""
    if state == V.NONFINITE:
        return norm
    return None if math.isnan(norm) else norm


def cut_points(graph: gradflow_pb2.Graph) -> list[CutPoint]:
    names = [v.name for v in graph.variables]
    return [
        CutPoint(
            op_name=op.name,
            op_type=op.type,
            cause=V.CAUSES[op.cause],
            source=op.source,
            starved_variables=tuple(names[i] for i in op.starved_variables),
            detail=op.cause_detail,
        )
        for op in graph.ops
        if op.cause
    ]


def build_report(
    graph: gradflow_pb2.Graph, step: gradflow_pb2.Step, step_number: int | None = None
) -> Report:
    """The report for one logged step: analyze() and every reader go through this."""
    check_aligned(graph, step)
    variables = {}
    for var, code, norm in zip(graph.variables, step.variable_states, step.variable_norms):
        state = decode_state(code)
        variables[var.name] = VariableRecord(var.name, state, decode_norm(state, norm), var.shape)
    graph_ops = list(graph.ops)  # protobuf indexing is slow; one pass into a list
    names = [op.name for op in graph_ops]
    ops = []
    for op, code, norm in zip(graph_ops, step.op_states, step.op_norms):
        state = V.STATES[code]
        ops.append(
            OpRecord(
                name=op.name,
                type=op.type,
                state=state,
                norm=decode_norm(state, norm),
                source=op.source,
                inputs=tuple(names[i] for i in op.inputs),
                cause=V.CAUSES[op.cause],
                measured=op.measured,
            )
        )
    loss = None if math.isnan(step.loss) else step.loss
    report = Report(
        variables=variables,
        ops=tuple(ops),
        cut_points=tuple(cut_points(graph)),
        step=step_number,
        loss=loss,
        graph_id=graph.graph_id,
        fallback_reason=graph.fallback_reason,
    )
    _graphs[id(report)] = graph
    weakref.finalize(report, _graphs.pop, id(report), None)
    return report


# The graph each live report was built from, for Report.to_html (call structure, shapes).
_graphs: dict[int, gradflow_pb2.Graph] = {}


def graph_of(report: Report) -> gradflow_pb2.Graph | None:
    """The Graph proto `report` was built from, while the report lives; None if built otherwise."""
    return _graphs.get(id(report))
