"""Gradient states other than a cut: zero, nonfinite, unused, and a block that starves nothing."""
from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

import tb_gradflow
from support.oracle import report_states, tape_states
from tb_gradflow.story import story

X = tf.constant([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]])


def test_sign_gives_zero_not_none():
    w = tf.Variable(tf.ones([3, 2]), name="w")

    def loss_fn(x):
        return tf.reduce_sum(tf.sign(tf.matmul(x, w)))

    report = tb_gradflow.analyze(loss_fn, X)
    assert report.variables["w"].state == "zero"
    assert report.variables["w"].norm == 0.0
    assert report.cut_points == ()
    sign = next(op for op in report.ops if op.type == "Sign")
    assert sign.state == "flowing"
    matmul = next(op for op in report.ops if op.type == "MatMul")
    assert matmul.state == "zero"
    assert report_states(report) == tape_states(loss_fn, [X], [w])


def test_dead_relu_and_clip_outside_range_are_zero():
    w = tf.Variable(-tf.ones([3, 2]), name="w")
    v = tf.Variable(5.0, name="v")

    def loss_fn(x):
        dead = tf.nn.relu(tf.matmul(tf.abs(x), w))  # always negative before the ReLU
        clipped = tf.clip_by_value(v * 2.0, -1.0, 1.0)  # 10 is outside [-1, 1]
        return tf.reduce_sum(dead) + clipped

    report = tb_gradflow.analyze(loss_fn, X)
    assert report.variables["w"].state == "zero"
    assert report.variables["v"].state == "zero"
    assert report_states(report) == tape_states(loss_fn, [X], [w, v])
    assert "all-zero gradient" in str(report)


def test_nonfinite_gradient():
    w = tf.Variable([0.0, 1.0], name="w")
    ok = tf.Variable(1.0, name="ok")

    def loss_fn(x):
        return tf.reduce_sum(tf.sqrt(w)) + ok * tf.reduce_sum(x)  # d sqrt(w)/dw is inf at 0

    report = tb_gradflow.analyze(loss_fn, X)
    assert report.variables["w"].state == "nonfinite"
    assert math.isinf(report.variables["w"].norm) or math.isnan(report.variables["w"].norm)
    assert report.variables["ok"].state == "flowing"
    assert report_states(report) == tape_states(loss_fn, [X], [w, ok])
    assert "NaN or Inf" in str(report)
    assert report.to_dict()["variables"]["w"]["norm"] in ("inf", "nan")


def test_unused_variable_is_none_without_a_cut_point():
    w = tf.Variable(tf.ones([3, 1]), name="w")
    unused = tf.Variable(1.0, name="unused")

    def loss_fn(x):
        return tf.reduce_sum(tf.matmul(x, w))

    report = tb_gradflow.analyze(loss_fn, X, variables=[w, unused])
    assert report.variables["unused"].state == "none"
    assert report.variables["unused"].norm is None
    assert report.starved_variables == ["unused"]
    assert report.cut_points == ()
    assert "not used by the loss at all: unused" in str(report)
    assert report_states(report) == tape_states(loss_fn, [X], [w, unused])


def test_default_variables_are_the_trainable_ones_the_loss_reads():
    w = tf.Variable(tf.ones([3, 1]), name="w")
    frozen = tf.Variable(2.0, name="frozen", trainable=False)
    tf.Variable(1.0, name="elsewhere")

    def loss_fn(x):
        return tf.reduce_sum(tf.matmul(x, w)) * frozen

    report = tb_gradflow.analyze(loss_fn, X)
    assert list(report.variables) == ["w"]


def test_blocking_op_that_starves_nothing_is_still_reported():
    w = tf.Variable(tf.ones([3, 2]), name="w")

    def loss_fn(x):
        h = tf.matmul(x, w)
        side = tf.numpy_function(lambda a: a * 0.5, [h], tf.float32)
        return tf.reduce_sum(h) + tf.reduce_sum(side)

    report = tb_gradflow.analyze(loss_fn, X)
    assert len(report.cut_points) == 1
    cut = report.cut_points[0]
    assert cut.cause == "numpy_function"
    assert cut.starved_variables == ()
    assert report.variables["w"].state == "flowing"
    assert "starves nothing" in str(report)
    assert report_states(report) == tape_states(loss_fn, [X], [w])


def test_norms_match_the_tape():
    w = tf.Variable(tf.random.stateless_normal([3, 4], seed=[3, 4]), name="w")
    b = tf.Variable(tf.ones([4]), name="b")

    def loss_fn(x):
        return tf.reduce_sum(tf.tanh(tf.matmul(x, w) + b) ** 2)

    report = tb_gradflow.analyze(loss_fn, X)
    with tf.GradientTape() as tape:
        loss = loss_fn(X)
    gw, gb = tape.gradient(loss, [w, b])
    assert np.isclose(report.variables["w"].norm, float(tf.norm(gw)), rtol=1e-5)
    assert np.isclose(report.variables["b"].norm, float(tf.norm(gb)), rtol=1e-5)
    assert np.isclose(report.loss, float(loss), rtol=1e-6)


def test_tiny_gradients_are_flowing_not_zero():
    w = tf.Variable([1.0, 1.0], name="w")

    def loss_fn(x):
        return tf.reduce_sum(w) * 1e-30  # squares underflow float32; the gradient is not zero

    report = tb_gradflow.analyze(loss_fn, X)
    assert report.variables["w"].state == "flowing"
    assert report.variables["w"].norm > 0


def test_every_op_has_a_state_and_ops_carry_sources():
    w = tf.Variable(tf.ones([3, 2]), name="w")

    def loss_fn(x):
        return tf.reduce_mean(tf.nn.softplus(tf.matmul(x, w)))

    report = tb_gradflow.analyze(loss_fn, X)
    assert {op.state for op in report.ops} <= {"flowing", "zero", "none", "nonfinite"}
    matmul = next(op for op in report.ops if op.type == "MatMul")
    assert matmul.source.startswith("tests/test_capture_states.py:") or "test_capture_states.py:" in matmul.source
    assert matmul.norm is not None and matmul.norm > 0
    data = report.to_dict()
    assert len(data["ops"]) == len(report.ops)


def test_nonfinite_story_names_the_op_whose_backward_made_it():
    """tf.norm of a zero vector (a distance to itself, a zero residual): the norm's Sqrt has an
    infinite derivative at 0. The story names that Sqrt and its line, not the Sum beside it on
    the same tensor, whose backward is finite."""
    dense = tf.keras.layers.Dense(4)
    dense.build((None, 3))

    def loss_fn(x):
        h = dense(x)
        return tf.norm(h - tf.stop_gradient(h)) + tf.reduce_sum(h)  # NAN-norm

    report = tb_gradflow.analyze(loss_fn, X)
    assert report_states(report) == tape_states(loss_fn, [X], dense.trainable_variables)
    assert set(report.variables_in("nonfinite")) == {v.name for v in report.variables.values()}
    told = next(n for n in story(report)["notes"] if n["kind"] == "nonfinite")
    line = next(i for i, t in enumerate(open(__file__), 1) if "# NAN-norm" in t and "tf.norm" in t)
    assert f"backward of Sqrt 'norm/Sqrt' at tests/test_capture_states.py:{line}:" in told["hint"]
    assert "'Sum'" not in told["hint"]
