"""Every private TensorFlow API tb_gradflow relies on, in one module.

TensorFlow does not promise these names across releases; keeping them here means an upgrade is
checked and fixed in one file. Each function says what we need it for, so a replacement can be
found from the purpose when the private name moves. Checked on TensorFlow 2.21.
"""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeAlias

import tensorflow as tf
from tensorflow.python.autograph.core import ag_ctx
from tensorflow.python.eager import backprop_util, context, record
from tensorflow.python.eager.polymorphic_function import autograph_util
from tensorflow.python.framework import func_graph as _func_graph
from tensorflow.python.framework import op_callbacks
from tensorflow.python.framework import ops as _ops
from tensorflow.python.ops import (
    cond_v2,
    gen_summary_ops,
    gradients_util,
    resource_variable_ops,
    script_ops,
    summary_ops_v2,
    while_v2,
)
from tensorflow.python.saved_model import save_context
from tensorflow.python.util import tf_decorator

# pylint: disable=protected-access

# An alias usable in annotations (TensorFlow has no type information: Any to the checker).
Operation: TypeAlias = _ops.Operation
FuncGraph = _func_graph.FuncGraph
# Records the variables a trace reads, as GradientTape does (the default-variables case).
VariableWatcher = record.VariableWatcher


def autograph_converted(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` converted by autograph, so the user's code gets `tf.function`'s usual conversion
    while our own trace logic around it stays plain Python.

    A decorated `fn` (a `tf.function`) is converted from its innermost Python function:
    converting the decorator itself would rewrap it in place, changing the user's own object.
    """
    return autograph_util.py_func_from_autograph(tf_decorator.unwrap(fn)[1])


def autograph_enabled() -> contextlib.AbstractContextManager:
    """The autograph status a converted function needs to run converted."""
    return ag_ctx.ControlStatusCtx(status=ag_ctx.Status.ENABLED)


def gradient_function_lookup() -> Callable[[Operation], Any]:
    """The one function `tf.gradients` asks for each op's gradient function."""
    return _ops.get_gradient_function


@contextlib.contextmanager
def replaced_gradient_function_lookup(lookup: Callable[[Operation], Any]) -> Iterator[None]:
    """Within this block `tf.gradients` asks `lookup` instead (see registry_hook)."""
    original = _ops.get_gradient_function
    _ops.get_gradient_function = lookup
    try:
        yield
    finally:
        _ops.get_gradient_function = original


@contextlib.contextmanager
def wrapped_gradients_builder(
    after: Callable[[Callable[[], Any]], Any],
) -> Iterator[None]:
    """Within this block, every gradient graph TensorFlow builds (the top-level `tf.gradients`
    and, inside it, the backward body of each While, If and function call) is built through
    `after(build)`, which calls `build()` and returns its result; ops `after` adds once `build`
    returns land in that same gradient graph, before it is closed into a function.

    For capture/bodies.py: one combined update per backward loop body instead of one per op.
    """
    original = gradients_util._GradientsHelper

    def helper(*args: Any, **kwargs: Any) -> Any:
        return after(lambda: original(*args, **kwargs))

    gradients_util._GradientsHelper = helper
    try:
        yield
    finally:
        gradients_util._GradientsHelper = original


def eager_variable(initial: Any, shape: tf.TensorShape) -> tf.Variable:
    """A non-trainable resource variable made eagerly, even while a `tf.function` traces (which
    allows new variables only on its first trace): the class itself, not `tf.Variable`, so that
    no variable creator scope sees it. For accumulators that the probe owns (capture/bodies.py).
    """
    with tf.init_scope():
        return resource_variable_ops.ResourceVariable(initial, shape=shape, trainable=False, name="gradflow_body")


def registered_gradient(op_type_name: str) -> Callable[..., Any]:
    """The gradient function registered under `op_type_name` (a custom gradient's closure)."""
    return _ops._gradient_registry.lookup(op_type_name)


def build_gradients(ys: list[tf.Tensor], xs: list[tf.Tensor], grad_ys: list[tf.Tensor], src_graph: tf.Graph):
    """`tf.gradients` of tensors of `src_graph`, built into the current (scratch) graph."""
    return gradients_util._GradientsHelper(ys, xs, grad_ys=grad_ys, src_graph=src_graph)


def library_function_graph(graph: tf.Graph, name: str) -> tf.Graph | None:
    """The FuncGraph of a function a call op names, looked up through the enclosing graphs."""
    while graph is not None:
        fn = graph._get_function(name)
        if fn is not None:
            return getattr(fn, "graph", None)
        graph = getattr(graph, "outer_graph", None)
    return None


def while_body_graph(op: Operation) -> tf.Graph:
    """The body FuncGraph of a `While` op, the one its gradient uses."""
    return while_v2._get_graph(op, "body", "_body_graph")


def loop_carried_capture(grad_body: tf.Graph, initial: tf.Tensor) -> tf.Tensor | None:
    """While `grad_body`, the body of a While's backward loop, is being built: `initial` (a
    tensor of its outer graph) captured as a loop variable of that backward loop, or None when
    `grad_body` is no such body. The loop passes it through unchanged unless
    `set_loop_carried_output` says what each iteration outputs for it.
    """
    if not is_backward_loop_body(grad_body):
        return None
    return grad_body.capture(initial)


def is_backward_loop_body(graph: tf.Graph) -> bool:
    """Whether `graph` is the body of a While's backward loop (while_v2's gradient body)."""
    return hasattr(graph, "internal_capture_to_output")


def set_loop_carried_output(grad_body: tf.Graph, captured: tf.Tensor, output: tf.Tensor) -> None:
    """What an iteration of `grad_body` outputs for the loop variable `captured` (from
    `loop_carried_capture`): the next iteration's value of it, and after the last the backward
    While's output at that position (`while_output_of`)."""
    grad_body.internal_capture_to_output[_ops.tensor_id(captured)] = output


def while_output_of(graph: tf.Graph, body: tf.Graph, captured: tf.Tensor) -> tf.Tensor | None:
    """The output of the While op of `graph` whose body is `body`, at the position of `body`'s
    input `captured`: the loop variable's value after the last iteration (None if not found)."""
    position = next((i for i, t in enumerate(body.inputs) if t is captured), None)
    if position is None:
        return None
    for op in graph.get_operations():
        if getattr(op, "_body_graph", None) is body:
            return op.outputs[position]
    return None


def branch_graphs(op: Operation) -> list[tf.Graph]:
    """The branch FuncGraphs of an `If`/`Case` op."""
    return cond_v2.get_func_graphs(op)


@contextlib.contextmanager
def op_callback(callback: Callable[..., Any]) -> Iterator[None]:
    """Within this block `callback(op_type, inputs, attrs, outputs, op_name, graph)` sees every
    op TensorFlow runs eagerly or builds into a graph (tfdbg's hook)."""
    op_callbacks.add_op_callback(callback)
    try:
        yield
    finally:
        op_callbacks.remove_op_callback(callback)


PY_FUNCTION_OPS = ("PyFunc", "PyFuncStateless", "EagerPyFunc")


def py_function_callable(op: Operation) -> Callable[..., Any] | None:
    """The Python callable a `tf.numpy_function` / `tf.py_function` op runs, if still alive."""
    try:
        token = op.get_attr("token")
    except (ValueError, TypeError):
        return None
    fn = script_ops._py_funcs.get(token.decode() if isinstance(token, bytes) else token)
    fn = getattr(fn, "_func", fn)  # tf.py_function wraps it in an EagerFunc
    for _ in range(8):  # and autograph.do_not_convert in a decorator keeping __wrapped__
        if not hasattr(fn, "__wrapped__"):
            break
        fn = fn.__wrapped__
    return fn


def default_summary_writer() -> Any:
    """The writer `tf.summary` would write to now, or None."""
    return summary_ops_v2._summary_state.writer


def records_summaries_now() -> bool:
    """Eagerly, whether `tf.summary.write` would record now (writer set, `record_if` and the
    distribution strategy's condition), decided in Python when the conditions are plain bools:
    `tf.summary.should_record_summaries` runs an op for it at every call."""
    state = summary_ops_v2._summary_state
    if state.writer is None:
        return False
    conditions = [state.is_recording_distribution_strategy, state.is_recording]
    conditions = [c() if callable(c) else c for c in conditions]
    if conditions[1] is None:
        conditions[1] = True
    if all(isinstance(c, bool) for c in conditions):
        return all(conditions)
    return bool(tf.math.logical_and(*conditions))


def write_summary_now(writer: Any, tensor: bytes, step: int, tag: tf.Tensor, metadata: tf.Tensor) -> bool:
    """Eagerly, `tf.summary.write(tag, tensor, step, metadata)` to `writer` (tag and serialized
    metadata as string tensors), without its name scopes, conditions and conversions; whether
    it wrote. The caller checks `records_summaries_now()` first.

    With every input already a tensor, the op takes the eager fast path: after a training
    step, when the CPU caches are cold, `tf.summary.write` cost a small model's logged step
    0.4 ms, this about half as much."""
    if getattr(writer, "_mesh", None) is not None:  # a DTensor writer: tf.summary converts for it
        with writer.as_default():
            return bool(tf.summary.write(
                tag=tag.numpy().decode(), tensor=tensor, step=step, metadata=metadata.numpy()
            ))
    with tf.device("cpu:0"):
        gen_summary_ops.write_summary(writer._resource, tf.constant(step, tf.int64), tf.constant(tensor), tag, metadata)
    return True


def handle_element_dtype(tensor: tf.Tensor) -> tf.DType | None:
    """The element dtype a variant tensor's handle data records (a TensorList's), as
    backprop_util.IsTrainable reads it; None when unknown or not a variant."""
    if tensor.dtype.base_dtype != tf.variant:
        return None
    dtype = backprop_util._DTypeFromTensor(tensor)  # pylint: disable=protected-access
    dtype = tf.as_dtype(dtype)
    return None if dtype.base_dtype == tf.variant else dtype


def in_xla_context() -> bool:
    """Whether ops built now will be compiled by XLA (inside a `jit_compile=True` function),
    where host callbacks and summary writes cannot run."""
    from tensorflow.python.ops import control_flow_util

    return control_flow_util.GraphOrParentsInXlaContext(_ops.get_default_graph())


def tf_keras_sublayers(layer: Any) -> list[Any]:
    """The layers a `tf_keras` layer holds directly (attributes, lists, a functional model's
    layers, an RNN's cell), in tracking order: the edges of the layer tree that names its
    variables, since tf_keras variables have no `path`."""
    flatten = getattr(layer, "_flatten_layers", None)
    if flatten is None:
        return list(getattr(layer, "layers", None) or [])
    return list(flatten(include_self=False, recursive=False))


def autocast_inner(variable: Any) -> Any:
    """The float32 variable a `tf_keras` `AutoCastVariable` (mixed precision) wraps, else None.

    A trace reads the inner variable, while `model.weights` lists the wrapper: naming and
    gradients need the one the trace reads."""
    module = sys.modules.get("tf_keras.src.mixed_precision.autocast_variable")
    wrapper = getattr(module, "AutoCastVariable", None)
    return variable._variable if wrapper is not None and isinstance(variable, wrapper) else None


def tf_function_parts(fn: Any) -> list[Any]:
    """What a `tf.function` runs in Python: its function and, for a decorated method, the object
    it is bound to (held by TensorFlow's method wrapper), so that the models a decorated loss
    uses can be found. Empty for anything else."""
    if not isinstance(fn, tf.types.experimental.GenericFunction):
        return []
    parts = [getattr(fn, "python_function", None)]
    bound = getattr(getattr(fn, "__wrapped__", None), "__self__", None)  # a TfMethodTarget
    parts.append(getattr(bound, "target", None))
    return [p for p in parts if p is not None]


class TraceCalls:
    """Calls a `tf.function` with positional eager tensors straight on the trace made for their
    dtypes and shapes, once `accept` has approved that trace.

    `tf.function`'s own dispatch (binding and canonicalizing the arguments, then looking the
    trace up by their types and the calling context) cost 0.27 ms of a small LSTM's 5 ms logged
    step. Anything it must decide afresh goes through it as usual: keyword or non-tensor
    arguments, a distribution strategy, functions run eagerly, a SavedModel being saved."""

    def __init__(self, function: Any, accept: Callable[[Any], bool]) -> None:
        self._function = function
        self._accept = accept
        self._traces: dict[tuple[Any, ...], Any] = {}
        # Keys whose trace was not accepted: asked once, not again at every call.
        self._declined: set[tuple[Any, ...]] = set()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """`function(*args, **kwargs)`."""
        key = _eager_tensor_key(args, kwargs)
        concrete = None if key is None else self._traces.get(key)
        if concrete is not None:
            return concrete._call_flat(list(args), concrete.captured_inputs)
        out = self._function(*args, **kwargs)
        if key is not None and key not in self._declined:
            concrete = self._function.get_concrete_function(*args)
            if len(concrete.inputs) == len(args) + len(concrete.captured_inputs) and self._accept(concrete):
                self._traces[key] = concrete
            else:
                self._declined.add(key)
        return out


def _eager_tensor_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...] | None:
    """The dtypes and shapes of `args` when they are all eager tensors of plain dtypes, called
    in a context where `tf.function` traces nothing per call (else None)."""
    if kwargs or not _plain_eager_context():
        return None
    key = []
    for a in args:
        if not isinstance(a, _ops.EagerTensor) or a.dtype in (tf.resource, tf.variant):
            return None
        key.append((a.dtype, a._shape_tuple()))
    return tuple(key)


def _plain_eager_context() -> bool:
    return (
        context.executing_eagerly()
        and not tf.config.functions_run_eagerly()
        and not tf.distribute.has_strategy()
        and not save_context.in_save_context()
    )
