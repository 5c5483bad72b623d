"""Dead units of ReLU-family gates, counted on the device from what each gate passes back.

Presence counts elements, so a ReLU with 12 of its 16 units dead for the whole batch still passes
back 17 % of its elements. Users mean units: one index along the last axis (the channel of an
NHWC convolution), dead when the gradient the gate passes back to its input is exactly zero at
that index for every example of the batch (every row of every other axis).

The gradient passed back is recorded anyway for presence (capture/gates.py), so the count costs
one reduction per gate (an L2 norm over every axis but the last, read once and written as a
vector of the units) and four kernels for all gates together.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from tb_gradflow.capture.loss_path import PathOp

# Gates whose passed-back gradient is zero where the unit is off. LeakyRelu passes back
# alpha * g on its negative side, zero only at alpha 0; Elu passes back g * exp(x), zero only
# where exp underflows (x below about -104 in float32). Both are counted by the same rule: the
# count says what really passes back, whatever the op.
UNIT_GATES = frozenset({"Relu", "Relu6", "LeakyRelu", "Elu"})


def unit_width(p: PathOp, passed_back: Sequence[Any]) -> int:
    """The number of units of gate `p` (its last axis), or 0 if its dead units are not counted:
    not a ReLU-family op, nothing passed back, or a last axis unknown at trace time."""
    if (
        p.op.type not in UNIT_GATES
        or len(passed_back) != 1
        or not isinstance(passed_back[0], tf.Tensor)
    ):
        return 0
    grad = passed_back[0]
    if grad.shape.rank is None or grad.shape.rank < 1 or grad.dtype.is_complex:
        return 0
    width = grad.shape[-1]
    return int(width) if width else 0


def dead_unit_counts(grads: Sequence[tf.Tensor], widths: Sequence[int]) -> tf.Tensor:
    """[N] float32: per gradient (one per counted gate, `widths` its units), how many units get
    an exactly zero gradient at every row.

    The per-unit L2 norm is zero exactly when every entry is zero, up to float32 underflow: a
    unit whose gradient is below about 1e-19 everywhere counts as dead (it squares to zero).
    """
    if not grads:
        return tf.zeros([0], tf.float32)
    norms = []
    for g in grads:
        if g.dtype != tf.float32:
            g = tf.raw_ops.Cast(x=g, DstT=tf.float32)
        rank = g.shape.rank
        if rank == 1:  # a single row: the units are the elements
            norms.append(tf.raw_ops.Abs(x=g))
        else:
            norms.append(
                tf.raw_ops.EuclideanNorm(input=g, axis=tf.constant(list(range(rank - 1)), tf.int32))
            )
    units = (
        norms[0]
        if len(norms) == 1
        else tf.raw_ops.ConcatV2(values=norms, axis=tf.constant(0, tf.int32))
    )
    dead = tf.raw_ops.Cast(x=tf.raw_ops.Equal(x=units, y=tf.constant(0.0)), DstT=tf.float32)
    segments = tf.constant([k for k, w in enumerate(widths) for _ in range(w)], tf.int32)
    return tf.raw_ops.UnsortedSegmentSum(
        data=dead, segment_ids=segments, num_segments=tf.constant(len(widths), tf.int32)
    )
