"""Gradients reduced to a few numbers on the device, and those numbers read back as states."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import tensorflow as tf

from tb_gradflow import vocabulary as V


class Reducer:
    """Reduces gradients to a few numbers on the device, with raw ops and no temporaries.

    Every gradient gets its sum of squares (one kernel). Variables' gradients also get their max
    and min: the float32 sum of squares is ambiguous at the edges (values below ~1e-19 square to
    0, above ~1e19 to Inf), and a variable's state must be exact. For the many op tensors that
    would triple the kernels of a small model's step, so their state comes from the sum alone.
    """

    def __init__(self) -> None:
        self._flat_shape: tf.Tensor | None = None
        self._axis: tf.Tensor | None = None

    @staticmethod
    def _as_float32(grad: Any) -> tf.Tensor:
        if isinstance(grad, tf.IndexedSlices):
            grad = grad.values
        if grad.dtype.is_complex:
            grad = tf.raw_ops.ComplexAbs(x=grad, Tout=grad.dtype.real_dtype)
        if grad.dtype != tf.float32:
            grad = tf.raw_ops.Cast(x=grad, DstT=tf.float32)
        return grad

    def _extremes(self, grad: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        # Flattened first: a gradient's static shape can promise a rank its value lacks
        # (tf.py_function hands back a rank-0 zero for a matrix input).
        if self._flat_shape is None:
            self._flat_shape = tf.constant([-1], tf.int32)
            self._axis = tf.constant([0], tf.int32)
        flat = tf.raw_ops.Reshape(tensor=grad, shape=self._flat_shape)
        return tf.raw_ops.Max(input=flat, axis=self._axis), tf.raw_ops.Min(input=flat, axis=self._axis)

    def sums(self, grads: list[Any]) -> tf.Tensor:
        """[N]: half the sum of squares of each gradient."""
        if not grads:
            return tf.zeros([0], tf.float32)
        unique, rows = _distinct(grads)
        packed = tf.raw_ops.Pack(values=[tf.raw_ops.L2Loss(t=self._as_float32(g)) for g in unique])
        return _spread(packed, rows)

    def exact(self, grads: list[Any]) -> tf.Tensor:
        """[N, 3]: half sum of squares, max and min of each gradient."""
        if not grads:
            return tf.zeros([0, 3], tf.float32)
        columns: list[list[tf.Tensor]] = [[], [], []]
        for g in grads:
            g = self._as_float32(g)
            high, low = self._extremes(g)
            for column, value in zip(columns, (tf.raw_ops.L2Loss(t=g), high, low)):
                column.append(value)
        return tf.raw_ops.Pack(values=[tf.raw_ops.Pack(values=c) for c in columns], axis=1)


    def presence(self, grads: list[Any]) -> tf.Tensor:
        """[N, 2]: half the count of nonzero elements, and the count of all elements, of each
        gradient (the host doubles the first: `step_layout`).

        Counted as the sum of squares of the gradient's sign: two passes that vectorize (about a
        third of the cost of a finite-and-nonzero mask), and no more kernels per gradient, since
        sizes known at trace time are constants. An Inf counts as present and a NaN makes the
        count NaN, so presence is only read for gradients whose state is not `nonfinite`. An
        IndexedSlices gradient (an embedding's) is summed per distinct row first, as its dense
        form would be, and counted against the dense shape: rows the batch does not touch get
        no gradient.
        """
        if not grads:
            return tf.zeros([0, 2], tf.float32)
        unique, rows = _distinct(grads)
        counts, sizes = zip(*(self._present_and_size(g) for g in unique))
        if all(isinstance(n, int) for n in sizes):
            size_column = tf.constant(sizes, tf.float32)
        else:
            size_column = tf.raw_ops.Pack(values=[_as_count(n) for n in sizes])
        return _spread(tf.raw_ops.Pack(values=[tf.raw_ops.Pack(values=list(counts)), size_column], axis=1), rows)

    def _present_and_size(self, grad: Any) -> tuple[tf.Tensor, int | tf.Tensor]:
        if isinstance(grad, tf.IndexedSlices):
            rows, row_of = tf.raw_ops.Unique(x=grad.indices, out_idx=tf.int32)
            values = tf.raw_ops.UnsortedSegmentSum(
                data=grad.values, segment_ids=row_of, num_segments=tf.raw_ops.Size(input=rows)
            )
            static = tf.get_static_value(grad.dense_shape)
            size = int(np.prod(static)) if static is not None else tf.raw_ops.Prod(input=grad.dense_shape, axis=0)
            return self._half_count_nonzero(values), size
        n = grad.shape.num_elements()
        return self._half_count_nonzero(grad), n if n is not None else tf.raw_ops.Size(input=grad)

    @staticmethod
    def _half_count_nonzero(grad: tf.Tensor) -> tf.Tensor:
        if grad.dtype.is_complex:
            grad = tf.raw_ops.ComplexAbs(x=grad, Tout=grad.dtype.real_dtype)
        sign = tf.raw_ops.Sign(x=grad)  # in the gradient's own dtype: no value rounds to 0 first
        if sign.dtype != tf.float32:
            sign = tf.raw_ops.Cast(x=sign, DstT=tf.float32)
        return tf.raw_ops.L2Loss(t=sign)


def _distinct(grads: list[Any]) -> tuple[list[Any], list[int] | None]:
    """The gradients without repeats, and the row of each given one among them (None when all
    are distinct). One gradient tensor often serves several op outputs (TensorFlow hands the
    same tensor to an Identity's input and output, say): a fifth of ResNet50's, reduced once."""
    rows_of: dict[Any, int] = {}
    unique: list[Any] = []
    rows: list[int] = []
    for g in grads:
        key = id(g) if isinstance(g, tf.IndexedSlices) else g.ref()
        if key not in rows_of:
            rows_of[key] = len(unique)
            unique.append(g)
        rows.append(rows_of[key])
    return unique, (None if len(unique) == len(grads) else rows)


def _spread(packed: tf.Tensor, rows: list[int] | None) -> tf.Tensor:
    """Rows of the distinct gradients' reductions back in the order of the given ones."""
    if rows is None:
        return packed
    return tf.raw_ops.GatherV2(params=packed, indices=tf.constant(rows, tf.int32), axis=tf.constant(0, tf.int32))


def _as_count(n: tf.Tensor) -> tf.Tensor:
    return tf.raw_ops.Cast(x=n, DstT=tf.float32)


def tensor_state(
    has_grad: bool, half_sumsq: float = 0.0, high: float | None = None, low: float | None = None
) -> tuple[str, float | None]:
    """State and L2 norm of one gradient from its reductions (see Reducer)."""
    if not has_grad:
        return V.NONE, None
    sumsq = 2.0 * half_sumsq
    if math.isnan(sumsq):
        return V.NONFINITE, sumsq
    if high is None or low is None:
        if math.isinf(sumsq):
            return V.NONFINITE, sumsq
        return (V.ZERO, 0.0) if sumsq == 0.0 else (V.FLOWING, math.sqrt(sumsq))
    maxabs = max(high, -low)  # -inf for an empty gradient: max and min of nothing
    if math.isinf(maxabs) and maxabs > 0:
        return V.NONFINITE, math.inf
    if maxabs <= 0.0:
        return V.ZERO, 0.0
    # The float32 sum of squares underflows to 0 or overflows to Inf for extreme finite values.
    return V.FLOWING, math.sqrt(sumsq) if 0.0 < sumsq < math.inf else maxabs


def combine(values: list[tuple[str, float | None]]) -> tuple[str, float | None]:
    state = V.combined_state([s for s, _ in values])
    if state == V.NONE:
        return state, None
    if state == V.NONFINITE:
        bad = [n for s, n in values if s == V.NONFINITE]
        return state, bad[0]
    return state, math.sqrt(sum(n * n for s, n in values if n is not None and s != V.NONE))
