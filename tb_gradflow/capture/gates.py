"""Gating ops: where presence is measured at the input, from what the op passes back.

A ReLU whose units are all dead still receives a full gradient at its output; it is the gradient
it hands back to its input that is zero. So for these ops presence is measured on what their
registered gradient function returns for the gated (data) inputs, recorded while the one backward
pass is built: no extra backward work, only a reduction of tensors that exist anyway. It is
counted against the nonzero elements of what arrives at the gate's output (where the shapes
agree), not against all elements: a ReLU before a pooler that keeps one position of twelve
receives a gradient at one position in twelve, passes back about half of that, and is not the
cause of the rest.
"""
from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from tb_gradflow.capture import tf_internals
from tb_gradflow.capture.loss_path import PathOp
from tb_gradflow.capture.registry_hook import OpKey, op_key
from tb_gradflow.capture.tf_internals import Operation

# Op type -> the inputs whose gradient the op masks. Minimum and Maximum gate only against
# something off the loss path (a constant: `tf.clip_by_value`, `tf.minimum(x, 6.0)`); between two
# path tensors each side gets part of the gradient and neither is "gated".
GATED_INPUTS: dict[str, tuple[int, ...]] = {
    "Relu": (0,),
    "Relu6": (0,),
    "LeakyRelu": (0,),
    "Elu": (0,),
    "ClipByValue": (0,),
    "Minimum": (0, 1),
    "Maximum": (0, 1),
    "Select": (1, 2),
    "SelectV2": (1, 2),
}
_AGAINST_CONSTANT = ("Minimum", "Maximum")


def gated_inputs(p: PathOp) -> tuple[int, ...]:
    """The inputs of path op `p` whose passed-back gradient is its presence; () if not a gate.

    Only top-level ops: values inside function and loop bodies are not fetched.
    """
    candidates = GATED_INPUTS.get(p.op.type)
    if not candidates or not p.top_level:
        return ()
    on_path = tuple(
        i for i in candidates
        if i < len(p.input_producers) and (p.input_producers[i] >= 0 or p.input_deps[i])
    )
    if p.op.type in _AGAINST_CONSTANT and len(on_path) != 1:
        return ()
    return on_path


@dataclasses.dataclass
class GateGradients:
    """What each gate's gradient function saw, keyed by op: the gradients it passed back to its
    gated inputs (None ones left out), and the one that arrived at its first output."""

    passed: dict[OpKey, list[Any]] = dataclasses.field(default_factory=dict)
    received: dict[OpKey, Any] = dataclasses.field(default_factory=dict)


@contextlib.contextmanager
def record_passed_back(gates: dict[OpKey, tuple[int, ...]]) -> Iterator[GateGradients]:
    """Within this block (inside `watch_registry`), what each gate in `gates` passes back to its
    gated inputs, and what arrives at its output, are recorded into the yielded GateGradients:
    a gate's presence is the share of what arrives that it passes back."""
    recorded = GateGradients()
    inner = tf_internals.gradient_function_lookup()

    def lookup(op: Operation) -> Callable | None:
        grad_fn = inner(op)
        wanted = gates.get(op_key(op))
        if grad_fn is None or not wanted:
            return grad_fn

        def recording(op_: Operation, *out_grads):
            result = grad_fn(op_, *out_grads)
            grads = list(result) if isinstance(result, (list, tuple)) else [result]
            key = op_key(op_)
            recorded.passed[key] = [grads[i] for i in wanted if i < len(grads) and grads[i] is not None]
            recorded.received[key] = out_grads[0] if out_grads else None
            return result

        return recording

    with tf_internals.replaced_gradient_function_lookup(lookup):
        yield recorded
