"""Graph and Step protos to and from the report: the one place where the format meets the model."""
from __future__ import annotations

import collections
import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tb_gradflow import vocabulary as V
from tb_gradflow.format import presence as P
from tb_gradflow.format.metadata import FormatError
from tb_gradflow.proto import gradflow_pb2
from tb_gradflow.report import (
    CutPoint,
    OpRecord,
    OpRecords,
    Report,
    VariableRecord,
    VariableRecords,
)


def encode_step(
    graph_id: str,
    op_states: Sequence[str],
    op_norms: Sequence[float | None],
    variable_states: Sequence[str],
    variable_norms: Sequence[float | None],
    loss: float | None,
    op_presence: Sequence[float | None] | None = None,
    variable_presence: Sequence[float | None] | None = None,
) -> gradflow_pb2.Step:
    """The Step of states and norms given by name and as Python numbers (None: no norm, unknown
    presence): `encode_step_arrays` of them, for tests and hand-made steps."""

    def optional(values: Sequence[float | None] | None) -> np.ndarray | None:
        return None if values is None else _floats(values)

    return encode_step_arrays(
        graph_id,
        np.array([V.STATE_CODE[s] for s in op_states], np.uint8),
        _floats(op_norms),
        np.array([V.STATE_CODE[s] for s in variable_states], np.uint8),
        _floats(variable_norms),
        loss,
        op_presence=optional(op_presence),
        variable_presence=optional(variable_presence),
    )


def _floats(values: Sequence[float | None]) -> np.ndarray:
    """float32, NaN for None."""
    return np.array([np.nan if v is None else v for v in values], np.float32)


def encode_step_arrays(
    graph_id: str,
    op_codes: np.ndarray,
    op_norms: np.ndarray,
    variable_codes: np.ndarray,
    variable_norms: np.ndarray,
    loss: float | None,
    op_presence: np.ndarray | None = None,
    variable_presence: np.ndarray | None = None,
    dead_units: Sequence[float] | np.ndarray = (),
    iteration_norms: Sequence[np.ndarray] = (),
) -> gradflow_pb2.Step:
    """The Step of state codes (proto State values) and norms, NaN meaning "no norm".

    Format version 2: states packed in 2 bits, op norms log-quantized to a byte (within 4.4%),
    variable norms and the loss exact float32. A ResNet50 step (1,405 ops, 214 variables) takes
    about 2.8 KB, against 8.1 KB in version 1. Presence (NaN unknown), when given, costs a bit
    per op and variable and a byte per value its state does not imply (format/presence.py).
    `dead_units`: one count per op with units (a varint each, mostly one byte);
    `iteration_norms`: per loop with iteration norms, its norms (float32 each).
    """
    codes, top = quantize_norms(np.asarray(op_norms))
    step = gradflow_pb2.Step(
        graph_id=graph_id,
        op_states_packed=pack_states(np.asarray(op_codes)),
        op_norm_codes=codes.tobytes(),
        op_norm_top=top,
        variable_states_packed=pack_states(np.asarray(variable_codes)),
        variable_norms=np.asarray(variable_norms, np.float32).tolist(),
        loss=float("nan") if loss is None else loss,
    )
    if op_presence is not None and variable_presence is not None:
        step.has_presence = True
        (step.op_presence_stored, step.op_presence_codes), (
            step.variable_presence_stored, step.variable_presence_codes
        ) = P.encode_rows([(op_codes, op_presence), (variable_codes, variable_presence)])
    if len(dead_units):
        step.dead_units.extend(np.asarray(dead_units, np.int64).tolist())
    if len(iteration_norms):
        step.iteration_counts.extend(len(n) for n in iteration_norms)
        step.iteration_norms.extend(np.concatenate([np.asarray(n, np.float32) for n in iteration_norms]).tolist())
    return step


def loop_arrays(step: gradflow_pb2.Step) -> list[np.ndarray]:
    """Per loop with iteration norms, its norms as float32 (first iteration first); [] for a
    step that stores none. `check_aligned` must have passed."""
    norms = np.array(step.iteration_norms, np.float32)
    ends = np.cumsum(list(step.iteration_counts))
    return [norms[a:b] for a, b in zip(np.concatenate([[0], ends[:-1]]), ends, strict=False)]


def presence_arrays(
    step: gradflow_pb2.Step, op_codes: np.ndarray, variable_codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(op presence, variable presence) as float32 fractions, NaN unknown (all of a step written
    before presence existed); `check_aligned` must have passed."""
    if not step.has_presence:
        return (np.full(len(op_codes), np.nan, np.float32), np.full(len(variable_codes), np.nan, np.float32))
    return (
        P.decode(op_codes, np.frombuffer(step.op_presence_stored, np.uint8),
                 np.frombuffer(step.op_presence_codes, np.uint8)),
        P.decode(variable_codes, np.frombuffer(step.variable_presence_stored, np.uint8),
                 np.frombuffer(step.variable_presence_codes, np.uint8)),
    )


# Op norms in one byte: special codes, then 253 levels, 8 to an octave, below the step's top.
NORM_LEVELS_PER_OCTAVE = 8
_NAN, _ZERO, _INF, _FIRST_LEVEL = 0, 1, 2, 3
_TOP_LEVEL = 255
NORM_SPAN_OCTAVES = (_TOP_LEVEL - _FIRST_LEVEL) / NORM_LEVELS_PER_OCTAVE  # 31.5: 9.5 decades


def quantize_norms(norms: np.ndarray) -> tuple[np.ndarray, int]:
    """(one code byte per norm, the scale's top exponent): see the Step message.

    The top is the exponent just above the largest finite norm, so the largest norms of a
    step keep full precision and norms more than 9.5 decades below it share the lowest level.
    """
    x = np.asarray(norms, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log2(x)  # finite exactly for the positive finite norms
    positive = np.isfinite(logs)
    # Special codes by (x == 0) + 2 * (x == +Inf): NaN, zero, Inf (a negative norm reads NaN).
    codes = _SPECIAL_CODES[(x == 0) + 2 * (x == np.inf)]
    if not positive.any():
        return codes, 0
    top = int(np.ceil(logs[positive].max()))
    # At most _TOP_LEVEL already: no log is above the top.
    codes[positive] = np.maximum(np.rint((logs[positive] - top) * NORM_LEVELS_PER_OCTAVE) + _TOP_LEVEL, _FIRST_LEVEL)
    return codes, top


_SPECIAL_CODES = np.array([_NAN, _ZERO, _INF], np.uint8)


def _level_table() -> np.ndarray:
    """Each code's norm under a top exponent of 0 (float32; NaN, 0 and Inf for the special codes)."""
    codes = np.arange(256)
    table = np.exp2((codes - _TOP_LEVEL) / NORM_LEVELS_PER_OCTAVE).astype(np.float32)
    table[[_NAN, _ZERO, _INF]] = [np.nan, 0.0, np.inf]
    return table


_LEVELS = _level_table()


def dequantize_norms(codes: np.ndarray, top: np.ndarray | int) -> np.ndarray:
    """Float32 norms of `codes` (any shape) under `top` (one per row of the codes, or one)."""
    codes = np.asarray(codes)
    top = np.asarray(top, np.int32)
    if top.ndim and codes.ndim > 1:
        top = top.reshape(top.shape + (1,) * (codes.ndim - top.ndim))
    return np.ldexp(_LEVELS[codes], top)


_SHIFTS = np.array([0, 2, 4, 6], np.uint8)


def pack_states(codes: np.ndarray) -> bytes:
    """State codes (0..3), four to a byte, the first in the low bits."""
    bits = np.unpackbits(np.asarray(codes, np.uint8).reshape(-1, 1), axis=1, count=2, bitorder="little")
    return np.packbits(bits, bitorder="little").tobytes()


def unpack_states(data: bytes | np.ndarray, n: int) -> np.ndarray:
    """The first `n` state codes of packed bytes (a row, or rows as a 2-D uint8 array)."""
    packed = np.frombuffer(data, np.uint8) if isinstance(data, bytes) else np.asarray(data, np.uint8)
    unpacked = (packed[..., None] >> _SHIFTS) & 3
    return unpacked.reshape(packed.shape[:-1] + (-1,))[..., :n]


def is_packed(step: gradflow_pb2.Step) -> bool:
    """Version 2 encoding (no version 1 op or variable state bytes)."""
    return not step.op_states and not step.variable_states and not step.op_norms


def step_arrays(
    step: gradflow_pb2.Step, n_ops: int, n_vars: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(op codes uint8, op norms float32, variable codes uint8, variable norms float32) of a
    Step of either format version; `check_aligned` must have passed."""
    variable_norms = np.array(step.variable_norms, np.float32)
    if not is_packed(step):
        return (np.frombuffer(step.op_states, np.uint8), np.array(step.op_norms, np.float32),
                np.frombuffer(step.variable_states, np.uint8), variable_norms)
    return (
        unpack_states(step.op_states_packed, n_ops),
        dequantize_norms(np.frombuffer(step.op_norm_codes, np.uint8), step.op_norm_top),
        unpack_states(step.variable_states_packed, n_vars),
        variable_norms,
    )


def decode_step(data: bytes) -> gradflow_pb2.Step:
    """A Step parsed from untrusted bytes; FormatError if malformed."""
    step = gradflow_pb2.Step()
    try:
        step.ParseFromString(data)
    except Exception as e:
        raise FormatError(f"malformed gradflow step: {e}") from e
    return step


def decode_graph(data: bytes) -> gradflow_pb2.Graph:
    """A Graph parsed from untrusted bytes; FormatError if malformed."""
    graph = gradflow_pb2.Graph()
    try:
        graph.ParseFromString(data)
    except Exception as e:
        raise FormatError(f"malformed gradflow graph: {e}") from e
    return graph


_STATE_BYTES = bytes(range(len(V.STATES)))


def check_aligned(graph: gradflow_pb2.Graph, step: gradflow_pb2.Step) -> None:
    """Raises FormatError unless `step` holds one value of each kind per op and variable of
    `graph`, in either format version: what a hostile logdir must not get past."""
    if step.graph_id != graph.graph_id:
        raise FormatError(f"step refers to graph {step.graph_id!r}, not {graph.graph_id!r}")
    n_ops, n_vars = len(graph.ops), len(graph.variables)
    if len(step.variable_norms) != n_vars:
        raise FormatError("step values do not match the graph's ops and variables")
    _check_units_and_loops(graph, step)
    if step.has_presence:
        P.check(step.op_presence_stored, step.op_presence_codes, n_ops)
        P.check(step.variable_presence_stored, step.variable_presence_codes, n_vars)
    if is_packed(step):
        if (len(step.op_states_packed), len(step.op_norm_codes), len(step.variable_states_packed)) != (
            -(-n_ops // 4), n_ops, -(-n_vars // 4)
        ):
            raise FormatError("step values do not match the graph's ops and variables")
        if not -200 <= step.op_norm_top <= 200:
            raise FormatError("op norm scale out of range")
        return  # every 2-bit code is a state
    if (len(step.op_states), len(step.op_norms), len(step.variable_states)) != (n_ops, n_ops, n_vars):
        raise FormatError("step values do not match the graph's ops and variables")
    # bytes.translate runs in C: this check is on the plugin's reload path for every step.
    if (step.op_states + step.variable_states).translate(None, _STATE_BYTES):
        raise FormatError("unknown gradient state in step")


def _check_units_and_loops(graph: gradflow_pb2.Graph, step: gradflow_pb2.Step) -> None:
    """Dead-unit counts and iteration norms, when stored, match the graph's ops (issue 17)."""
    if step.dead_units and len(step.dead_units) != sum(op.units > 0 for op in graph.ops):
        raise FormatError("step dead units do not match the graph's ops")
    if step.iteration_counts and len(step.iteration_counts) != sum(op.has_iteration_norms for op in graph.ops):
        raise FormatError("step iteration norms do not match the graph's loops")
    if sum(step.iteration_counts) != len(step.iteration_norms):
        raise FormatError("step iteration norms do not match their counts")


def decode_state(code: int) -> str:
    """The state name of a state code."""
    return V.STATES[code]


def decode_norm(state: str, norm: float) -> float | None:
    """NaN marks "no norm" (state none, or not measured); a nonfinite gradient keeps its Inf/NaN."""
    if state == V.NONFINITE:
        return norm
    return None if math.isnan(norm) else norm


def _fraction(value: float) -> float | None:
    """A decoded presence as the report has it: None for unknown, else (c - 1) / 254 exactly
    (the float32 the arrays hold has noise beyond that)."""
    return None if math.isnan(value) else round(value * P.LEVELS) / P.LEVELS


def cut_points(graph: gradflow_pb2.Graph) -> list[CutPoint]:
    """The graph's cut points, in op order: every op with a cause."""
    names = [v.name for v in graph.variables]
    op_names = [op.name for op in graph.ops]
    return [
        CutPoint(
            op_name=op.name,
            op_type=op.type,
            cause=V.CAUSES[op.cause] or "",  # never "": only ops with a cause are cut points
            source=op.source,
            starved_variables=tuple(names[i] for i in op.starved_variables),
            detail=op.cause_detail,
            parallel_cuts=tuple(op_names[i] for i in op.parallel_cuts if 0 <= i < len(op_names)),
            library_source=op.library_source,
        )
        for op in graph.ops
        if op.cause
    ]


@dataclasses.dataclass(frozen=True)
class _GraphFields:
    """What a report takes from its graph, the same at every step: read from the proto once per
    graph version, since reading proto fields op by op dominated a large model's logging step."""

    ops: tuple[tuple[str, str, str, tuple[str, ...], str | None, bool, bool], ...]
    variables: tuple[tuple[str, str, bool], ...]
    cut_points: tuple[CutPoint, ...]
    computes_in_float16: bool
    frozen_variables: tuple[str, ...] = ()
    # Per op: its units (0: dead units not counted) and whether it has iteration norms.
    units: tuple[int, ...] = ()
    loops: tuple[bool, ...] = ()


def _read_fields(graph: gradflow_pb2.Graph) -> _GraphFields:
    graph_ops = list(graph.ops)  # protobuf indexing is slow; one pass into a list
    names = [op.name for op in graph_ops]
    return _GraphFields(
        ops=tuple(
            (op.name, op.type, op.source, tuple(names[i] for i in op.inputs), V.CAUSES[op.cause],
             op.measured, op.presence_at_input)
            for op in graph_ops
        ),
        variables=tuple((v.name, v.shape, v.sparse_gradient) for v in graph.variables),
        cut_points=tuple(cut_points(graph)),
        computes_in_float16=any("float16" in op.output_dtypes for op in graph_ops),
        frozen_variables=tuple(v.name for v in graph.frozen_variables),
        units=tuple(op.units for op in graph_ops),
        loops=tuple(op.has_iteration_norms for op in graph_ops),
    )


# Keyed by the graph object (a probe's layout, a reader's version keep theirs), never by the id it
# claims: a logdir is untrusted, and hand-made graphs reuse ids. Each entry holds its graph, so an
# object id cannot be reused while cached; a graph is not changed once a report is built from it.
_FIELDS_KEPT = 8
_fields_by_object: collections.OrderedDict[int, tuple[gradflow_pb2.Graph, _GraphFields]] = (
    collections.OrderedDict()
)


def _graph_fields(graph: gradflow_pb2.Graph) -> _GraphFields:
    key = id(graph)
    entry = _fields_by_object.get(key)
    if entry is None or entry[0] is not graph:
        entry = _fields_by_object[key] = (graph, _read_fields(graph))
        while len(_fields_by_object) > _FIELDS_KEPT:
            _fields_by_object.popitem(last=False)
    else:
        _fields_by_object.move_to_end(key)
    return entry[1]


def build_report(
    graph: gradflow_pb2.Graph, step: gradflow_pb2.Step, step_number: int | None = None, checked: bool = True,
    dead_since: dict[str, int] | None = None,
    exact: tuple[np.ndarray, ...] | None = None,
) -> Report:
    """The report for one logged step: analyze() and every summary go through this.

    The step is checked here (`checked=False` only for a step just encoded from this graph);
    its values are decoded on the first read of the report's ops or variables (a logging
    call in a training loop builds a report it seldom reads). `exact`, when the capture has
    them at hand, are the step's values before encoding (op codes, op norms, variable codes,
    variable norms, op presence, variable presence; NaN for none): the report keeps those
    instead of the Step's quantized op norms (dead units and iteration norms come from the Step,
    which keeps them exact)."""
    if checked:
        check_aligned(graph, step)
    if exact is not None:
        # Dead units and iteration norms are exact in the Step already.
        values: Callable[[], tuple[Any, ...]] = lambda: (  # noqa: E731
            *exact[:6], list(step.dead_units), loop_arrays(step)
        )
    else:
        values = functools.cache(functools.partial(_step_values, graph, step))
    return _report(graph, values, None if math.isnan(step.loss) else step.loss, step_number, dead_since)


def report_from_columns(
    graph: gradflow_pb2.Graph,
    columns: Callable[[], tuple[Any, ...]],
    loss: float | None,
    step_number: int | None,
    dead_since: dict[str, int] | None = None,
) -> Report:
    """The report of one row of a reader's columns, without a Step in between: `columns` gives
    (op codes, op norms, variable codes, variable norms, op presence codes, variable presence
    codes, dead units per counted op, iteration norms per loop) of that row, on the first read
    of the report's ops or variables."""

    def values() -> tuple[Any, ...]:
        op_codes, op_norms, var_codes, var_norms, op_presence, var_presence, dead, loops = columns()
        return (op_codes, op_norms, var_codes, var_norms, P.from_codes(op_presence),
                P.from_codes(var_presence), dead, loops)

    return _report(graph, functools.cache(values), loss, step_number, dead_since)


def _report(
    graph: gradflow_pb2.Graph,
    values: Callable[[], tuple[Any, ...]],
    loss: float | None,
    step_number: int | None,
    dead_since: dict[str, int] | None,
) -> Report:
    fields = _graph_fields(graph)
    return Report(
        variables=VariableRecords(functools.partial(_variable_records, fields, values)),
        ops=OpRecords(functools.partial(_op_records, fields, values)),
        cut_points=fields.cut_points,
        step=step_number,
        loss=loss,
        graph_id=graph.graph_id,
        fallback_reason=graph.fallback_reason,
        computes_in_float16=fields.computes_in_float16,
        frozen_variables=fields.frozen_variables,
        frozen_models=tuple(graph.frozen_models),
        unread_models=tuple(graph.unread_models),
        loss_shape=graph.loss_shape,
        dead_since=dead_since or {},
        graph=graph,
    )


def _step_values(graph: gradflow_pb2.Graph, step: gradflow_pb2.Step) -> tuple[Any, ...]:
    """(op codes, op norms, variable codes, variable norms, op presence, variable presence,
    dead units per counted op, iteration norms per loop)."""
    op_codes, op_norms, var_codes, var_norms = step_arrays(step, len(graph.ops), len(graph.variables))
    return (op_codes, op_norms, var_codes, var_norms, *presence_arrays(step, op_codes, var_codes),
            list(step.dead_units), loop_arrays(step))


def _variable_records(fields: _GraphFields, values: Callable[[], tuple[np.ndarray, ...]]) -> dict[str, VariableRecord]:
    _, _, codes, norms, _, presence, _, _ = values()
    variables = {}
    for (name, shape, sparse), code, norm, fraction in zip(
        fields.variables, codes.tolist(), norms.tolist(), presence.tolist(), strict=False
    ):
        state = decode_state(code)
        variables[name] = VariableRecord(
            name, state, decode_norm(state, norm), shape, presence=_fraction(fraction), sparse_gradient=sparse,
        )
    return variables


def _op_records(fields: _GraphFields, values: Callable[[], tuple[np.ndarray, ...]]) -> tuple[OpRecord, ...]:
    codes, norms, _, _, presence, _, dead, loops = values()
    dead_of = dict(zip([i for i, u in enumerate(fields.units) if u], dead, strict=False))
    loop_of = dict(zip([i for i, has in enumerate(fields.loops) if has], loops, strict=False))
    return tuple(
        OpRecord(
            name=name,
            type=op_type,
            state=V.STATES[code],
            norm=decode_norm(V.STATES[code], norm),
            source=source,
            inputs=inputs,
            cause=cause,
            measured=measured,
            presence=_fraction(fraction) if measured else None,
            presence_at_input=at_input,
            units=fields.units[i] if fields.units and fields.units[i] else None,
            dead_units=dead_of.get(i),
            iteration_norms=tuple(loop_of[i].tolist()) if i in loop_of else None,
        )
        for i, ((name, op_type, source, inputs, cause, measured, at_input), code, norm, fraction) in enumerate(zip(
            fields.ops, codes.tolist(), norms.tolist(), presence.tolist(), strict=False
        ))
    )

