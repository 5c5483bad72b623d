"""A record of the ops an eager loss ran, to name the op that starves a variable without a graph.

When the loss cannot be traced (it calls `.numpy()`, say), the eager fallback still runs it under a
tape. Logging every op that run executes (TensorFlow's op callback) gives the data flow: which
tensors each op read and wrote, and the user's line it ran from. For a variable the tape leaves
without a gradient, the first op on the way to the loss that takes a value depending on the
variable and gives nothing back to it is the cut; whether an op gives a gradient back is asked of
the tape itself, over that one op.
"""
from __future__ import annotations

import dataclasses
import sys
from typing import Any, Sequence

import tensorflow as tf

from tb_gradflow import vocabulary as V
from tb_gradflow.capture import tf_internals
from tb_gradflow.capture.loss_path import is_differentiable_dtype, is_measurable_dtype
from tb_gradflow.capture.sources import USER, frame_kind, frame_text


@dataclasses.dataclass
class LoggedOp:
    type: str
    inputs: list[Any]
    outputs: list[Any]
    source: str


def _user_line() -> str:
    frame = sys._getframe(2)  # pylint: disable=protected-access
    while frame is not None:
        if frame_kind(frame.f_code.co_filename) == USER:
            return frame_text(frame.f_code.co_filename, frame.f_lineno)
        frame = frame.f_back
    return ""


class OpLog:
    """Context manager: the eager ops run inside it, in order."""

    def __init__(self) -> None:
        self.ops: list[LoggedOp] = []

    def _record(self, op_type, inputs, attrs, outputs, op_name=None, graph=None):  # noqa: ARG002
        if graph is None:  # eager execution only; graph building is the probe's business
            self.ops.append(LoggedOp(op_type, list(inputs), list(outputs or ()), _user_line()))
        return None

    def __enter__(self) -> "OpLog":
        self._context = tf_internals.op_callback(self._record)
        self._context.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._context.__exit__(*exc)


@dataclasses.dataclass
class EagerCut:
    op: LoggedOp
    cause: str
    detail: str
    starved: list[int]


def _cause(op: LoggedOp) -> tuple[str, str]:
    if op.type in ("PyFunc", "PyFuncStateless"):
        return V.NUMPY_FUNCTION, "tf.numpy_function has no gradient"
    if op.type == "StopGradient":
        return V.STOP_GRADIENT, "tf.stop_gradient (often intended)"
    if op.type == "Cast" and op.outputs and not is_measurable_dtype(op.outputs[0].dtype):
        return V.INTEGER_CAST, f"cast to {op.outputs[0].dtype.name}"
    return V.NON_DIFFERENTIABLE, f"{op.type} passes no gradient (seen in an eager run)"


def _feeds_loss(ops: list[LoggedOp], loss: Any) -> set[int]:
    producer = {id(t): i for i, op in enumerate(ops) for t in op.outputs}
    feeding: set[int] = set()
    stack = [producer[id(loss)]] if id(loss) in producer else []
    while stack:
        i = stack.pop()
        if i in feeding:
            continue
        feeding.add(i)
        stack.extend(producer[id(t)] for t in ops[i].inputs if id(t) in producer)
    return feeding


def _passes(tape: tf.GradientTape, op: LoggedOp, tainted: list[Any]) -> bool:
    outputs = [t for t in op.outputs if is_measurable_dtype(t.dtype)]
    sources = [
        t for t in tainted
        if isinstance(t, tf.Variable) or (is_differentiable_dtype(t.dtype) and t.dtype != tf.resource)
    ]
    if not outputs or not sources:
        return False
    try:
        grads = tape.gradient(outputs, sources, unconnected_gradients=tf.UnconnectedGradients.NONE)
    except Exception:  # noqa: BLE001 - an op with no gradient registered raises here
        return False
    return any(g is not None for g in grads)


def eager_cuts(log: OpLog, tape: tf.GradientTape, loss: Any, starved: Sequence[tuple[int, tf.Variable]]) -> list[EagerCut]:
    """For each starved variable (index, tf.Variable): the first op on the way to the loss that
    takes a value depending on it and passes no gradient; cuts grouped by op."""
    ops = log.ops
    feeding = _feeds_loss(ops, loss)
    by_op: dict[int, EagerCut] = {}
    for index, variable in starved:
        handle = id(variable.handle)
        tainted = {handle}
        for i, op in enumerate(ops):
            inputs = [variable if id(t) == handle else t for t in op.inputs if id(t) in tainted]
            if not inputs or i not in feeding:
                continue
            if op.type == "ReadVariableOp" or _passes(tape, op, inputs):
                tainted.update(id(t) for t in op.outputs)
                continue
            if i not in by_op:
                by_op[i] = EagerCut(op, *_cause(op), [])
            by_op[i].starved.append(index)
            break
    return [by_op[i] for i in sorted(by_op)]
