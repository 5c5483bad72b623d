"""`tb_gradflow.summary.gradflow`: analyze and write one step, following `tf.summary` conventions."""
from __future__ import annotations

import logging
import weakref
from typing import Any, Callable, Sequence

import tensorflow as tf

from tb_gradflow.capture.analyze import run_probe
from tb_gradflow.capture.tf_internals import default_summary_writer
from tb_gradflow.format import metadata
from tb_gradflow.format.records import build_report
from tb_gradflow.report import Report

logger = logging.getLogger("tb_gradflow")

# Graph versions already written, per writer: a graph is stored once, not at every step.
_written: "weakref.WeakKeyDictionary[Any, set[str]]" = weakref.WeakKeyDictionary()


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
    step: int | None = None,
    description: str | None = None,
    optimizer: Any = None,
    strict: bool = False,
    **kwargs: Any,
) -> Report | None:
    """Analyzes `loss_fn(*args, **kwargs)` and writes the step to the default summary writer.

    With `optimizer`, the variable gradients are applied too, so this call can be the training
    step. Returns the report; with no default writer it writes nothing. Any failure is logged
    as a warning and returns None, unless `strict=True`.
    """
    try:
        if not is_chief():
            return None
        result = run_probe(loss_fn, args, kwargs, variables, optimizer)
        writer = _current_writer()
        if step is None:
            step = tf.summary.experimental.get_step()
        step_value = None if step is None else int(step.numpy() if hasattr(step, "numpy") else step)
        report = build_report(result.graph, result.step, step_value)
        if writer is not None:
            if step_value is None:
                raise ValueError(
                    "no step: pass step= or set tf.summary.experimental.set_step()"
                )
            _write(writer, name, result, step_value, description or "")
        return report
    except Exception as e:  # noqa: BLE001 - logging must never stop training
        if strict:
            raise
        logger.warning("tb_gradflow: gradflow summary %r failed: %s: %s", name, type(e).__name__, e)
        return None


def _write(writer: Any, name: str, result: Any, step: int, description: str) -> None:
    graph_id = result.graph.graph_id
    written = _written.setdefault(writer, set())
    with writer.as_default():
        if graph_id not in written:
            tf.summary.write(
                tag=metadata.graph_tag(name, graph_id),
                tensor=tf.constant([result.graph.SerializeToString()]),
                step=step,
                metadata=metadata.graph_metadata(name, graph_id),
            )
            written.add(graph_id)
        tf.summary.write(
            tag=name,
            tensor=tf.constant(result.step.SerializeToString()),
            step=step,
            metadata=metadata.step_metadata(name, description),
        )
