"""The backward pass: one `tf.gradients` call to every measured tensor and every variable."""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from tb_gradflow.capture.bodies import BodyMeter
from tb_gradflow.capture.cuts import Structure, analyze_structure
from tb_gradflow.capture.gates import gated_inputs, record_passed_back
from tb_gradflow.capture.loss_path import PathOp, carries_gradient, is_measurable_dtype
from tb_gradflow.capture.registry_hook import watch_registry
from tb_gradflow.capture.variables import TrackedVariable


@dataclasses.dataclass
class Backward:
    """What the backward pass gives, kept apart so that each reduction reads the same tensors."""
    # Per path op: positions of its measured outputs in `measured`.
    op_tensors: list[list[int]]
    # Gradient of each measured tensor and of each variable; None where none really reaches it.
    tensor_grads: list[Any]
    variable_grads: list[Any]
    structure: Structure
    # Per path op: the gradients a gating op passes back to its gated inputs ([] for other ops).
    passed_back: list[list[Any]] = dataclasses.field(default_factory=list)
    # Per path op: for a gate with something passed back, the gradient arriving at its output.
    received: list[Any] = dataclasses.field(default_factory=list)
    # Accumulators of the gradients inside While bodies and through loops' iterations.
    bodies: BodyMeter | None = None

    def presence_sources(self) -> tuple[list[Any], list[int], list[Any]]:
        """(gradients whose presence is measured, the path op each belongs to, what each is
        counted against): a gate's passed-back gradients, counted against the nonzero elements
        of the gradient it received where the shapes agree (capture/gates.py), else the
        gradients of the op's measured outputs, counted against their size (None)."""
        grads: list[Any] = []
        owners: list[int] = []
        against: list[Any] = []
        for i, positions in enumerate(self.op_tensors):
            received = self.received[i] if self.passed_back[i] else None
            mine = self.passed_back[i] or [self.tensor_grads[k] for k in positions]
            for g in mine:
                if g is not None:
                    grads.append(g)
                    owners.append(i)
                    against.append(received if _same_shape(received, g) else None)
        return grads, owners, against


# Ops that read a TensorList's elements out as a float tensor: the gradient arriving at that
# tensor is exactly what arrives at the list (TensorFlow builds the list's gradient from it).
LIST_READS = frozenset({"TensorListStack", "TensorListGetItem", "TensorListGather", "TensorListPopBack"})


def _list_reads(op: tf.Operation) -> list[tf.Tensor]:
    """The float tensors read out of `op`'s TensorList outputs (a Keras RNN's `While` hands its
    outputs to the loss through a TensorList, stacked after the loop), through identities."""
    found: list[tf.Tensor] = []
    frontier = [t for t in op.outputs if t.dtype.base_dtype == tf.variant and carries_gradient(t)]
    for _ in range(4):  # a few identities deep
        nxt: list[tf.Tensor] = []
        for t in frontier:
            for consumer in t.consumers():
                if consumer.type in LIST_READS:
                    found.extend(o for o in consumer.outputs if is_measurable_dtype(o.dtype))
                elif consumer.type in ("Identity", "IdentityN"):
                    nxt.extend(o for o in consumer.outputs if o.dtype.base_dtype == tf.variant)
        frontier = nxt
    return found


def measured_tensors(ops: list[PathOp]) -> tuple[list[tf.Tensor], list[list[int]]]:
    """The float outputs of top-level path ops (body values are not fetched), and their positions.

    An op's TensorList outputs (variants, which have no norm) are measured by the float tensors
    read out of them, so that a loop whose gradient arrives only through its list is not told
    as reached by none."""
    measured: list[tf.Tensor] = []
    op_tensors: list[list[int]] = []
    for p in ops:
        positions = []
        if p.top_level and p.op.type != "Placeholder":
            for t in [*(t for t in p.op.outputs if is_measurable_dtype(t.dtype)), *_list_reads(p.op)]:
                positions.append(len(measured))
                measured.append(t)
        op_tensors.append(positions)
    return measured, op_tensors


def backward_pass(
    loss: tf.Tensor,
    ops: list[PathOp],
    variables: Sequence[TrackedVariable],
    handles: list[tf.Tensor | None],
    index: dict,
    loss_scale: tf.Tensor | None = None,
    measure_bodies: bool = False,
) -> Backward:
    """With `loss_scale`, the gradients are those of `loss * loss_scale` (optimizer_step).
    Each While loop's iterations are measured; with `measure_bodies`, the ops inside While
    bodies too (capture/bodies.py)."""
    measured, op_tensors = measured_tensors(ops)
    gates = {p.key: gated_inputs(p) for p in ops}
    meter = BodyMeter(ops, measure_ops=measure_bodies)
    with watch_registry() as calls, record_passed_back({k: g for k, g in gates.items() if g}) as gated, \
            meter.recording():
        grads = tf.gradients(loss, measured + [v.tf_variable for v in variables], grad_ys=loss_scale)
    t_grads, v_grads = grads[: len(measured)], grads[len(measured):]
    structure = analyze_structure(ops, dict(calls), loss, handles, index)
    # Only what really carries a gradient: While/If gradients hand back zeros, not None,
    # for inputs their bodies cut off.
    t_grads = [g if t.ref() in structure.has_grad else None for t, g in zip(measured, t_grads, strict=False)]
    v_grads = [g if ok else None for g, ok in zip(v_grads, structure.variable_has_grad, strict=False)]
    passed_back = [
        gated.passed.get(p.key, []) if any(t_grads[k] is not None for k in positions) else []
        for p, positions in zip(ops, op_tensors, strict=False)
    ]
    received = [gated.received.get(p.key) if passed else None for p, passed in zip(ops, passed_back, strict=True)]
    return Backward(op_tensors, t_grads, v_grads, structure, passed_back, received, meter)


def _same_shape(a: Any, b: Any) -> bool:
    """Whether dense tensors `a` and `b` have one fully known static shape."""
    return (
        isinstance(a, tf.Tensor) and isinstance(b, tf.Tensor)
        and a.shape.is_fully_defined() and a.shape == b.shape
    )
