"""Gradflow runs written by hand: a Graph and Steps through `tf.summary.write`, with the package's
own metadata and encoders, for cases the capture engine cannot produce (TensorFlow forbids "<" in
op names) or that must be cheap to extend (steps appended while TensorBoard runs).
"""
from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

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


# Raw event files: records framed by TensorFlow's C++ TFRecord writer (the event file framing),
# events built by hand, for what `tf.summary.write` cannot produce (a tensor declaring more
# elements than it holds) or would produce too slowly (100,000 steps).


def tensor_event(tag: str, step: int, tensor: Any, md: Any = None, wall_time: float | None = None) -> Any:
    from tensorboard.compat.proto import event_pb2, summary_pb2

    value = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
    if md is not None:
        value.metadata.CopyFrom(md)
    return event_pb2.Event(wall_time=time.time() if wall_time is None else wall_time, step=step,
                           summary=summary_pb2.Summary(value=[value]))


def string_tensor(values: Sequence[bytes], shape: Sequence[int] | None = None) -> Any:
    """A DT_STRING TensorProto holding `values`, declaring `shape` (default: what it holds)."""
    from tensorboard.compat.proto import tensor_pb2, tensor_shape_pb2, types_pb2

    if shape is None:
        shape = [] if len(values) == 1 else [len(values)]
    dims = [tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in shape]
    return tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=dims),
                                  string_val=list(values))


def write_events(run_dir: str, events: Iterable[Any], suffix: str = "crafted") -> str:
    """Writes `events` after the file-version event into a new event file of `run_dir`."""
    import tensorflow as tf

    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, f"events.out.tfevents.{time.time():.6f}.{suffix}")
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(file_version_event().SerializeToString())
        for event in events:
            writer.write(event.SerializeToString())
    return path


def chain_graph(graph_id: str, n_ops: int, n_variables: int, cuts: Sequence[int] = ()) -> gradflow_pb2.Graph:
    """A graph of `n_ops` ops in a chain, grouped in scopes of 10 under blocks of 100, each
    tenth op reading a variable: a stand-in for a real model's loss path of that size. Ops at
    `cuts` are numpy_function cut points."""
    ops = [
        CraftedOp(
            name=f"block_{i // 100}/layer_{i // 10 % 10}/op_{i}", type="MatMul" if i % 10 == 0 else "Relu",
            state=V.FLOWING, inputs=[i - 1] if i else [],
            variable_inputs=[i // 10 % n_variables] if i % 10 == 0 and n_variables else [],
            cause="numpy_function" if i in cuts else None,
        )
        for i in range(n_ops)
    ]
    variables = [CraftedVariable(f"block_{j}/kernel", V.FLOWING) for j in range(n_variables)]
    return crafted_graph(graph_id, ops, variables)


def step_norm(step: int, op: int) -> float:
    """The norm `write_fast_run` gives op `op` at `step` (a test can check any one)."""
    return float(1 + op % 7) * (1.0 + step % 16)


def step_payloads(graph: gradflow_pb2.Graph) -> list[bytes]:
    """Sixteen encoded steps of `graph`, all flowing; payload k has op norms `step_norm(k, op)`."""
    import numpy as np

    n_ops, n_vars = len(graph.ops), len(graph.variables)
    op_codes = np.full(n_ops, V.STATE_CODE[V.FLOWING], np.uint8)
    var_codes = np.full(n_vars, V.STATE_CODE[V.FLOWING], np.uint8)
    base = 1.0 + np.arange(n_ops) % 7
    return [
        records.encode_step_arrays(graph.graph_id, op_codes, base * (1.0 + k), var_codes,
                                   np.full(n_vars, 1.0 + k, np.float32), 1.0).SerializeToString()
        for k in range(16)
    ]


def file_version_event() -> Any:
    from tensorboard.compat.proto import event_pb2

    return event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2")


def write_fast_run(run_dir: str, graph: gradflow_pb2.Graph, steps: Iterable[int], name: str = "gradflow",
                   with_graph: bool = True) -> str:
    """Every step of `steps` for `graph`, all ops and variables flowing with `step_norm` norms,
    at about 20 µs a step: sixteen encoded variants, reused by step modulo 16."""
    variants = step_payloads(graph)
    step_md = metadata.step_metadata(name, "crafted fast")
    wall = time.time()

    def events() -> Iterator[Any]:
        for k, step in enumerate(steps):
            if with_graph and k == 0:
                yield tensor_event(metadata.graph_tag(name, graph.graph_id), step,
                                   string_tensor([graph.SerializeToString()], [1]),
                                   metadata.graph_metadata(name, graph.graph_id), wall)
            # Metadata on the first step only, as TensorFlow writes it; wall time grows per step.
            yield tensor_event(name, step, string_tensor([variants[step % 16]]), step_md if k == 0 else None,
                               wall + k * 1e-3)

    return write_events(run_dir, events())


def framed(body: bytes) -> bytes:
    """One event-file record around `body`, framed with TensorBoard's own (pure-Python) masked
    CRC-32C, independently of tb_gradflow.logcheck."""
    import struct

    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    header = struct.pack("<Q", len(body))
    return header + struct.pack("<I", masked_crc32c(header)) + body + struct.pack("<I", masked_crc32c(body))


def absurd_header(length: int = 1 << 62) -> bytes:
    """A record header declaring `length` bytes, with a valid checksum, and nothing after it."""
    import struct

    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    header = struct.pack("<Q", length)
    return header + struct.pack("<I", masked_crc32c(header))


def step_records(graph: gradflow_pb2.Graph, steps: Iterable[int], name: str = "gradflow") -> list[bytes]:
    """Framed records of a run written by `write_fast_run`: file version, graph, then one per step."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = write_fast_run(tmp, graph, steps, name)
        data = open(path, "rb").read()
    return split_records(data)


def split_records(data: bytes) -> list[bytes]:
    """Framed records lying back to back in `data`, each whole (its framing not checked)."""
    records, offset = [], 0
    while offset < len(data):
        length = int.from_bytes(data[offset : offset + 8], "little")
        records.append(data[offset : offset + 16 + length])
        offset += 16 + length
    return records
