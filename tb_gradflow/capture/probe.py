"""The probe: the user's loss traced once into a graph, with one backward pass to every tensor.

A `Probe` wraps `loss_fn` in a `tf.function` whose trace also walks the loss path, asks
`tf.gradients` for the gradient of every float tensor on it and of every variable at once, and
reduces each gradient on the device to two numbers (sum of squares, max |g|). Only those vectors
reach the host. Structure found while tracing (the path, the cut points) is kept per graph
version, keyed by a content hash, so a retrace yields a new version and older steps keep theirs.

The stages live in their own modules: `variables` (discovery), `loss_path` (walking),
`backward` (the backward pass), `cuts` (structure), `graph_proto`, `reductions` and
`step_layout` (values), `optimizer_step`.
"""
from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

from tb_gradflow.capture import tf_internals
from tb_gradflow.capture.backward import Backward, backward_pass
from tb_gradflow.capture.bodies import body_ops_default
from tb_gradflow.capture.graph_proto import graph_proto, loss_shape_text
from tb_gradflow.capture.loss_path import Walker
from tb_gradflow.capture.opaque import hidden_bits, opaque_reads
from tb_gradflow.capture.optimizer_step import apply_gradients, loss_scale, unscale_reductions
from tb_gradflow.capture.reductions import Reducer, static_shapes_trusted
from tb_gradflow.capture.registry_hook import op_key
from tb_gradflow.capture.step_layout import Layout, decode_step
from tb_gradflow.capture.units import dead_unit_counts, unit_width
from tb_gradflow.capture.variables import Namer, discover, internal_handles, tf_variable_of
from tb_gradflow.proto import gradflow_pb2


class LossTraceError(RuntimeError):
    """`loss_fn` itself failed while being traced into a graph (it calls `.numpy()`, say)."""


class LossValueError(ValueError):
    """`loss_fn` returned something that is no loss (None): no eager retry can change that."""


def check_loss_value(loss_fn: Callable[..., Any], loss: Any) -> None:
    """Raises LossValueError, naming the function, when `loss` is None (a forgotten `return`)."""
    if loss is None:
        name = getattr(loss_fn, "__qualname__", None) or repr(loss_fn)
        raise LossValueError(
            f"the loss function {name} returned None: a loss function must return the loss, a "
            "float tensor (a scalar, or a tensor whose sum is differentiated); is a `return` "
            "missing?"
        )


@dataclasses.dataclass
class ProbeResult:
    """One step's graph and values together, so that the writer never pairs a step with a stale graph."""
    graph: gradflow_pb2.Graph
    step: gradflow_pb2.Step


@dataclasses.dataclass
class SymbolicCall:
    """A probe call added to an enclosing graph (see Probe.symbolic_call)."""

    graph: gradflow_pb2.Graph
    encode_inputs: list[tf.Tensor]
    encode: Callable[..., gradflow_pb2.Step]
    grads: list[Any]
    variables: list[Any]


class Probe:
    """Traces `loss_fn` once per input signature; each call returns one step's gradient flow."""

    def __init__(
        self,
        loss_fn: Callable[..., Any],
        variables: Sequence[Any] | None = None,
        optimizer: Any = None,
        apply_inside: bool = True,
        measure_bodies: bool | None = None,
    ):
        self._loss_fn = loss_fn
        # Measure the ops inside While bodies over all iterations (capture/bodies.py: off by
        # default for its cost); loops' iteration norms are measured either way.
        self._measure_bodies = body_ops_default() if measure_bodies is None else measure_bodies
        # With apply_inside=False (calls inside an enclosing tf.function), the probe returns the
        # gradients and the caller applies them in the enclosing graph: an optimizer's
        # cross-replica update cannot run inside a nested function under tf.distribute.
        self._apply_inside = apply_inside
        self._step_variables: dict[str, list[Any]] = {}
        self._explicit = list(variables) if variables is not None else None
        self._namer = Namer(loss_fn)
        self._optimizer = optimizer
        self._layouts: dict[str, Layout] = {}
        # Graph versions in order of tracing: a call names its version by index (Layout.values).
        self._versions: list[str] = []
        # Graph version of each traced FuncGraph, for calls made inside an enclosing trace.
        self._graph_ids: weakref.WeakKeyDictionary[tf.Graph, str] = weakref.WeakKeyDictionary()
        self._loss_error: Exception | None = None
        # The accumulators of each trace's loops and bodies (capture/bodies.py): the traced
        # function holds only their handles, and a variable frees its resource when collected.
        self._body_meters: list[Any] = []
        # Autograph converts the user's code only; our own trace logic stays plain Python.
        self._converted_loss = tf_internals.autograph_converted(loss_fn)
        self._function = tf.function(self._trace, autograph=False)
        # TensorFlow warns of "frequent retracing" when functions with one code object trace
        # often; probes of different losses, each tracing once, are not that (Keras does the same).
        self._function._omit_frequent_tracing_warning = True  # pylint: disable=protected-access
        self._calls = tf_internals.TraceCalls(self._function, lambda concrete: concrete.graph in self._graph_ids)

    @property
    def namer(self) -> Namer:
        """How this probe names variables; the eager fallback of its loss names them alike."""
        return self._namer

    @property
    def graphs(self) -> dict[str, gradflow_pb2.Graph]:
        """The graph of each trace, to be written once per trace rather than per step."""
        return {k: v.graph for k, v in self._layouts.items()}

    def _raise_loss_error(self) -> None:
        """tf.function rewraps errors raised while tracing; tell the user's apart from ours."""
        error = self._loss_error
        if isinstance(error, LossValueError):
            raise error.with_traceback(None) from None
        if error is not None:
            raise LossTraceError(str(error)) from error

    def __call__(self, *args, **kwargs) -> ProbeResult:
        """Runs one step's probe; a failing loss is reported as the user's error, not ours."""
        self._loss_error = None
        try:
            out = self._calls(*args, **kwargs)
        except Exception:
            self._raise_loss_error()
            raise
        values = out["values"].numpy()
        layout = self._layouts[self._versions[int(values[0])]]
        return ProbeResult(layout.graph, decode_step(layout, values))

    def symbolic_call(self, *args, **kwargs) -> SymbolicCall:
        """Inside an enclosing `tf.function` trace: adds a call of the probe to that graph.

        Returns the graph version (known at trace time), the reductions the call will produce at
        run time, the host function that turns their values into the Step, and (for a probe
        with an optimizer and apply_inside=False) the gradients to apply and their variables.
        """
        self._loss_error = None
        try:
            concrete = self._function.get_concrete_function(*args, **kwargs)
            out = self._function(*args, **kwargs)
        except Exception:
            self._raise_loss_error()
            raise
        layout = self._layouts[self._graph_ids[concrete.graph]]

        def encode(values) -> gradflow_pb2.Step:
            return decode_step(layout, values)

        return SymbolicCall(
            layout.graph,
            [out["values"]],
            encode,
            list(out.get("variable_grads", ())),
            self._step_variables.get(layout.graph.graph_id, []),
        )

    # -- trace time ------------------------------------------------------------------------
    def _trace(self, *args, **kwargs):
        with tf_internals.VariableWatcher() as watcher:
            try:
                with tf_internals.autograph_enabled():
                    loss = self._converted_loss(*args, **kwargs)
                check_loss_value(self._loss_fn, loss)
            except Exception as e:
                self._loss_error = e
                raise
        return self._build(tf.convert_to_tensor(loss), watcher.watched_variables())

    def _build(self, loss: tf.Tensor, watched: Sequence[tf.Variable]) -> dict[str, Any]:
        reads = opaque_reads(loss.graph)
        hidden_reads = [tf_variable_of(v) for vs in reads.values() for v in vs]
        discovery = discover(self._explicit, [*watched, *hidden_reads], self._namer)
        variables = discovery.variables
        handles = internal_handles(loss.graph, variables)
        walker = Walker(len(variables), hidden_bits(reads, variables))
        walker.walk(loss.graph, [loss], {h.ref(): (-1, 1 << i, i) for i, h in enumerate(handles) if h is not None})
        scale = loss_scale(self._optimizer, loss, [v.user_variable for v in variables])
        backward = backward_pass(
            loss, walker.ops, variables, handles, walker.index, scale, measure_bodies=self._measure_bodies
        )
        presence_grads, presence_owners, presence_against = backward.presence_sources()
        widths = [unit_width(p, g) for p, g in zip(walker.ops, backward.passed_back, strict=False)]
        meter = backward.bodies
        self._body_meters.append(meter)
        after = [g for g in [*backward.tensor_grads, *backward.variable_grads] if isinstance(g, tf.Tensor)]
        body_rows, loop_sums, loop_counts = meter.values(after) if meter is not None else (tf.zeros([0, 3]), [], [])
        body_measured = meter.measured_body_ops() if meter is not None else []
        graph = graph_proto(
            walker.ops, backward.op_tensors, discovery, backward.structure,
            walker.index.get(op_key(loss.op), -1),
            gates={i for i, g in enumerate(backward.passed_back) if g},
            sparse=[isinstance(g, tf.IndexedSlices) for g in backward.variable_grads],
            loss_shape=loss_shape_text(loss),
            units=widths,
            loops=set(meter.measured_loops if meter is not None else ()),
            body_measured=set(body_measured),
        )
        self._graph_ids[loss.graph] = graph.graph_id
        if graph.graph_id not in self._versions:
            self._versions.append(graph.graph_id)
        layout = self._layouts[graph.graph_id] = Layout(
            graph,
            backward.op_tensors,
            [g is not None for g in backward.tensor_grads],
            [g is not None for g in backward.variable_grads],
            backward.structure.reached,
            _top_ancestors(walker.ops),
            presence_owners,
            body_ops=meter.body_ops if meter is not None else [],
            body_measured=body_measured,
        )
        reducer = Reducer(
            grouped=static_shapes_trusted([*(p.op for p in walker.ops), *loss.graph.get_operations()]),
            planned=[backward.tensor_grads, backward.variable_grads, presence_grads,
                     [a for a in presence_against if a is not None]],
        )
        tensor_stats, variable_stats = unscale_reductions(
            reducer.sums([g for g in backward.tensor_grads if g is not None]),
            reducer.exact([g for g in backward.variable_grads if g is not None]),
            scale,
        )
        result = {"values": layout.values(
            self._versions.index(graph.graph_id),
            tf.cast(tf.reduce_sum(loss), tf.float32),
            tensor_stats,
            variable_stats,
            reducer.presence(presence_grads, presence_against),
            reducer.presence([g for g in backward.variable_grads if g is not None]),
            dead_unit_counts(*_counted_gates(walker.ops, backward, widths)),
            body_rows,
            loop_sums,
            loop_counts,
        )}
        if self._optimizer is not None and self._apply_inside:
            apply_gradients(self._optimizer, [v.user_variable for v in variables], backward.variable_grads)
        elif self._optimizer is not None:
            result["variable_grads"] = list(backward.variable_grads)
            self._step_variables[graph.graph_id] = [v.user_variable for v in variables]
        return result


def _counted_gates(
    ops: list[Any], backward: Backward, widths: list[int]
) -> tuple[list[str], list[tf.Tensor], list[tf.Tensor], list[int]]:
    """(op type, passed back, output, units) of each gate whose dead units are counted
    (`widths` > 0)."""
    counted = [i for i, w in enumerate(widths) if w]
    return (
        [ops[i].op.type for i in counted],
        [backward.passed_back[i][0] for i in counted],
        [ops[i].op.outputs[0] for i in counted],
        [widths[i] for i in counted],
    )


def _top_ancestors(ops) -> list[int]:
    """For each path op, the index of the top-level op whose body holds it (itself if top-level)."""
    top: list[int] = []
    for i, p in enumerate(ops):
        top.append(i if p.top_level else top[p.parent])
    return top
