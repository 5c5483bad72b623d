"""Run time: one step's device vectors folded back into per-op and per-variable states."""
from __future__ import annotations

from typing import Any

import numpy as np

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
        self.variable_rows = {
            i: r for r, i in enumerate(i for i, ok in enumerate(variable_has_grad) if ok)
        }
        single = [(i, p[0]) for i, p in enumerate(op_tensors) if len(p) == 1]
        self.single_ops = np.array([i for i, _ in single], np.int64)
        self.single_tensors = np.array([k for _, k in single], np.int64)
        self.multi = [(i, p) for i, p in enumerate(op_tensors) if len(p) > 1]
        # Ops inside bodies that a gradient reaches: their value is not fetched, so they show
        # their top-level call op's state.
        inherit = [(i, a) for i, a in enumerate(top_ancestor) if reached[i] and a != i]
        self.inherit_ops = np.array([i for i, _ in inherit], np.int64)
        self.inherit_from = np.array([a for _, a in inherit], np.int64)
        # The path op each row of the presence reductions belongs to (Backward.presence_sources).
        self.presence_owner = np.asarray(presence_owner, np.int64)


def _fractions(counts: Any, owner: np.ndarray | None, n: int) -> np.ndarray:
    """Presence per owner from rows of (half the present count, size); NaN where an owner has
    no rows."""
    counts = np.asarray(counts, np.float64).reshape(-1, 2)
    if owner is None:
        owner = np.arange(len(counts))
    present = np.bincount(owner, weights=2.0 * counts[:, 0], minlength=n)[:n]  # halves: Reducer.presence
    size = np.bincount(owner, weights=counts[:, 1], minlength=n)[:n]
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


def decode_step(layout: Layout, out: dict[str, Any]) -> gradflow_pb2.Step:
    """The Step message of one probe call, from its fetched reductions (tensors or arrays)."""
    n_ops = len(layout.graph.ops)
    sums = 2.0 * np.asarray(out["tensor_stats"], dtype=np.float64)
    finite = np.isfinite(sums)
    codes = np.where(~finite, NONFINITE, np.where(sums == 0.0, ZERO, FLOWING))
    norms = np.where(finite, np.sqrt(np.where(finite, sums, 0.0)), sums)
    rows = layout.tensor_row
    tensor_codes = np.where(rows >= 0, codes[rows] if len(codes) else NONE, NONE)
    tensor_norms = np.where(rows >= 0, norms[rows] if len(norms) else np.nan, np.nan)

    op_codes = np.full(n_ops, NONE, np.uint8)
    op_norms = np.full(n_ops, np.nan, np.float64)
    op_codes[layout.single_ops] = tensor_codes[layout.single_tensors]
    op_norms[layout.single_ops] = tensor_norms[layout.single_tensors]
    for i, positions in layout.multi:  # ops with several float outputs: few
        state, norm = combine([
            (V.STATES[tensor_codes[k]], None if tensor_codes[k] == NONE else float(tensor_norms[k]))
            for k in positions
        ])
        op_codes[i] = V.STATE_CODE[state]
        op_norms[i] = np.nan if norm is None else norm
    op_codes[layout.inherit_ops] = op_codes[layout.inherit_from]

    var_codes = np.full(len(layout.graph.variables), NONE, np.uint8)
    var_norms = np.full(len(layout.graph.variables), np.nan, np.float64)
    if layout.variable_rows:
        with_grad, rows = (np.array(x, np.int64) for x in zip(*layout.variable_rows.items()))
        var_codes[with_grad], var_norms[with_grad] = exact_states(
            np.asarray(out["variable_stats"], dtype=np.float64).reshape(-1, 3)[rows]
        )
    var_presence = np.full(len(layout.graph.variables), np.nan)
    var_rows = sorted(layout.variable_rows.items(), key=lambda item: item[1])
    var_presence[[i for i, _ in var_rows]] = _fractions(out["variable_presence"], None, len(var_rows))
    op_presence = _fractions(out["presence"], layout.presence_owner, n_ops)
    # Counted from signs (Reducer.presence): exact unless the gradient holds a NaN or an Inf.
    op_presence[op_codes == NONFINITE] = np.nan
    var_presence[var_codes == NONFINITE] = np.nan
    return encode_step_arrays(
        layout.graph.graph_id, op_codes, op_norms, var_codes, var_norms, float(np.asarray(out["loss"])),
        op_presence=op_presence,
        variable_presence=var_presence,
    )
