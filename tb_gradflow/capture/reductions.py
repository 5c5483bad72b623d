"""Gradients reduced to a few numbers on the device, and those numbers read back as states."""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from tb_gradflow import vocabulary as V

# Small gradients of one shape and dtype are reduced together: one stack and a few kernels per
# stack instead of three kernels per gradient. On small tensors a kernel's dispatch costs more
# than its arithmetic (a 64-block Transformer's 3,090 distinct gradients fall into 13 shapes).
# A stack is a copy, and a profile puts most of the reductions' time in the stacks' Pack and
# the sign taken of them (for presence). Stacks are kept small: on that Transformer the probe
# measured 1.19 to 1.20 times a plain step with stacks of at most 128 KiB, against 1.24 to 1.26
# with 2 MiB, and 1.21 to 1.25 with 32, 64 or 256 KiB. Likely because a small stack is gathered
# from members computed close together (neighbours on the loss path), still in the cache. A
# stack of fewer than STACK_MIN_MEMBERS costs more than its members alone (and takes longer to
# trace), so larger gradients are reduced one by one.
STACK_MAX_BYTES = 1 << 17
STACK_MIN_MEMBERS = 8
GROUPED_MAX_BYTES = STACK_MAX_BYTES // STACK_MIN_MEMBERS


def static_shapes_trusted(ops: Iterable[Any]) -> bool:
    """Whether gradients among these ops can be grouped by their static shapes: not when a
    `tf.py_function` (EagerPyFunc) runs there, on the loss path or in a gradient (a custom one),
    since TensorFlow hands back a rank-0 zero for its matrix input and stamps the matrix's
    static shape on it. The one rule for the probe's stacks and a loop iteration's groups."""
    return not any(op.type == "EagerPyFunc" for op in ops)


class Reducer:
    """Reduces gradients to a few numbers on the device, with raw ops and no temporaries.

    Every gradient gets its sum of squares. Variables' gradients also get their max and min:
    the float32 sum of squares is ambiguous at the edges (values below ~1e-19 square to 0, above
    ~1e19 to Inf), and a variable's state must be exact. For the many op tensors that would
    triple the kernels of a small model's step, so their state comes from the sum alone.

    Small gradients of one shape and dtype are stacked once and every reduction reads the same
    stack: pass all the lists to be reduced as `planned` so that they share stacks.
    `grouped=False` reduces every gradient on its own: grouping trusts static shapes, which
    `static_shapes_trusted` says of a graph.
    """

    def __init__(self, grouped: bool = True, planned: Sequence[list[Any]] = ()) -> None:
        self._grouped = grouped
        self._flat_shape: tf.Tensor | None = None
        self._axis: tf.Tensor | None = None
        self._stack_members: list[list[Any]] = []
        # Distinct gradient -> (its stack, its row there).
        self._place: dict[Any, tuple[int, int]] = {}
        self._stacks: dict[int, tf.Tensor] = {}
        self._reduced: dict[tuple[str, int], tf.Tensor] = {}
        for grads in planned:
            self._plan([g for g in grads if g is not None])

    @staticmethod
    def _as_float32(grad: Any) -> tf.Tensor:
        grad = Reducer._dense_rows(grad)
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
        rows = self._rows(grads, "sums", _half_sums_of_squares, lambda g: [tf.raw_ops.L2Loss(t=self._as_float32(g))])
        return tf.raw_ops.Reshape(tensor=rows, shape=tf.constant([-1], tf.int32))

    def exact(self, grads: list[Any]) -> tf.Tensor:
        """[N, 3]: half sum of squares, max and min of each gradient."""
        if not grads:
            return tf.zeros([0, 3], tf.float32)
        return self._rows(grads, "exact", _sums_and_extremes, self._one_sum_and_extremes)

    def _one_sum_and_extremes(self, grad: Any) -> list[tf.Tensor]:
        g = self._as_float32(grad)
        return [tf.raw_ops.L2Loss(t=g), *self._extremes(g)]

    def presence(self, grads: list[Any], against: Sequence[Any] | None = None) -> tf.Tensor:
        """[N, 2]: half the count of nonzero elements, and the count of all elements, of each
        gradient (the host doubles the first: `step_layout`). Where `against[i]` is a tensor (what
        a gate received, of the same shape), the second column is instead the count of its
        nonzero elements: the gate's presence is the share of what arrives that it passes back.

        Counted from the gradient's sign: passes that vectorize (about a third of the cost of a
        finite-and-nonzero mask), and no more kernels per gradient, since sizes known at trace
        time are constants. An Inf counts as present and a NaN makes the count NaN, so presence
        is only read for gradients whose state is not `nonfinite`. An IndexedSlices gradient (an
        embedding's) is summed per distinct row first, as its dense form would be, and counted
        against the dense shape: rows the batch does not touch get no gradient.
        """
        if not grads:
            return tf.zeros([0, 2], tf.float32)
        sizes = [self._size(g) for g in grads]
        if all(isinstance(n, int) for n in sizes):
            size_column = tf.constant(sizes, tf.float32)
        else:
            size_column = tf.raw_ops.Pack(values=[_as_count(n) for n in sizes])
        counts = self._rows(
            grads, "presence", _half_counts_nonzero, lambda g: [self._half_count_nonzero(self._dense_rows(g))]
        )
        counts = tf.raw_ops.Reshape(tensor=counts, shape=tf.constant([-1], tf.int32))
        at = [i for i, a in enumerate(against or ()) if a is not None]
        if at:
            arriving = self._rows(
                [against[i] for i in at], "presence", _half_counts_nonzero,  # type: ignore[index]
                lambda g: [self._half_count_nonzero(g)],
            )
            size_column = tf.raw_ops.TensorScatterUpdate(
                tensor=size_column,
                indices=tf.constant([[i] for i in at], tf.int32),
                updates=2.0 * tf.raw_ops.Reshape(tensor=arriving, shape=tf.constant([-1], tf.int32)),
            )
        return tf.raw_ops.Pack(values=[counts, size_column], axis=1)

    def _plan(self, grads: list[Any]) -> None:
        """Stacks for those of `grads` not placed yet (see _stack_plan)."""
        if not self._grouped:
            return
        fresh = [g for g in _distinct(grads)[0] if values_key(g) not in self._place]
        for members in _stack_plan(fresh)[0]:
            for row, i in enumerate(members):
                self._place[values_key(fresh[i])] = (len(self._stack_members), row)
            self._stack_members.append([fresh[i] for i in members])

    def _reduced_stack(self, family: str, index: int, reduce_stack) -> tf.Tensor:
        if index not in self._stacks:
            self._stacks[index] = tf.raw_ops.Pack(values=self._stack_members[index])
        if (family, index) not in self._reduced:
            self._reduced[(family, index)] = reduce_stack(self._stacks[index])
        return self._reduced[(family, index)]

    def _rows(self, grads: list[Any], family: str, reduce_stack, reduce_one) -> tf.Tensor:
        """[N, C]: `reduce_stack` ([k, ...] -> [k, C]) over the stacks holding these gradients,
        `reduce_one` (one gradient -> C scalars) over the rest; each stack reduced once."""
        unique, rows = _distinct(grads)
        self._plan(unique)
        placed = [self._place.get(values_key(g)) for g in unique]
        parts: list[tf.Tensor] = []
        offset: dict[int, int] = {}
        size = 0
        for where in placed:
            if where is not None and where[0] not in offset:
                offset[where[0]] = size
                parts.append(self._reduced_stack(family, where[0], reduce_stack))
                size += len(self._stack_members[where[0]])
        alone = [i for i, where in enumerate(placed) if where is None]
        if alone:  # one Pack per column, not one per gradient: each is a kernel at every step
            columns = list(zip(*(reduce_one(unique[i]) for i in alone), strict=False))
            parts.append(tf.raw_ops.Pack(values=[tf.raw_ops.Pack(values=list(c)) for c in columns], axis=1))
        at_alone = {i: size + j for j, i in enumerate(alone)}
        indices = [at_alone[i] if where is None else offset[where[0]] + where[1] for i, where in enumerate(placed)]
        table = parts[0] if len(parts) == 1 else tf.raw_ops.ConcatV2(values=parts, axis=tf.constant(0, tf.int32))
        wanted = indices if rows is None else [indices[r] for r in rows]
        return _spread(table, None if wanted == list(range(size + len(alone))) else wanted)

    @staticmethod
    def _dense_rows(grad: Any) -> tf.Tensor:
        """An IndexedSlices' values summed per distinct row, as its dense form would hold them
        (a batch that looks up one row twice gets one row of gradient, the sum of both).

        Narrow rows of a small table (a lookup of a few numbers per index, from many indices)
        are summed into the whole dense table by a Bincount per column: UnsortedSegmentSum adds
        row by row, and on 32,768 rows of three that took a millisecond, a third of the demo
        VAE's whole logging cost. Rows the batch does not touch are zeros there, and count as
        such (presence counts against the dense shape anyway).
        """
        if not isinstance(grad, tf.IndexedSlices):
            return grad
        if _bincount_fits(grad):
            return _dense_by_bincount(grad)
        rows, row_of = tf.raw_ops.Unique(x=grad.indices, out_idx=tf.int32)
        return tf.raw_ops.UnsortedSegmentSum(
            data=grad.values, segment_ids=row_of, num_segments=tf.raw_ops.Size(input=rows)
        )

    @staticmethod
    def _size(grad: Any) -> int | tf.Tensor:
        if isinstance(grad, tf.IndexedSlices):
            static = tf.get_static_value(grad.dense_shape)
            return int(np.prod(static)) if static is not None else tf.raw_ops.Prod(input=grad.dense_shape, axis=0)
        n = grad.shape.num_elements()
        return n if n is not None else tf.raw_ops.Size(input=grad)

    @staticmethod
    def _half_count_nonzero(grad: tf.Tensor) -> tf.Tensor:
        if grad.dtype.is_complex:
            grad = tf.raw_ops.ComplexAbs(x=grad, Tout=grad.dtype.real_dtype)
        sign = tf.raw_ops.Sign(x=grad)  # in the gradient's own dtype: no value rounds to 0 first
        if sign.dtype != tf.float32:
            sign = tf.raw_ops.Cast(x=sign, DstT=tf.float32)
        return tf.raw_ops.L2Loss(t=sign)


# Bincount sums into the whole dense table: only for rows this narrow, and a table no larger
# than this many elements or than twice the slices themselves.
BINCOUNT_MAX_ROW = 16
BINCOUNT_MAX_TABLE = 1 << 16


def _bincount_fits(grad: tf.IndexedSlices) -> bool:
    dense = tf.get_static_value(grad.dense_shape)
    values = grad.values.shape
    if dense is None or len(dense) < 1 or grad.values.dtype not in (tf.float32, tf.float64):
        return False
    row, table = int(np.prod(dense[1:])), int(np.prod(dense))
    if not 0 < row <= BINCOUNT_MAX_ROW or table >= 1 << 31:
        return False
    sliced = values.num_elements()
    return table <= BINCOUNT_MAX_TABLE or (sliced is not None and table <= 2 * sliced)


def _dense_by_bincount(grad: tf.IndexedSlices) -> tf.Tensor:
    """The dense gradient of `grad` (see Reducer._dense_rows): each column of the rows summed
    by a Bincount of the indices weighted by that column (flat positions would need a
    broadcast add over every element, which costs as much as the sums themselves)."""
    dense = [int(d) for d in tf.get_static_value(grad.dense_shape)]
    row = int(np.prod(dense[1:]))
    indices = grad.indices if grad.indices.dtype == tf.int32 else tf.raw_ops.Cast(x=grad.indices, DstT=tf.int32)
    indices = tf.raw_ops.Reshape(tensor=indices, shape=tf.constant([-1]))
    size = tf.constant(dense[0], tf.int32)
    values = tf.raw_ops.Reshape(tensor=grad.values, shape=tf.constant([-1, row]))
    columns = tf.raw_ops.Unpack(value=values, num=row, axis=1)
    sums = [tf.raw_ops.Bincount(arr=indices, size=size, weights=c) for c in columns]
    table = sums[0] if row == 1 else tf.raw_ops.Pack(values=sums, axis=1)
    return tf.raw_ops.Reshape(tensor=table, shape=tf.constant(dense, tf.int32))


# Ops whose output holds exactly the elements of their first input: a gradient they make (the
# gradient of a Reshape's input is the Reshape of its output's) has that input's reductions.
_SAME_ELEMENTS = frozenset({"Reshape", "ExpandDims", "Squeeze", "Identity", "Snapshot"})


def values_key(grad: Any) -> Any:
    """What identifies a gradient's values: a tensor made from another by reshaping holds the
    same elements, and is reduced once with it (the VAE's Flatten and Reshape, a bias's
    ExpandDims)."""
    if isinstance(grad, tf.IndexedSlices):
        return id(grad)
    op = getattr(grad, "op", None) if not tf.executing_eagerly() else None
    while op is not None and op.type in _SAME_ELEMENTS and op.inputs and op.inputs[0].dtype == grad.dtype:
        grad = op.inputs[0]
        op = grad.op
    return grad.ref()


def _stack_plan(grads: list[Any]) -> tuple[list[list[int]], list[int]]:
    """Stacks of small gradients of one dtype and fully known static shape, each within
    STACK_MAX_BYTES and of at least STACK_MIN_MEMBERS; the indices of the other gradients."""
    groups: dict[tuple, list[int]] = {}
    alone: list[int] = []
    for i, g in enumerate(grads):
        size = g.shape.num_elements() if isinstance(g, tf.Tensor) else None
        if size is None or g.dtype.is_complex or size * g.dtype.size > GROUPED_MAX_BYTES:
            alone.append(i)
        else:
            groups.setdefault((g.dtype, tuple(g.shape.as_list())), []).append(i)
    stacks: list[list[int]] = []
    for members in groups.values():
        first = grads[members[0]]
        per_stack = max(1, STACK_MAX_BYTES // max(1, first.shape.num_elements() * first.dtype.size))
        for start in range(0, len(members), per_stack):
            chunk = members[start:start + per_stack]
            (stacks.append(chunk) if len(chunk) >= STACK_MIN_MEMBERS else alone.extend(chunk))
    return stacks, sorted(alone)


# Reductions of a stack [k, ...] over all but its first axis. EuclideanNorm reads the stack once
# without writing its squares out (a quarter of the time of Square then Sum on a Transformer's
# stacks); squaring k norms back costs nothing.


def _inner_axes(stack: tf.Tensor) -> tf.Tensor:
    return tf.constant(list(range(1, stack.shape.rank)), tf.int32)


def _half_squared_norms(x: tf.Tensor, axes: tf.Tensor) -> tf.Tensor:
    norms = tf.raw_ops.EuclideanNorm(input=x, axis=axes)
    return tf.raw_ops.Mul(x=tf.raw_ops.Square(x=norms), y=tf.constant(0.5))


def _half_sums_of_squares(stack: tf.Tensor) -> tf.Tensor:
    half = _half_squared_norms(Reducer._as_float32(stack), _inner_axes(stack))
    return tf.raw_ops.ExpandDims(input=half, axis=tf.constant(1))


def _sums_and_extremes(stack: tf.Tensor) -> tf.Tensor:
    x = Reducer._as_float32(stack)
    axes = _inner_axes(stack)
    return tf.raw_ops.Pack(
        values=[_half_squared_norms(x, axes), tf.raw_ops.Max(input=x, axis=axes), tf.raw_ops.Min(input=x, axis=axes)],
        axis=1,
    )


def _half_counts_nonzero(stack: tf.Tensor) -> tf.Tensor:
    sign = tf.raw_ops.Sign(x=stack)  # in the gradients' own dtype: no value rounds to 0 first
    if sign.dtype != tf.float32:
        sign = tf.raw_ops.Cast(x=sign, DstT=tf.float32)
    # A count through a norm: rounded back to the integer it is.
    half = _half_squared_norms(sign, _inner_axes(stack))
    return tf.raw_ops.ExpandDims(input=tf.raw_ops.Round(x=half * 2.0) * 0.5, axis=tf.constant(1))


def _distinct(grads: list[Any]) -> tuple[list[Any], list[int] | None]:
    """The gradients without repeats, and the row of each given one among them (None when all
    are distinct). One gradient tensor often serves several op outputs (TensorFlow hands the
    same tensor to an Identity's input and output, say): a fifth of ResNet50's, reduced once."""
    rows_of: dict[Any, int] = {}
    unique: list[Any] = []
    rows: list[int] = []
    for g in grads:
        key = values_key(g)
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


_FLOWING, _ZERO, _NONFINITE = (np.uint8(V.STATE_CODE[s]) for s in (V.FLOWING, V.ZERO, V.NONFINITE))


def exact_states(stats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """State codes and norms of gradients from their Reducer.exact rows (half the sum of
    squares, max, min): the one rule, over arrays (a thousand variables' states in Python cost
    a millisecond a step)."""
    stats = np.asarray(stats, np.float64)
    sumsq = 2.0 * stats[:, 0]
    with np.errstate(invalid="ignore"):
        maxabs = np.maximum(stats[:, 1], -stats[:, 2])  # -inf for an empty gradient
        nan_sum = np.isnan(sumsq)
        overflow = ~nan_sum & (maxabs == np.inf)
        zero = ~nan_sum & ~overflow & (maxabs <= 0.0)
        # The float32 sum of squares underflows to 0 or overflows to Inf for extreme finite values.
        in_range = (sumsq > 0.0) & (sumsq < np.inf)
        norms = np.where(in_range, np.sqrt(np.where(in_range, sumsq, 0.0)), maxabs)
    codes = np.full(len(stats), _FLOWING, np.uint8)
    codes[zero], norms[zero] = _ZERO, 0.0
    codes[overflow], norms[overflow] = _NONFINITE, np.inf
    codes[nan_sum], norms[nan_sum] = _NONFINITE, sumsq[nan_sum]
    return codes, norms


def tensor_state(
    has_grad: bool, half_sumsq: float = 0.0, high: float | None = None, low: float | None = None
) -> tuple[str, float | None]:
    """State and L2 norm of one gradient from its reductions (see Reducer): `exact_states` of
    one row. Without `high` and `low` (op tensors: the sum alone), the largest magnitude is taken
    as the norm's, which the sum alone decides."""
    if not has_grad:
        return V.NONE, None
    if high is None or low is None:
        sumsq = 2.0 * half_sumsq
        high = math.sqrt(sumsq) if sumsq > 0.0 else 0.0
        low = -high
    codes, norms = exact_states(np.array([[half_sumsq, high, low]]))
    return V.STATES[int(codes[0])], float(norms[0])


def presence_fractions(half_present: np.ndarray, size: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Presence of gradients from Reducer.presence's counts (half the present elements, size)
    and their state codes: NaN (unknown) for an empty or a NaN or Inf gradient, whose elements
    are counted from signs and so not exactly."""
    half_present, size = np.asarray(half_present, np.float64), np.asarray(size, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        # halves: Reducer.presence; a gate's count is against what arrived, never above it for
        # the gates there are, but a share over 1 would not encode
        fractions = np.minimum(2.0 * half_present / size, 1.0)
    return np.where((size > 0) & (np.asarray(codes) != _NONFINITE), fractions, np.nan)


def combine(values: list[tuple[str, float | None]]) -> tuple[str, float | None]:
    """The state and norm of a variable split in parts, so that it reads as one variable."""
    state = V.combined_state([s for s, _ in values])
    if state == V.NONE:
        return state, None
    if state == V.NONFINITE:
        bad = [n for s, n in values if s == V.NONFINITE]
        return state, bad[0]
    return state, math.sqrt(sum(n * n for s, n in values if n is not None and s != V.NONE))
