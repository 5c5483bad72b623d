"""Reads gradflow data back through a TensorBoard data provider.

The CLI (over a local logdir) and the plugin (over whatever provider TensorBoard runs: the Python
multiplexer, the Rust data server, a remote one) share this code. Everything here is untrusted
input: a tag that cannot be decoded is skipped with a warning naming its run and tag, never fatal.
"""
from __future__ import annotations

import builtins
import concurrent.futures
import dataclasses
import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any, cast

import numpy as np
from tensorboard import context as tb_context
from tensorboard.data import provider

from tb_gradflow import vocabulary as V
from tb_gradflow.format import metadata
from tb_gradflow.format import presence as P
from tb_gradflow.format.metadata import FormatError
from tb_gradflow.format.records import (
    check_aligned,
    decode_graph,
    decode_step,
    dequantize_norms,
    is_packed,
    loop_arrays,
    presence_arrays,
    report_from_columns,
    step_arrays,
    unpack_states,
)
from tb_gradflow.proto import gradflow_pb2
from tb_gradflow.reading.event_files import local_run_files, tag_tensors
from tb_gradflow.report import Report

logger = logging.getLogger("tb_gradflow")

# Read every sample the loader kept: our steps are small and a gap would be a lie.
_ALL = 1 << 30

# A graph tag holds one blob; a declared length beyond this is hostile (a blob-sequence shape of
# [2**40] makes the Python loader build a list of 2**40 blob references).
_MAX_GRAPH_BLOBS = 16
# A step tensor that declares more elements than this, beyond the values it holds, would make the
# provider expand it (numpy.repeat of one value) into gigabytes: the tag is not read at all.
_MAX_DECLARED_ELEMENTS = 1 << 16

# Data providers that serve one logdir whatever the experiment id in the URL: the Python
# multiplexer and the gRPC client of the Rust data server.
_EXPERIMENT_BLIND = ("MultiplexerDataProvider", "GrpcDataProvider")


def data_scope(data_provider: Any, experiment_id: str) -> str:
    """The part of a request that decides what the provider reads, for cache keys: "" for a
    provider that ignores experiment ids (a client must not grow the cache by making ids up),
    else the experiment id. Entries are still checked against each request's own listing."""
    if type(data_provider).__name__ in _EXPERIMENT_BLIND:
        return ""
    return experiment_id


def declared_overflow(tensor_proto: Any) -> str | None:
    """Why a TensorProto declares far more elements than it holds values, or None when sane.

    Checked on the raw event before a provider converts it, so that nothing is allocated for it.
    """
    count = 1
    for dim in tensor_proto.tensor_shape.dim:
        if dim.size < 0:
            return f"negative dimension {dim.size}"
        count *= dim.size
    present = max(
        len(tensor_proto.string_val), len(tensor_proto.float_val), len(tensor_proto.double_val),
        len(tensor_proto.int_val), len(tensor_proto.int64_val), len(tensor_proto.half_val),
        len(tensor_proto.bool_val), len(tensor_proto.tensor_content),
    )
    if count > _MAX_DECLARED_ELEMENTS and count > present:
        return f"declares {count} elements but holds {present} values"
    return None


@dataclasses.dataclass
class TagInfo:
    """What a listing knows of one gradflow summary name in one run, without reading values."""

    description: str
    max_step: int
    max_wall_time: float
    graph_tags: dict[str, str]  # graph id -> tag


@dataclasses.dataclass
class VersionValues:
    """All logged steps of one graph version, as arrays: one row a step, one column an op."""

    graph: gradflow_pb2.Graph
    steps: np.ndarray  # int64 [n]
    op_states: np.ndarray  # uint8 [n, ops]
    op_norms: np.ndarray  # float32 [n, ops]
    variable_states: np.ndarray  # uint8 [n, vars]
    variable_norms: np.ndarray  # float32 [n, vars]
    losses: np.ndarray  # float32 [n]
    wall_times: np.ndarray  # float64 [n]: with the step, what identifies a logged datum
    # Presence codes, a byte per value (format/presence.py: 0 unknown, c the fraction (c-1)/254);
    # None when no step of the version stores presence (older logdirs cost nothing more).
    op_presence: np.ndarray | None = None  # uint8 [n, ops]
    variable_presence: np.ndarray | None = None  # uint8 [n, vars]
    # Issue 17: dead units per op with units (-1 where a step stores none), and per step the
    # iteration norms of each loop ([] where a step stores none); None when no step has them.
    dead_units: np.ndarray | None = None  # int64 [n, ops with units]
    iteration_norms: list[list[np.ndarray]] | None = None
    _op_index: dict[str, int] | None = None
    _units_and_loops: tuple[dict[int, int], list[int]] | None = None
    _variable_index: dict[str, int] | None = None

    def op_index(self) -> dict[str, int]:
        """Each op's column by name (made on first use)."""
        if self._op_index is None:
            self._op_index = {op.name: i for i, op in enumerate(self.graph.ops)}
        return self._op_index

    def variable_index(self) -> dict[str, int]:
        """Each variable's column by name (made on first use)."""
        if self._variable_index is None:
            self._variable_index = {v.name: i for i, v in enumerate(self.graph.variables)}
        return self._variable_index

    def presence_codes(self, kind: str, rows: Any, cols: Any = slice(None)) -> np.ndarray:
        """Presence codes of ops (kind "op") or variables at `rows` (an int or an array) and
        `cols`; all 0 (unknown) for a version without presence."""
        matrix = self.op_presence if kind == "op" else self.variable_presence
        if matrix is None:
            width = len(self.graph.ops) if kind == "op" else len(self.graph.variables)
            matrix, rows = np.zeros((1, width), np.uint8), np.zeros_like(np.asarray(rows))
        return matrix[rows, cols]

    def unit_and_loop_ops(self) -> tuple[dict[int, int], list[int]]:
        """({op index: units} of the ops whose dead units are counted, the indices of the ops
        with iteration norms), both in op order (the order of their values in a step)."""
        if self._units_and_loops is None:
            ops = list(self.graph.ops)
            self._units_and_loops = (
                {i: op.units for i, op in enumerate(ops) if op.units > 0},
                [i for i, op in enumerate(ops) if op.has_iteration_norms],
            )
        return self._units_and_loops

    def dead_since(self, row: int) -> dict[str, int]:
        """Op name -> the first step of the streak of rows up to `row` in which at least
        V.DEAD_UNITS_THRESHOLD of its units are dead, for the ops dead so at `row`."""
        if self.dead_units is None:
            return {}
        counted_units = self.unit_and_loop_ops()[0]
        counted = [self.graph.ops[i] for i in counted_units]
        units = np.array(list(counted_units.values()), np.float64)
        dead = self.dead_units[: row + 1] >= V.DEAD_UNITS_THRESHOLD * units  # -1 (unknown): not dead
        since: dict[str, int] = {}
        for k in np.flatnonzero(dead[row]).tolist():
            alive = np.flatnonzero(~dead[:, k])
            since[counted[k].name] = int(self.steps[alive[-1] + 1 if len(alive) else 0])
        return since

    def columns(self, row: int) -> tuple[Any, ...]:
        """One step's (op codes, op norms, variable codes, variable norms, op presence codes,
        variable presence codes, dead units per counted op, iteration norms per loop): what
        `report_from_columns` reads. Dead units are given only when every counted op has them."""
        dead: list[int] = []
        if self.dead_units is not None and (self.dead_units[row] >= 0).all():
            dead = self.dead_units[row].tolist()
        loops = list(self.iteration_norms[row]) if self.iteration_norms is not None else []
        return (self.op_states[row], self.op_norms[row], self.variable_states[row], self.variable_norms[row],
                self.presence_codes("op", row), self.presence_codes("variable", row), dead, loops)


@dataclasses.dataclass
class TagSeries:
    """Every logged step of one run and summary name."""

    run: str
    name: str
    description: str
    versions: dict[str, VersionValues]  # graph id -> values, in order of first step
    # Sorted steps, and for each the graph id and row of its values.
    steps: list[int]
    where: dict[int, tuple[str, int]]
    # Why some logged steps are missing, for the user, when the provider served a sample.
    sampled: str | None = None

    @property
    def last_step(self) -> int:
        """The last logged step."""
        return self.steps[-1]

    def report(self, step: int | None = None) -> Report:
        """The report at a logged `step` (default the last), built from the columns."""
        if step is None:
            step = self.last_step
        graph_id, row = self.where[step]
        values = self.versions[graph_id]
        loss = float(values.losses[row])
        return report_from_columns(values.graph, functools.partial(values.columns, row),
                                   None if np.isnan(loss) else loss, step, values.dead_since(row))


Warn = Callable[[str], None]


class GradflowReader:
    """Lists and reads gradflow series through a data provider, for one experiment id."""

    read_budget_bytes = 224 << 20  # under the 256 MiB gRPC reply limit, with room for framing

    def __init__(self, provider: Any, experiment_id: str = "", warn: Warn | None = None, multiplexer: Any = None,
                 local_logdir: str | None = None):
        """`multiplexer`: TensorBoard's Python event multiplexer when there is one; used only to
        check declared tensor sizes before the provider converts (and allocates) them.
        `local_logdir`: the logdir the provider reads, when it is a local directory; a run too
        large for one bounded read of the provider is then read from its event files instead."""
        self._provider = provider
        self._experiment_id = experiment_id
        self._warn = warn or (lambda message: logger.warning("tb_gradflow: %s", message))
        if multiplexer is None and type(provider).__name__ == "MultiplexerDataProvider":
            multiplexer = getattr(provider, "_multiplexer", None)
        self._multiplexer = multiplexer
        self._local_logdir = local_logdir

    def list(self, ctx: Any = None, run: str | None = None) -> dict[str, dict[str, TagInfo]]:
        """{run: {tag: TagInfo}} for every readable gradflow summary (of one run, if given).

        The key is the step tag, which is the summary name the user passed.
        """
        ctx = ctx or tb_context.RequestContext()
        run_filter = None if run is None else provider.RunTagFilter(runs=[run])
        kwargs = dict(experiment_id=self._experiment_id, plugin_name=metadata.PLUGIN_NAME, run_tag_filter=run_filter)
        # Both listings at once: over gRPC (the Rust loader) each large one waits ~40 ms.
        blobs_future = _listing_pool().submit(self._provider.list_blob_sequences, ctx, **kwargs)
        tensors = self._provider.list_tensors(ctx, **kwargs)
        blobs = blobs_future.result()
        result: dict[str, dict[str, TagInfo]] = {}
        graph_tags: dict[tuple[str, str], dict[str, str]] = {}
        for run, tags in blobs.items():
            for tag, series in tags.items():
                data = self._plugin_data(run, tag, series.plugin_content)
                if data is None or data.kind != gradflow_pb2.PluginData.GRAPH:
                    continue
                if not 0 < (series.max_length or 0) <= _MAX_GRAPH_BLOBS:
                    self._warn(f"run {run!r}, tag {tag!r}: graph skipped: blob sequence of length {series.max_length}")
                else:
                    graph_tags.setdefault((run, data.name), {})[data.graph_id] = tag
        for run, tags in tensors.items():
            for tag, series in tags.items():
                data = self._plugin_data(run, tag, series.plugin_content)
                if data is None or data.kind != gradflow_pb2.PluginData.STEP:
                    continue
                result.setdefault(run, {})[tag] = TagInfo(
                    description=series.description or "",
                    max_step=series.max_step,
                    max_wall_time=series.max_wall_time,
                    graph_tags=graph_tags.get((run, data.name or tag), {}),
                )
        return result

    def read(
        self, run: str, name: str, info: TagInfo, ctx: Any = None, previous: TagSeries | None = None
    ) -> TagSeries | None:
        """All steps of one run and name; None (after a warning) when nothing is readable.

        With `previous` (an earlier read of the same series), steps it already holds (same step,
        wall time and graph) are copied from it instead of decoded again: after a reload that
        brought a few new steps, only those are decoded.
        """
        ctx = ctx or tb_context.RequestContext()
        hostile = self._declared_overflow(run, name)
        if hostile is not None:
            self._warn(f"run {run!r}, tag {name!r}: not read: a step tensor {hostile}")
            return None
        graphs = self._read_graphs(ctx, run, name, info)
        known = _known_rows(previous, graphs)
        try:
            step_bytes = max(map(_version_1_step_bytes, graphs.values()), default=64)
            data, sampled = self._read_step_tensors(ctx, run, name, step_bytes)
        except Exception as e:  # pylint: disable=broad-except  # a hostile tensor (MemoryError, ...)
            self._warn(f"run {run!r}, tag {name!r}: unreadable: {type(e).__name__}: {e}")
            return None
        per_version: dict[str, list[_Row]] = {}
        bad = seen = 0
        for datum in data:
            seen += 1
            reused = known.get((datum.step, datum.wall_time))
            if reused is not None:
                per_version.setdefault(reused[0].graph.graph_id, []).append((datum.step, datum.wall_time, reused))
                continue
            try:
                raw = datum.numpy
                payload = raw.item() if getattr(raw, "shape", None) == () else None
                if not isinstance(payload, bytes):
                    raise FormatError("step tensor is not a scalar string")
                step = decode_step(payload)
                graph = graphs.get(step.graph_id)
                if graph is None:
                    raise FormatError(f"graph version {step.graph_id!r} is missing")
                check_aligned(graph, step)
            except FormatError as e:
                bad += 1
                if bad <= 3:
                    self._warn(f"run {run!r}, tag {name!r}, step {datum.step}: skipped: {e}")
                continue
            per_version.setdefault(step.graph_id, []).append((datum.step, datum.wall_time, step))
        if bad > 3:
            self._warn(f"run {run!r}, tag {name!r}: {bad} unreadable steps skipped in all")
        if not per_version:
            if seen:
                self._warn(f"run {run!r}, tag {name!r}: no readable steps")
            return None
        series = _series(run, name, info.description, graphs, per_version)
        if sampled:
            series.sampled = (
                f"sampled: {len(series.steps):,} steps of a run logged from step {series.steps[0]:,} "
                f"to {info.max_step:,} (the fast loader serves at most {self.read_budget_bytes >> 20} MiB "
                f"of it at once); start TensorBoard with --load_fast=false to see all"
            )
        return series

    def _read_tensors(self, ctx: Any, run: str, name: str, downsample: int) -> builtins.list[Any]:
        tensors = self._provider.read_tensors(
            ctx,
            experiment_id=self._experiment_id,
            plugin_name=metadata.PLUGIN_NAME,
            downsample=downsample,
            run_tag_filter=_filter(run, name),
        )
        return tensors.get(run, {}).get(name, [])

    def _read_step_tensors(self, ctx: Any, run: str, name: str, max_step_bytes: int) -> tuple[Iterable[Any], bool]:
        """Every kept step of run/name, and whether they are a sample of the logged ones.

        The Python loader holds every step in memory already and converts them all at any
        `downsample`: one read. Another provider is asked for at most about `read_budget_bytes`
        at once (the Rust data server's replies stop at 256 MiB; the size of the last step sets
        how many steps one read may return). A run with more steps than that is read from its
        event files, one record at a time, when the logdir is local; otherwise the provider's
        sample is served (the last step is in it), and said to be one."""
        if self._multiplexer is not None:
            return self._read_tensors(ctx, run, name, _ALL), False
        last = self._read_tensors(ctx, run, name, 1)
        if not last:
            return [], False
        per_step = _datum_bytes(last[-1], fallback=max_step_bytes) + _DATUM_OVERHEAD_BYTES
        limit = max(2, self.read_budget_bytes // per_step)
        for _ in range(4):
            try:
                data = self._read_tensors(ctx, run, name, min(limit, _ALL))
                break
            except Exception as e:  # pylint: disable=broad-except
                if "RESOURCE_EXHAUSTED" not in str(e) and "larger than max" not in str(e) or limit <= 2:
                    raise
                limit //= 4  # earlier steps were larger than the last one
        else:
            raise RuntimeError("the data provider refused every bounded read")
        if len(data) < limit:
            return data, False
        files = local_run_files(self._local_logdir, run)
        if files:
            self._warn(f"run {run!r}, tag {name!r}: more steps than one bounded read of the data provider "
                       f"holds ({limit} of {per_step} bytes); reading every step from the run's event files")
            return tag_tensors(files, name, self._warn, run), False
        self._warn(
            f"run {run!r}, tag {name!r}: more steps than one bounded read holds "
            f"({limit} of {per_step} bytes); serving a sample (the last step included) of {len(data)} steps"
        )
        return data, True

    def _declared_overflow(self, run: str, tag: str) -> str | None:
        """The first raw step event of run/tag that declares an absurd size (Python loader)."""
        if self._multiplexer is None:
            return None
        try:
            events = self._multiplexer.Tensors(run, tag)
        except KeyError:
            return None
        for event in events:
            if not event.tensor_proto.tensor_shape.dim:
                continue  # a scalar, as every step we write: nothing to expand
            reason = declared_overflow(event.tensor_proto)
            if reason is not None:
                return f"at step {event.step} {reason}"
        return None

    def _read_graphs(self, ctx: Any, run: str, name: str, info: TagInfo) -> dict[str, gradflow_pb2.Graph]:
        if not info.graph_tags:
            return {}
        blobs = self._provider.read_blob_sequences(
            ctx,
            experiment_id=self._experiment_id,
            plugin_name=metadata.PLUGIN_NAME,
            downsample=_ALL,
            run_tag_filter=_filter(run, *info.graph_tags.values()),
        )
        graphs: dict[str, gradflow_pb2.Graph] = {}
        for graph_id, tag in info.graph_tags.items():
            for datum in blobs.get(run, {}).get(tag, [])[-1:]:
                try:
                    if not datum.values:
                        raise FormatError("empty graph blob sequence")
                    blob = self._provider.read_blob(ctx, blob_key=datum.values[0].blob_key)
                    graph = decode_graph(blob)
                    if graph.graph_id != graph_id:
                        raise FormatError("graph id does not match its tag")
                    check_graph(graph)
                    graphs[graph_id] = graph
                except Exception as e:  # pylint: disable=broad-except  # untrusted: MemoryError too
                    self._warn(f"run {run!r}, tag {tag!r}: graph skipped: {type(e).__name__}: {e}")
        return graphs

    def _plugin_data(self, run: str, tag: str, content: bytes) -> gradflow_pb2.PluginData | None:
        try:
            return metadata.parse_plugin_data(content)
        except FormatError as e:
            self._warn(f"run {run!r}, tag {tag!r}: skipped: {e}")
            return None


@functools.cache
def _listing_pool() -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="gradflow-listing")


def check_graph(graph: gradflow_pb2.Graph) -> None:
    """Every index in a graph points inside it, so that no later lookup can fail on it."""
    n_ops, n_vars = len(graph.ops), len(graph.variables)
    if not -1 <= graph.loss_op < n_ops:
        raise FormatError("loss op index out of range")
    for op in graph.ops:
        if not (
            all(0 <= i < n_ops for i in op.inputs)
            and all(0 <= i < n_vars for i in op.variable_inputs)
            and all(0 <= i < n_vars for i in op.starved_variables)
            and -1 <= op.parent < n_ops
            and 0 <= op.cause < len(V.CAUSES)
        ):
            raise FormatError(f"op {op.name!r} has an index or cause out of range")


# What a TensorDatum costs in a reply beyond its string: step, wall time, TensorProto framing.
_DATUM_OVERHEAD_BYTES = 48


def _datum_bytes(datum: Any, fallback: int) -> int:
    """The size of a step's string; `fallback` when the datum is not one (a hostile tensor)."""
    raw = datum.numpy
    if getattr(raw, "shape", None) != () or not isinstance(raw.item(), bytes):
        return fallback
    return len(raw.item())


def _version_1_step_bytes(graph: gradflow_pb2.Graph) -> int:
    """The most a step of `graph` takes (format version 1, the larger)."""
    return 5 * (len(graph.ops) + len(graph.variables)) + len(graph.graph_id) + 32


def _filter(run: str, *tags: str) -> provider.RunTagFilter:
    return provider.RunTagFilter(runs=[run], tags=list(tags))


# One logged step for `_series`: step, wall time, and its values as a decoded Step or as a row
# of an earlier read.
_Row = tuple[int, float, "gradflow_pb2.Step | tuple[VersionValues, int]"]


def _known_rows(
    previous: TagSeries | None, graphs: dict[str, gradflow_pb2.Graph]
) -> dict[tuple[int, float], tuple[VersionValues, int]]:
    """(step, wall time) -> row of `previous`, for versions whose graph is unchanged."""
    known: dict[tuple[int, float], tuple[VersionValues, int]] = {}
    for graph_id, values in (previous.versions.items() if previous else ()):
        if graphs.get(graph_id) != values.graph:
            continue
        for row, key in enumerate(zip(values.steps.tolist(), values.wall_times.tolist(), strict=False)):
            known[key] = (values, row)
    return known


_DECODE_ROWS = 4096


def _values(graph: gradflow_pb2.Graph, rows: list[_Row]) -> VersionValues:
    """Rows (sorted by step) as matrices; decoded protos and earlier rows fill them alike.

    Version 2 rows are decoded together: their bytes joined into one matrix per column."""
    n, n_ops, n_vars = len(rows), len(graph.ops), len(graph.variables)
    op_states, variable_states = np.empty((n, n_ops), np.uint8), np.empty((n, n_vars), np.uint8)
    op_norms, variable_norms = np.empty((n, n_ops), np.float32), np.empty((n, n_vars), np.float32)
    losses = np.empty(n, np.float32)
    op_presence = np.zeros((n, n_ops), np.uint8)  # code 0: unknown
    variable_presence = np.zeros((n, n_vars), np.uint8)
    packed: list[int] = []
    dead_units, loops = _units_and_loops(graph, rows)
    for i, (_, _, source) in enumerate(rows):
        if isinstance(source, tuple):
            old, row = source
            op_states[i], op_norms[i] = old.op_states[row], old.op_norms[row]
            variable_states[i], variable_norms[i] = old.variable_states[row], old.variable_norms[row]
            losses[i] = old.losses[row]
            op_presence[i], variable_presence[i] = old.presence_codes("op", row), old.presence_codes("variable", row)
        elif is_packed(source):
            packed.append(i)
        else:
            op_states[i], op_norms[i], variable_states[i], variable_norms[i] = step_arrays(source, n_ops, n_vars)
            losses[i] = source.loss
            fractions = presence_arrays(source, op_states[i], variable_states[i])
            op_presence[i], variable_presence[i] = map(P.to_codes, fractions)
    if packed:
        steps = [cast(gradflow_pb2.Step, rows[i][2]) for i in packed]
        index = np.array(packed, np.int64)

        def matrix(field: str, width: int) -> np.ndarray:
            return np.frombuffer(b"".join(getattr(s, field) for s in steps), np.uint8).reshape(len(steps), width)

        op_states[index] = unpack_states(matrix("op_states_packed", -(-n_ops // 4)), n_ops)
        variable_states[index] = unpack_states(matrix("variable_states_packed", -(-n_vars // 4)), n_vars)
        tops = np.array([s.op_norm_top for s in steps], np.int32)
        codes = matrix("op_norm_codes", n_ops)
        for start in range(0, len(steps), _DECODE_ROWS):  # float32 at once: no wide temporaries
            part = slice(start, start + _DECODE_ROWS)
            op_norms[index[part]] = dequantize_norms(codes[part], tops[part])
        norms = np.array([list(s.variable_norms) for s in steps], np.float32)
        variable_norms[index] = norms.reshape(len(steps), n_vars)
        losses[index] = [s.loss for s in steps]
        _fill_presence(steps, index, op_states, variable_states, op_presence, variable_presence)
    return VersionValues(
        graph=graph,
        steps=np.array([r[0] for r in rows], dtype=np.int64),
        op_states=op_states,
        op_norms=op_norms,
        variable_states=variable_states,
        variable_norms=variable_norms,
        losses=losses,
        wall_times=np.array([r[1] for r in rows], dtype=np.float64),
        op_presence=op_presence if op_presence.any() else None,
        variable_presence=variable_presence if variable_presence.any() else None,
        dead_units=dead_units,
        iteration_norms=loops,
    )


def _units_and_loops(graph: gradflow_pb2.Graph, rows: list[_Row]) -> tuple[np.ndarray | None, list | None]:
    """Dead units [n, ops with units] (-1 where a step has none) and iteration norms per row;
    None for a version whose graph has neither."""
    n_units = sum(op.units > 0 for op in graph.ops)
    has_loops = any(op.has_iteration_norms for op in graph.ops)
    dead = np.full((len(rows), n_units), -1, np.int64) if n_units else None
    loops: list[list[np.ndarray]] | None = [] if has_loops else None
    for i, (_, _, source) in enumerate(rows):
        if isinstance(source, tuple):
            old, row = source
            if dead is not None and old.dead_units is not None:
                dead[i] = old.dead_units[row]
            if loops is not None:
                loops.append(old.iteration_norms[row] if old.iteration_norms is not None else [])
            continue
        if dead is not None and len(source.dead_units) == n_units:
            dead[i] = list(source.dead_units)
        if loops is not None:
            loops.append(loop_arrays(source))
    return dead, loops


def _fill_presence(
    steps: list[gradflow_pb2.Step], index: np.ndarray, op_states: np.ndarray, variable_states: np.ndarray,
    op_presence: np.ndarray, variable_presence: np.ndarray,
) -> None:
    """Presence of version 2 rows, decoded together; rows without presence stay unknown."""
    having = [k for k, s in enumerate(steps) if s.has_presence]
    if not having:
        return
    rows = index[having]
    chosen = [steps[k] for k in having]
    for states, out, stored, codes in (
        (op_states, op_presence, "op_presence_stored", "op_presence_codes"),
        (variable_states, variable_presence, "variable_presence_stored", "variable_presence_codes"),
    ):
        width = -(-states.shape[1] // 8)
        bitmaps = np.frombuffer(b"".join(getattr(s, stored) for s in chosen), np.uint8).reshape(len(chosen), width)
        all_codes = np.frombuffer(b"".join(getattr(s, codes) for s in chosen), np.uint8)
        out[rows] = P.decode_codes(states[rows], bitmaps, all_codes)


def _series(
    run: str,
    name: str,
    description: str,
    graphs: dict[str, gradflow_pb2.Graph],
    per_version: dict[str, list[_Row]],
) -> TagSeries:
    versions: dict[str, VersionValues] = {}
    where: dict[int, tuple[str, int]] = {}
    order = sorted(per_version, key=lambda gid: min(r[0] for r in per_version[gid]))
    for graph_id in order:
        rows = sorted(per_version[graph_id], key=lambda r: r[0])
        versions[graph_id] = _values(graphs[graph_id], rows)
        for row, (step, _, _) in enumerate(rows):
            where[step] = (graph_id, row)  # a step logged twice: the later version wins
    return TagSeries(run, name, description, versions, sorted(where), where)
