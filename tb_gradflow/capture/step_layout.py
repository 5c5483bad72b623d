"""Run time: one step's device vectors folded back into per-op and per-variable states."""
from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from tb_gradflow import vocabulary as V
from tb_gradflow.capture.reductions import combine
from tb_gradflow.format.records import encode_step_arrays
from tb_gradflow.proto import gradflow_pb2

NONE, FLOWING, ZERO, NONFINITE = (V.STATE_CODE[s] for s in (V.NONE, V.FLOWING, V.ZERO, V.NONFINITE))


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
        presence_owner: list[int] = (),
    ):
        self.graph = graph
        # Row of each measured tensor in the stats vector, or -1 where no gradient reaches it.
        rows = np.cumsum(tensor_has_grad) - 1
        self.tensor_row = np.where(tensor_has_grad, rows, -1).astype(np.int64)
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
        # Where each reduction sits in the one vector a call returns (values()).
        rows, with_grad = int(np.count_nonzero(tensor_has_grad)), len(self.variables_with_grad)
        ends = np.cumsum([2, rows, 3 * with_grad, 2 * len(self.presence_owner), 2 * with_grad])
        self.sections = [slice(a, b) for a, b in zip(ends[:-1], ends[1:])]

    def values(
        self, version: int, loss: tf.Tensor, tensor_stats: tf.Tensor, variable_stats: tf.Tensor,
        presence: tf.Tensor, variable_presence: tf.Tensor,
    ) -> tf.Tensor:
        """In the probe's graph: the call's graph version (its index in the probe), loss and
        reductions in one float32 vector, fetched at once (each output of a call costs the
        host several microseconds after a training step)."""
        parts = [tf.constant([float(version)]), tf.reshape(loss, [1]), tensor_stats, variable_stats, presence, variable_presence]
        return tf.concat([tf.reshape(p, [-1]) for p in parts], 0)


def _fractions(counts: Any, owner: np.ndarray | None, n: int) -> np.ndarray:
    """Presence per owner from rows of (half the present count, size); NaN where an owner has
    no rows."""
    counts = np.asarray(counts, np.float64).reshape(-1, 2)
    present, size = 2.0 * counts[:, 0], counts[:, 1]  # halves: Reducer.presence
    if owner is not None:
        present = np.bincount(owner, weights=present, minlength=n)[:n]
        size = np.bincount(owner, weights=size, minlength=n)[:n]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(size > 0, present / size, np.nan)


def exact_states(stats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """State codes and norms of gradients from their Reducer.exact rows: `tensor_state` over
    arrays (a thousand variables' states in Python cost a millisecond a step)."""
    sumsq = 2.0 * stats[:, 0]
    with np.errstate(invalid="ignore"):
        maxabs = np.maximum(stats[:, 1], -stats[:, 2])
        nan_sum = np.isnan(sumsq)
        overflow = ~nan_sum & np.isposinf(maxabs)
        zero = ~nan_sum & ~overflow & (maxabs <= 0.0)
        in_range = (sumsq > 0.0) & (sumsq < np.inf)
        norms = np.where(in_range, np.sqrt(np.where(in_range, sumsq, 0.0)), maxabs)
    codes = np.full(len(stats), FLOWING, np.uint8)
    codes[zero], norms[zero] = ZERO, 0.0
    codes[overflow], norms[overflow] = NONFINITE, np.inf
    codes[nan_sum], norms[nan_sum] = NONFINITE, sumsq[nan_sum]
    return codes, norms


def decode_step(layout: Layout, values: Any) -> gradflow_pb2.Step:
    """The Step message of one probe call, from the vector it returned (Layout.values).

    Runs at every logged step, right after the training step has left the CPU caches cold,
    when each numpy call costs several microseconds: hence few calls, on index arrays made
    once per graph version."""
    n_vars = len(layout.graph.variables)
    values = np.asarray(values, np.float64)
    tensor_stats, variable_stats, presence, variable_presence = (values[s] for s in layout.sections)
    sums = 2.0 * tensor_stats
    finite = np.isfinite(sums)
    # Columns with a sentinel last: row -1 (no gradient) reads state none, no norm.
    codes = np.append(np.where(finite, np.where(sums == 0.0, ZERO, FLOWING), NONFINITE), NONE).astype(np.uint8)
    norms = np.append(np.where(finite, np.sqrt(np.where(finite, sums, 0.0)), sums), np.nan)
    op_codes, op_norms = codes[layout.op_row], norms[layout.op_row]
    for i, rows in layout.multi:  # ops with several float outputs: few
        state, norm = combine([
            (V.STATES[codes[r]], None if codes[r] == NONE else float(norms[r])) for r in rows
        ])
        op_codes[i] = V.STATE_CODE[state]
        op_norms[i] = np.nan if norm is None else norm
    op_codes[layout.inherit_ops] = op_codes[layout.inherit_from]

    var_codes = np.full(n_vars, NONE, np.uint8)
    var_norms = np.full(n_vars, np.nan, np.float64)
    var_presence = np.full(n_vars, np.nan)
    with_grad = layout.variables_with_grad
    if len(with_grad):
        var_codes[with_grad], var_norms[with_grad] = exact_states(
            variable_stats.reshape(-1, 3)
        )
        var_presence[with_grad] = _fractions(variable_presence, None, len(with_grad))
    op_presence = _fractions(presence, layout.presence_owner, len(op_codes))
    # Counted from signs (Reducer.presence): exact unless the gradient holds a NaN or an Inf.
    op_presence[op_codes == NONFINITE] = np.nan
    var_presence[var_codes == NONFINITE] = np.nan
    return encode_step_arrays(
        layout.graph.graph_id, op_codes, op_norms, var_codes, var_norms, float(np.float32(values[1])),
        op_presence=op_presence,
        variable_presence=var_presence,
    )
