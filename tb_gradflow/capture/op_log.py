"""A record of the ops an eager loss ran, to name the op that starves a variable without a graph.

When the loss cannot be traced (it calls `.numpy()`, say), the eager fallback still runs it under a
tape. Logging every op that run executes (TensorFlow's op callback) gives the data flow: which
tensors each op read and wrote, and the user's line it ran from. For a variable the tape leaves
without a gradient, the cut is an op that a gradient from the loss reaches and that gives nothing
back to an input depending on the variable: the counterfactual of starving.py, over the log.
Whether an op gives a gradient back is asked of the tape itself, over that one op.
"""
from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any

import tensorflow as tf

from tb_gradflow import vocabulary as V
from tb_gradflow.capture import tf_internals
from tb_gradflow.capture.cuts import VARIABLE_READS
from tb_gradflow.capture.loss_path import (
    SHAPE_ONLY,
    bit_indices,
    is_differentiable_dtype,
    is_measurable_dtype,
)
from tb_gradflow.capture.sources import USER, frame_kind, frame_text


@dataclasses.dataclass
class LoggedOp:
    """An op as the eager hook saw it, kept so that eager cuts can be named after the fact."""
    type: str
    inputs: list[Any]
    outputs: list[Any]
    source: str


def _user_line() -> str:
    frame: FrameType | None = sys._getframe(2)  # pylint: disable=protected-access
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

    def __enter__(self) -> OpLog:
        self._context = tf_internals.op_callback(self._record)
        self._context.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._context.__exit__(*exc)


@dataclasses.dataclass
class EagerCut:
    """A cut found in an eager run, where no graph is left to point at."""
    op: LoggedOp
    cause: str
    detail: str
    starved: list[int]


def _cause(op: LoggedOp) -> tuple[str, str]:
    if op.type in ("PyFunc", "PyFuncStateless"):
        return V.NUMPY_FUNCTION, "tf.numpy_function has no gradient"
    if op.type == "StopGradient":
        return V.STOP_GRADIENT, "tf.stop_gradient (often intended)"
    if op.type in VARIABLE_READS and op.outputs and not is_measurable_dtype(op.outputs[0].dtype):
        dtypes = ", ".join(sorted({t.dtype.name for t in op.outputs}))
        return V.INTEGER_VARIABLE, V.INTEGER_VARIABLE_DETAIL.format(dtypes=dtypes)
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


def _taped(log: OpLog, tape: tf.GradientTape) -> set[int]:
    """Ids of the tensors the tape recorded: read from a watched variable, or computed from one.

    The tape records an op only when a float input is watched; for other tensors it has no answer.
    """
    handles = {id(v.handle) for v in tape.watched_variables()}
    taped: set[int] = set()
    for op in log.ops:
        if any(id(t) in handles or id(t) in taped for t in op.inputs):
            taped.update(id(t) for t in op.outputs if is_differentiable_dtype(t.dtype))
    return taped


class _Passes:
    """Whether an op gives its input a gradient, asked of the tape over that one op.

    Asked once per op signature (type, input position, dtypes): a gradient function decides by
    the op's type, so a model of thousands of ops costs a few dozen questions. For a tensor the
    tape did not record, the gradient registry answers (is there a gradient function at all).
    """

    def __init__(self, tape: tf.GradientTape, taped: set[int]):
        self._tape = tape
        self._taped = taped
        self._known: dict[tuple, bool] = {}

    def __call__(self, op: LoggedOp, position: int, source: Any) -> bool:
        if op.type == "ReadVariableOp":  # an integer variable's read passes nothing
            return is_measurable_dtype(op.outputs[0].dtype) if op.outputs else True
        if not any(is_measurable_dtype(t.dtype) for t in op.outputs):
            return False
        if not (isinstance(source, tf.Variable) or id(source) in self._taped):
            return is_differentiable_dtype(source.dtype) and _registered(op.type)
        key = (op.type, position, tuple(t.dtype for t in op.inputs), tuple(t.dtype for t in op.outputs))
        if key not in self._known:
            self._known[key] = self._ask(op, source)
        return self._known[key]

    def _ask(self, op: LoggedOp, source: Any) -> bool:
        outputs = [t for t in op.outputs if is_measurable_dtype(t.dtype)]
        try:
            grads = self._tape.gradient(outputs, [source], unconnected_gradients=tf.UnconnectedGradients.NONE)
        except Exception:  # noqa: BLE001 - an op with no gradient registered raises here
            return False
        return grads[0] is not None


def _registered(op_type: str) -> bool:
    try:
        return tf_internals.registered_gradient(op_type) is not None
    except LookupError:
        return False


def _reached(log: OpLog, feeding: set[int], passes: _Passes, loss: Any) -> list[bool]:
    """Which logged ops a gradient from the loss reaches: the eager twin of the probe's walk.

    An op is reached when an output gets the gradient, or when it outputs integers that a reached
    op reads (where a gradient would have had to pass).
    """
    wanted = {id(loss)}
    reached = [False] * len(log.ops)
    for i in sorted(feeding, reverse=True):
        op = log.ops[i]
        if op.type in SHAPE_ONLY or not any(id(t) in wanted for t in op.outputs):
            continue
        reached[i] = True
        for position, t in enumerate(op.inputs):
            if not is_differentiable_dtype(t.dtype) or passes(op, position, t):
                wanted.add(id(t))
    return reached


def eager_cuts(
    log: OpLog, tape: tf.GradientTape, loss: Any, starved: Sequence[tuple[int, tf.Variable]]
) -> list[EagerCut]:
    """The ops of the eager run that starve variables, by the rule of starving.py.

    A reached op starves a starved variable (index, tf.Variable) when an input it passes no
    gradient to depends on the variable through ops that pass one, or that no gradient reaches
    (behind a cut, everything counts as passing). One backward pass for reachability, one forward
    pass with the variables a value depends on as a bitset.
    """
    feeding = _feeds_loss(log.ops, loss)
    passes = _Passes(tape, _taped(log, tape))
    reached = _reached(log, feeding, passes, loss)
    deps: dict[int, int] = {id(v.handle): 1 << k for k, (_, v) in enumerate(starved)}
    variable_of = {id(v.handle): v for _, v in starved}
    cuts: list[EagerCut] = []
    for i, op in enumerate(log.ops):
        if i not in feeding or op.type in SHAPE_ONLY:
            continue
        flowing = blocked = 0
        for position, t in enumerate(op.inputs):
            bits = deps.get(id(t), 0)
            if not bits:
                continue
            if not reached[i] or passes(op, position, variable_of.get(id(t), t)):
                flowing |= bits
            else:
                blocked |= bits
        if blocked:
            cuts.append(EagerCut(op, *_cause(op), [starved[k][0] for k in bit_indices(blocked)]))
        if flowing:
            for t in op.outputs:
                deps[id(t)] = deps.get(id(t), 0) | flowing
    return cuts
