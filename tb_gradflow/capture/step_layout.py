"""Run time: one step's device vectors folded back into per-op and per-variable states."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from tb_gradflow import vocabulary as V
from tb_gradflow.capture.reductions import combine, exact_states, presence_fractions
from tb_gradflow.format.records import encode_step_arrays
from tb_gradflow.proto import gradflow_pb2

# As uint8 scalars, so that arrays built from them stay state-code bytes.
NONE, FLOWING, ZERO, NONFINITE = (np.uint8(V.STATE_CODE[s]) for s in (V.NONE, V.FLOWING, V.ZERO, V.NONFINITE))


class Layout:
    """How one graph version's device vectors fold back into per-op values, as index arrays."""

    def __init__(
        self,
        graph: gradflow_pb2.Graph,
        op_tensors: list[list[int]],
        tensor_has_grad: list[bool],
        variable_has_grad: list[bool],
        reached: list[bool],
        top_ancestor: list[int],
        presence_owner: Sequence[int] = (),
        body_ops: Sequence[int] = (),
        body_measured: Sequence[int] = (),
    ):
        self.graph = graph
        # Row of each measured tensor in the stats vector, or -1 where no gradient reaches it.
        cumulative = np.cumsum(tensor_has_grad) - 1
        self.tensor_row = np.where(tensor_has_grad, cumulative, -1).astype(np.int64)
        # The variables that get a gradient, in the order of their rows in the stats.
        self.variables_with_grad = np.flatnonzero(np.asarray(variable_has_grad, bool))
        # Per op, the row of its one measured tensor, or -1 (none, or several: `multi`). Row
        # -1 reads the sentinel that decode_step appends to each column.
        self.op_row = np.array(
            [self.tensor_row[p[0]] if len(p) == 1 else -1 for p in op_tensors], np.int64
        )
        self.multi = [(i, self.tensor_row[p]) for i, p in enumerate(op_tensors) if len(p) > 1]
        # Ops inside bodies that a gradient reaches: their value is not fetched, so they show
        # their top-level call op's state.
        inherit = [(i, a) for i, a in enumerate(top_ancestor) if reached[i] and a != i]
        self.inherit_ops = np.array([i for i, _ in inherit], np.int64)
        self.inherit_from = np.array([a for _, a in inherit], np.int64)
        # The path op each row of the presence reductions belongs to (Backward.presence_sources).
        self.presence_owner = np.asarray(presence_owner, np.int64)
        # Where each reduction sits in the one vector a call returns (values()): the op
        # tensors' sums, the variables' exact rows, then the presence counts of ops and of
        # variables, read as one list of rows owned by ops and then variables.
        rows, with_grad = int(np.count_nonzero(tensor_has_grad)), len(self.variables_with_grad)
        # Then (issue 17) the dead units of each op with units, the body ops' accumulator rows,
        # each measured loop's iteration count and, after them, its iterations.
        self.n_loops = sum(op.has_iteration_norms for op in graph.ops)
        n_units = sum(op.units > 0 for op in graph.ops)
        ends = np.cumsum([
            2, rows, 3 * with_grad, 2 * (len(self.presence_owner) + with_grad), n_units, 3 * len(body_ops),
            self.n_loops,
        ])
        self.sums, self.exact, self.presence, self.dead_units, self.body_rows, self.loop_lengths = (
            slice(a, b) for a, b in zip(ends[:-1], ends[1:], strict=False)
        )
        # Rows of the body accumulators that are measured, and the op each belongs to.
        row_of = {op: r for r, op in enumerate(body_ops)}
        self.body_row = np.array([row_of[i] for i in body_measured], np.int64)
        self.body_op = np.array(list(body_measured), np.int64)
        self.body_reached = np.asarray(reached, bool)[self.body_op] if len(self.body_op) else np.zeros(0, bool)
        n_ops = len(graph.ops)
        self.presence_items = np.concatenate([self.presence_owner, n_ops + self.variables_with_grad])
        self.n_items = n_ops + len(graph.variables)

    def values(
        self, version: int, loss: tf.Tensor, tensor_stats: tf.Tensor, variable_stats: tf.Tensor,
        presence: tf.Tensor, variable_presence: tf.Tensor, dead_units: tf.Tensor | None = None,
        body_rows: tf.Tensor | None = None, loop_sums: Sequence[tf.Tensor] = (),
        loop_counts: Sequence[tf.Tensor] = (),
    ) -> tf.Tensor:
        """In the probe's graph: the call's graph version (its index in the probe), loss and
        reductions in one float32 vector, fetched at once (each output of a call costs the
        host several microseconds after a training step)."""
        parts = [
            tf.constant([float(version)]), tf.reshape(loss, [1]), tensor_stats, variable_stats, presence,
            variable_presence, *(p for p in (dead_units, body_rows) if p is not None), *loop_counts, *loop_sums,
        ]
        return tf.concat([tf.reshape(p, [-1]) for p in parts], 0)


def _fractions(counts: np.ndarray, owner: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Presence per owner from rows of (half the present count, size) and each owner's state
    code; NaN where an owner has no rows or a NaN or Inf gradient (`presence_fractions`)."""
    counts = counts.reshape(-1, 2)
    present = np.bincount(owner, weights=counts[:, 0], minlength=len(codes))
    size = np.bincount(owner, weights=counts[:, 1], minlength=len(codes))
    return presence_fractions(present, size, codes)


def decode_step(layout: Layout, values: Any) -> gradflow_pb2.Step:
    """The Step message of one probe call, from the vector it returned (Layout.values).

    Runs at every logged step, right after the training step has left the CPU caches cold,
    when each numpy call costs several microseconds: hence few calls, on index arrays made
    once per graph version."""
    values = np.asarray(values, np.float64)
    with np.errstate(all="ignore"):  # NaN and Inf are states here, not errors
        op_codes, op_norms = _op_columns(layout, values)
        n_vars = len(layout.graph.variables)
        var_codes = np.full(n_vars, NONE)
        var_norms = np.full(n_vars, np.nan)
        if len(layout.variables_with_grad):
            var_codes[layout.variables_with_grad], var_norms[layout.variables_with_grad] = exact_states(
                values[layout.exact].reshape(-1, 3)
            )
        presence = _fractions(values[layout.presence], layout.presence_items, np.concatenate([op_codes, var_codes]))
        if len(layout.body_op):
            _measured_bodies(layout, values, op_codes, op_norms, presence)
        iteration_norms = _iteration_norms(layout, values)
    n_ops = len(op_codes)
    return encode_step_arrays(
        layout.graph.graph_id, op_codes, op_norms, var_codes, var_norms, float(np.float32(values[1])),
        op_presence=presence[:n_ops],
        variable_presence=presence[n_ops:],
        dead_units=values[layout.dead_units],
        iteration_norms=iteration_norms,
    )


def _states(sumsq: np.ndarray) -> np.ndarray:
    """State codes of gradients from their sums of squares: finite and nonzero flowing, 0 zero,
    NaN or Inf nonfinite (one lookup, no nested `where`)."""
    return _STATE_BY_FINITE_ZERO[np.isfinite(sumsq).view(np.uint8) + (sumsq == 0.0).view(np.uint8)]


# Indexed by isfinite + iszero: 0 NaN or Inf, 1 finite and nonzero, 2 zero.
_STATE_BY_FINITE_ZERO = np.array([NONFINITE, FLOWING, ZERO], np.uint8)


def _op_columns(layout: Layout, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each op's state code and norm from its measured tensors' sums of squares."""
    # Columns with a sentinel last (NaN): row -1 (no gradient) reads state none, no norm.
    sums = np.empty(layout.sums.stop - layout.sums.start + 1)
    np.multiply(values[layout.sums], 2.0, out=sums[:-1])
    sums[-1] = np.nan
    codes = _states(sums)
    codes[-1] = NONE
    norms = np.sqrt(sums)  # a NaN or an Inf stays one
    op_codes, op_norms = codes[layout.op_row], norms[layout.op_row]
    for i, rows in layout.multi:  # ops with several float outputs: few
        state, norm = combine([
            (V.STATES[c], None if c == NONE else n)
            for c, n in zip(codes[rows].tolist(), norms[rows].tolist(), strict=False)
        ])
        op_codes[i] = V.STATE_CODE[state]
        op_norms[i] = np.nan if norm is None else norm
    if len(layout.inherit_ops):
        op_codes[layout.inherit_ops] = op_codes[layout.inherit_from]
    return op_codes, op_norms


def _measured_bodies(
    layout: Layout, values: np.ndarray, op_codes: np.ndarray, op_norms: np.ndarray, presence: np.ndarray
) -> None:
    """Body ops' states, norms and presence from their accumulators (capture/bodies.py), over
    all iterations; ops no gradient reaches (their loop's gradient hands them zeros), or whose
    body never ran, keep what they had."""
    rows = values[layout.body_rows].reshape(-1, 3)[layout.body_row]
    ran = (rows[:, 2] > 0) & layout.body_reached
    ops, rows = layout.body_op[ran], rows[ran]
    sumsq = 2.0 * rows[:, 0]
    op_codes[ops] = _states(sumsq)
    op_norms[ops] = np.sqrt(sumsq)
    fractions = 2.0 * rows[:, 1] / rows[:, 2]
    fractions[~np.isfinite(sumsq)] = np.nan
    presence[ops] = fractions


def _iteration_norms(layout: Layout, values: np.ndarray) -> list[np.ndarray]:
    """Per measured loop, the norm at each of its iterations (first first)."""
    if not layout.n_loops:
        return []
    lengths = values[layout.loop_lengths].astype(np.int64).tolist()
    start = layout.loop_lengths.stop
    every = np.sqrt(2.0 * values[start:start + sum(lengths)])
    norms, start = [], 0
    for n in lengths:
        norms.append(every[start:start + n])
        start += n
    return norms

