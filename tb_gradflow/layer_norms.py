"""A variable's layer and a layer's gradient norm: one rule for the capture and the read side.

The Layers view (reading/layer_series.py) and the TensorBoard scalars that `summary.gradflow`,
`GradFlowCallback` and `tb_gradflow.torch.gradflow` write with `scalars=True` both group
variables into layers and reduce their norms here, so that a scalar and the heatmap cell of the
same layer and step hold the same number.

A layer is a variable's name up to its last "/" (Keras' `dense_3/kernel` and `dense_3/bias` are
layer `dense_3`); a PyTorch parameter, which has no "/", belongs to its module path (`encoder.0`
for `encoder.0.weight`). A layer's norm is the L2 norm over its variables' norms, that is the
norm of the layer's whole gradient. Its state is the highest of its variables' states in the
order none < zero < flowing < nonfinite, a flowing layer of norm 0 reading as zero; a layer
with no gradient has no norm (NaN), a nonfinite one Inf, or NaN when a variable's norm is NaN.
A ReLU-family gate's units belong to the layer of the variables read nearest upstream of it
(`gate_layer`; a gate with none keeps its name scope): a traced Keras 3 model names a Dense
layer's ReLU `sequential_1/dense_1_2/Relu` while that layer's variables are
`sequential/dense_1/...`, so the story, the JSON and the dead-unit scalars name the layer as the
Layers view does.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tb_gradflow import vocabulary as V
from tb_gradflow.proto import gradflow_pb2

_FLOWING = V.STATE_CODE[V.FLOWING]
_ZERO = V.STATE_CODE[V.ZERO]
_NONE = V.STATE_CODE[V.NONE]
_NONFINITE = V.STATE_CODE[V.NONFINITE]

# Which state a layer takes from its variables: the highest of theirs in this order.
_PRIORITY = np.zeros(256, np.uint8)
_PRIORITY[[_NONE, _ZERO, _FLOWING, _NONFINITE]] = [0, 1, 2, 3]
_BY_PRIORITY = np.array([_NONE, _ZERO, _FLOWING, _NONFINITE], np.uint8)


def layer_of(variable: str) -> str:
    """The layer of a variable: its name up to the last "/"; for a PyTorch parameter, which has
    no "/", its module path (up to the last "."); else the whole name. As the tab's layerOf."""
    cut = variable.rfind("/")
    if cut > 0:
        return variable[:cut]
    dot = variable.rfind(".")
    return variable[:dot] if dot > 0 else variable


# How many ops back from a gate its layer's variables are looked for (a Conv2D's kernel is 3).
_GATE_REACH = 6


def gate_layer(graph: gradflow_pb2.Graph, op: int) -> str:
    """The layer a gate's units belong to: that of the variables read nearest upstream of it
    (the first such variable at the smallest distance), else the op's own name scope."""
    level, seen = [op], {op}
    for _ in range(_GATE_REACH):
        level = list(dict.fromkeys(j for i in level for j in graph.ops[i].inputs if j not in seen))
        seen.update(level)
        read = [v for j in level for v in graph.ops[j].variable_inputs]
        if read:
            return layer_of(graph.variables[min(read)].name)
        if not level:
            break
    return layer_of(graph.ops[op].name)


def reduce_layers(
    states: np.ndarray, norms: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Layer states and norms from their variables', for many steps at once.

    Args:
      states: State codes (vocabulary.STATE_CODE), uint8 [variables, steps], each layer's
        variables on consecutive rows.
      norms: The variables' gradient norms, float [variables, steps].
      starts: The first row of each layer, ascending, the first being 0.

    Returns:
      (states uint8 [layers, steps], norms float64 [layers, steps]) by the module's rule.
    """
    sums = _flowing_sums(states, norms, starts)
    out_states = _BY_PRIORITY[np.maximum.reduceat(_PRIORITY[states], starts, axis=0)]
    out_states[(out_states == _FLOWING) & ~(sums > 0)] = _ZERO  # flowing at norm 0 reads as zero
    with np.errstate(invalid="ignore"):
        out_norms = np.sqrt(sums)
    out_norms[out_states == _NONE] = np.nan
    bad = out_states == _NONFINITE
    if bad.any():  # Inf, or NaN when any of the layer's norms is NaN
        nan_norm = (np.isnan(norms) & (states == _NONFINITE)).astype(np.uint8)
        nan = np.maximum.reduceat(nan_norm, starts, axis=0)
        out_norms[bad] = np.inf
        out_norms[bad & (nan > 0)] = np.nan
    return out_states, out_norms


def flowing_range(states: np.ndarray, norms: np.ndarray, starts: np.ndarray) -> tuple[float, float] | None:
    """The smallest and largest norm of a flowing layer, as `reduce_layers` would give them.

    The colour scale of a long run needs every step, its cells only some: this is the part of
    the rule the scale needs (the same sums of squares; states only where a norm is NaN or Inf),
    so the bounds equal those of `reduce_layers` over the same steps.

    Args:
      states, norms, starts: As for `reduce_layers`.

    Returns:
      (smallest, largest) flowing layer norm, or None when no layer is flowing at any step.
    """
    sums = _flowing_sums(states, norms, starts)
    ok = (sums > 0) & np.isfinite(sums)
    nonfinite = states == _NONFINITE
    if nonfinite.any():  # a layer with any NaN or Inf variable is not flowing
        ok &= np.maximum.reduceat(nonfinite.view(np.uint8), starts, axis=0) == 0
    if not ok.any():
        return None
    with np.errstate(invalid="ignore"):
        return float(np.sqrt(sums[ok].min())), float(np.sqrt(sums[ok].max()))


def _flowing_sums(states: np.ndarray, norms: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per layer and step, the sum of its flowing variables' squared norms (float64)."""
    squares = np.square(np.where(states == _FLOWING, norms, 0.0), dtype=np.float64)
    return np.add.reduceat(squares, starts, axis=0)


def layer_norms(
    names: Sequence[str], states: Sequence[int] | np.ndarray, norms: Sequence[float] | np.ndarray
) -> dict[str, tuple[str, float]]:
    """Each layer's (state, norm) at one step, layers in order of their first variable.

    Args:
      names: The variables' names.
      states: Their state codes (vocabulary.STATE_CODE), one per name.
      norms: Their gradient norms (NaN for none), one per name.

    Returns:
      layer -> (state name, norm), the norm NaN for a layer with no gradient.
    """
    layers, rows, starts = variable_grouping(names)
    if not layers:
        return {}
    out_states, out_norms = reduce_layers(
        np.asarray(states, np.uint8)[rows][:, None], np.asarray(norms, np.float64)[rows][:, None], starts
    )
    return {
        layer: (V.STATES[int(s)], float(n))
        for layer, s, n in zip(layers, out_states[:, 0], out_norms[:, 0], strict=True)
    }


def variable_grouping(names: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(layers in order of their first variable, rows, starts) of variables `names`: the one
    grouping the layer norms of a step use, whoever reduces them (report, scalars)."""
    of = [layer_of(n) for n in names]
    layers = list(dict.fromkeys(of))
    at = {layer: i for i, layer in enumerate(layers)}
    rows, starts = grouping(np.array([at[layer] for layer in of], np.int64))
    return layers, rows, starts


def grouping(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, starts) for `reduce_layers`: the variables' order that puts each layer's variables
    together (stable), and the first row of each layer in it, from each variable's layer index."""
    rows = np.argsort(index, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(index[rows]) != 0])
    return rows, starts
