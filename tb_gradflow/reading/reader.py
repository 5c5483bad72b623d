"""Reads gradflow data back through a TensorBoard data provider.

The CLI (over a local logdir) and the plugin (over whatever provider TensorBoard runs: the Python
multiplexer, the Rust data server, a remote one) share this code. Everything here is untrusted
input: a tag that cannot be decoded is skipped with a warning naming its run and tag, never fatal.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import logging
from typing import Any, Callable

import numpy as np
from tensorboard import context as tb_context
from tensorboard import errors
from tensorboard.data import provider

from tb_gradflow import vocabulary as V
from tb_gradflow.format import metadata
from tb_gradflow.format.metadata import FormatError
from tb_gradflow.format.records import build_report, check_aligned, decode_graph, decode_step
from tb_gradflow.proto import gradflow_pb2
from tb_gradflow.report import Report

logger = logging.getLogger("tb_gradflow")

# Read every sample the loader kept: our steps are small and a gap would be a lie.
_ALL = 1 << 30

# What a data provider raises when a tensor in the logdir is not what its metadata claims (the
# Python loader converts with numpy; the Rust one answers with a gRPC error mapped to these).
_PROVIDER_DATA_ERRORS = (ValueError, TypeError, IndexError, errors.PublicError)


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
    _op_index: dict[str, int] | None = None
    _variable_index: dict[str, int] | None = None

    def op_index(self) -> dict[str, int]:
        if self._op_index is None:
            self._op_index = {op.name: i for i, op in enumerate(self.graph.ops)}
        return self._op_index

    def variable_index(self) -> dict[str, int]:
        if self._variable_index is None:
            self._variable_index = {v.name: i for i, v in enumerate(self.graph.variables)}
        return self._variable_index

    def step_proto(self, row: int) -> gradflow_pb2.Step:
        return gradflow_pb2.Step(
            graph_id=self.graph.graph_id,
            op_states=self.op_states[row].tobytes(),
            op_norms=self.op_norms[row].tolist(),
            variable_states=self.variable_states[row].tobytes(),
            variable_norms=self.variable_norms[row].tolist(),
            loss=float(self.losses[row]),
        )


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

    @property
    def last_step(self) -> int:
        return self.steps[-1]

    def report(self, step: int | None = None) -> Report:
        if step is None:
            step = self.last_step
        graph_id, row = self.where[step]
        values = self.versions[graph_id]
        return build_report(values.graph, values.step_proto(row), step)


Warn = Callable[[str], None]


class GradflowReader:
    def __init__(self, provider: Any, experiment_id: str = "", warn: Warn | None = None):
        self._provider = provider
        self._experiment_id = experiment_id
        self._warn = warn or (lambda message: logger.warning("tb_gradflow: %s", message))

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
                if data is not None and data.kind == gradflow_pb2.PluginData.GRAPH:
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

    def read(self, run: str, name: str, info: TagInfo, ctx: Any = None) -> TagSeries | None:
        """All steps of one run and name; None (after a warning) when nothing is readable."""
        ctx = ctx or tb_context.RequestContext()
        graphs = self._read_graphs(ctx, run, name, info)
        try:
            tensors = self._provider.read_tensors(
                ctx,
                experiment_id=self._experiment_id,
                plugin_name=metadata.PLUGIN_NAME,
                downsample=_ALL,
                run_tag_filter=_filter(run, name),
            )
        except _PROVIDER_DATA_ERRORS as e:  # a hostile tensor the provider cannot convert
            self._warn(f"run {run!r}, tag {name!r}: unreadable: {type(e).__name__}: {e}")
            return None
        data = tensors.get(run, {}).get(name, [])
        per_version: dict[str, list[tuple[int, gradflow_pb2.Step]]] = {}
        bad = 0
        for datum in data:
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
            per_version.setdefault(step.graph_id, []).append((datum.step, step))
        if bad > 3:
            self._warn(f"run {run!r}, tag {name!r}: {bad} unreadable steps skipped in all")
        if not per_version:
            if data:
                self._warn(f"run {run!r}, tag {name!r}: no readable steps")
            return None
        return _series(run, name, info.description, graphs, per_version)

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
                except (FormatError, *_PROVIDER_DATA_ERRORS) as e:
                    self._warn(f"run {run!r}, tag {tag!r}: graph skipped: {e}")
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


def _filter(run: str, *tags: str) -> provider.RunTagFilter:
    return provider.RunTagFilter(runs=[run], tags=list(tags))


def _stack(rows: list[Any], width: int) -> np.ndarray:
    """Repeated float fields as a float32 matrix; filling rows is twice as fast as np.array."""
    matrix = np.empty((len(rows), width), dtype=np.float32)
    for i, row in enumerate(rows):
        matrix[i] = row
    return matrix


def _series(
    run: str,
    name: str,
    description: str,
    graphs: dict[str, gradflow_pb2.Graph],
    per_version: dict[str, list[tuple[int, gradflow_pb2.Step]]],
) -> TagSeries:
    versions: dict[str, VersionValues] = {}
    where: dict[int, tuple[str, int]] = {}
    order = sorted(per_version, key=lambda gid: min(s for s, _ in per_version[gid]))
    for graph_id in order:
        rows = sorted(per_version[graph_id], key=lambda item: item[0])
        n_ops, n_vars = len(graphs[graph_id].ops), len(graphs[graph_id].variables)
        values = VersionValues(
            graph=graphs[graph_id],
            steps=np.array([s for s, _ in rows], dtype=np.int64),
            op_states=np.frombuffer(b"".join(p.op_states for _, p in rows), np.uint8).reshape(len(rows), n_ops),
            op_norms=_stack([p.op_norms for _, p in rows], n_ops),
            variable_states=np.frombuffer(b"".join(p.variable_states for _, p in rows), np.uint8).reshape(len(rows), n_vars),
            variable_norms=_stack([p.variable_norms for _, p in rows], n_vars),
            losses=np.array([p.loss for _, p in rows], dtype=np.float32),
        )
        versions[graph_id] = values
        for row, (step, _) in enumerate(rows):
            where[step] = (graph_id, row)  # a step logged twice: the later version wins
    return TagSeries(run, name, description, versions, sorted(where), where)


