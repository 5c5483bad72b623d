"""Discovery: which variables a report covers, and the handles their reads have inside the trace."""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import tensorflow as tf


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


def discover(explicit: list[TrackedVariable] | None, watched: Sequence[tf.Variable]) -> list[TrackedVariable]:
    """The user's variables if given, else the trainable ones the trace read, each once."""
    if explicit is not None:
        return explicit
    seen: set[int] = set()
    variables = []
    for v in watched:
        if v.trainable and id(v) not in seen:
            seen.add(id(v))
            variables.append(track(v))
    return variables


def internal_handles(graph: tf.Graph, variables: Sequence[TrackedVariable]) -> list[tf.Tensor | None]:
    """Each variable's handle as captured into `graph`, or None if the trace never read it."""
    handles = {id(v.tf_variable.handle): i for i, v in enumerate(variables)}
    internal: list[tf.Tensor | None] = [None] * len(variables)
    for external, captured in graph.captures:
        if id(external) in handles:
            internal[handles[id(external)]] = captured
    return internal
