"""Gradflow runs written by hand: a Graph and Steps through `tf.summary.write`, with the package's
own metadata and encoders, for cases the capture engine cannot produce (TensorFlow forbids "<" in
op names) or that must be cheap to extend (steps appended while TensorBoard runs).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Sequence

from tb_gradflow import vocabulary as V
from tb_gradflow.format import metadata, records
from tb_gradflow.proto import gradflow_pb2


@dataclasses.dataclass
class CraftedOp:
    name: str
    type: str
    state: str
    inputs: Sequence[int] = ()
    variable_inputs: Sequence[int] = ()
    cause: str | None = None
    starved: Sequence[int] = ()
    source: str = "crafted.py:1"
    norm: float | None = 1.0


@dataclasses.dataclass
class CraftedVariable:
    name: str
    state: str
    norm: float | None = 1.0


def crafted_graph(graph_id: str, ops: Sequence[CraftedOp], variables: Sequence[CraftedVariable]) -> gradflow_pb2.Graph:
    graph = gradflow_pb2.Graph(graph_id=graph_id, loss_op=len(ops) - 1)
    for op in ops:
        graph.ops.add(
            name=op.name, type=op.type, inputs=list(op.inputs), variable_inputs=list(op.variable_inputs),
            output_shapes=["4"], output_dtypes=["float32"], source=op.source, cause=V.CAUSE_CODE[op.cause],
            cause_detail="crafted" if op.cause else "", starved_variables=list(op.starved), parent=-1, measured=True,
        )
    for v in variables:
        graph.variables.add(name=v.name, shape="4", dtype="float32")
    return graph


def write_run(
    run_dir: str,
    ops: Sequence[CraftedOp],
    variables: Sequence[CraftedVariable],
    steps: Sequence[int],
    name: str = "gradflow",
    graph_id: str = "crafted-1",
    with_graph: bool = True,
) -> None:
    """Writes `steps` of one graph version into a new event file in `run_dir`; the norm of every
    flowing op and variable grows with the step, so steps are told apart by their values."""
    import tensorflow as tf

    os.makedirs(run_dir, exist_ok=True)
    graph = crafted_graph(graph_id, ops, variables)
    writer = tf.summary.create_file_writer(run_dir)
    with writer.as_default():
        for k, step in enumerate(steps):
            if with_graph and k == 0:
                tf.summary.write(
                    tag=metadata.graph_tag(name, graph_id),
                    tensor=tf.constant([graph.SerializeToString()]),
                    step=step,
                    metadata=metadata.graph_metadata(name, graph_id),
                )
            scale = 1.0 + step
            encoded = records.encode_step(
                graph_id,
                [op.state for op in ops],
                [None if op.norm is None else op.norm * scale for op in ops],
                [v.state for v in variables],
                [None if v.norm is None else v.norm * scale for v in variables],
                loss=1.0,
            )
            tf.summary.write(
                tag=name,
                tensor=tf.constant(encoded.SerializeToString()),
                step=step,
                metadata=metadata.step_metadata(name, "crafted"),
            )
    writer.flush()
    writer.close()
