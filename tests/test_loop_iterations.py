"""Inside loops (issue 17): a loop op's iteration_norms against the recurrence written out and
watched by a tape (SimpleRNN, GRU, LSTM with its (h, c) state, a tf.while_loop of our own); body
ops measured over all iterations; the story on a vanishing loop."""

from __future__ import annotations

import gc
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import tb_gradflow
from tb_gradflow import vocabulary as V
from tb_gradflow.capture.bodies import BODY_OPS_ENV
from tb_gradflow.capture.probe import Probe
from tb_gradflow.format.records import build_report
from tb_gradflow.reading.local_logdir import local_provider
from tb_gradflow.reading.reader import GradflowReader
from tb_gradflow.story import story

T, BATCH = 7, 3


def _loop(report):
    (loop,) = [op for op in report.ops if op.iteration_norms is not None]
    return loop


def _unrolled_norms(layer, x, y, head) -> np.ndarray:
    """‖dL/d(state_{i+1})‖ per step of the layer's own cell, run step by step under a tape."""
    cell = layer.cell
    states = [
        tf.zeros([BATCH, s])
        for s in (
            cell.state_size if isinstance(cell.state_size, (list, tuple)) else [cell.state_size]
        )
    ]
    with tf.GradientTape(persistent=True) as tape:
        per_step = []
        for t in range(T):
            out, states = cell(x[:, t], states)
            states = list(states) if isinstance(states, (list, tuple)) else [states]
            for s in states:
                tape.watch(s)
            per_step.append(states)
        loss = tf.reduce_mean((head(out) - y) ** 2)
    norms = []
    for states in per_step:
        grads = tape.gradient(loss, states, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        norms.append(math.sqrt(sum(float(tf.reduce_sum(g * g)) for g in grads)))
    return np.array(norms)


@pytest.fixture
def body_ops(monkeypatch):
    """Body ops measured too (off by default for its cost: capture/bodies.py)."""
    monkeypatch.setenv(BODY_OPS_ENV, "1")


@pytest.mark.parametrize("kind", ["SimpleRNN", "GRU", "LSTM"])
def test_keras_rnn_iteration_norms_match_the_unrolled_tape(kind, body_ops):
    keras.utils.set_random_seed(11)
    layer = getattr(keras.layers, kind)(5)
    head = keras.layers.Dense(1)
    model = keras.Sequential([keras.Input((T, 4)), layer, head])
    x, y = tf.random.normal([BATCH, T, 4], seed=12), tf.random.normal([BATCH, 1], seed=13)

    def loss_fn(x, y):
        return tf.reduce_mean((model(x) - y) ** 2)

    report = tb_gradflow.analyze(loss_fn, x, y)
    loop = _loop(report)
    assert loop.type in ("While", "StatelessWhile") and len(loop.iteration_norms) == T
    np.testing.assert_allclose(
        loop.iteration_norms, _unrolled_norms(layer, x, y, head), rtol=1e-3, atol=1e-7
    )
    # Body ops now carry a norm and a presence over all iterations instead of `measured: false`;
    # all of them are reached (through the loop's TensorList), and only the ops that hold that
    # list (a variant: no norm) stay unmeasured.
    body = [op for op in report.ops if op.name.startswith(loop.name + "/body/")]
    assert body and {op.state for op in body} == {V.FLOWING}
    by_name = {op.name: op for op in report.ops}
    holds_list = {op.name for op in body if op.type == "TensorListSetItem"}
    holds_list |= {op.name for op in body if op.type == "Identity" and set(op.inputs) & holds_list}
    assert holds_list and all(by_name[n].measured is False for n in holds_list)
    assert all(op.measured for op in body if op.name not in holds_list)
    assert any(op.norm and op.presence is not None for op in body)


def test_while_loop_of_our_own_and_its_body_op_norm(body_ops):
    w = tf.Variable(tf.random.stateless_normal([4, 4], seed=[1, 2]) * 0.6)
    xs = tf.random.stateless_normal([T, 2, 4], seed=[3, 4])

    def loss_fn(xs):
        def body(i, h):
            return i + 1, tf.tanh(h @ w + xs[i])

        _, h = tf.while_loop(lambda i, h: i < T, body, (tf.constant(0), tf.zeros([2, 4])))
        return tf.reduce_sum(h**2)

    report = tb_gradflow.analyze(loss_fn, xs, variables=[w])
    loop = _loop(report)
    with tf.GradientTape(persistent=True) as tape:
        h, hs = tf.zeros([2, 4]), []
        for i in range(T):
            h = tf.tanh(h @ w + xs[i])
            tape.watch(h)
            hs.append(h)
        loss = tf.reduce_sum(h**2)
    expected = np.array([float(tf.norm(g)) for g in tape.gradient(loss, hs)])
    np.testing.assert_allclose(loop.iteration_norms, expected, rtol=1e-3)
    # The Tanh's output is the carried state: its norm over all iterations is theirs together
    # (op norms are stored to a byte, within 4.4 %).
    (tanh,) = [op for op in report.ops if op.type == "Tanh"]
    assert tanh.measured and tanh.state == V.FLOWING
    assert tanh.norm == pytest.approx(float(np.sqrt(np.sum(expected**2))), rel=0.05)
    assert tanh.presence == 1.0
    # A second call of the same probe, after a collection: the accumulators were reset, and
    # they outlive the trace that made them.
    gc.collect()
    again = tb_gradflow.analyze(loss_fn, xs, variables=[w])
    np.testing.assert_allclose(_loop(again).iteration_norms, loop.iteration_norms, rtol=1e-6)


def test_a_vanishing_loop_is_told():
    keras.utils.set_random_seed(2)
    layer = keras.layers.SimpleRNN(
        4, recurrent_initializer=keras.initializers.Orthogonal(gain=0.05)
    )
    model = keras.Sequential([keras.Input((30, 3)), layer, keras.layers.Dense(1)])
    x = tf.random.normal([2, 30, 3], seed=3)

    def loss_fn(x):
        return tf.reduce_sum(model(x) ** 2)

    report = tb_gradflow.analyze(loss_fn, x)
    loop = _loop(report)
    assert loop.iteration_norms[0] < V.LOOP_VANISHING_RATIO * loop.iteration_norms[-1]
    told = story(report)
    (note,) = [n for n in told["notes"] if n["kind"] == V.LOOP_VANISHING]
    assert (
        note["names"] == [loop.name] and "vanishes through the loop's 30 iterations" in note["text"]
    )
    assert note["hint"] == V.LOOP_VANISHING_HINT and told["tone"] == "warn"


def test_body_ops_are_measured_only_when_asked_iterations_always():
    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((T, 2)), keras.layers.GRU(3), keras.layers.Dense(1)])
    x = tf.random.normal([BATCH, T, 2], seed=5)
    reports = {}
    for on in (False, True):
        probe = Probe(
            lambda x: tf.reduce_sum(model(x)), model.trainable_variables, measure_bodies=on
        )
        result = probe(x)
        reports[on] = build_report(result.graph, result.step)
    assert not any(op.measured for op in reports[False].ops if "/body/" in op.name)
    assert any(op.measured for op in reports[True].ops if "/body/" in op.name)
    np.testing.assert_allclose(
        _loop(reports[False]).iteration_norms, _loop(reports[True]).iteration_norms, rtol=1e-6
    )


def test_summary_and_callback_pass_the_body_switch(tmp_path, monkeypatch):
    """`measure_bodies=` of summary.gradflow and GradFlowCallback reaches the probe; None
    follows the environment variable."""
    keras.utils.set_random_seed(6)
    model = keras.Sequential([keras.Input((T, 2)), keras.layers.GRU(3), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = tf.random.normal([BATCH, T, 2], seed=7), tf.random.normal([BATCH, 1], seed=8)

    def loss_fn(x, y):
        return tf.reduce_mean((model(x) - y) ** 2)

    def body_measured(report) -> bool:
        return any(op.measured for op in report.ops if "/body/" in op.name)

    monkeypatch.delenv(BODY_OPS_ENV, raising=False)
    def logged(**switch):
        return tb_gradflow.summary.gradflow(
            "g", loss_fn, x, y, variables=model.trainable_variables, step=0, strict=True, **switch
        )

    assert not body_measured(logged())
    assert body_measured(logged(measure_bodies=True))
    monkeypatch.setenv(BODY_OPS_ENV, "1")
    assert body_measured(logged())
    assert not body_measured(logged(measure_bodies=False))

    monkeypatch.delenv(BODY_OPS_ENV)
    callback = tb_gradflow.keras.GradFlowCallback(
        str(tmp_path), (x, y), strict=True, measure_bodies=True
    )
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[callback])
    reader = GradflowReader(local_provider(str(tmp_path)))
    listing = reader.list()
    assert body_measured(reader.read("train", "gradflow", listing["train"]["gradflow"]).report())
