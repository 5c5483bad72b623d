"""The ops on the loss path, with nested functions and control-flow bodies opened up.

A walk backwards from the loss collects every op the loss data-depends on and that carries data
from an input or a variable (constants and their arithmetic are left out). Function calls,
`While` and `If`/`Case` ops are entered: their body ops join the path, named by the call path
(`while/body/mul`, `StatefulPartitionedCall/inner/PyFunc`). Alongside, each tensor gets the set of
trainable variables it depends on, as a bitset; a cut starves exactly the `none` variables in the
dependency set of the input it blocks.
"""
from __future__ import annotations

import dataclasses
import re

import tensorflow as tf

from tb_gradflow.capture import tf_internals
from tb_gradflow.capture.registry_hook import OpKey, op_key
from tb_gradflow.capture.tf_internals import Operation

FUNCTION_CALLS = ("PartitionedCall", "StatefulPartitionedCall")
WHILE_OPS = ("While", "StatelessWhile")
BRANCH_OPS = ("If", "StatelessIf", "Case", "StatelessCase")
CALL_OPS = FUNCTION_CALLS + WHILE_OPS + BRANCH_OPS
# Ops whose outputs depend on their input's shape or dtype, never on its values: no gradient is
# lost there, and the shape plumbing they start (Range, reduction indices) is not data.
SHAPE_ONLY = frozenset(
    {"Shape", "ShapeN", "Size", "Rank", "ZerosLike", "OnesLike", "VariableShape", "TensorListLength"}
)


def is_differentiable_dtype(dtype: tf.DType) -> bool:
    """The dtypes a gradient can flow through, as backprop_util.IsTrainable has them.

    Variant matters: loops accumulate into TensorLists (Keras' RNNs, TensorArray), whose
    gradients are variants too.
    """
    base = dtype.base_dtype
    return base.is_floating or base.is_complex or base in (tf.resource, tf.variant)


def carries_gradient(tensor: tf.Tensor) -> bool:
    """Whether a gradient can flow through `tensor`: its dtype, and for a variant (a TensorList)
    the dtype of its elements, so a TensorArray of int32 sampled ids is not taken for a path.
    A variant whose elements cannot be told is taken to carry one, as TensorFlow does."""
    if tensor.dtype.base_dtype != tf.variant:
        return is_differentiable_dtype(tensor.dtype)
    element = element_dtype(tensor)
    return element is None or is_differentiable_dtype(element)


# Ops that pass a TensorList through unchanged: the element dtype is their input's.
_PASS_THROUGH = frozenset(
    {"Identity", "IdentityN", "Enter", "Exit", "NextIteration", "Switch", "Merge"}
)


def element_dtype(tensor: tf.Tensor, hops: int = 32) -> tf.DType | None:
    """The element dtype of a variant (TensorList) tensor: from its handle data, else from the
    op that made the list (`element_dtype` of TensorListReserve, TensorListSetItem, ...),
    followed back through identities and loop results. None when it cannot be told."""
    for _ in range(hops):
        dtype = tf_internals.handle_element_dtype(tensor)
        if dtype is not None:
            return dtype
        op = tensor.op
        if "element_dtype" in op.node_def.attr:
            return tf.as_dtype(op.get_attr("element_dtype"))
        if op.type in _PASS_THROUGH and op.inputs:
            tensor = op.inputs[tensor.value_index if op.type == "IdentityN" else 0]
        elif op.type in WHILE_OPS:
            tensor = op.inputs[tensor.value_index]
        else:
            return None
    return None


def is_measurable_dtype(dtype: tf.DType) -> bool:
    """Whether a gradient can be measured here: integer and boolean tensors carry none."""
    return dtype.base_dtype.is_floating or dtype.base_dtype.is_complex


@dataclasses.dataclass
class PathOp:
    """One op on the path to the loss, with what the later passes need to place it."""
    op: Operation
    name: str
    parent: int
    # Producer index on the path for each op input, or -1 (constant, body input, variable).
    input_producers: list[int]
    variable_inputs: list[int]
    # Variable index each input reads (a handle), or -1.
    input_variables: list[int]
    # Bitset of variable indices each input depends on.
    input_deps: list[int]
    output_deps: int
    # Variables its Python callable may read out of the graph's sight (numpy functions).
    hidden_variables: list[int] = dataclasses.field(default_factory=list)
    # Body graphs, for call ops.
    bodies: list[Body] = dataclasses.field(default_factory=list)

    @property
    def top_level(self) -> bool:
        """Whether the op sits in the traced graph itself, not in a body that a call op runs."""
        return self.parent < 0

    @property
    def key(self) -> OpKey:
        """The op's key across graphs, so that body ops with equal names stay apart."""
        return op_key(self.op)


@dataclasses.dataclass
class Body:
    """One body of a call op: the graph, its label and how its inputs map to the call's inputs."""

    graph: tf.Graph
    label: str
    # body.inputs[i] is fed by call_op.inputs[input_offset + i].
    input_offset: int
    is_loop: bool


def _short_function_name(name: str) -> str:
    match = re.match(r"^__inference_(.*?)(_\d+)?$", name)
    return match.group(1) if match else name


def bodies_of(op: Operation) -> list[Body]:
    """The body graphs of a call op, the ones TensorFlow's own gradient code uses."""
    if op.type in FUNCTION_CALLS:
        fname = op.get_attr("f").name
        graph = tf_internals.library_function_graph(op.graph, fname)
        return [Body(graph, _short_function_name(fname), 0, False)] if graph is not None else []
    if op.type in WHILE_OPS:
        return [Body(tf_internals.while_body_graph(op), "body", 0, True)]
    if op.type in BRANCH_OPS:
        graphs = tf_internals.branch_graphs(op)
        labels = ["then", "else"] if op.type in ("If", "StatelessIf") else [
            f"branch{i}" for i in range(len(graphs))
        ]
        return [Body(g, label, 1, False) for g, label in zip(graphs, labels, strict=False)]
    return []


# What we know of a tensor: (producer index on the path or -1, dependency bits, variable or -1).
TensorInfo = tuple[int, int, int]
_NOTHING: TensorInfo = (-1, 0, -1)


class Walker:
    """Walks back from the loss once, so that each op is visited and numbered a single time."""
    def __init__(self, n_variables: int, hidden: dict[OpKey, int] | None = None):
        self.ops: list[PathOp] = []
        self.index: dict[OpKey, int] = {}
        self.data_bit = 1 << n_variables
        # Bitsets of the variables numpy-function ops read out of the graph's sight (opaque.py).
        self.hidden = hidden or {}

    def walk(self, graph: tf.Graph, roots: list[tf.Tensor], inputs: dict, prefix: str = "",
             strip: str = "", parent: int = -1) -> dict:
        """Adds the path ops of `graph` that reach `roots`; returns what it learnt per tensor.

        `inputs` maps `tensor.ref()` of the graph's inputs to their TensorInfo.
        """
        tensor_info: dict = dict(inputs)
        for op in _backward_topo(roots, stop=set(inputs)):
            infos = [tensor_info.get(t.ref(), _NOTHING) for t in op.inputs]
            if op.type in SHAPE_ONLY:
                continue
            out_deps = 0
            for _, deps, _ in infos:
                out_deps |= deps
            if op.type == "Placeholder" and parent < 0:
                out_deps |= self.data_bit
            hidden = self.hidden.get(op_key(op), 0)
            if hidden:
                out_deps |= hidden | self.data_bit
            if not out_deps:
                continue  # constant arithmetic: not data on the loss path
            local = op.name[len(strip):] if strip and op.name.startswith(strip) else op.name
            path_op = PathOp(
                op=op,
                name=prefix + local,
                parent=parent,
                input_producers=[src for src, _, _ in infos],
                variable_inputs=sorted({var for _, _, var in infos if var >= 0}),
                input_variables=[var for _, _, var in infos],
                input_deps=[deps for _, deps, _ in infos],
                output_deps=out_deps,
                hidden_variables=bit_indices(hidden),
            )
            idx = len(self.ops)
            self.ops.append(path_op)
            self.index[op_key(op)] = idx
            if op.type in CALL_OPS:
                path_op.bodies = bodies_of(op)
                path_op.output_deps = out_deps = self._walk_bodies(path_op, idx, infos)
            for t in op.outputs:
                tensor_info[t.ref()] = (idx, out_deps, -1)
        return tensor_info

    def _walk_bodies(self, call: PathOp, idx: int, call_inputs: list[TensorInfo]) -> int:
        out_deps = call.output_deps
        for body in call.bodies:
            graph = body.graph
            feeds = [
                call_inputs[body.input_offset + i]
                if body.input_offset + i < len(call_inputs) else _NOTHING
                for i in range(len(graph.inputs))
            ]
            roots = list(graph.outputs[: len(call.op.outputs)])
            prefix = f"{call.name}/{body.label}/"
            strip = call.op.name + "/"
            if body.is_loop:
                feeds = self._loop_fixed_point(graph, roots, feeds, prefix, strip)
            inputs = {t.ref(): info for t, info in zip(graph.inputs, feeds, strict=False)}
            info = self.walk(graph, roots, inputs, prefix, strip, idx)
            for out in roots:
                out_deps |= info.get(out.ref(), _NOTHING)[1]
        return out_deps

    def _loop_fixed_point(self, graph, roots, feeds, prefix, strip) -> list[TensorInfo]:
        """A loop body feeds itself: widen each loop input's dependencies until they settle."""
        feeds = list(feeds)
        for _ in range(len(feeds) + 1):
            trial = Walker(0, self.hidden)
            trial.data_bit = self.data_bit
            inputs = {t.ref(): info for t, info in zip(graph.inputs, feeds, strict=False)}
            info = trial.walk(graph, roots, inputs, prefix, strip, 0)
            changed = False
            for i, out in enumerate(roots[: len(feeds)]):
                deps = info.get(out.ref(), _NOTHING)[1]
                src, old, var = feeds[i]
                if deps & ~old:
                    feeds[i] = (src, old | deps, var)
                    changed = True
            if not changed:
                break
        return feeds


def bit_indices(bitset: int) -> list[int]:
    """The indices of the set bits."""
    return [i for i in range(bitset.bit_length()) if bitset >> i & 1]


def _backward_topo(roots: list[tf.Tensor], stop: set) -> list[Operation]:
    """Ops that `roots` data-depend on, producers first, not crossing the `stop` tensors."""
    order: list[Operation] = []
    seen: set[int] = set()
    stack: list[tuple[Operation, bool]] = [
        (t.op, False) for t in roots if t.ref() not in stop
    ]
    while stack:
        op, expanded = stack.pop()
        if expanded:
            order.append(op)
            continue
        if id(op) in seen:
            continue
        seen.add(id(op))
        stack.append((op, True))
        for t in op.inputs:
            if t.ref() not in stop and id(t.op) not in seen:
                stack.append((t.op, False))
    return order
