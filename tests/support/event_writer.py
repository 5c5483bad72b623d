"""Writes gradflow event files quickly and without TensorFlow: a Graph proto once, then many
Steps with values made up per step, through TensorBoard's own event file writer.

For logdirs that only their size or count matters for (1,000 ResNet50 steps for the export's
size, a few runs for the CLI's start-up) and for a viewer-only install that has no TensorFlow.
"""
from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from tb_gradflow import vocabulary as V
from tb_gradflow.format import metadata, records
from tb_gradflow.proto import gradflow_pb2


def _string_tensor(values: list[bytes], rank1: bool) -> tensor_pb2.TensorProto:
    dims = [tensor_shape_pb2.TensorShapeProto.Dim(size=len(values))] if rank1 else []
    shape = tensor_shape_pb2.TensorShapeProto(dim=dims)
    return tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, tensor_shape=shape, string_val=values)


def _event(step: int, tag: str, tensor: tensor_pb2.TensorProto, meta: summary_pb2.SummaryMetadata) -> event_pb2.Event:
    value = summary_pb2.Summary.Value(tag=tag, tensor=tensor, metadata=meta)
    return event_pb2.Event(wall_time=time.time(), step=step, summary=summary_pb2.Summary(value=[value]))


def step_values(graph: gradflow_pb2.Graph, step: int, rng: np.random.Generator,
                op_codes: np.ndarray, var_codes: np.ndarray) -> gradflow_pb2.Step:
    """A Step with the given states and norms that drift from step to step like training's do."""
    scale = np.exp(-step / 500.0)
    op_norms = (rng.lognormal(0.0, 0.3, len(graph.ops)) * scale).astype(np.float32)
    var_norms = (rng.lognormal(-2.0, 0.3, len(graph.variables)) * scale).astype(np.float32)
    for codes, norms in ((op_codes, op_norms), (var_codes, var_norms)):
        norms[codes == V.STATE_CODE[V.NONE]] = np.nan
        norms[codes == V.STATE_CODE[V.ZERO]] = 0.0
        norms[codes == V.STATE_CODE[V.NONFINITE]] = np.inf
    return records.encode_step_arrays(graph.graph_id, op_codes, op_norms, var_codes, var_norms, float(scale))


def write_steps(run_dir: str, graph: gradflow_pb2.Graph, steps: Iterable[int], op_codes: np.ndarray,
                var_codes: np.ndarray, name: str = "gradflow", seed: int = 0) -> None:
    """The graph once and one Step per step, into a new event file in `run_dir`."""
    rng = np.random.default_rng(seed)
    writer = EventFileWriter(run_dir)
    graph_tag = metadata.graph_tag(name, graph.graph_id)
    step_meta = metadata.step_metadata(name, "")
    first = True
    for step in steps:
        if first:
            writer.add_event(_event(step, graph_tag, _string_tensor([graph.SerializeToString()], True),
                                    metadata.graph_metadata(name, graph.graph_id)))
        encoded = step_values(graph, step, rng, op_codes, var_codes).SerializeToString()
        writer.add_event(_event(step, name, _string_tensor([encoded], False), step_meta))
        first = False
    writer.close()
