"""Each cause of a cut, on a small model, checked against a plain GradientTape."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import tb_gradflow
from support.oracle import line_of, report_states, tape_states

HERE = __file__


def _vars():
    w = tf.Variable(tf.random.stateless_normal([3, 4], seed=[1, 2]), name="w")
    b = tf.Variable(tf.zeros([4]), name="b")
    head = tf.Variable(tf.ones([4]), name="head")
    return w, b, head


X = tf.constant(np.linspace(-1.0, 1.0, 6, dtype=np.float32).reshape(2, 3))


def _single_cut(report):
    assert len(report.cut_points) == 1, str(report)
    return report.cut_points[0]


def test_numpy_function_starves_everything_upstream():
    w, b, head = _vars()

    def loss_fn(x):
        h = tf.matmul(x, w) + b
        g = tf.numpy_function(lambda a: np.tanh(a), [h], tf.float32)  # MARK numpy
        return tf.reduce_sum(g * head)

    report = tb_gradflow.analyze(loss_fn, X)
    cut = _single_cut(report)
    assert cut.cause == "numpy_function"
    assert cut.op_type in ("PyFunc", "PyFuncStateless")
    assert cut.source == line_of(HERE, "MARK numpy")
    assert set(cut.starved_variables) == {"w", "b"}
    assert set(report.starved_variables) == {"w", "b"}
    assert report.variables["head"].state == "flowing"
    assert report.variables["w"].norm is None
    assert report.variables["head"].norm > 0
    assert report_states(report) == tape_states(loss_fn, [X], [w, b, head])


def test_py_function_is_differentiable_and_not_a_cut():
    w, b, head = _vars()

    def loss_fn(x):
        h = tf.matmul(x, w) + b
        g = tf.py_function(lambda a: tf.tanh(a), [h], tf.float32)
        return tf.reduce_sum(g * head)

    report = tb_gradflow.analyze(loss_fn, X)
    assert report.cut_points == ()
    assert report.starved_variables == []
    assert report_states(report) == tape_states(loss_fn, [X], [w, b, head])


def test_stop_gradient_is_reported_as_often_intended():
    w, b, head = _vars()

    def loss_fn(x):
        h = tf.stop_gradient(tf.matmul(x, w))  # MARK stop
        return tf.reduce_sum((h + b) * head)

    report = tb_gradflow.analyze(loss_fn, X)
    cut = _single_cut(report)
    assert (cut.cause, cut.op_type) == ("stop_gradient", "StopGradient")
    assert cut.source == line_of(HERE, "MARK stop")
    assert cut.starved_variables == ("w",)
    assert "intended" in cut.hint
    assert report_states(report) == tape_states(loss_fn, [X], [w, b, head])


def test_integer_cast():
    w, b, head = _vars()

    def loss_fn(x):
        bucket = tf.cast(tf.matmul(x, w) * 10.0, tf.int32)  # MARK cast
        return tf.reduce_sum(tf.cast(bucket, tf.float32) * head + b)

    report = tb_gradflow.analyze(loss_fn, X)
    cut = _single_cut(report)
    assert (cut.cause, cut.op_type) == ("integer_cast", "Cast")
    assert cut.source == line_of(HERE, "MARK cast")
    assert cut.starved_variables == ("w",)
    assert report_states(report) == tape_states(loss_fn, [X], [w, b, head])


@pytest.mark.parametrize(
    "op_type, make",
    [
        ("ArgMax", lambda h: tf.cast(tf.argmax(h, axis=1), tf.float32)),
        ("Round", lambda h: tf.round(h)),
        ("Floor", lambda h: tf.floor(h)),
        ("Equal", lambda h: tf.cast(tf.equal(h, 0.0), tf.float32)),
    ],
)
def test_registered_non_differentiable_ops(op_type, make):
    w, b, head = _vars()

    def loss_fn(x):
        h = tf.matmul(x, w)
        return tf.reduce_sum(make(h)) + tf.reduce_sum(b * head)

    report = tb_gradflow.analyze(loss_fn, X)
    cut = _single_cut(report)
    assert cut.cause == "non_differentiable"
    assert cut.op_type == op_type
    assert cut.starved_variables == ("w",)
    assert report_states(report) == tape_states(loss_fn, [X], [w, b, head])


@pytest.mark.parametrize("op", ["unique", "resize_area"])
def test_op_missing_from_the_registry_is_reported_not_raised(op):
    w, b, head = _vars()

    def loss_fn(x):
        h = tf.matmul(x, w)
        if op == "unique":
            g = tf.unique(tf.reshape(h, [-1]))[0]  # MARK unique
        else:
            g = tf.image.resize(tf.reshape(h, [1, 2, 4, 1]), [4, 8], method="area")  # MARK area
        return tf.reduce_sum(g) + tf.reduce_sum(b * head)

    # TensorFlow's own tape raises here; the probe must not.
    with pytest.raises(LookupError):
        tape_states(loss_fn, [X], [w, b, head])
    report = tb_gradflow.analyze(loss_fn, X)
    cut = _single_cut(report)
    assert cut.cause == "non_differentiable"
    assert cut.op_type == {"unique": "Unique", "resize_area": "ResizeArea"}[op]
    assert "no gradient is registered" in cut.detail
    assert cut.source == line_of(HERE, {"unique": "MARK unique", "resize_area": "MARK area"}[op])
    assert cut.starved_variables == ("w",)
    assert report.variables["b"].state == "flowing"


def test_custom_gradient_returning_none():
    w, b, head = _vars()

    @tf.custom_gradient
    def clipped(x):
        def grad(upstream):
            return None

        return tf.clip_by_value(x, -1.0, 1.0), grad

    def loss_fn(x):
        h = tf.matmul(x, w)
        return tf.reduce_sum(clipped(h) * head) + tf.reduce_sum(b)  # MARK custom

    report = tb_gradflow.analyze(loss_fn, X)
    cut = _single_cut(report)
    assert cut.cause == "custom_gradient"
    assert cut.source == line_of(HERE, "MARK custom")
    assert cut.starved_variables == ("w",)
    assert report_states(report) == tape_states(loss_fn, [X], [w, b, head])


def test_custom_gradient_that_returns_a_gradient_is_not_a_cut():
    w, b, head = _vars()

    @tf.custom_gradient
    def straight_through_round(x):
        def grad(upstream):
            return upstream

        return tf.round(x), grad

    def loss_fn(x):
        return tf.reduce_sum(straight_through_round(tf.matmul(x, w)) * head + b)

    report = tb_gradflow.analyze(loss_fn, X)
    assert [c.cause for c in report.cut_points] == []
    assert report_states(report) == tape_states(loss_fn, [X], [w, b, head])


def test_report_text_is_actionable():
    w, b, head = _vars()

    def loss_fn(x):
        g = tf.numpy_function(lambda a: a * 2, [tf.matmul(x, w)], tf.float32)
        return tf.reduce_sum(g * head) + tf.reduce_sum(b)

    text = str(tb_gradflow.analyze(loss_fn, X))
    assert "numpy_function" in text
    assert "test_capture_causes.py:" in text
    assert "starves: w" in text
    assert "hint:" in text and "tf.gather" in text
