"""The per-layer TensorBoard scalars that `scalars=True` adds to a logged step (issue 17).

Per layer and logged step: its gradient norm, under `<tag>/grad_norm/<layer>`, and, for the
layers whose ReLU-family gates count dead units, the fraction of those units that are dead,
under `<tag>/dead_units/<layer>`. TensorBoard's Time Series tab groups cards by a tag's first
component and sorts them by name, so all of them sit in one group and each measure's charts
follow one another, layer by layer: comparing layers (vanishing with depth) reads down the
list, and filtering on "grad_norm" or "dead_units" keeps one measure.

Layers and their norms follow tb_gradflow/layer_norms.py, the rule of the Layers view: a
scalar and the heatmap cell of the same layer and step hold the same number. A dead-unit gate
belongs to the layer `layer_norms.gate_layer` gives it (a Dense layer's ReLU to that layer, a
standalone ReLU layer to the layer it follows), so that its units are told under the same layer
name as the norm, and as the story names them.

What is left out: a layer with no gradient at all has no norm to chart (the gradflow tab tells
where it was cut), and a gate with no gradient has no dead units. A nonfinite layer keeps its
Inf or NaN: the explosion stays in the data rather than vanishing from the chart.

Framework-free (no TensorFlow, no torch): both the TensorFlow writer (summary.py) and the torch
writer (torch/writing.py) take their tags and values from here.
"""
from __future__ import annotations

import collections
import dataclasses
import functools

import numpy as np
from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tensorboard.plugins.scalar import metadata as scalar_plugin_metadata

from tb_gradflow import vocabulary as V
from tb_gradflow.format.records import step_arrays
from tb_gradflow.layer_norms import gate_layer, reduce_layers, variable_grouping
from tb_gradflow.proto import gradflow_pb2

GRAD_NORM = "grad_norm"
DEAD_UNITS = "dead_units"
_NONE = V.STATE_CODE[V.NONE]
# Layouts kept, by (tag, graph id): a run has few graph versions.
_KEPT = 16


@dataclasses.dataclass(frozen=True)
class ScalarLayout:
    """The scalar tags of one tag and graph version, in the order `scalar_values` gives values.

    Attributes:
      tags: The layers' grad-norm tags (layers in order of their first variable), then the
        dead-unit tags.
      rows, starts: The variables grouped by layer, for layer_norms.reduce_layers.
      unit_ops: The ops whose dead units are counted, in graph order (as the Step stores them).
      unit_group: Per such op, the index of its dead-unit tag among the dead-unit tags.
    """

    tags: tuple[str, ...]
    rows: np.ndarray
    starts: np.ndarray
    unit_ops: np.ndarray
    unit_group: np.ndarray


_layouts: collections.OrderedDict[tuple[str, str], ScalarLayout] = collections.OrderedDict()


def scalar_layout(tag: str, graph: gradflow_pb2.Graph) -> ScalarLayout:
    """The scalar tags of `graph`'s steps logged under `tag` (made once per graph version)."""
    key = (tag, graph.graph_id)
    layout = _layouts.get(key)
    if layout is None:
        layout = _layouts[key] = _make_layout(tag, graph)
        while len(_layouts) > _KEPT:
            _layouts.popitem(last=False)
    return layout


def _make_layout(tag: str, graph: gradflow_pb2.Graph) -> ScalarLayout:
    layers, rows, starts = variable_grouping([v.name for v in graph.variables])
    unit_ops = [i for i, op in enumerate(graph.ops) if op.units > 0]
    unit_layers = [gate_layer(graph, i) for i in unit_ops]
    groups = list(dict.fromkeys(unit_layers))
    at = {g: k for k, g in enumerate(groups)}
    return ScalarLayout(
        tags=(*(f"{tag}/{GRAD_NORM}/{layer}" for layer in layers),
              *(f"{tag}/{DEAD_UNITS}/{g}" for g in groups)),
        rows=rows,
        starts=starts,
        unit_ops=np.array(unit_ops, np.int64),
        unit_group=np.array([at[layer] for layer in unit_layers], np.int64),
    )


def scalar_values(
    layout: ScalarLayout, graph: gradflow_pb2.Graph, step: gradflow_pb2.Step
) -> tuple[np.ndarray, np.ndarray]:
    """(values float64, written bool), one each per tag of `layout`, for one step of `graph`.

    A grad-norm value is the layer's norm (layer_norms.py); a dead-unit value is the dead
    share of the units of that layer's counted gates that got a gradient. `written` is false
    where there is nothing to chart (see the module's docstring).
    """
    op_codes, _, var_codes, var_norms = step_arrays(step, len(graph.ops), len(graph.variables))
    norms = np.zeros(0)
    has_norm = np.zeros(0, bool)
    if len(layout.rows):
        states, layer_norms = reduce_layers(
            var_codes[layout.rows][:, None], var_norms[layout.rows][:, None], layout.starts
        )
        norms, has_norm = layer_norms[:, 0], states[:, 0] != _NONE
    n_groups = len(layout.tags) - len(norms)
    dead = np.zeros(n_groups)
    units = np.zeros(n_groups)
    if len(step.dead_units) == len(layout.unit_ops) and len(layout.unit_ops):
        counts = np.array(step.dead_units, np.float64)
        known = (counts >= 0) & (op_codes[layout.unit_ops] != _NONE)
        widths = np.array([graph.ops[i].units for i in layout.unit_ops.tolist()], np.float64)
        np.add.at(dead, layout.unit_group[known], counts[known])
        np.add.at(units, layout.unit_group[known], widths[known])
    with np.errstate(invalid="ignore", divide="ignore"):
        fractions = dead / units
    return np.concatenate([norms, fractions]), np.concatenate([has_norm, units > 0])


def scalar_summary(tag: str, graph: gradflow_pb2.Graph, step: gradflow_pb2.Step) -> summary_pb2.Summary:
    """The scalars of one step of `graph` logged under `tag`, as one Summary: each value as
    `tf.summary.scalar` writes it (a float32 scalar tensor with the scalars plugin's metadata)."""
    layout = scalar_layout(tag, graph)
    values, written = scalar_values(layout, graph, step)
    metadata = _scalar_metadata()
    return summary_pb2.Summary(value=[
        summary_pb2.Summary.Value(tag=t, metadata=metadata, tensor=_float_tensor(v))
        for t, v, w in zip(layout.tags, values.tolist(), written.tolist(), strict=True) if w
    ])


def _float_tensor(value: float) -> tensor_pb2.TensorProto:
    return tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, float_val=[value], tensor_shape=tensor_shape_pb2.TensorShapeProto()
    )


@functools.cache
def _scalar_metadata() -> summary_pb2.SummaryMetadata:
    """The metadata of `tf.summary.scalar`, so TensorBoard's scalars plugin and any reader of
    it take these values as its own."""
    return scalar_plugin_metadata.create_summary_metadata(display_name=None, description=None)
