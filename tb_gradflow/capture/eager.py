"""Fallback when the loss cannot be traced into a graph: per-variable states from an eager tape."""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from tb_gradflow import vocabulary as V
from tb_gradflow.capture.graph_proto import graph_skeleton, loss_shape_text, seal
from tb_gradflow.capture.op_log import OpLog, eager_cuts
from tb_gradflow.capture.optimizer_step import apply_gradients, loss_scale, unscale_reductions
from tb_gradflow.capture.probe import ProbeResult, check_loss_value
from tb_gradflow.capture.reductions import Reducer, presence_fractions, tensor_state
from tb_gradflow.capture.variables import Namer, discover
from tb_gradflow.format.records import encode_step
from tb_gradflow.proto import gradflow_pb2

logger = logging.getLogger("tb_gradflow")


def eager_probe(
    loss_fn: Callable[..., Any],
    args: tuple,
    kwargs: dict,
    variables: Sequence[Any] | None,
    optimizer: Any,
    reason: str,
    namer: Namer | None = None,
) -> ProbeResult:
    """The probe for eager code, which has no graph to read cuts from: the op log stands in."""
    # Persistent: after the step's gradients, the same tape tells which logged op passes none.
    with OpLog() as log, tf.GradientTape(persistent=True) as tape:
        loss = loss_fn(*args, **kwargs)
    check_loss_value(loss_fn, loss)
    discovery = discover(variables, tape.watched_variables(), namer or Namer(loss_fn))
    tracked = discovery.variables
    with tape:  # the optimizer's documented step: gradients of its scaled loss
        scale = loss_scale(optimizer, tf.convert_to_tensor(loss), [v.user_variable for v in tracked])
        scaled = loss if scale is None else loss * scale
    grads = tape.gradient(scaled, [v.tf_variable for v in tracked])
    if optimizer is not None:
        apply_gradients(optimizer, [v.user_variable for v in tracked], grads)
    sparse = [isinstance(g, tf.IndexedSlices) for g in grads]
    graph = graph_skeleton(
        discovery, sparse, loss_op=-1, fallback_reason=reason,
        loss_shape=loss_shape_text(tf.convert_to_tensor(loss)),
    )
    ungraded = [(i, v.tf_variable) for i, (v, g) in enumerate(zip(tracked, grads, strict=False)) if g is None]
    _add_cuts(graph, log, tape, loss, ungraded)
    del tape
    graph = seal(graph)
    present = [g for g in grads if g is not None]
    exact = unscale_reductions(tf.zeros([0]), Reducer().exact(present), scale)[1]
    stats = iter(exact.numpy()) if present else iter(())
    counts = Reducer().presence(present).numpy().reshape(-1, 2) if present else np.zeros((0, 2))
    values = [
        tensor_state(False) if g is None else tensor_state(True, *(float(x) for x in next(stats)))
        for g in grads
    ]
    with_grad = [i for i, g in enumerate(grads) if g is not None]
    presence = np.full(len(grads), np.nan)
    presence[with_grad] = presence_fractions(
        counts[:, 0], counts[:, 1], np.array([V.STATE_CODE[values[i][0]] for i in with_grad], np.uint8)
    )
    n_ops = len(graph.ops)
    step = encode_step(
        graph.graph_id, [V.NONE] * n_ops, [None] * n_ops, [s for s, _ in values], [n for _, n in values],
        float(tf.reduce_sum(tf.cast(loss, tf.float32)).numpy()),
        op_presence=[None] * n_ops,
        variable_presence=presence.tolist(),
    )
    return ProbeResult(graph, step)


def _add_cuts(graph: gradflow_pb2.Graph, log: OpLog, tape: tf.GradientTape, loss: Any, starved) -> None:
    """The ops of the eager run that starve variables, as the graph's only ops (see op_log)."""
    if not starved:
        return
    try:
        cuts = eager_cuts(log, tape, loss, starved)
    except Exception as e:  # noqa: BLE001 - naming the op is a bonus; the states stand without it
        logger.info("tb_gradflow: could not name the op in the eager run: %s", e)
        return
    for k, cut in enumerate(cuts):
        graph.ops.add(
            name=f"eager/{k}/{cut.op.type}", type=cut.op.type, source=cut.op.source,
            cause=V.CAUSE_CODE[cut.cause], cause_detail=cut.detail,
            starved_variables=cut.starved, parent=-1, measured=False,
        )
