"""The read side's one form, as JSON: the reader's column arrays turned into the routes' values.

The plugin (`plugin/views.py`) encodes these into route bodies; the export (`export/bundle.py`)
ships the same structure and per-step columns, and its page answers the routes from them. So
the rules live here once: how a norm is rounded and spelled, how presence reads, how a state is
named, what a graph version's structure holds. The page restates none of them
(frontend/src/export_source.ts only decodes what it is given).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from tb_gradflow import vocabulary as V
from tb_gradflow.diagnosis import diagnosis_json
from tb_gradflow.format import presence as P
from tb_gradflow.format.records import cut_points
from tb_gradflow.json_values import json_float, rounded_norms, significant_digits
from tb_gradflow.layer_norms import layer_of
from tb_gradflow.proto import gradflow_pb2
from tb_gradflow.reading.reader import TagSeries, VersionValues

STATE_NAMES = np.array(V.STATES, dtype=object)

# The columns the `layers` route samples a run to when the request names none (the export too).
LAYER_COLUMNS = 2_000


# What a norm that is not a number reads as, by special code (`norm_digits`).
NORM_SPECIALS: tuple[str | float | None, ...] = (None, "nan", "inf", "-inf", -0.0)
_NO_NORM, _NAN, _INF, _MINUS_INF, _MINUS_ZERO = range(len(NORM_SPECIALS))
# The exponent that marks a special code in `norm_digits`' output (no norm has it).
SPECIAL_EXPONENT = -128


def encode(value: Any) -> str:
    """Compact JSON; NaN and Inf must have been spelled as strings before (allow_nan=False)."""
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


def splice(pairs: dict[str, str]) -> str:
    """`"key":value,...` from already-encoded values, to splice into an object."""
    return ",".join(f"{encode(k)}:{v}" for k, v in pairs.items())


def _specials(codes: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """Per norm, its NORM_SPECIALS index, or -1 for a number: NaN is "no norm" unless the state
    is nonfinite (then the gradient's own NaN); an infinite norm is spelled; -0.0 (which
    digits cannot carry) is kept."""
    out = np.full(np.shape(norms), -1, np.int8)
    nan = np.isnan(norms)
    out[nan] = np.where(np.asarray(codes)[nan] == V.STATE_CODE[V.NONFINITE], _NAN, _NO_NORM)
    out[norms == np.inf] = _INF
    out[norms == -np.inf] = _MINUS_INF
    out[(norms == 0) & np.signbit(norms)] = _MINUS_ZERO
    return out


def norms_json(codes: np.ndarray, norms: np.ndarray) -> list[Any]:
    """JSON norms of one row of state codes and float32 norms: rounded, null for no norm,
    "inf"/"nan" spelled."""
    values = rounded_norms(norms).astype(object)
    specials = _specials(codes, norms)
    for code, spelled in enumerate(NORM_SPECIALS):
        values[specials == code] = spelled
    return values.tolist()


def norm_digits(codes: np.ndarray, norms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int32 mantissas, int8 exponents) of norms of any shape, for the export: a number reads
    as the double nearest mantissa * 10**exponent, the very value `norms_json` gives; where the
    exponent is SPECIAL_EXPONENT, the mantissa indexes NORM_SPECIALS."""
    x = np.asarray(norms, np.float64)
    mantissa, exponent, _, _ = significant_digits(x.ravel())
    specials = _specials(np.asarray(codes).ravel(), np.asarray(norms).ravel())
    special = specials >= 0
    mantissa[special], exponent[special] = specials[special], SPECIAL_EXPONENT
    return mantissa.astype(np.int32).reshape(x.shape), exponent.astype(np.int8).reshape(x.shape)


def presence_json(codes: np.ndarray) -> list[float | None]:
    """Presence codes (format/presence.py) for JSON: null where unknown, else the fraction
    rounded to 4 decimals (it is within 1/254 of the measured one anyway)."""
    values = P.from_codes(codes).astype(np.float64)
    return [None if np.isnan(p) else round(p, 4) for p in values.tolist()]


def presence_values() -> list[float | None]:
    """What each presence code (0..255) reads as in JSON: the export's lookup table."""
    return presence_json(np.arange(P.LEVELS + 2, dtype=np.uint8))


def loss_json(loss: float) -> float | str | None:
    """A logged loss (float32, NaN unknown) for JSON."""
    return None if np.isnan(loss) else json_float(float(loss))


def sampled(series: TagSeries) -> dict[str, str]:
    """`{"sampled": why}` for a series the provider served only a sample of, else {}."""
    return {"sampled": series.sampled} if series.sampled else {}


def runs_body(series_by_run: dict[str, dict[str, TagSeries]]) -> dict[str, Any]:
    """The `runs` route's body."""
    return {
        run: {
            tag: {
                "steps": [s.steps[0], s.last_step],
                "count": len(s.steps),
                "graph_versions": len(s.versions),
                "description": s.description,
                "ops": len(s.versions[s.where[s.last_step][0]].graph.ops),
                **sampled(s),
            }
            for tag, s in sorted(tags.items())
        }
        for run, tags in sorted(series_by_run.items())
    }


def op_columns(graph: gradflow_pb2.Graph, indices: list[int]) -> dict[str, list]:
    """The `graph` route's structural op columns for the ops at `indices` (global indices)."""
    ops = graph.ops
    chosen = [ops[i] for i in indices]
    return {
        "name": [op.name for op in chosen],
        "type": [op.type for op in chosen],
        "scope": [op.name.rpartition("/")[0] for op in chosen],
        "inputs": [op.inputs[:] for op in chosen],  # [:] is twice as fast as list() here
        "variable_inputs": [op.variable_inputs[:] for op in chosen],
        "parent": [op.parent for op in chosen],
        "shape": [op.output_shapes[:] for op in chosen],
        "dtype": [op.output_dtypes[:] for op in chosen],
        "source": [op.source for op in chosen],
        "measured": [op.measured for op in chosen],
        "cause": [V.CAUSES[op.cause] for op in chosen],
        "cause_detail": [op.cause_detail for op in chosen],
        "starved": [op.starved_variables[:] for op in chosen],
        "presence_at_input": [op.presence_at_input for op in chosen],
    }


def variable_columns(graph: gradflow_pb2.Graph) -> dict[str, list]:
    """The `graph` route's structural variable columns, with each variable's layer by the one
    rule the Layers view, its heatmap and the layer scalars share (the tab restates no rule)."""
    return {
        "name": [v.name for v in graph.variables],
        "layer": [layer_of(v.name) for v in graph.variables],
        "shape": [v.shape for v in graph.variables],
        "sparse_gradient": [v.sparse_gradient for v in graph.variables],
    }


def cut_points_json(graph: gradflow_pb2.Graph) -> list[dict[str, Any]]:
    """The `graph` route's cut points: each with its op's index and detail."""
    cut_indices = [i for i, op in enumerate(graph.ops) if op.cause]
    return [
        {"op": i, **cut.to_dict(), "detail": cut.detail}
        for i, cut in zip(cut_indices, cut_points(graph), strict=True)
    ]


def version_numbers(series: TagSeries) -> dict[str, int]:
    """Each graph version's number, from 1 in order of first step."""
    return {gid: i + 1 for i, gid in enumerate(series.versions)}


def graph_head(
    run: str,
    tag: str,
    series: TagSeries,
    graph: gradflow_pb2.Graph,
    numbers: dict[str, int],
    step: int | None = None,
    loss: float | str | None = None,
    at_step: bool = True,
) -> dict[str, Any]:
    """The `graph` route's fields before its columns, in order; without `step` and `loss` when
    not `at_step` (the export's structure, the same at every step)."""
    head: dict[str, Any] = {"run": run, "tag": tag}
    if at_step:
        head["step"] = step
    head.update(
        {
            "steps": [series.steps[0], series.last_step],
            "count": len(series.steps),
            "graph_id": graph.graph_id,
            "graph_version": numbers[graph.graph_id],
            "graph_versions": len(series.versions),
        }
    )
    if at_step:
        head["loss"] = loss
    head["fallback_reason"] = graph.fallback_reason or None
    head.update(sampled(series))
    return head


def diagnosis_body(series: TagSeries, step: int) -> dict[str, Any]:
    """The `diagnosis` route's body at a logged `step`: `tb-gradflow report --json`'s, with it."""
    return {"step": step, **diagnosis_json(series, step)}


def unit_and_loop_values(
    values: VersionValues, row: int
) -> tuple[dict[int, int], dict[int, int], dict[int, list[Any]]]:
    """Issue 17's values at `row`, keyed by op index: the units of each ReLU-family gate whose
    dead units are counted, its dead units where the step stores them, and each loop's
    iteration norms as JSON values. Sparse, since few ops have them; the routes and the export
    spread them over the ops."""
    units, loops = values.unit_and_loop_ops()
    dead: dict[int, int] = {}
    if values.dead_units is not None:
        dead = {i: n for i, n in zip(units, values.dead_units[row].tolist(), strict=True) if n >= 0}
    norms = values.iteration_norms[row] if values.iteration_norms is not None else []
    by_loop = {i: [json_float(float(x)) for x in n.tolist()] for i, n in zip(loops, norms, strict=False)}
    return units, dead, by_loop


def unit_and_loop_columns(values: VersionValues, row: int, ops: Any) -> dict[str, list[Any]]:
    """The `graph` and `graph_groups` routes' `units`, `dead_units` and `iteration_norms`
    columns at `row` for the ops `ops` (indices): null for ops without them."""
    units, dead, by_loop = unit_and_loop_values(values, row)
    return {
        "units": [units.get(i) for i in ops],
        "dead_units": [dead.get(i) for i in ops],
        "iteration_norms": [by_loop.get(i) for i in ops],
    }
