"""The probe: the user's loss traced once into a graph, with one backward pass to every tensor.

A `Probe` wraps `loss_fn` in a `tf.function` whose trace also walks the loss path, asks
`tf.gradients` for the gradient of every float tensor on it and of every variable at once, and
reduces each gradient on the device to two numbers (sum of squares, max |g|). Only those vectors
reach the host. Structure found while tracing (the path, the cut points) is kept per graph
version, keyed by a content hash, so a retrace yields a new version and older steps keep theirs.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Any, Callable, Sequence

import numpy as np
import tensorflow as tf
from tensorflow.python.autograph.core import ag_ctx
from tensorflow.python.eager import record
from tensorflow.python.eager.polymorphic_function import autograph_util

from tb_gradflow import vocabulary as V
from tb_gradflow.capture.cuts import Structure, analyze_structure
from tb_gradflow.capture.loss_path import PathOp, Walker, is_measurable_dtype
from tb_gradflow.capture.registry_hook import op_key, watch_registry
from tb_gradflow.capture.sources import user_source
from tb_gradflow.format.records import encode_step_arrays
from tb_gradflow.proto import gradflow_pb2


class LossTraceError(RuntimeError):
    """`loss_fn` itself failed while being traced into a graph (it calls `.numpy()`, say)."""


@dataclasses.dataclass(frozen=True)
class TrackedVariable:
    name: str
    tf_variable: tf.Variable
    # What the user handed us (a Keras variable, say): what an optimizer must be given.
    user_variable: Any


def variable_name(v: Any) -> str:
    """Keras' `path` when there is one, else the TensorFlow name without its `:0`."""
    path = getattr(v, "path", None)
    if isinstance(path, str) and path:
        return path
    name = getattr(v, "name", "") or ""
    return name[:-2] if name.endswith(":0") else name


def track(v: Any) -> TrackedVariable:
    tf_var = v if isinstance(v, tf.Variable) else getattr(v, "value", v)
    return TrackedVariable(variable_name(v), tf_var, v)


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


@dataclasses.dataclass
class ProbeResult:
    graph: gradflow_pb2.Graph
    step: gradflow_pb2.Step


def _shape_text(shape: tf.TensorShape) -> str:
    if shape.rank is None:
        return "?"
    return "x".join("?" if d is None else str(d) for d in shape.as_list()) or "scalar"


NONE, FLOWING, ZERO, NONFINITE = (V.STATE_CODE[s] for s in (V.NONE, V.FLOWING, V.ZERO, V.NONFINITE))


def graph_skeleton(variables: Sequence[TrackedVariable], **fields: Any) -> gradflow_pb2.Graph:
    """A Graph with its variables; the probe adds ops, the eager fallback a reason."""
    graph = gradflow_pb2.Graph(**fields)
    for v in variables:
        graph.variables.add(
            name=v.name, shape=_shape_text(v.tf_variable.shape), dtype=v.tf_variable.dtype.name
        )
    return graph


def seal(graph: gradflow_pb2.Graph) -> gradflow_pb2.Graph:
    """Gives the graph its id: a hash of its content, so a retrace that changes nothing reuses it."""
    graph.graph_id = hashlib.sha256(graph.SerializeToString(deterministic=True)).hexdigest()[:16]
    return graph


class Reducer:
    """Reduces gradients to a few numbers on the device, with raw ops and no temporaries.

    Every gradient gets its sum of squares (one kernel). Variables' gradients also get their max
    and min: the float32 sum of squares is ambiguous at the edges (values below ~1e-19 square to
    0, above ~1e19 to Inf), and a variable's state must be exact. For the many op tensors that
    would triple the kernels of a small model's step, so their state comes from the sum alone.
    """

    def __init__(self) -> None:
        self._axes: dict[int, tf.Tensor] = {}

    @staticmethod
    def _as_float32(grad: Any) -> tf.Tensor:
        if isinstance(grad, tf.IndexedSlices):
            grad = grad.values
        if grad.dtype.is_complex:
            grad = tf.raw_ops.ComplexAbs(x=grad, Tout=grad.dtype.real_dtype)
        if grad.dtype != tf.float32:
            grad = tf.raw_ops.Cast(x=grad, DstT=tf.float32)
        return grad

    def _extremes(self, grad: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        rank = grad.shape.rank
        if rank is None:
            grad = tf.raw_ops.Reshape(tensor=grad, shape=[-1])
            rank = 1
        axes = self._axes.get(rank)
        if axes is None:
            axes = self._axes[rank] = tf.constant(list(range(rank)), tf.int32)
        return tf.raw_ops.Max(input=grad, axis=axes), tf.raw_ops.Min(input=grad, axis=axes)

    def sums(self, grads: list[Any]) -> tf.Tensor:
        """[N]: half the sum of squares of each gradient."""
        if not grads:
            return tf.zeros([0], tf.float32)
        return tf.raw_ops.Pack(values=[tf.raw_ops.L2Loss(t=self._as_float32(g)) for g in grads])

    def exact(self, grads: list[Any]) -> tf.Tensor:
        """[N, 3]: half sum of squares, max and min of each gradient."""
        if not grads:
            return tf.zeros([0, 3], tf.float32)
        columns: list[list[tf.Tensor]] = [[], [], []]
        for g in grads:
            g = self._as_float32(g)
            high, low = self._extremes(g)
            for column, value in zip(columns, (tf.raw_ops.L2Loss(t=g), high, low)):
                column.append(value)
        return tf.raw_ops.Pack(values=[tf.raw_ops.Pack(values=c) for c in columns], axis=1)


def tensor_state(
    has_grad: bool, half_sumsq: float = 0.0, high: float | None = None, low: float | None = None
) -> tuple[str, float | None]:
    """State and L2 norm of one gradient from its reductions (see Reducer)."""
    if not has_grad:
        return V.NONE, None
    sumsq = 2.0 * half_sumsq
    if math.isnan(sumsq):
        return V.NONFINITE, sumsq
    if high is None or low is None:
        if math.isinf(sumsq):
            return V.NONFINITE, sumsq
        return (V.ZERO, 0.0) if sumsq == 0.0 else (V.FLOWING, math.sqrt(sumsq))
    maxabs = max(high, -low)  # -inf for an empty gradient: max and min of nothing
    if math.isinf(maxabs) and maxabs > 0:
        return V.NONFINITE, math.inf
    if maxabs <= 0.0:
        return V.ZERO, 0.0
    # The float32 sum of squares underflows to 0 or overflows to Inf for extreme finite values.
    return V.FLOWING, math.sqrt(sumsq) if 0.0 < sumsq < math.inf else maxabs


def combine(values: list[tuple[str, float | None]]) -> tuple[str, float | None]:
    state = V.combined_state([s for s, _ in values])
    if state == V.NONE:
        return state, None
    if state == V.NONFINITE:
        bad = [n for s, n in values if s == V.NONFINITE]
        return state, bad[0]
    return state, math.sqrt(sum(n * n for s, n in values if n is not None and s != V.NONE))


class Probe:
    """Traces `loss_fn` once per input signature; each call returns one step's gradient flow."""

    def __init__(
        self,
        loss_fn: Callable[..., Any],
        variables: Sequence[Any] | None = None,
        optimizer: Any = None,
    ):
        self._loss_fn = loss_fn
        self._explicit = [track(v) for v in variables] if variables is not None else None
        self._optimizer = optimizer
        self._layouts: dict[str, Layout] = {}
        self._loss_error: Exception | None = None
        # Autograph converts the user's code only; our own trace logic stays plain Python.
        self._converted_loss = autograph_util.py_func_from_autograph(loss_fn)
        self._function = tf.function(self._trace, autograph=False)
        # TensorFlow warns of "frequent retracing" when functions with one code object trace
        # often; probes of different losses, each tracing once, are not that (Keras does the same).
        self._function._omit_frequent_tracing_warning = True  # pylint: disable=protected-access

    @property
    def graphs(self) -> dict[str, gradflow_pb2.Graph]:
        return {k: v.graph for k, v in self._layouts.items()}

    def __call__(self, *args, **kwargs) -> ProbeResult:
        self._loss_error = None
        try:
            out = self._function(*args, **kwargs)
        except Exception:
            # tf.function rewraps errors raised while tracing; tell the user's apart from ours.
            if self._loss_error is not None:
                raise LossTraceError(str(self._loss_error)) from self._loss_error
            raise
        layout = self._layouts[out["graph_id"].numpy().decode()]
        return ProbeResult(layout.graph, self._step(layout, out))

    # -- trace time ------------------------------------------------------------------------
    def _trace(self, *args, **kwargs):
        with record.VariableWatcher() as watcher:
            try:
                with ag_ctx.ControlStatusCtx(status=ag_ctx.Status.ENABLED):
                    loss = self._converted_loss(*args, **kwargs)
            except Exception as e:
                self._loss_error = e
                raise
        return self._build(tf.convert_to_tensor(loss), watcher.watched_variables())

    def _build(self, loss: tf.Tensor, watched: Sequence[tf.Variable]) -> dict[str, Any]:
        graph = loss.graph
        variables = self._explicit
        if variables is None:
            seen: set[int] = set()
            variables = []
            for v in watched:
                if v.trainable and id(v) not in seen:
                    seen.add(id(v))
                    variables.append(track(v))
        handles = {id(v.tf_variable.handle): i for i, v in enumerate(variables)}
        internal_handles: list[tf.Tensor | None] = [None] * len(variables)
        for external, internal in graph.captures:
            if id(external) in handles:
                internal_handles[handles[id(external)]] = internal
        inputs = {
            h.ref(): (-1, 1 << i, i) for i, h in enumerate(internal_handles) if h is not None
        }
        walker = Walker(len(variables))
        walker.walk(graph, [loss], inputs)
        ops = walker.ops

        measured: list[tf.Tensor] = []
        op_tensors: list[list[int]] = []
        for p in ops:
            positions = []
            if p.top_level and p.op.type != "Placeholder":
                for t in p.op.outputs:
                    if is_measurable_dtype(t.dtype):
                        positions.append(len(measured))
                        measured.append(t)
            op_tensors.append(positions)
        xs = measured + [v.tf_variable for v in variables]
        with watch_registry() as calls:
            grads = tf.gradients(loss, xs)
        t_grads, v_grads = grads[: len(measured)], grads[len(measured):]
        structure = analyze_structure(ops, dict(calls), loss, internal_handles, len(variables))
        # Only what really carries a gradient: While/If gradients hand back zeros, not None,
        # for inputs their bodies cut off.
        t_grads = [g if t.ref() in structure.has_grad else None for t, g in zip(measured, t_grads)]
        v_grads = [g if ok else None for g, ok in zip(v_grads, structure.variable_has_grad)]
        graph_proto = self._graph_proto(ops, op_tensors, variables, structure, walker.index.get(op_key(loss.op), -1))
        top: list[int] = []
        for i, p in enumerate(ops):
            top.append(i if p.top_level else top[p.parent])
        self._layouts[graph_proto.graph_id] = Layout(
            graph_proto,
            op_tensors,
            [g is not None for g in t_grads],
            [g is not None for g in v_grads],
            structure.reached,
            top,
        )

        reducer = Reducer()
        result = {
            "graph_id": tf.constant(graph_proto.graph_id),
            "loss": tf.cast(tf.reduce_sum(loss), tf.float32),
            "tensor_stats": reducer.sums([g for g in t_grads if g is not None]),
            "variable_stats": reducer.exact([g for g in v_grads if g is not None]),
        }
        if self._optimizer is not None:
            self._apply(
                [(g, v.user_variable) for g, v in zip(v_grads, variables) if g is not None]
            )
        return result

    def _apply(self, pairs: list[tuple[Any, Any]]) -> None:
        if not pairs:
            return
        if tf.distribute.has_strategy() and tf.distribute.in_cross_replica_context():
            # The probe ran once, outside the replicas; optimizers update distributed variables
            # from replica context, summing over replicas: give each replica an equal share.
            strategy = tf.distribute.get_strategy()
            share = 1.0 / strategy.num_replicas_in_sync
            targets = [v for _, v in pairs]
            shares = [
                strategy.experimental_distribute_values_from_function(lambda _, g=g: g * share)
                for g, _ in pairs
            ]
            strategy.run(lambda *gs: self._optimizer.apply_gradients(zip(gs, targets)), args=tuple(shares))
        else:
            self._optimizer.apply_gradients(pairs)

    @staticmethod
    def _graph_proto(ops: list[PathOp], op_tensors, variables, structure: Structure, loss_op: int):
        graph = graph_skeleton(variables, loss_op=loss_op)
        for i, p in enumerate(ops):
            cut = structure.cuts.get(i)
            producers = list(dict.fromkeys(src for src in p.input_producers if src >= 0))
            graph.ops.add(
                name=p.name,
                type=p.op.type,
                inputs=producers,
                variable_inputs=p.variable_inputs,
                output_shapes=[_shape_text(t.shape) for t in p.op.outputs],
                output_dtypes=[t.dtype.name for t in p.op.outputs],
                source=user_source(p.op),
                cause=V.CAUSE_CODE[cut.cause] if cut else 0,
                cause_detail=cut.detail if cut else "",
                starved_variables=cut.starved if cut else [],
                parent=p.parent,
                measured=bool(op_tensors[i]),
            )
        return seal(graph)

    # -- run time ----------------------------------------------------------------------------
    @staticmethod
    def _step(layout: Layout, out: dict[str, tf.Tensor]) -> gradflow_pb2.Step:
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

        v_stats = np.asarray(out["variable_stats"], dtype=np.float64)
        var_codes = np.full(len(layout.graph.variables), NONE, np.uint8)
        var_norms = np.full(len(layout.graph.variables), np.nan, np.float64)
        for i, row in layout.variable_rows.items():
            state, norm = tensor_state(True, *(float(x) for x in v_stats[row]))
            var_codes[i] = V.STATE_CODE[state]
            var_norms[i] = np.nan if norm is None else norm
        return encode_step_arrays(
            layout.graph.graph_id, op_codes, op_norms, var_codes, var_norms, float(out["loss"].numpy())
        )
