"""Fallback when the loss cannot be traced into a graph: per-variable states from an eager tape."""
from __future__ import annotations

import hashlib
from typing import Any, Callable, Sequence

import tensorflow as tf

from tb_gradflow.capture.probe import ProbeResult, Reducer, _shape_text, tensor_state, track
from tb_gradflow.format.records import encode_step
from tb_gradflow.proto import gradflow_pb2


def eager_probe(
    loss_fn: Callable[..., Any],
    args: tuple,
    kwargs: dict,
    variables: Sequence[Any] | None,
    optimizer: Any,
    reason: str,
) -> ProbeResult:
    with tf.GradientTape() as tape:
        loss = loss_fn(*args, **kwargs)
    if variables is None:
        tracked = [track(v) for v in tape.watched_variables() if v.trainable]
    else:
        tracked = [track(v) for v in variables]
    grads = tape.gradient(loss, [v.tf_variable for v in tracked])
    if optimizer is not None:
        optimizer.apply_gradients([(g, v.user_variable) for g, v in zip(grads, tracked) if g is not None])
    graph = gradflow_pb2.Graph(loss_op=-1, fallback_reason=reason)
    for v in tracked:
        graph.variables.add(name=v.name, shape=_shape_text(v.tf_variable.shape), dtype=v.tf_variable.dtype.name)
    graph.graph_id = hashlib.sha256(graph.SerializeToString(deterministic=True)).hexdigest()[:16]
    values = []
    reducer = Reducer()
    for g in grads:
        if g is None:
            values.append(tensor_state(False, 0.0))
        else:
            values.append(tensor_state(True, *(float(x) for x in reducer.exact([g])[0])))
    step = encode_step(
        graph.graph_id, [], [], [s for s, _ in values], [n for _, n in values],
        float(tf.reduce_sum(tf.cast(loss, tf.float32)).numpy()),
    )
    return ProbeResult(graph, step)
