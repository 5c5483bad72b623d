"""`tb_gradflow.torch.gradflow`: capture one torch step and write it as the TensorFlow side does.

The records are the same (plugin "gradflow", tag NAME for steps, NAME/_graph/ID for each graph
version, the same metadata), written without TensorFlow: into a `SummaryWriter`'s event file
through its file writer, or, for a logdir path, through TensorBoard's own event file writer.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import torch
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2

from tb_gradflow.capture.layer_scalars import scalar_summary
from tb_gradflow.format import metadata
from tb_gradflow.report import Report
from tb_gradflow.torch.capture import CaptureError, capture
from tb_gradflow.torch.event_file import EventFile
from tb_gradflow.torch.params import Unsupported

logger = logging.getLogger("tb_gradflow")

# Event file writers of logdir paths, one per directory for the life of the process.
_path_writers: dict[str, EventFile] = {}
_lock = threading.Lock()
# Per writer (a SummaryWriter, or a logdir path): the (tag, graph id) pairs already written.
_written_by_writer: weakref.WeakKeyDictionary[Any, set[tuple[str, str]]] = (
    weakref.WeakKeyDictionary()
)
_written_by_path: dict[str, set[tuple[str, str]]] = {}


@atexit.register
def _close_path_writers() -> None:
    """Closes the files of writers opened on a path: the process owns them, and it is ending."""
    with _lock:
        for writer in _path_writers.values():
            writer.close()
        _path_writers.clear()


def gradflow(
    writer: Any,
    name: str,
    loss_fn: Callable[..., Any],
    *args: Any,
    step: int,
    parameters: Any = None,
    optimizer: Any = None,
    scaler: Any = None,
    description: str = "",
    strict: bool = False,
    scalars: bool = False,
    **kwargs: Any,
) -> Report | None:
    """Analyzes `loss_fn(*args, **kwargs)` and writes the step under tag `name`.

    With `optimizer`, the call is the training step: `optimizer.zero_grad()`, the loss, its
    gradients put in `.grad` as `loss.backward()` would, and `optimizer.step()`; the weights
    after N calls equal those after N plain steps. The in-memory report keeps exact norms; the
    logdir keeps op norms quantized, as on the TensorFlow side.

    Args:
      writer: a `torch.utils.tensorboard.SummaryWriter`, or a logdir path.
      name: the summary name (the tag), e.g. "gradflow".
      loss_fn: returns the loss, as for `analyze`.
      *args: passed to `loss_fn`.
      optimizer: with it, the call is the training step (see above).
      description: the summary's description, shown by TensorBoard.
      **kwargs: passed to `loss_fn`.
      step: the global step the record is written at.
      parameters: as for `analyze`; by default the modules' parameters the loss refers to, plus
        the optimizer's.
      scaler: a `torch.amp.GradScaler` (with `optimizer`): the step is then
        `scaler.scale(loss).backward()`, `scaler.step(optimizer)`, `scaler.update()`, as in a
        mixed-precision loop under `torch.autocast`; the report's norms are unscaled.
      strict: raise instead of warning when logging fails.
      scalars: also write one TensorBoard scalar per layer (module path) and step, its gradient
        norm, under `<name>/grad_norm/<layer>`: ordinary scalars-plugin records, the same as
        the TensorFlow side writes (tb_gradflow/capture/layer_scalars.py), and the dead share of
        each layer's ReLU units under `<name>/dead_units/<layer>`. Off by default.

    Returns:
      The step's Report, or None when logging failed (a warning says why; with `optimizer`, the
      plain training step is still taken). An error raised by `loss_fn` itself propagates.

    """
    try:
        result = capture(loss_fn, args, kwargs, parameters, optimizer, scaler)
    except Unsupported as e:
        if strict:
            raise
        warnings.warn(f"tb_gradflow: gradflow summary {name!r} logs nothing: {e}", stacklevel=2)
        if optimizer is not None:
            _plain_step(loss_fn, args, kwargs, optimizer, scaler)
        return None
    except CaptureError as e:
        if strict:
            raise
        logger.warning("tb_gradflow: gradflow summary %r failed: %s", name, e)
        if optimizer is not None and not e.grads_used:
            _plain_step(loss_fn, args, kwargs, optimizer, scaler)
        return None
    if optimizer is not None:
        _apply(result.parameters.trained, result.grads, optimizer, scaler)
    try:
        _write(writer, name, result, int(step), description, scalars)
    except Exception as e:  # noqa: BLE001 - logging must never stop training
        if strict:
            raise
        logger.warning(
            "tb_gradflow: writing gradflow summary %r failed: %s: %s", name, type(e).__name__, e
        )
    return result.report(int(step))


def _apply(
    trained: list[tuple[str, torch.Tensor]],
    grads: list[torch.Tensor | None],
    optimizer: Any,
    scaler: Any = None,
) -> None:
    """`.grad` as `loss.backward()` leaves it after `zero_grad()`, then the optimizer's step
    (through the scaler's, which unscales and skips a step with Inf/NaN gradients)."""
    for (_, p), g in zip(trained, grads, strict=True):
        if g is None:
            continue
        if p.grad is None:
            p.grad = g  # as backward() leaves it (no autograd op: no no_grad() needed)
        else:
            with torch.no_grad():
                p.grad.add_(g)
    _step(optimizer, scaler)


def _step(optimizer: Any, scaler: Any) -> None:
    if scaler is None:
        optimizer.step()
    else:
        scaler.step(optimizer)
        scaler.update()


def _plain_step(
    loss_fn: Callable[..., Any], args: tuple, kwargs: dict, optimizer: Any, scaler: Any = None
) -> None:
    from tb_gradflow.torch.capture import loss_tensor

    optimizer.zero_grad()
    loss = loss_tensor(loss_fn(*args, **kwargs))
    (loss if scaler is None else scaler.scale(loss)).backward()
    _step(optimizer, scaler)


def _string_tensor(value: bytes, shape: list[int]) -> tensor_pb2.TensorProto:
    return tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING,
        string_val=[value],
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in shape]
        ),
    )


def _write(writer: Any, name: str, result: Any, step: int, description: str, scalars: bool = False) -> None:
    add_event, written = _sink(writer)
    graph_id = result.graph.graph_id
    summary = b""
    if (name, graph_id) not in written:
        summary = summary_pb2.Summary(
            value=[
                summary_pb2.Summary.Value(
                    tag=metadata.graph_tag(name, graph_id),
                    metadata=metadata.graph_metadata(name, graph_id),
                    tensor=_string_tensor(result.graph.SerializeToString(), [1]),
                )
            ]
        ).SerializeToString()
    summary += step_value_field(name, description, result.step.SerializeToString())
    if scalars:
        summary += scalar_summary(name, result.graph, result.step).SerializeToString()
    add_event(event_bytes(time.time(), step, summary))
    written.add((name, graph_id))


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


@functools.lru_cache(maxsize=64)
def _step_value_parts(name: str, description: str) -> tuple[bytes, bytes]:
    """(a step Value's bytes before its tensor, after it): its tag and metadata, the same at
    every step, so serialized once. Protobuf writes fields in number order (tag 1, tensor 8,
    metadata 9), so these pieces joined give its own bytes (tests/test_torch_gradflow.py)."""
    head = summary_pb2.Summary.Value(tag=name).SerializeToString()
    tail = summary_pb2.Summary.Value(metadata=metadata.step_metadata(name, description))
    return head, tail.SerializeToString()


# A scalar string tensor's fields before its string_val (dtype 1, tensor_shape 2).
_STRING_SCALAR_HEAD = tensor_pb2.TensorProto(
    dtype=types_pb2.DT_STRING, tensor_shape=tensor_shape_pb2.TensorShapeProto()
).SerializeToString()


def step_value_field(name: str, description: str, step_bytes: bytes) -> bytes:
    """The serialized Summary.value field of a step record holding `step_bytes`."""
    head, tail = _step_value_parts(name, description)
    tensor = _STRING_SCALAR_HEAD + _field(8, step_bytes)
    return _field(1, head + _field(8, tensor) + tail)


def event_bytes(wall_time: float, step: int, summary: bytes) -> bytes:
    """A serialized Event of a serialized Summary (field 5, after wall_time and step)."""
    return event_pb2.Event(wall_time=wall_time, step=step).SerializeToString() + _field(5, summary)


def _sink(writer: Any) -> tuple[Callable[[bytes], None], set[tuple[str, str]]]:
    """(add a serialized event, the graph versions written) for a SummaryWriter or a logdir
    path (whose file takes the bytes as they are; a SummaryWriter takes the Event)."""
    if isinstance(writer, (str, os.PathLike)):
        path = os.path.abspath(os.fspath(writer))
        with _lock:
            file_writer = _path_writers.get(path)
            if file_writer is None:
                file_writer = _path_writers[path] = EventFile(path)
        # Each step is on disk when the call returns (EventFile flushes every event).
        return file_writer.add_serialized, _written_by_path.setdefault(path, set())
    get_file_writer = getattr(writer, "_get_file_writer", None)
    if get_file_writer is None:
        raise TypeError(
            "writer must be a torch.utils.tensorboard.SummaryWriter or a logdir path, "
            f"got {type(writer).__name__}"
        )
    file_writer = get_file_writer()

    def add(event: bytes) -> None:
        file_writer.add_event(event_pb2.Event.FromString(event))

    return add, _written_by_writer.setdefault(writer, set())
