"""Dead units of ReLU-family gates, counted on the device in the same pass.

Presence counts elements, so a ReLU with 12 of its 16 units dead for the whole batch still passes
back 17 % of its elements. Users mean units: one index along the last axis (the channel of an
NHWC convolution), dead when the gate is off there for every example of the batch (every row
of every other axis): its output is zero there, and it passes no gradient back there. That is
the gate's own doing, whatever arrives at its output. A unit that is on but that nothing
reaches passes back zero too, yet is not dead: when every unit of the layer after it is dead,
the ReLUs before it get no gradient at all, and calling them dead would send the user to fix
layers that are fine (their variables are told as getting an all-zero gradient instead).

Relu and Relu6 pass back zero wherever their output is zero (their gradient is zero for x <= 0),
so their output alone is read: one reduction per gate (an L2 norm over every axis but the last,
read once and written as a vector of the units), the output being kept for the backward pass
anyway. LeakyRelu and Elu output zero only at x = 0 and pass back there unless their slope is
0, so what they pass back is read too. A few kernels then count for all gates together.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from tb_gradflow.capture.loss_path import PathOp

# Gates whose units can be off. LeakyRelu passes back alpha * g on its negative side and Elu
# g * (y + 1): both output zero only at x = 0, where LeakyRelu passes back alpha * g and Elu g
# (so a LeakyRelu at alpha 0 has dead units, and the others none).
UNIT_GATES = frozenset({"Relu", "Relu6", "LeakyRelu", "Elu"})
# Of those, the ones whose gradient is zero wherever their output is zero: reading the output
# alone tells a unit off. (Relu6 is also flat above 6; a unit held at 6 for every example is not
# counted.)
OFF_PASSES_NOTHING = frozenset({"Relu", "Relu6"})


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


def dead_unit_counts(types: Sequence[str], grads: Sequence[tf.Tensor], outputs: Sequence[tf.Tensor],
                     widths: Sequence[int]) -> tf.Tensor:
    """[N] float32: per counted gate (its op type, what it passes back, its output, its units),
    how many units are off for every example: output zero and nothing passed back.

    The per-unit L2 norm is zero exactly when every entry is zero, up to float32 underflow: a
    unit whose values are below about 1e-19 everywhere counts as zero (they square to zero).
    """
    if not grads:
        return tf.zeros([0], tf.float32)
    zero = tf.constant(0.0)
    off = tf.raw_ops.Equal(x=_joined([_unit_norms(o) for o in outputs]), y=zero)
    if all(t in OFF_PASSES_NOTHING for t in types):
        closed = off
    else:
        passed = _joined([
            tf.zeros([w], tf.float32) if t in OFF_PASSES_NOTHING else _unit_norms(g)
            for t, g, w in zip(types, grads, widths, strict=True)
        ])
        closed = tf.raw_ops.LogicalAnd(x=off, y=tf.raw_ops.Equal(x=passed, y=zero))
    segments = tf.constant([k for k, w in enumerate(widths) for _ in range(w)], tf.int32)
    return tf.raw_ops.UnsortedSegmentSum(
        data=tf.raw_ops.Cast(x=closed, DstT=tf.float32),
        segment_ids=segments,
        num_segments=tf.constant(len(widths), tf.int32),
    )


def _unit_norms(g: tf.Tensor) -> tf.Tensor:
    """[units] float32: the L2 norm of `g` at each index of its last axis, over every other axis."""
    if g.dtype != tf.float32:
        g = tf.raw_ops.Cast(x=g, DstT=tf.float32)
    rank = g.shape.rank
    if rank == 1:  # a single row: the units are the elements
        return tf.raw_ops.Abs(x=g)
    return tf.raw_ops.EuclideanNorm(input=g, axis=tf.constant(list(range(rank - 1)), tf.int32))


def _joined(norms: list[tf.Tensor]) -> tf.Tensor:
    return norms[0] if len(norms) == 1 else tf.raw_ops.ConcatV2(values=norms, axis=tf.constant(0, tf.int32))
