"""`tb_gradflow.summary.gradflow`: analyze and write one step, following `tf.summary` conventions.

Called eagerly, the probe runs at once and the call returns the `Report`. Called inside a
`tf.function` (the user's own train step), everything that cannot run in a graph is built at
trace time (the traced probe, its graph proto and layout) and the call adds ops that, at every
run, take the gradients, encode the `Step` on the host and write it; it then returns what
`tf.summary.write` returns.
"""
from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tb_gradflow import install_hint

try:
    import tensorflow as tf
except ModuleNotFoundError as _missing:  # a viewer-only install: say which extra to add
    raise install_hint.needs_tensorflow("tb_gradflow.summary", _missing) from _missing

from tb_gradflow.capture.analyze import probe_for, run_probe
from tb_gradflow.capture.layer_scalars import scalar_summary
from tb_gradflow.capture.optimizer_step import apply_gradients, plain_step
from tb_gradflow.capture.tf_internals import (
    default_summary_writer,
    in_xla_context,
    records_summaries_now,
    write_summary_now,
)
from tb_gradflow.format import metadata
from tb_gradflow.format.records import build_report
from tb_gradflow.proto import gradflow_pb2
from tb_gradflow.report import Report

logger = logging.getLogger("tb_gradflow")

# Per writer: the (tag, graph id) pairs whose graph blob has really been written (not merely
# attempted: `record_if` may have skipped it). Eager calls and calls compiled into a
# tf.function read and update the same set.
_written: weakref.WeakKeyDictionary[Any, set[tuple[str, str]]] = weakref.WeakKeyDictionary()


def _current_writer() -> Any:
    return default_summary_writer()


def is_chief() -> bool:
    """Only the chief writes; other workers and non-first replicas stay silent."""
    if tf.distribute.has_strategy():
        if not tf.distribute.in_cross_replica_context():
            replica = tf.distribute.get_replica_context()
            if replica is not None and tf.get_static_value(replica.replica_id_in_sync_group) != 0:
                return False
        extended = tf.distribute.get_strategy().extended
        return bool(getattr(extended, "should_checkpoint", True))
    return True


def gradflow(
    name: str,
    loss_fn: Callable[..., Any],
    *args: Any,
    variables: Sequence[Any] | None = None,
    step: Any = None,
    description: str | None = None,
    optimizer: Any = None,
    strict: bool = False,
    measure_bodies: bool | None = None,
    scalars: bool = False,
    **kwargs: Any,
) -> Any:
    """Analyzes `loss_fn(*args, **kwargs)` and writes the step to the default summary writer.

    With `optimizer`, the variable gradients are applied too, so this call can be the training
    step. The tag is `name` under the enclosing `tf.name_scope`s, as with `tf.summary.scalar`.

    Eagerly, returns the report; with no default writer it writes nothing. Inside a
    `tf.function`, the report's values do not exist yet at trace time: the call returns a bool
    tensor, true when the step was written (false with no writer or when `record_if` says no),
    and each run of the function writes one step. Inside an XLA-compiled function
    (`jit_compile=True`) nothing can be logged: it warns, and with `optimizer` still takes the
    optimizer's plain step so that training is unchanged.

    Any failure is logged as a warning and returns None, unless `strict=True`.

    `measure_bodies`: also give each op inside a `while` loop's body (a Keras RNN's cell on the
    CPU) a norm and a presence over all iterations. Each loop's iteration norms are measured
    either way; the body ops cost more (README, "Through a loop's iterations"). None measures
    them unless the environment variable TB_GRADFLOW_BODY_OPS is 0.

    `scalars`: also write, at each logged step, one TensorBoard scalar per layer: its gradient
    norm under `<tag>/grad_norm/<layer>` (the Layers view's norm) and, where ReLU-family gates
    count dead units, their dead share under `<tag>/dead_units/<layer>`
    (capture/layer_scalars.py). They are ordinary `tf.summary.scalar` records, grouped as one
    section of the Time Series tab. Off by default.
    """
    try:
        if not is_chief():
            if optimizer is not None:
                # Every replica must take the optimizer's step (its update is collective).
                plain_step(loss_fn, args, kwargs, variables, optimizer)
            return None
        if tf.inside_function():
            return _gradflow_in_graph(
                name, loss_fn, args, kwargs, variables, step, description or "", optimizer,
                measure_bodies, scalars,
            )
        return _gradflow_eager(
            name, loss_fn, args, kwargs, variables, step, description or "", optimizer,
            measure_bodies, scalars,
        )
    except NotLoggable as e:
        if strict:
            raise
        logger.warning("tb_gradflow: %s", e)
        return None
    except Exception as e:  # noqa: BLE001 - logging must never stop training
        if strict:
            raise
        logger.warning("tb_gradflow: gradflow summary %r failed: %s: %s", name, type(e).__name__, e)
        return None


def _tag(name: str) -> str:
    """`name` under the enclosing name scopes, the way `tf.summary` ops name their tags."""
    if tf.executing_eagerly():  # eager scopes are not made unique: the same names, the same tag
        return _eager_tag(name, tf.get_current_name_scope())
    with tf.summary.experimental.summary_scope(name, "gradflow") as (tag, _):
        return tag


@functools.lru_cache(maxsize=256)
def _eager_tag(name: str, scope: str) -> str:
    with tf.summary.experimental.summary_scope(name, "gradflow") as (tag, _):
        return tag


def _resolve_step(step: Any) -> Any:
    return tf.summary.experimental.get_step() if step is None else step


def _no_step() -> ValueError:
    return ValueError("no step: pass step= or set tf.summary.experimental.set_step()")


def _gradflow_eager(
    name: str, loss_fn: Callable, args: tuple, kwargs: dict, variables: Any, step: Any,
    description: str, optimizer: Any, measure_bodies: bool | None = None, scalars: bool = False,
) -> Report:
    result = run_probe(loss_fn, args, kwargs, variables, optimizer, measure_bodies)
    step = _resolve_step(step)
    step_value = None if step is None else int(step.numpy() if hasattr(step, "numpy") else step)
    report = build_report(result.graph, result.step, step_value, checked=False)  # our own step
    writer = _current_writer()
    if writer is not None:
        if step_value is None:
            raise _no_step()
        if records_summaries_now():
            tag = _tag(name)
            _write_graph_once(writer, tag, result.graph, step_value)
            write_summary_now(writer, result.step.SerializeToString(), step_value, *_step_write_args(tag, description))
            if scalars:
                tf.summary.experimental.write_raw_pb(
                    scalar_summary(tag, result.graph, result.step).SerializeToString(), step_value
                )
    return report


@functools.lru_cache(maxsize=256)
def _step_write_args(tag: str, description: str) -> tuple[tf.Tensor, tf.Tensor]:
    """The tag and the serialized step metadata as tensors, made once per tag."""
    return tf.constant(tag), tf.constant(metadata.step_metadata(tag, description).SerializeToString())


def _gradflow_in_graph(
    name: str, loss_fn: Callable, args: tuple, kwargs: dict, variables: Any, step: Any,
    description: str, optimizer: Any, measure_bodies: bool | None = None, scalars: bool = False,
) -> tf.Tensor:
    if in_xla_context():
        return _in_xla(name, loss_fn, args, kwargs, variables, optimizer)
    probe = probe_for(
        loss_fn, variables, optimizer, apply_inside=False, measure_bodies=measure_bodies
    )
    writer = _current_writer()
    if writer is None:
        if optimizer is not None:  # the training step still happens
            _probe_and_step(probe, loss_fn, args, kwargs, variables, optimizer)
        return tf.constant(False)
    step = _resolve_step(step)
    if step is None:
        raise _no_step()
    tag = _tag(name)

    def probe_and_write() -> tf.Tensor:
        call = _probe_and_step(probe, loss_fn, args, kwargs, variables, optimizer)

        def step_tensor() -> tf.Tensor:
            # Host-side encoding of the reduced vectors: not on the loss path, and run only
            # when the summary is recorded.
            serialized = tf.numpy_function(
                functools.partial(_serialize_step, call.encode), call.encode_inputs, tf.string,
                stateful=False,
            )
            return tf.reshape(serialized, [])

        graph_written = _write_graph_once(writer, tag, call.graph, step)
        with tf.control_dependencies([graph_written]):
            if scalars:
                return _write_step_and_scalars(tag, call, step, description)
            return tf.summary.write(
                tag=tag, tensor=step_tensor, step=step, metadata=metadata.step_metadata(tag, description)
            )

    if optimizer is not None:  # the probe is the training step: it runs at every call
        return probe_and_write()
    # Without an optimizer, steps that record_if skips cost nothing: the probe runs only when
    # the summary is recorded.
    return tf.cond(
        tf.summary.should_record_summaries(), probe_and_write, lambda: tf.constant(False)
    )


def _probe_and_step(
    probe: Any, loss_fn: Callable, args: tuple, kwargs: dict, variables: Any, optimizer: Any
) -> Any:
    """Adds the probe to the enclosing graph and, with an optimizer, its step after it.

    The step is applied here, in the enclosing graph (under tf.distribute, an optimizer's
    update is a cross-replica synchronisation that a nested function cannot hold). If the
    probe cannot be built, the optimizer's plain step is added instead, so that training is
    the same whether or not logging works, and the error is raised for the caller to report.
    """
    try:
        call = probe.symbolic_call(*args, **kwargs)
    except Exception:
        if optimizer is not None:
            plain_step(loss_fn, args, kwargs, variables, optimizer)
        raise
    if optimizer is not None:
        apply_gradients(optimizer, call.variables, call.grads)
    return call


def _serialize_step(encode: Callable[..., gradflow_pb2.Step], *values: np.ndarray) -> np.ndarray:
    return np.array(encode(*values).SerializeToString(), dtype=object)


def _write_step_and_scalars(tag: str, call: Any, step: Any, description: str) -> tf.Tensor:
    """In a graph, the step and its layer scalars (`scalars=True`), from one host-side encoding
    run only when summaries are recorded; the scalars go as one Summary of all layers."""

    def write() -> tf.Tensor:
        serialized, scalars = tf.numpy_function(
            functools.partial(_serialize_step_and_scalars, tag, call.graph, call.encode),
            call.encode_inputs, [tf.string, tf.string], stateful=False,
        )
        with tf.summary.record_if(True):  # decided by the cond around: no cond in each write
            written = tf.summary.write(
                tag=tag, tensor=tf.reshape(serialized, []), step=step,
                metadata=metadata.step_metadata(tag, description),
            )
            return tf.logical_and(written, tf.summary.experimental.write_raw_pb(tf.reshape(scalars, []), step))

    return tf.cond(tf.summary.should_record_summaries(), write, lambda: tf.constant(False))


def _serialize_step_and_scalars(
    tag: str, graph: gradflow_pb2.Graph, encode: Callable[..., gradflow_pb2.Step], *values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(the serialized step, the serialized Summary of its layer scalars). Runs inside the user's
    training function: a failure to make the scalars writes none and warns, never raises."""
    step = encode(*values)
    try:
        scalars = scalar_summary(tag, graph, step).SerializeToString()
    except Exception as e:  # noqa: BLE001 - logging must never stop training
        logger.warning("tb_gradflow: layer scalars of %r failed: %s: %s", tag, type(e).__name__, e)
        scalars = b""
    return np.array(step.SerializeToString(), dtype=object), np.array(scalars, dtype=object)


class NotLoggable(RuntimeError):
    """The call is somewhere nothing can be logged (an XLA-compiled function)."""


def _in_xla(
    name: str, loss_fn: Callable, args: tuple, kwargs: dict, variables: Any, optimizer: Any
) -> None:
    """XLA compiles neither host callbacks nor summary writes: say so, keep training the same."""
    message = (
        f"gradflow summary {name!r} is inside an XLA-compiled function (jit_compile=True) and "
        "logs nothing there; call it from a function without jit_compile (or eagerly), or use "
        "keras.GradFlowCallback, which probes outside XLA"
    )
    if optimizer is not None:
        plain_step(loss_fn, args, kwargs, variables, optimizer)
        message += "; the optimizer step is still taken"
    raise NotLoggable(message)


def _write_graph_once(writer: Any, tag: str, graph: gradflow_pb2.Graph, step: Any) -> tf.Tensor | None:
    """Writes a graph version's blob at the first step that is really recorded under `tag`."""
    key = (tag, graph.graph_id)
    written = _written.setdefault(writer, set())

    def write() -> tf.Tensor:
        # Serialized only when written: a large graph's blob costs milliseconds at every call.
        return tf.summary.write(
            tag=metadata.graph_tag(tag, graph.graph_id),
            tensor=lambda: tf.constant([graph.SerializeToString()]),
            step=step,
            metadata=metadata.graph_metadata(tag, graph.graph_id),
        )

    if tf.executing_eagerly():
        if key not in written and bool(write()):
            written.add(key)
        return None
    # In a graph, the same host-side set decides at run time, so that eager calls and every
    # trace of every function agree (a tf.Variable could not be created in a later trace).

    def needed() -> np.bool_:
        return np.bool_(key not in written)

    def mark(ok: np.ndarray) -> np.bool_:
        if ok:
            written.add(key)
        return np.bool_(ok)

    def write_and_mark() -> tf.Tensor:
        return tf.reshape(tf.numpy_function(mark, [write()], tf.bool, stateful=True), [])

    need = tf.reshape(tf.numpy_function(needed, [], tf.bool, stateful=True), [])
    return tf.cond(need, write_and_mark, lambda: tf.constant(False))
