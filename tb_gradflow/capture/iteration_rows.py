"""One backward loop iteration's gradients reduced to one row of numbers.

Inside a backward loop body every kernel runs once per iteration, so each distinct gradient
(one that is another's Reshape or Identity counts once: reductions.values_key) gets two: an
L2Loss of it (half its sum of squares) and one of its sign (half its count of nonzero
elements); a size unknown at trace time gets a third. A gradient that only concatenates or
stacks others of the row (an LSTM's gate gradients, joined back by its Split's gradient) gets
none: its sums are those of its parts, added after the loop. Measured in a 32-iteration loop
of an LSTM's 18 gradients: stacking those of one shape and reducing each stack with
EuclideanNorm cost about three times as much as one L2Loss per gradient (the stack is a copy,
and the reduction over inner axes is slower than L2Loss's).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import tensorflow as tf

from tb_gradflow.capture.reductions import values_key

# Ops whose output holds exactly the elements of their float inputs (axis and shape inputs are
# integers): its sum of squares and count of nonzero elements are the sums of theirs.
_JOINS = {"ConcatV2": slice(0, -1), "Concat": slice(1, None), "Pack": slice(None)}


@dataclasses.dataclass
class Row:
    """One iteration's numbers as a vector, and which of its columns add up to each
    gradient's half sum of squares, half count of nonzero elements and (if not static) size."""

    values: tf.Tensor  # [width] float32
    sums: dict[Any, list[int]]  # values_key of a gradient -> its columns
    counts: dict[Any, list[int]]
    sizes: dict[Any, list[int]]

    def sum_of(self, grad: tf.Tensor) -> list[int]:
        """The columns adding up to half `grad`'s sum of squares."""
        return self.sums[values_key(grad)]


def iteration_row(grads: list[tf.Tensor], counted: list[tf.Tensor]) -> Row:
    """A row with the half sum of squares of every gradient in `grads` and also the half
    count of nonzero elements (and the size, when not static) of those in `counted`."""
    distinct: dict[Any, tf.Tensor] = {}
    for g in grads:
        distinct.setdefault(values_key(g), g)
    wants_count = {values_key(g) for g in counted}
    joined = _joins(distinct, wants_count)
    scalars: list[tf.Tensor] = []
    sums: dict[Any, list[int]] = {}
    counts: dict[Any, list[int]] = {}
    sizes: dict[Any, list[int]] = {}
    for k, g in distinct.items():
        if k in joined:
            continue
        sums[k] = [len(scalars)]
        scalars.append(half_sum(g))
        if k in wants_count:
            counts[k] = [len(scalars)]
            scalars.append(half_count(g))
            if g.shape.num_elements() is None:
                sizes[k] = [len(scalars)]
                scalars.append(tf.raw_ops.Cast(x=tf.raw_ops.Size(input=g), DstT=tf.float32))
    for k, parts in joined.items():
        sums[k] = [c for p in parts for c in sums[p]]
        counts[k] = [c for p in parts for c in counts[p]]
        if distinct[k].shape.num_elements() is None:
            sizes[k] = [c for p in parts for c in sizes.get(p, [])]
    return Row(tf.raw_ops.Pack(values=scalars), sums, counts, sizes)


def _joins(distinct: dict[Any, tf.Tensor], counted: set[Any]) -> dict[Any, list[Any]]:
    """Gradients made by joining others of the row, all counted and reduced themselves (not
    joins): the keys of their parts, in order."""
    joined: dict[Any, list[Any]] = {}
    for k, g in distinct.items():
        parts_of = _JOINS.get(g.op.type)
        if k not in counted or parts_of is None:
            continue
        parts = [values_key(t) for t in list(g.op.inputs)[parts_of]]
        if parts and all(_reduced_part(p, k, distinct, counted) for p in parts):
            joined[k] = parts
    return joined


def _reduced_part(part: Any, whole: Any, distinct: dict[Any, tf.Tensor], counted: set[Any]) -> bool:
    """Whether `part` is a counted gradient of the row other than `whole`, reduced itself."""
    return part in counted and part in distinct and part != whole and distinct[part].op.type not in _JOINS


def half_sum(g: tf.Tensor) -> tf.Tensor:
    """Half the sum of squares of `g` (an L2Loss), as float32."""
    return tf.raw_ops.L2Loss(t=_float32(g))


def half_count(g: tf.Tensor) -> tf.Tensor:
    """Half the count of nonzero elements of `g`: the L2Loss of its sign, taken in its own
    dtype (no value rounds to 0 first)."""
    return tf.raw_ops.L2Loss(t=_float32(tf.raw_ops.Sign(x=g)))


def _float32(g: tf.Tensor) -> tf.Tensor:
    if g.dtype.is_complex:
        g = tf.raw_ops.ComplexAbs(x=g, Tout=g.dtype.real_dtype)
    return g if g.dtype == tf.float32 else tf.raw_ops.Cast(x=g, DstT=tf.float32)
