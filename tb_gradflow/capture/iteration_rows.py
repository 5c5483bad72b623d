"""One backward loop iteration's gradients reduced to one row of numbers.

Inside a backward loop body every kernel runs once per iteration, and on an RNN's small
tensors a kernel's dispatch costs more than its arithmetic. So each distinct gradient (one that
is another's Reshape or Identity counts once: reductions.values_key) is reduced with others of
its shape where it can be: gradients of one static float32 shape (an LSTM's thirteen [batch,
units] gate and state gradients) are concatenated into one [k, n] matrix, whose rows are summed
by two matrix-vector products, one of its squares and one of its signs' magnitudes: seven
kernels for the group instead of three per gradient. The others get an L2Loss of themselves
(half their sum of squares) and one of their sign (half their count of nonzero elements); a
size unknown at trace time gets a third. A gradient that only concatenates or stacks others of
the row (an LSTM's gate gradients, joined back by its Split's gradient) gets none: its sums are
those of its parts, added after the loop.

Measured on the bench LSTM (32 iterations, 17 distinct gradients, of which 13 are [32, 64]):
53 kernels per iteration one by one, 25 grouped. Earlier, stacking with Pack and reducing
with EuclideanNorm over inner axes was measured no faster than one L2Loss per gradient; a
concatenation along the first axis keeps each gradient's rows contiguous, and a product with a
constant vector of halves gives half sums with no partial-reduction kernel and no rescaling.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import tensorflow as tf

from tb_gradflow.capture.reductions import static_shapes_trusted, values_key

# Ops whose output holds exactly the elements of their float inputs (axis and shape inputs are
# integers): its sum of squares and count of nonzero elements are the sums of theirs.
_JOINS = {"ConcatV2": slice(0, -1), "Concat": slice(1, None), "Pack": slice(None)}
# Gradients of one shape are grouped from this many on: a group costs seven kernels, a
# gradient alone three.
GROUP_MIN_MEMBERS = 3
# Bounds of a group in bytes: of each member, and of the whole. Larger than the probe's stacks
# (reductions.STACK_MAX_BYTES): a group's members were all computed in this iteration and are
# still in the cache, and every kernel here runs once per iteration, so one group per shape.
MEMBER_MAX_BYTES = 1 << 18
GROUP_MAX_BYTES = 1 << 21


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
    reduced = [k for k in distinct if k not in joined]
    groups, alone = _groups(distinct, reduced, wants_count)
    builder = _RowBuilder()
    for members in groups:
        builder.add_group(members, [distinct[k] for k in members])
    for k in alone:
        builder.add_alone(k, distinct[k], k in wants_count)
    for k, parts in joined.items():
        builder.sums[k] = [c for p in parts for c in builder.sums[p]]
        builder.counts[k] = [c for p in parts for c in builder.counts[p]]
        if distinct[k].shape.num_elements() is None:
            builder.sizes[k] = [c for p in parts for c in builder.sizes.get(p, [])]
    return builder.row()


def _groups(
    distinct: dict[Any, tf.Tensor], reduced: list[Any], counted: set[Any]
) -> tuple[list[list[Any]], list[Any]]:
    """Keys of the counted float32 gradients of one fully known shape, in groups of at least
    GROUP_MIN_MEMBERS, and the keys of the rest (reduced alone). A group is bounded in bytes
    (GROUP_MAX_BYTES), and gradients over MEMBER_MAX_BYTES stay alone: the concatenation is
    a copy, and on large tensors a kernel's dispatch is cheap anyway."""
    if not static_shapes_trusted(_graph_ops(distinct)):
        return [], reduced
    by_shape: dict[tuple[int, ...], list[Any]] = {}
    alone: list[Any] = []
    for k in reduced:
        g = distinct[k]
        small = g.shape.is_fully_defined() and 0 < 4 * g.shape.num_elements() <= MEMBER_MAX_BYTES
        if k in counted and g.dtype == tf.float32 and small and g.shape.rank:
            by_shape.setdefault(tuple(g.shape.as_list()), []).append(k)
        else:
            alone.append(k)
    groups: list[list[Any]] = []
    for members in by_shape.values():
        per_group = max(1, GROUP_MAX_BYTES // (4 * distinct[members[0]].shape.num_elements()))
        for start in range(0, len(members), per_group):
            chunk = members[start:start + per_group]
            (groups.append(chunk) if len(chunk) >= GROUP_MIN_MEMBERS else alone.extend(chunk))
    return groups, alone


def _graph_ops(distinct: dict[Any, tf.Tensor]) -> list[Any]:
    """The ops of the graph the row's gradients are in (none when there are none)."""
    first = next(iter(distinct.values()), None)
    return [] if first is None else first.graph.get_operations()


class _RowBuilder:
    """The row's pieces as [m, 1] columns, and the place of every gradient's numbers in it."""

    def __init__(self) -> None:
        self.sums: dict[Any, list[int]] = {}
        self.counts: dict[Any, list[int]] = {}
        self.sizes: dict[Any, list[int]] = {}
        self._pieces: list[tf.Tensor] = []
        self._scalars: list[tf.Tensor] = []
        self._width = 0  # the groups' columns, all before the scalars'

    def add_group(self, keys: list[Any], grads: list[tf.Tensor]) -> None:
        """Half sums of squares and half counts of nonzero elements of same-shape `grads`
        (every group is added before any gradient alone)."""
        assert not self._scalars, "groups come first in a row"
        n = int(grads[0].shape.num_elements())
        flat = tf.raw_ops.Reshape(
            tensor=tf.raw_ops.ConcatV2(values=grads, axis=tf.constant(0, tf.int32)),
            shape=tf.constant([len(grads), n], tf.int32),
        )
        halves = tf.constant(0.5, tf.float32, shape=[n, 1])
        self._pieces.append(tf.raw_ops.MatMul(a=tf.raw_ops.Square(x=flat), b=halves))
        self._pieces.append(tf.raw_ops.MatMul(a=tf.raw_ops.Abs(x=tf.raw_ops.Sign(x=flat)), b=halves))
        for i, k in enumerate(keys):
            self.sums[k] = [self._width + i]
            self.counts[k] = [self._width + len(keys) + i]
        self._width += 2 * len(keys)

    def add_alone(self, key: Any, g: tf.Tensor, counted: bool) -> None:
        """One gradient's own reductions (its size too, when counted and not static)."""
        self._scalar(self.sums, key, half_sum(g))
        if counted:
            self._scalar(self.counts, key, half_count(g))
            if g.shape.num_elements() is None:
                self._scalar(self.sizes, key, tf.raw_ops.Cast(x=tf.raw_ops.Size(input=g), DstT=tf.float32))

    def _scalar(self, columns: dict[Any, list[int]], key: Any, value: tf.Tensor) -> None:
        columns[key] = [self._width + len(self._scalars)]
        self._scalars.append(value)

    def row(self) -> Row:
        """The row: the groups' columns first, then the scalars of gradients reduced alone."""
        pieces = list(self._pieces)
        if self._scalars:
            pieces.append(tf.raw_ops.ExpandDims(input=tf.raw_ops.Pack(values=self._scalars), axis=tf.constant(1)))
        joined = pieces[0] if len(pieces) == 1 else tf.raw_ops.ConcatV2(values=pieces, axis=tf.constant(0, tf.int32))
        values = tf.raw_ops.Reshape(tensor=joined, shape=tf.constant([-1], tf.int32))
        return Row(values, self.sums, self.counts, self.sizes)


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
