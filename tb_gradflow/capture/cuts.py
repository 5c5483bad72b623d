"""Where the gradient stops: which ops on the loss path are cut points, why, and whom they starve.

Structure comes from the registry watch over real backward passes: the top-level one that the
probe runs anyway, and one scratch pass per function or control-flow body (built into a throwaway
graph, as TensorFlow builds a body's backward function), so that a cached backward function of a
shared nested `tf.function` cannot hide its ops from us.
"""
from __future__ import annotations

import dataclasses

import tensorflow as tf

from tb_gradflow import vocabulary as V
from tb_gradflow.capture import tf_internals
from tb_gradflow.capture.loss_path import (
    CALL_OPS,
    PathOp,
    carries_gradient,
)
from tb_gradflow.capture.registry_hook import GradientCall, OpKey, op_key, watch_registry
from tb_gradflow.capture.starving import body_roots, parallel_cuts, starved_by

# Ops that read a variable's value: an integer variable's cut is its read.
VARIABLE_READS = frozenset({"ReadVariableOp", "ResourceGather", "ResourceGatherNd"})


@dataclasses.dataclass
class Cut:
    """Why one op stops the gradient, held until the whole path is known to name what starves."""
    cause: str
    detail: str
    blocked_inputs: list[int]
    # Variables this op alone starves, and the other cut points starving some of them too.
    starved: list[int]
    parallel: list[int]


@dataclasses.dataclass
class Structure:
    """Structural gradient facts, fixed for a traced graph."""

    # Refs of the tensors that some gradient reaches.
    has_grad: set
    calls: dict[OpKey, GradientCall]
    reached: list[bool]
    cuts: dict[int, Cut]
    variable_has_grad: list[bool]


def scratch_pass(graph: tf.Graph, ys: list[tf.Tensor], xs: list[tf.Tensor]) -> dict[OpKey, GradientCall]:
    """Builds the backward of `ys` w.r.t. `xs` inside `graph` into a throwaway graph."""
    ys = [y for y in ys if carries_gradient(y) and y.dtype != tf.resource]
    if not ys:
        return {}
    with watch_registry() as calls:
        with graph.as_default():
            scratch = tf_internals.FuncGraph("gradflow_scratch")
            with scratch.as_default():
                grad_ys = [
                    tf.compat.v1.placeholder(y.dtype, y.shape, name="grad_y") for y in ys
                ]
                tf_internals.build_gradients(ys, xs, grad_ys, graph)
    return dict(calls)


def analyze_structure(
    ops: list[PathOp],
    top_calls: dict[OpKey, GradientCall],
    loss: tf.Tensor,
    variable_handles: list[tf.Tensor | None],
    index: dict[OpKey, int],
) -> Structure:
    """Which tensors a gradient really reaches, op by op from the loss back, and the cut points.

    `tf.gradients` alone is not enough: a `While` or `If` gradient hands back zeros, not None, for
    an input its body cuts off. So reachability is propagated here through each op's recorded
    gradient function, and through bodies by their own scratch passes. What each cut point
    starves is a counterfactual over that reachability (see starving.py).
    """
    walk = _Propagation(ops, top_calls)
    walk.level([i for i, p in enumerate(ops) if p.top_level], {loss.ref()})
    n_variables = len(variable_handles)
    mask = (1 << n_variables) - 1
    variable_has_grad = [h is not None and h.ref() in walk.has_grad for h in variable_handles]
    blocked: dict[int, list[int]] = {}
    for idx, p in enumerate(ops):
        if walk.reached[idx] and p.op.type not in CALL_OPS:
            inputs = _blocked_inputs(p, walk.calls.get(p.key), mask)
            if inputs or p.hidden_variables:
                blocked[idx] = inputs
    starved = starved_by(
        ops, walk.reached, blocked, [not ok for ok in variable_has_grad], body_roots(ops, index)
    )
    parallel = parallel_cuts(starved)
    cuts: dict[int, Cut] = {}
    for idx, inputs in blocked.items():
        cause, detail = _cause(ops[idx], walk.calls.get(ops[idx].key), index)
        if not starved[idx] and not parallel[idx] and _where_condition(ops[idx].op, index):
            detail = V.WHERE_CONDITION_DETAIL
        cuts[idx] = Cut(cause, detail, inputs, starved[idx], parallel[idx])
    return Structure(walk.has_grad, walk.calls, walk.reached, cuts, variable_has_grad)


class _Propagation:
    def __init__(self, ops: list[PathOp], top_calls: dict[OpKey, GradientCall]):
        self.ops = ops
        top_keys = {p.key for p in ops if p.top_level}
        self.calls = {k: v for k, v in top_calls.items() if k in top_keys}
        self.has_grad: set = set()
        # Refs of body results whose call op's (integer) result a reached op uses.
        self.used: set = set()
        self.reached = [False] * len(ops)
        self.consumers: list[list[int]] = [[] for _ in ops]
        for i, p in enumerate(ops):
            for src in p.input_producers:
                if src >= 0:
                    self.consumers[src].append(i)

    def level(self, members: list[int], seeds: set) -> None:
        """Propagates from `seeds` (tensor refs with a gradient) back through one graph's ops."""
        self.has_grad |= seeds
        for idx in reversed(members):
            p = self.ops[idx]
            op = p.op
            if any(t.ref() in self.has_grad for t in op.outputs):
                self.reached[idx] = True
            elif op.type in CALL_OPS and p.bodies:
                # A call op with integer results a reached op uses (a loop's TensorArray of
                # sampled ids) is entered for them, whatever its float results do.
                self.reached[idx] = bool(self._used_results(idx))
            elif not any(carries_gradient(t) for t in op.outputs):
                # Integer/bool outputs carry no gradient; such an op is where a gradient would
                # have had to pass if a reached op consumes it (or, in a body, if its call op's
                # integer result is used: a loop's TensorArray of sampled ids).
                self.reached[idx] = any(self.reached[c] for c in self.consumers[idx]) or any(
                    t.ref() in self.used for t in op.outputs
                )
            if not self.reached[idx]:
                continue
            if op.type in CALL_OPS and p.bodies:
                self._enter(idx)
                continue
            call = self.calls.get(p.key) or self._own_pass(idx)
            if call is None:
                continue
            for i, t in enumerate(op.inputs):
                if i not in call.none_inputs and carries_gradient(t):
                    self.has_grad.add(t.ref())

    def _own_pass(self, idx: int) -> GradientCall | None:
        """The gradient call of a reached op that the backward pass never built (it is an x of
        that pass, and tf.gradients starts there): its own scratch pass, so the walk goes on to
        its inputs (a map_fn's float TensorListStack over integer buckets, tfp's histogram)."""
        p = self.ops[idx]
        op = p.op
        ys = [t for t in op.outputs if carries_gradient(t)]
        xs = [t for i, t in enumerate(op.inputs) if carries_gradient(t) and p.input_deps[i]]
        if not ys or not xs:
            return None
        call = scratch_pass(op.graph, ys, xs).get(p.key)
        if call is not None:
            self.calls[p.key] = call
        return call

    def _used_results(self, idx: int) -> set[int]:
        """The integer results of call op `idx` (outputs that carry no gradient) that a reached
        op, or a body result already known to be used, takes as input."""
        op = self.ops[idx].op
        wanted = {t.ref(): j for j, t in enumerate(op.outputs) if not carries_gradient(t)}
        used = {j for t, j in wanted.items() if t in self.used}
        for c in self.consumers[idx]:
            if self.reached[c]:
                used.update(wanted[t.ref()] for t in self.ops[c].op.inputs if t.ref() in wanted)
        return used

    def _enter(self, idx: int) -> None:
        call = self.ops[idx]
        op = call.op
        for body in call.bodies:
            graph = body.graph
            members = [i for i, p in enumerate(self.ops) if p.parent == idx and p.op.graph is graph]
            outputs = list(graph.outputs[: len(op.outputs)])
            live = {j for j, t in enumerate(op.outputs) if t.ref() in self.has_grad}
            used = {outputs[j].ref() for j in self._used_results(idx)}
            self.used |= used
            if not live:
                # No gradient enters, but the body's integer results are used: where their
                # values come from is where a gradient would have had to pass.
                if used:
                    self.level(members, set())
                continue
            xs = [t for i in members for t in self.ops[i].op.outputs if carries_gradient(t)]
            xs += [t for t in graph.inputs if carries_gradient(t)]
            keys = {self.ops[i].key for i in members}
            while live:
                pass_calls = scratch_pass(graph, [outputs[j] for j in sorted(live)], xs)
                self.calls.update({k: v for k, v in pass_calls.items() if k in keys})
                self.level(members, {outputs[j].ref() for j in live})
                if not body.is_loop:
                    break
                # A loop input with a gradient means the previous iteration's output has one.
                grown = live | {
                    i for i, t in enumerate(graph.inputs[: len(outputs)]) if t.ref() in self.has_grad
                }
                if grown == live:
                    break
                live = grown
            for i, t in enumerate(graph.inputs):
                j = body.input_offset + i
                if t.ref() in self.has_grad and j < len(op.inputs):
                    self.has_grad.add(op.inputs[j].ref())


def _is_custom_gradient(p: PathOp) -> bool:
    try:
        return bool(p.op.get_attr("_gradient_op_type"))
    except ValueError:
        return False


def _custom_gradient_result_count(op: tf.Operation) -> int:
    """How many leading IdentityN inputs are the function's results, not its arguments.

    TensorFlow keeps that count only in the registered gradient function's closure
    (`flat_result_len` in custom_gradient._graph_mode_decorator); the fallback counts the
    IdentityN outputs that are used, which are the results.
    """
    try:
        name = op.get_attr("_gradient_op_type").decode()
        fn = tf_internals.registered_gradient(name)
        for cell in fn.__closure__ or ():
            inner = cell.cell_contents
            code = getattr(inner, "__code__", None)
            if code is not None and "flat_result_len" in code.co_freevars:
                value = inner.__closure__[code.co_freevars.index("flat_result_len")].cell_contents
                if isinstance(value, int):
                    return value
    except Exception:  # noqa: BLE001 - introspection of TensorFlow internals; fall back below
        pass
    return sum(1 for t in op.outputs if t.consumers())


def _blocked_inputs(p: PathOp, call: GradientCall | None, mask: int) -> list[int]:
    op = p.op
    candidates = [
        i for i, t in enumerate(op.inputs)
        if carries_gradient(t) and p.input_deps[i] & mask
    ]
    if _is_custom_gradient(p) and op.type == "IdentityN":
        # tf.custom_gradient passes (results..., args..., variables...) through one IdentityN;
        # its gradient is None for the results by design. Only the args and variables count.
        n_results = _custom_gradient_result_count(op)
        candidates = [i for i in candidates if i >= n_results]
    if call is not None:
        return [i for i in candidates if i in call.none_inputs]
    if not any(carries_gradient(t) for t in op.outputs):
        return candidates
    return []


def _cause(p: PathOp, call: GradientCall | None, index: dict[OpKey, int]) -> tuple[str, str]:
    op = p.op
    if op.type in ("PyFunc", "PyFuncStateless"):
        return V.NUMPY_FUNCTION, "tf.numpy_function has no gradient"
    if op.type == "StopGradient":
        return V.STOP_GRADIENT, _stop_gradient_detail(op, index)
    if op.type == "Cast":
        dst = op.get_attr("DstT")
        if not (dst.is_floating or dst.is_complex):
            return V.INTEGER_CAST, f"cast from {op.get_attr('SrcT').name} to {dst.name}"
    if p.variable_inputs and op.type in VARIABLE_READS and not any(
        carries_gradient(t) for t in op.outputs
    ):
        dtypes = ", ".join(sorted({t.dtype.name for t in op.outputs}))
        return V.INTEGER_VARIABLE, V.INTEGER_VARIABLE_DETAIL.format(dtypes=dtypes)
    if _is_custom_gradient(p):
        return V.CUSTOM_GRADIENT, "its tf.custom_gradient function returns None for an input"
    if call is not None and call.kind == "missing":
        return V.NON_DIFFERENTIABLE, f"no gradient is registered for op type {op.type}"
    if call is not None and call.kind == "raised":
        return V.NON_DIFFERENTIABLE, call.message.splitlines()[0] if call.message else ""
    if call is not None and call.kind == "not_differentiable":
        return V.NON_DIFFERENTIABLE, f"{op.type} is registered as not differentiable"
    if call is not None:
        return V.NON_DIFFERENTIABLE, f"the gradient of {op.type} is None"
    outs = ", ".join(sorted({t.dtype.name for t in op.outputs})) or "nothing"
    return V.NON_DIFFERENTIABLE, f"{op.type} outputs {outs}, which carries no gradient"


def _stop_gradient_detail(op: tf.Operation, index: dict[OpKey, int]) -> str:
    """A StopGradient told by the library idiom it belongs to, whose stopped gradient is zero."""
    if _moments_mean(op, index):
        return V.MOMENTS_DETAIL
    if _logsumexp_shift(op, index):
        return V.LOGSUMEXP_DETAIL
    return "tf.stop_gradient (often intended)"


def _logsumexp_shift(op: tf.Operation, index: dict[OpKey, int]) -> bool:
    """Whether a StopGradient is tf.reduce_logsumexp's own: on the Max of some x (kept finite by
    a SelectV2 on IsFinite), read on the loss path only by a Sub from that x and by the addition
    that puts it back (through a Reshape when the reduction drops its axes)."""
    shift = op.inputs[0].op
    if shift.type == "SelectV2" and shift.inputs[0].op.type == "IsFinite":
        shift = shift.inputs[1].op
    if shift.type != "Max":
        return False
    x = shift.inputs[0].name
    readers = _path_readers(op, index)
    through = [r for c in readers if c.type == "Reshape" for r in _path_readers(c, index)]
    subtracted = [c for c in readers if c.type == "Sub" and c.inputs[0].name == x]
    added = [c for c in readers + through if c.type in ("Add", "AddV2")]
    others = [c for c in readers if c not in subtracted and c.type not in ("Reshape", "Add", "AddV2")]
    return len(subtracted) == 1 and len(added) == 1 and not others


def _where_condition(op: tf.Operation, index: dict[OpKey, int]) -> bool:
    """Whether a boolean op is read on the loss path only as the condition of tf.where (sigmoid
    cross-entropy from logits on `logits >= 0`, Huber on `|error| <= delta`): it picks a branch
    per element, and the gradient flows through the branches, not through it."""
    if not op.outputs or any(t.dtype != tf.bool for t in op.outputs):
        return False
    readers = [(c, t) for t in op.outputs for c in t.consumers() if op_key(c) in index]
    return bool(readers) and all(
        c.type in ("Select", "SelectV2") and c.inputs[0].name == t.name
        and all(x.name != t.name for x in list(c.inputs)[1:])
        for c, t in readers
    )


def _path_readers(op: tf.Operation, index: dict[OpKey, int]) -> list[tf.Operation]:
    """The ops on the loss path (`index`) reading `op`'s first output."""
    return [c for c in op.outputs[0].consumers() if op_key(c) in index]


def _moments_mean(op: tf.Operation, index: dict[OpKey, int]) -> bool:
    """Whether a StopGradient is tf.nn.moments' own: on a Mean, and read on the loss path (`index`;
    the backward pass reads it too) only by a SquaredDifference from that Mean's input: the
    variance around the mean, whose gradient with respect to the mean is zero."""
    mean = op.inputs[0].op
    if mean.type != "Mean":
        return False
    readers = _path_readers(op, index)
    return bool(readers) and all(
        c.type == "SquaredDifference" and c.inputs[0].name == mean.inputs[0].name for c in readers
    )
