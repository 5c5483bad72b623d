"""Variables read where the graph cannot see: inside `tf.numpy_function` / `tf.py_function`.

A model called inside a numpy function (an RL step whose logits come out of
`numpy_function(self.np_step, [], ...)`) reads its variables eagerly, outside the trace, so no
captured handle and no op input shows them. What the function's callable reaches (its closure,
its bound `self`, the globals it names; see owners.py) tells which Keras variables it can read;
those join the report, and the op is where their gradient stops.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from tb_gradflow.capture import tf_internals
from tb_gradflow.capture.loss_path import CALL_OPS, bodies_of
from tb_gradflow.capture.owners import keras_index
from tb_gradflow.capture.registry_hook import OpKey, op_key
from tb_gradflow.capture.variables import TrackedVariable, tf_variable_of


def _py_function_ops(graph: tf.Graph, seen: set[int]) -> list[tf_internals.Operation]:
    found = []
    for op in graph.get_operations():
        if op.type in tf_internals.PY_FUNCTION_OPS:
            found.append(op)
        elif op.type in CALL_OPS:
            for body in bodies_of(op):
                if id(body.graph) not in seen:
                    seen.add(id(body.graph))
                    found.extend(_py_function_ops(body.graph, seen))
    return found


def opaque_reads(graph: tf.Graph) -> dict[OpKey, list[Any]]:
    """For each numpy/py function op of `graph` and its bodies: the trainable Keras variables
    its Python callable reaches."""
    reads: dict[OpKey, list[Any]] = {}
    for op in _py_function_ops(graph, set()):
        fn = tf_internals.py_function_callable(op)
        if fn is None:
            continue
        variables = [v for v in keras_index(fn).all_variables() if v.trainable]
        if variables:
            reads[op_key(op)] = variables
    return reads


def hidden_bits(reads: dict[OpKey, list[Any]], variables: Sequence[TrackedVariable]) -> dict[OpKey, int]:
    """`reads` as bitsets over the report's variables, for the walker."""
    position = {id(v.tf_variable): i for i, v in enumerate(variables)}
    bits: dict[OpKey, int] = {}
    for key, read in reads.items():
        for v in read:
            i = position.get(id(tf_variable_of(v)))
            if i is not None:
                bits[key] = bits.get(key, 0) | 1 << i
    return bits
