"""Gradients inside loop bodies, measured over all iterations, and a loop's norm per iteration.

A `While` op's gradient is another loop, built once by TensorFlow from the body's gradient
functions. While that backward body is built (inside our one backward pass, with the registry
lookup wrapped as in registry_hook), each body op's gradient function receives the gradient of
its outputs at one iteration. We collect those gradients, and once that backward body is
complete (the build of each gradient graph is wrapped: tf_internals.wrapped_gradients_builder)
reduce them to one row per iteration (iteration_rows): per body op its half sum of squares,
half its count of nonzero elements (and its size when not static); per loop, the half sum of
squares of the gradient of the float loop-carried state the iteration outputs. Each iteration
pushes its row onto a TensorList that the backward loop carries as a loop variable of its own;
after the backward pass the probe stacks it, sums the op columns over the iterations and keeps
the loop's column per iteration. Nothing stateful runs in the backward body, so its iterations
overlap as in a plain backward pass. A backward loop built elsewhere than in the loss's graph
(a loop inside a called function) cannot hand a loop variable out: there the rows go into
resource variables instead, one update per iteration, read and reset after the pass.

The loop-carried state an iteration outputs is taken where the body computes it, before the
Identity ops the loop wraps it in: its gradient there sums every use within the iteration (the
carry to the next iteration, and the write to the output sequence), which is dL/dh_{i+1} of the
recurrence written out. The backward loop runs from the last iteration to the first; the rows
are reversed when read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import tensorflow as tf

from tb_gradflow.capture import tf_internals
from tb_gradflow.capture.iteration_rows import half_count, half_sum, iteration_row
from tb_gradflow.capture.loss_path import WHILE_OPS, PathOp, is_measurable_dtype
from tb_gradflow.capture.reductions import values_key
from tb_gradflow.capture.registry_hook import OpKey, op_key
from tb_gradflow.capture.tf_internals import Operation

_PASS_THROUGH = ("Identity", "IdentityN", "Snapshot")

# Body ops' norms and presence cost a few kernels per backward iteration (iteration_rows: same-
# shape gradients reduced together). A logging call with them stays within issue 17's 1.3
# budget on keras.io's bidirectional LSTM over IMDB (four loops of 200 iterations), though not
# on the bench's 5 ms LSTM, where the host's fixed cost weighs most (README, "Overhead"). So they
# are on unless turned off (measure_bodies=False, or this environment variable set to 0), and
# GradFlowCallback logs every 100 batches anyway. A loop's iteration norms cost a few kernels
# per iteration and are always on.
BODY_OPS_ENV = "TB_GRADFLOW_BODY_OPS"


def body_ops_default() -> bool:
    """Whether body ops are measured when the caller does not say: yes, unless
    $TB_GRADFLOW_BODY_OPS is 0."""
    return os.environ.get(BODY_OPS_ENV, "").strip() != "0"


@dataclasses.dataclass
class _Accumulator:
    variable: tf.Variable
    handle: tf.Tensor  # captured in the loss's graph: the backward body captures it from there
    empty: tf.Tensor


def _accumulator(shape: list[int | None], initial: Any) -> _Accumulator:
    variable = tf_internals.eager_variable(initial, tf.TensorShape(shape))
    return _Accumulator(variable, tf.identity(variable.handle), tf.constant(initial, tf.float32))


@dataclasses.dataclass
class _Pending:
    """What the gradient functions of one gradient graph (a backward loop body, say) handed
    over while it was built: folded into the accumulators once, when that graph is complete."""

    graph: tf.Graph
    rows: list[int] = dataclasses.field(default_factory=list)  # accumulator row of each grad
    grads: list[tf.Tensor] = dataclasses.field(default_factory=list)
    carried: dict[int, list[tf.Tensor]] = dataclasses.field(default_factory=dict)  # loop -> grads


@dataclasses.dataclass
class _Carried:
    """A backward loop body whose iterations push one row each (iteration_rows.Row) onto a
    TensorList carried by that backward loop. After the loop: column c adds to the flat op
    accumulator at position p for each (c, p) in `entries`, `sizes` (position -> static size)
    are added once per iteration, and loop j's iteration sums are its `loops[j]` columns."""

    body: tf.Graph
    captured: tf.Tensor  # the TensorList's loop variable inside `body`
    width: int
    entries: list[tuple[int, int]]
    sizes: dict[int, float]
    loops: dict[int, list[int]]


class BodyMeter:
    """Measures the ops of While bodies on the loss path and their loops' iterations.

    Make it in the loss's graph before the backward pass; build that pass inside `recording()`;
    then `values()` gives [rows of body ops (half sumsq, half nonzero count, size)], and the
    half sums of squares per iteration of each loop in `measured_loops`.

    The gradients a backward body's ops receive are collected while that body is built and
    reduced once it is complete, to one row per backward iteration (iteration_rows). Their
    numbers leave the loop statelessly: each iteration pushes one row onto a TensorList that the
    backward loop carries as a loop variable of its own, as TensorFlow carries the forward
    loop's intermediates to the backward loop; after the loop, one stack and one segment sum
    fold the rows. A stateful update per iteration (a resource variable's) was measured about
    as costly as the backward loop itself on a Keras LSTM: it makes the backward body's outputs
    wait for it (automatic control dependencies), so no iteration overlapped the next. That
    update remains for the loops whose backward loop is not built in the loss's own graph (a
    loop inside a called function): their accumulator variables are read once after the pass.
    """

    def __init__(self, ops: list[PathOp], measure_ops: bool = True) -> None:
        """`measure_ops`: also the body ops' norms and presence (else only the iterations)."""
        self._rows: dict[OpKey, int] = {}  # body op -> its row in the op accumulator
        self.body_ops: list[int] = []  # path index of each row
        self.loops: list[int] = []  # path index of each loop with iteration norms
        self._loop_ops: list[Operation] = []
        # (op key, output index) of a loop body's carried float outputs -> loop number.
        self._carried: dict[OpKey, dict[int, int]] = {}
        for i, p in enumerate(ops):
            if p.op.type in WHILE_OPS and p.bodies:
                self._plan_loop(i, p)
            elif (
                measure_ops
                and _in_while_body(ops, p)
                and any(is_measurable_dtype(t.dtype) for t in p.op.outputs)
            ):
                self._rows[p.key] = len(self.body_ops)
                self.body_ops.append(i)
        self._graph: tf.Graph | None = None  # the loss's graph, once recording
        # Stateful accumulators, made only for gradient graphs that cannot carry their own.
        self._ops: _Accumulator | None = None
        self._iterations: list[_Accumulator | None] = [None for _ in self.loops]
        # ... and their counts of iterations (the size of what was read is no count: TensorFlow
        # may fold it from the variable's shape when the function was first run).
        self._counted: list[_Accumulator | None] = [None for _ in self.loops]
        self._lists: list[_Carried] = []
        # Per loop: whether any of its carried state's gradient functions ran.
        self._fired: list[bool] = [False for _ in self.loops]
        self._pending: list[_Pending] = []
        self.measured_rows: set[int] = set()

    def _plan_loop(self, index: int, p: PathOp) -> None:
        body = p.bodies[0].graph
        loop = len(self.loops)
        found = False
        for out in body.outputs:
            if not is_measurable_dtype(out.dtype):
                continue
            t = out
            while t.op.type in _PASS_THROUGH and t.op.inputs:
                t = t.op.inputs[t.value_index] if t.op.type == "IdentityN" else t.op.inputs[0]
            if t.op.type == "Placeholder":  # carried through unchanged: nothing computes it
                continue
            self._carried.setdefault(op_key(t.op), {})[t.value_index] = loop
            found = True
        if found:
            self.loops.append(index)
            self._loop_ops.append(p.op)

    @property
    def active(self) -> bool:
        """Whether there is anything to measure (body ops or loops)."""
        return bool(self._rows or self.loops)

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        """Within this block (inside `watch_registry`), gradient functions of body ops hand
        their gradients over, and each gradient graph folds them into the accumulators."""
        if not self.active:
            yield
            return
        self._graph = tf.compat.v1.get_default_graph()
        inner = tf_internals.gradient_function_lookup()

        def lookup(op: Operation) -> Callable | None:
            grad_fn = inner(op)
            key = op_key(op)
            if grad_fn is None or (key not in self._rows and key not in self._carried):
                return grad_fn

            def measuring(op_: Operation, *out_grads):
                self._collect(key, out_grads)
                return grad_fn(op_, *out_grads)

            return measuring

        with tf_internals.replaced_gradient_function_lookup(lookup), \
                tf_internals.wrapped_gradients_builder(self._building):
            yield

    def _building(self, build: Callable[[], Any]) -> Any:
        """Builds one gradient graph, then folds what its ops handed over into the accumulators."""
        pending = _Pending(tf.compat.v1.get_default_graph())
        self._pending.append(pending)
        try:
            result = build()
        finally:
            self._pending.pop()
        outputs = result if isinstance(result, (list, tuple)) else [result]
        self._fold(pending, [t for t in outputs if isinstance(t, tf.Tensor)])
        return result

    def _collect(self, key: OpKey, out_grads: tuple[Any, ...]) -> None:
        graph = tf.compat.v1.get_default_graph()
        pending = self._pending[-1] if self._pending else None
        alone = pending is None or pending.graph is not graph
        if alone:  # not within a gradient graph we saw begin: fold this op's own now
            pending = _Pending(graph)
        assert pending is not None
        row = self._rows.get(key)
        if row is not None:
            for g in out_grads:
                if isinstance(g, tf.Tensor) and is_measurable_dtype(g.dtype):
                    pending.rows.append(row)
                    pending.grads.append(g)
                    self.measured_rows.add(row)
        for loop, outputs in _by_loop(self._carried.get(key, {})).items():
            carried = [
                out_grads[k]
                for k in outputs
                if k < len(out_grads) and isinstance(out_grads[k], tf.Tensor)
            ]
            if carried:
                pending.carried.setdefault(loop, []).extend(carried)
                self._fired[loop] = True
        if alone:
            self._fold(pending)

    def _fold(self, pending: _Pending, outputs: Sequence[tf.Tensor] = ()) -> None:
        """In the graph just built (whose gradients are `outputs`): its body ops' rows and its
        loops' carried state reduced, and pushed onto a TensorList the backward loop carries
        (see the class docstring), or, where the graph is no backward loop body of the loss's
        graph, one scatter-add and one append per loop into accumulator variables."""
        if not pending.grads and not pending.carried:
            return
        if self._carries(pending):
            self._fold_carried(pending, outputs)
            return
        once = _Once()
        if pending.grads:
            indices, updates = _row_updates(pending.rows, pending.grads, once)
            if self._ops is None:
                size = 3 * len(self.body_ops)
                self._ops = self._in_loss_graph(lambda: _accumulator([size], [0.0] * size))
            tf.raw_ops.ResourceScatterAdd(
                resource=self._ops.handle, indices=tf.constant(indices, tf.int32), updates=updates
            )
        for loop, grads in pending.carried.items():
            self._append(loop, [once.half_sum(g) for g in grads])

    def _in_loss_graph(self, make: Callable[[], Any]) -> Any:
        """`make()` run in the loss's graph (the gradient graph being built captures from it)."""
        assert self._graph is not None
        with self._graph.as_default(), tf.control_dependencies(None):
            return make()

    def _carries(self, pending: _Pending) -> bool:
        """Whether `pending.graph` is a backward loop body built in the loss's graph, none of
        whose loops is measured by another graph already."""
        return (
            tf_internals.is_backward_loop_body(pending.graph)
            and getattr(pending.graph, "outer_graph", None) is self._graph
            and not any(
                self._iterations[loop] is not None or any(loop in c.loops for c in self._lists)
                for loop in pending.carried
            )
        )

    def _fold_carried(self, pending: _Pending, outputs: Sequence[tf.Tensor]) -> None:
        """One row per iteration pushed onto a TensorList that the backward loop carries.

        The row's reductions wait for the iteration's `outputs` (the gradients it hands the
        next iteration): run as soon as their gradients are, they delayed the iteration's own
        work, and the next iteration with it (a Keras LSTM's logging call: 1.50 times a plain
        step against 1.35 so, the same work)."""
        body = pending.graph
        carried = [g for grads in pending.carried.values() for g in grads]
        with tf.control_dependencies(outputs):
            row = iteration_row([*pending.grads, *carried], pending.grads)
        entries: list[tuple[int, int]] = []
        sizes: dict[int, float] = {}
        for r, g in zip(pending.rows, pending.grads, strict=True):
            key = values_key(g)
            entries += [(c, 3 * r) for c in row.sums[key]] + [(c, 3 * r + 1) for c in row.counts[key]]
            n = g.shape.num_elements()
            if n is None:
                entries += [(c, 3 * r + 2) for c in row.sizes[key]]
            else:
                sizes[3 * r + 2] = sizes.get(3 * r + 2, 0.0) + float(n)
        width = int(row.values.shape[0])
        empty = self._in_loss_graph(
            lambda: tf.raw_ops.EmptyTensorList(
                element_shape=tf.constant([width], tf.int32),
                max_num_elements=tf.constant(-1, tf.int32),
                element_dtype=tf.float32,
            )
        )
        captured = tf_internals.loop_carried_capture(body, empty)
        assert captured is not None
        pushed = tf.raw_ops.TensorListPushBack(input_handle=captured, tensor=row.values)
        tf_internals.set_loop_carried_output(body, captured, pushed)
        loops = {loop: [c for g in grads for c in row.sum_of(g)] for loop, grads in pending.carried.items()}
        self._lists.append(_Carried(body, captured, width, entries, sizes, loops))

    def _append(self, loop: int, sums: list[tf.Tensor]) -> None:
        """Appends the sum of `sums` to the loop's iterations' accumulator variable."""
        acc = self._iterations[loop]
        if acc is None:
            acc = self._iterations[loop] = self._in_loss_graph(lambda: _accumulator([None], []))
            self._counted[loop] = self._in_loss_graph(lambda: _accumulator([], 0.0))
        counted = self._counted[loop]
        assert counted is not None
        tf.raw_ops.AssignAddVariableOp(resource=counted.handle, value=tf.constant(1.0))
        total = sums[0] if len(sums) == 1 else tf.raw_ops.AddN(inputs=sums)
        now = tf.raw_ops.ReadVariableOp(resource=acc.handle, dtype=tf.float32)
        tf.raw_ops.AssignVariableOp(
            resource=acc.handle,
            value=tf.raw_ops.ConcatV2(
                values=[now, tf.raw_ops.Reshape(tensor=total, shape=tf.constant([1], tf.int32))],
                axis=tf.constant(0, tf.int32),
            ),
        )

    def values(self, after: list[Any]) -> tuple[tf.Tensor, list[tf.Tensor], list[tf.Tensor]]:
        """In the loss's graph, after the backward pass (`after`: its gradients): ([rows, 3] of
        the body ops, the half sum of squares per iteration of each loop, first iteration
        first, and the number of iterations of each loop as float32); accumulator variables
        are reset for the next call.

        The counts are the loops' own iteration counters (a While op's first output), not the
        size of what was read: TensorFlow may fold that size from an accumulator variable's
        shape when the function was first run. A loop inside a called function keeps its
        counter there: its iterations count themselves into a variable."""
        deps = [g.op for g in after if isinstance(g, tf.Tensor)]
        flat: list[tf.Tensor] = []
        iterations: dict[int, tf.Tensor] = {}
        for c in self._lists:
            stacked, ops = self._read_list(c)
            if ops is not None:
                flat.append(ops)
            for loop, cols in c.loops.items():
                sums = tf.gather(stacked, cols, axis=1)
                iterations[loop] = tf.reverse(tf.reduce_sum(sums, axis=1), [0])
        if self._ops is not None:
            flat.append(_read_and_reset(self._ops, deps))
        rows = tf.zeros([len(self.body_ops), 3], tf.float32)
        if flat:
            total = flat[0] if len(flat) == 1 else tf.raw_ops.AddN(inputs=flat)
            rows = tf.raw_ops.Reshape(tensor=total, shape=tf.constant([-1, 3], tf.int32))
        loops, counts = [], []
        for loop, (acc, fired, op) in enumerate(zip(self._iterations, self._fired, self._loop_ops, strict=False)):
            if not fired:  # not in `measured_loops` either
                continue
            counter = op.outputs[0]
            if loop in iterations:
                loops.append(iterations[loop])
                own = counter.dtype.is_integer and op.graph is self._graph
                counts.append(tf.raw_ops.Cast(x=counter if own else tf.size(iterations[loop]), DstT=tf.float32))
            else:
                counted = self._counted[loop]
                assert acc is not None and counted is not None
                loops.append(tf.reverse(_read_and_reset(acc, deps), [0]))
                counts.append(_read_and_reset(counted, deps))
        return rows, loops, counts

    def _read_list(self, c: _Carried) -> tuple[tf.Tensor, tf.Tensor | None]:
        """([iterations, width] half sums of `c`'s backward loop, last iteration first; its op
        columns summed over the iterations into a flat [rows * 3] vector, or None)."""
        assert self._graph is not None
        out = tf_internals.while_output_of(self._graph, c.body, c.captured)
        if out is None:
            raise RuntimeError(f"the backward loop of {c.body.name} was not found in the loss's graph")
        stacked = tf.raw_ops.TensorListStack(
            input_handle=out, element_shape=tf.constant([c.width], tf.int32), element_dtype=tf.float32
        )
        if not c.entries and not c.sizes:
            return stacked, None
        parts = [tf.gather(tf.reduce_sum(stacked, axis=0), [column for column, _ in c.entries])]
        ids = [position for _, position in c.entries]
        if c.sizes:
            n = tf.cast(tf.shape(stacked)[0], tf.float32)
            parts.append(n * tf.constant(list(c.sizes.values()), tf.float32))
            ids += list(c.sizes)
        return stacked, tf.math.unsorted_segment_sum(
            tf.concat(parts, 0), tf.constant(ids, tf.int32), 3 * len(self.body_ops)
        )

    @property
    def measured_loops(self) -> list[int]:
        """Path indices of the loops whose iteration norms are measured."""
        return [i for i, fired in zip(self.loops, self._fired, strict=False) if fired]

    def measured_body_ops(self) -> list[int]:
        """Path indices of the body ops whose gradient is measured."""
        return [self.body_ops[r] for r in sorted(self.measured_rows)]


def _read_and_reset(acc: _Accumulator, deps: list[Any]) -> tf.Tensor:
    with tf.control_dependencies(deps):
        value = tf.raw_ops.ReadVariableOp(resource=acc.handle, dtype=tf.float32)
    with tf.control_dependencies([value]):
        tf.raw_ops.AssignVariableOp(resource=acc.handle, value=acc.empty)
    return tf.identity(value)


def _by_loop(outputs: dict[int, int]) -> dict[int, list[int]]:
    loops: dict[int, list[int]] = {}
    for k, loop in outputs.items():
        loops.setdefault(loop, []).append(k)
    return loops


class _Once:
    """Half sums of squares and half counts of nonzero elements, each made once per distinct
    gradient in one gradient graph: a gradient that is another's reshaped or passed through an
    Identity (a body's Identity ops hand their input the very tensor they received) shares its
    reductions, and a loop's carried state shares its op's."""

    def __init__(self) -> None:
        self._sums: dict[Any, tf.Tensor] = {}
        self._counts: dict[Any, tf.Tensor] = {}

    def half_sum(self, g: tf.Tensor) -> tf.Tensor:
        """L2Loss of `g` as float32."""
        key = values_key(g)
        if key not in self._sums:
            self._sums[key] = half_sum(g)
        return self._sums[key]

    def half_count(self, g: tf.Tensor) -> tf.Tensor:
        """L2Loss of the sign of `g`, taken in its own dtype: no value rounds to 0 first."""
        key = values_key(g)
        if key not in self._counts:
            self._counts[key] = half_count(g)
        return self._counts[key]


def _row_updates(
    rows: list[int], grads: list[tf.Tensor], once: _Once
) -> tuple[list[int], tf.Tensor]:
    """(place of each update in the flat [rows * 3] accumulator, [N] updates) for `grads`, each
    belonging to `rows`: a row holds half the sum of squares, half the count of nonzero elements
    (the host doubles both) and the count of elements.

    For gradient graphs that cannot carry their rows out (BodyMeter._fold): each distinct
    gradient gets its L2Loss and that of its sign (`_Once`), sizes known at trace time are
    constants, and one Pack and one scatter-add per gradient graph fold them all (one
    scatter-add per op cost more still: each update of a resource is ordered after the last).
    """
    sums = [once.half_sum(g) for g in grads]
    counts = [once.half_count(g) for g in grads]
    at = [3 * r for r in rows] + [3 * r + 1 for r in rows]
    static: dict[int, float] = {}
    dynamic: list[tf.Tensor] = []
    for r, g in zip(rows, grads, strict=True):
        n = g.shape.num_elements()
        if n is None:
            dynamic.append(tf.raw_ops.Cast(x=tf.raw_ops.Size(input=g), DstT=tf.float32))
            at.append(3 * r + 2)
        else:
            static[r] = static.get(r, 0.0) + float(n)
    updates = tf.raw_ops.Pack(values=[*sums, *counts, *dynamic])
    if static:
        at += [3 * r + 2 for r in static]
        sizes = tf.constant(list(static.values()), tf.float32)
        updates = tf.raw_ops.ConcatV2(values=[updates, sizes], axis=tf.constant(0))
    return at, updates


def _in_while_body(ops: list[PathOp], p: PathOp) -> bool:
    """Whether `p` sits in the body of a While op (directly or in a call inside one)."""
    parent = p.parent
    while parent >= 0:
        if ops[parent].op.type in WHILE_OPS:
            return True
        parent = ops[parent].parent
    return False
