"""Two recurrent cases checked against a plain tape: a Keras 2 (`tf_keras`) LSTM, whose loop
runs inside a function of its own (`standard_lstm`), and a Keras 3 `Bidirectional(LSTM)`, two
loops side by side. For each: every variable flows with the tape's norm, nothing is cut, and
each loop's `iteration_norms` equal ‖dL/d(h, c)_{i+1}‖ of its cell written out step by step.
"""
from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import tb_gradflow
from tb_gradflow import vocabulary as V
from tb_gradflow.capture.bodies import BODY_OPS_ENV
from tb_gradflow.reading.local_logdir import local_provider
from tb_gradflow.reading.reader import GradflowReader

T, BATCH, UNITS = 6, 3, 5


def unrolled_norms(cells, x, y, head) -> list[np.ndarray]:
    """Per cell, ‖dL/d(state_{i+1})‖ at each step; each cell is (cell, reversed): run over the
    sequence (backwards when reversed), their last outputs concatenated into `head`."""
    states = [[tf.zeros([BATCH, UNITS]), tf.zeros([BATCH, UNITS])] for _ in cells]
    per_step: list[list[list[tf.Tensor]]] = [[] for _ in cells]
    with tf.GradientTape(persistent=True) as tape:
        outs = [None] * len(cells)
        for t in range(T):
            for k, (cell, backwards) in enumerate(cells):
                outs[k], new = cell(x[:, T - 1 - t if backwards else t], states[k])
                states[k] = list(new)
                for s in states[k]:
                    tape.watch(s)
                per_step[k].append(states[k])
        loss = tf.reduce_mean((head(tf.concat(outs, -1)) - y) ** 2)
    return [
        np.array([
            math.sqrt(sum(float(tf.reduce_sum(g * g)) for g in tape.gradient(
                loss, s, unconnected_gradients=tf.UnconnectedGradients.ZERO)))
            for s in steps
        ])
        for steps in per_step
    ]


def analyzed(K, layer, head):
    """A Sequential of `layer` and `head` (Keras `K`), its loss on a fixed batch, and analyze()'s
    report of it, checked: nothing cut, each trained variable flowing with the tape's norm.
    Returns (report, loss_fn, x, y)."""
    model = K.Sequential([K.Input((T, 4)), layer, head])
    x, y = tf.random.normal([BATCH, T, 4], seed=12), tf.random.normal([BATCH, 1], seed=13)

    def loss_fn(x, y):
        return tf.reduce_mean((model(x) - y) ** 2)

    report = tb_gradflow.analyze(loss_fn, x, y)
    with tf.GradientTape() as tape:
        loss = loss_fn(x, y)
    variables = model.trainable_variables
    grads = tape.gradient(loss, variables)
    assert not report.cut_points and not report.starved_variables
    assert len(report.variables) == len(variables)
    for record, g in zip(report.variables.values(), grads, strict=True):
        assert record.state == V.FLOWING
        assert record.norm == pytest.approx(float(tf.norm(g)), rel=1e-5)
    return report, loss_fn, x, y


def loops_of(report) -> dict[str, tuple[float, ...]]:
    return {op.name: op.iteration_norms for op in report.ops if op.iteration_norms is not None}


def test_tf_keras_lstm_runs_its_loop_in_a_function_and_is_measured(tmp_path, monkeypatch):
    """tf_keras' LSTM runs `backend.rnn` inside its own tf.function (`standard_lstm`): the loop's
    iteration counter is out of the loss graph's reach, which once made the probe fail."""
    K = pytest.importorskip("tf_keras")
    monkeypatch.setenv(BODY_OPS_ENV, "1")
    K.utils.set_random_seed(11)
    layer, head = K.layers.LSTM(UNITS), K.layers.Dense(1)
    report, loss_fn, x, y = analyzed(K, layer, head)
    (expected,) = unrolled_norms([(layer.cell, False)], x, y, head)
    ((name, norms),) = loops_of(report).items()
    assert "standard_lstm/while" in name
    np.testing.assert_allclose(norms, expected, rtol=1e-3, atol=1e-7)
    body = [op for op in report.ops if op.name.startswith(name + "/body/")]
    assert body and {op.state for op in body} == {V.FLOWING}
    assert sum(op.measured for op in body) > len(body) / 2

    # Inside the user's own tf.function, logged and read back: the same norms.
    writer = tf.summary.create_file_writer(str(tmp_path / "run"))

    @tf.function
    def train():
        return tb_gradflow.summary.gradflow("g", loss_fn, x, y, step=0, strict=True)

    with writer.as_default():
        assert bool(train())
    writer.close()
    reader = GradflowReader(local_provider(str(tmp_path)))
    logged = reader.read("run", "g", reader.list()["run"]["g"]).report()
    np.testing.assert_allclose(list(loops_of(logged).values())[0], expected, rtol=1e-3, atol=1e-7)


def test_bidirectional_lstm_two_loops_each_match_its_cell():
    keras.utils.set_random_seed(11)
    layer, head = keras.layers.Bidirectional(keras.layers.LSTM(UNITS)), keras.layers.Dense(1)
    report, _, x, y = analyzed(keras, layer, head)
    forward, backward = unrolled_norms(
        [(layer.forward_layer.cell, False), (layer.backward_layer.cell, True)], x, y, head
    )
    loops = loops_of(report)
    assert len(loops) == 2
    (fw,) = [n for name, n in loops.items() if "forward_lstm" in name]
    (bw,) = [n for name, n in loops.items() if "backward_lstm" in name]
    # First iteration first: the backward loop's first iteration reads the last time step.
    np.testing.assert_allclose(fw, forward, rtol=1e-3, atol=1e-7)
    np.testing.assert_allclose(bw, backward, rtol=1e-3, atol=1e-7)
    assert not np.allclose(forward, backward, rtol=1e-2)  # two different recurrences
