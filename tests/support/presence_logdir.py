"""A logdir with a dead-ReLU layer (15 of 16 units never fire) and an embedding that the batch
touches in 3 of 500 rows, logged at a few steps: what the presence tests serve and show."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

import tb_gradflow
from tb_gradflow.proto import gradflow_pb2

STEPS = (0, 100, 1200)


def relu_graph(relu_name: str = "dense_3/Relu") -> gradflow_pb2.Graph:
    """A two-op Graph (a ReLU measured at its input, then a Sum) and one variable `w`, for
    steps encoded by hand."""
    graph = gradflow_pb2.Graph(graph_id="g", loss_op=1)
    graph.variables.add(name="w", shape="3", dtype="float32")
    graph.ops.add(name=relu_name, type="Relu", parent=-1, measured=True, presence_at_input=True)
    graph.ops.add(name="Sum", type="Sum", inputs=[0], parent=-1, measured=True)
    return graph


def write_dead_relu_run(logdir: str, run: str = "dead") -> tb_gradflow.report.Report:
    """Writes LOGDIR/RUN (tag "gradflow") and returns `analyze()`'s report of the same loss."""
    import keras

    keras.utils.set_random_seed(0)
    layer = keras.layers.Dense(16, activation="relu", name="dense_3")
    head = keras.layers.Dense(1, name="head")
    embedding = keras.layers.Embedding(500, 4, name="embed")
    x = tf.random.normal([32, 5], seed=1)
    ids = tf.constant([[1, 2, 3, 2]])
    head(layer(x)), embedding(ids)
    bias = np.full(16, -1e3, np.float32)
    bias[0] = 0.0
    layer.bias.assign(bias)

    def loss_fn(x, ids):
        return tf.reduce_sum(head(layer(x)) ** 2) + tf.reduce_sum(embedding(ids))

    writer = tf.summary.create_file_writer(f"{logdir}/{run}")
    with writer.as_default():
        for step in STEPS:
            tb_gradflow.summary.gradflow("gradflow", loss_fn, x, ids, step=step, strict=True)
    writer.close()
    return tb_gradflow.analyze(loss_fn, x, ids)
