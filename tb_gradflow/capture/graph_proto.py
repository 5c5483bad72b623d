"""One traced graph version as the stored `Graph` message: ops, variables, cut points, its id."""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import tensorflow as tf

from tb_gradflow import vocabulary as V
from tb_gradflow.capture.cuts import Structure
from tb_gradflow.capture.loss_path import PathOp
from tb_gradflow.capture.sources import op_sources
from tb_gradflow.capture.variables import Discovery, TrackedVariable
from tb_gradflow.proto import gradflow_pb2


def shape_text(shape: tf.TensorShape) -> str:
    """A shape as the tab shows it: short, with `?` where TensorFlow does not know the size."""
    if shape.rank is None:
        return "?"
    return "x".join("?" if d is None else str(d) for d in shape.as_list()) or "scalar"


def _variable_fields(v: TrackedVariable) -> dict[str, str]:
    tf_variable = v.tf_variable
    return {"name": v.name, "shape": shape_text(tf_variable.shape), "dtype": tf_variable.dtype.name}


def loss_shape_text(loss: tf.Tensor) -> str:
    """The loss's shape when it is not a scalar (its sum is what gets differentiated), else ""."""
    return "" if loss.shape.rank == 0 else shape_text(loss.shape)


def graph_skeleton(
    discovery: Discovery, sparse: Sequence[bool] = (), **fields: Any
) -> gradflow_pb2.Graph:
    """A Graph with its variables (and the frozen ones apart); the probe adds ops, the eager
    fallback a reason. `sparse`: per variable, whether its gradient arrives as IndexedSlices."""
    graph = gradflow_pb2.Graph(
        frozen_models=discovery.frozen_models, unread_models=discovery.unread_models, **fields
    )
    variables = discovery.variables
    sparse = list(sparse) or [False] * len(variables)
    for v, is_sparse in zip(variables, sparse, strict=False):
        graph.variables.add(**_variable_fields(v), sparse_gradient=is_sparse)
    for v in discovery.frozen:
        graph.frozen_variables.add(**_variable_fields(v))
    return graph


def seal(graph: gradflow_pb2.Graph) -> gradflow_pb2.Graph:
    """Gives the graph its id: a hash of its content, so a retrace that changes nothing reuses it."""
    graph.graph_id = hashlib.sha256(graph.SerializeToString(deterministic=True)).hexdigest()[:16]
    return graph


def graph_proto(
    ops: list[PathOp],
    op_tensors: list[list[int]],
    discovery: Discovery,
    structure: Structure,
    loss_op: int,
    gates: AbstractSet[int] = frozenset(),
    sparse: Sequence[bool] = (),
    loss_shape: str = "",
    units: Sequence[int] = (),
    loops: AbstractSet[int] = frozenset(),
    body_measured: AbstractSet[int] = frozenset(),
) -> gradflow_pb2.Graph:
    """The sealed Graph of one trace: every path op with its inputs, source and cut facts.
    `gates`: the ops whose presence is that of the gradient they pass back (capture/gates.py);
    `units`: per op, the units whose deaths are counted (capture/units.py); `loops`: the While
    ops with iteration norms, `body_measured` the body ops measured (capture/bodies.py)."""
    units = list(units) or [0] * len(ops)
    graph = graph_skeleton(discovery, sparse, loss_op=loss_op, loss_shape=loss_shape)
    for i, p in enumerate(ops):
        cut = structure.cuts.get(i)
        producers = list(dict.fromkeys(src for src in p.input_producers if src >= 0))
        source, library_source = op_sources(p.op)
        graph.ops.add(
            name=p.name,
            type=p.op.type,
            inputs=producers,
            variable_inputs=p.variable_inputs,
            output_shapes=[shape_text(t.shape) for t in p.op.outputs],
            output_dtypes=[t.dtype.name for t in p.op.outputs],
            source=source,
            library_source=library_source,
            cause=V.CAUSE_CODE[cut.cause] if cut else 0,
            cause_detail=cut.detail if cut else "",
            starved_variables=cut.starved if cut else [],
            parallel_cuts=cut.parallel if cut else [],
            parent=p.parent,
            # A top-level op is measured whatever its outputs (an ArgMax's int64 has no norm);
            # body ops are measured only when body measurement is on.
            measured=bool(op_tensors[i]) or p.top_level or i in body_measured,
            presence_at_input=i in gates,
            units=units[i],
            has_iteration_norms=i in loops,
        )
    return seal(graph)
