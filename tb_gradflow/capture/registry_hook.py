"""Watches TensorFlow's gradient registry while a backward pass is built.

`tf.gradients` asks `ops.get_gradient_function(op)` for every op a gradient reaches. Wrapping that
one lookup tells us, for each op, whether it has a gradient at all, whether the registry knows it,
and for which inputs its gradient function returned None. That is the registry's own answer, not a
hand-written list. An op missing from the registry is recorded and treated as returning None, so
the probe never dies of TensorFlow's LookupError.
"""
from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterator

from tb_gradflow.capture import tf_internals
from tb_gradflow.capture.tf_internals import Operation

OpKey = tuple[str, str]  # (graph name, op name)


@dataclasses.dataclass
class GradientCall:
    """What the registry did for one op that a gradient reached."""

    # "ok": a gradient function ran; "not_differentiable": registered as such;
    # "missing": no registry entry; "raised": the gradient function raised (PreventGradient, ...).
    kind: str
    none_inputs: tuple[int, ...] = ()
    message: str = ""


def op_key(op: Operation) -> OpKey:
    """A key naming an op across graphs: names repeat between a function and its bodies."""
    return (getattr(op.graph, "name", ""), op.name)


_LOCK = threading.RLock()


@contextlib.contextmanager
def watch_registry() -> Iterator[dict[OpKey, GradientCall]]:
    """Within this block, every gradient lookup is recorded into the yielded dict."""
    calls: dict[OpKey, GradientCall] = {}
    original = tf_internals.gradient_function_lookup()

    def lookup(op: Operation) -> Callable | None:
        key = op_key(op)
        try:
            grad_fn = original(op)
        except LookupError as e:
            calls[key] = GradientCall("missing", tuple(range(len(op.inputs))), str(e))
            return _none_gradient
        if grad_fn is None:
            calls[key] = GradientCall("not_differentiable", tuple(range(len(op.inputs))))
            return None

        def recorded(op_: Operation, *out_grads):
            try:
                result = grad_fn(op_, *out_grads)
            except LookupError as e:
                calls[key] = GradientCall("raised", tuple(range(len(op_.inputs))), str(e))
                return [None] * len(op_.inputs)
            grads = list(result) if isinstance(result, (list, tuple)) else [result]
            calls[key] = GradientCall(
                "ok", tuple(i for i, g in enumerate(grads) if g is None)
            )
            return result

        return recorded

    with _LOCK, tf_internals.replaced_gradient_function_lookup(lookup):
        yield calls


def _none_gradient(op: Operation, *unused_out_grads) -> list[None]:
    return [None] * len(op.inputs)
