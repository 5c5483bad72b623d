"""numpy_function hidden in a nested tf.function, a tf.while_loop body and a tf.cond branch."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

import tb_gradflow
from support.oracle import line_of, report_states, tape_states

HERE = __file__
X = tf.constant([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])


def _double(a):
    return (a * 2).astype(np.float32)


def test_numpy_function_inside_nested_tf_function():
    w = tf.Variable(tf.ones([3, 2]), name="w")
    b = tf.Variable(tf.ones([2]), name="b")

    @tf.function
    def inner_block(h):
        g = tf.numpy_function(_double, [h], tf.float32)  # MARK nested
        return tf.ensure_shape(g, [None, 2])

    @tf.function
    def outer_block(h):
        return inner_block(h) + 1.0

    def loss_fn(x):
        return tf.reduce_sum(outer_block(tf.matmul(x, w))) + tf.reduce_sum(b)

    report = tb_gradflow.analyze(loss_fn, X)
    assert len(report.cut_points) == 1
    cut = report.cut_points[0]
    assert cut.cause == "numpy_function"
    assert cut.op_name.endswith("/inner_block/PyFunc")
    assert "/outer_block/" in cut.op_name
    assert cut.source == line_of(HERE, "MARK nested")
    assert cut.starved_variables == ("w",)
    assert report_states(report) == tape_states(loss_fn, [X], [w, b])
    inner_ops = [op for op in report.ops if "/inner_block/" in op.name]
    assert inner_ops and all(not op.measured for op in inner_ops)


def test_numpy_function_inside_while_loop_body():
    w = tf.Variable(tf.ones([3, 2]), name="w")
    scale = tf.Variable(0.5, name="scale")

    def loss_fn(x):
        h = tf.matmul(x, w)

        def body(i, acc):
            step = tf.numpy_function(_double, [acc * scale], tf.float32)  # MARK loop
            return i + 1, tf.ensure_shape(step, [2, 2])

        _, out = tf.while_loop(lambda i, acc: i < 3, body, [tf.constant(0), h])
        return tf.reduce_sum(out)

    # Traced into a graph, the loop is a While op with its body opened up.
    report = tb_gradflow.analyze(tf.function(loss_fn), X)
    assert len(report.cut_points) == 1
    cut = report.cut_points[0]
    assert cut.cause == "numpy_function"
    assert cut.op_name.endswith("while/body/PyFunc")
    assert cut.source == line_of(HERE, "MARK loop")
    assert set(cut.starved_variables) == {"w", "scale"}
    assert report_states(report) == tape_states(loss_fn, [X], [w, scale])


def test_autograph_loop_is_opened_up():
    w = tf.Variable(tf.ones([3, 2]), name="w")

    def loss_fn(x):
        h = tf.matmul(x, w)
        for _ in tf.range(2):  # autograph turns this into a While op
            h = tf.ensure_shape(tf.numpy_function(_double, [h], tf.float32), [2, 2])  # MARK autograph
        return tf.reduce_sum(h)

    report = tb_gradflow.analyze(loss_fn, X)
    assert [c.cause for c in report.cut_points] == ["numpy_function"]
    assert "/body/" in report.cut_points[0].op_name
    assert report.cut_points[0].source == line_of(HERE, "MARK autograph")
    assert report.cut_points[0].starved_variables == ("w",)


def test_numpy_function_inside_cond_branch():
    w = tf.Variable(tf.ones([3, 2]), name="w")
    b = tf.Variable(tf.ones([2]), name="b")

    def loss_fn(x):
        h = tf.matmul(x, w)

        def then_branch():
            return tf.ensure_shape(tf.numpy_function(_double, [h], tf.float32), [2, 2])  # MARK cond

        out = tf.cond(tf.reduce_sum(x) > 0, then_branch, lambda: tf.zeros([2, 2]))
        return tf.reduce_sum(out) + tf.reduce_sum(b)

    report = tb_gradflow.analyze(tf.function(loss_fn), X)
    assert len(report.cut_points) == 1
    cut = report.cut_points[0]
    assert cut.op_name.endswith("cond/then/PyFunc")
    assert cut.source == line_of(HERE, "MARK cond")
    assert cut.starved_variables == ("w",)
    assert report_states(report) == tape_states(loss_fn, [X], [w, b])


def test_nested_function_shared_with_a_training_step_is_still_opened():
    """A backward function TensorFlow already cached for the inner function must not hide it."""
    w = tf.Variable(tf.ones([3, 2]), name="w")

    @tf.function
    def shared(h):
        return tf.ensure_shape(tf.numpy_function(_double, [h], tf.float32), [2, 2])

    def loss_fn(x):
        return tf.reduce_sum(shared(tf.matmul(x, w)))

    @tf.function
    def train_step(x):
        with tf.GradientTape() as tape:
            loss = loss_fn(x)
        return tape.gradient(loss, w) is None

    train_step(X)
    report = tb_gradflow.analyze(loss_fn, X)
    assert [c.cause for c in report.cut_points] == ["numpy_function"]
    assert report.cut_points[0].starved_variables == ("w",)


def test_keras_lstm_loop_carries_the_gradient_through_tensor_lists():
    """Keras' RNN loop accumulates into TensorLists (variant tensors); the gradient passes."""
    import keras

    model = keras.Sequential([keras.Input((5,), dtype="int32"), keras.layers.Embedding(20, 4, name="emb"),
                              keras.layers.LSTM(3, name="lstm"), keras.layers.Dense(1, name="out")])
    tokens = tf.constant(np.arange(10).reshape(2, 5) % 20, tf.int32)

    def loss_fn(x):
        return tf.reduce_sum(model(x, training=True) ** 2)

    report = tb_gradflow.analyze(loss_fn, tokens, variables=model.trainable_variables)
    assert report.starved_variables == []
    assert report_states(report) == tape_states(loss_fn, [tokens], model.trainable_variables)
    assert any("/body/" in op.name for op in report.ops)


def test_numpy_function_inside_a_tensor_array_loop():
    w = tf.Variable(tf.ones([3]), name="w")
    v = tf.Variable(2.0, name="v")

    def loss_fn(x):
        out = tf.TensorArray(tf.float32, size=3)
        for i in tf.range(3):
            cut = tf.ensure_shape(tf.numpy_function(_double, [x[i] * w], tf.float32), [3])  # MARK array
            out = out.write(i, cut + v * x[i])
        return tf.reduce_sum(out.stack())

    x = tf.ones([3, 3])
    report = tb_gradflow.analyze(loss_fn, x)
    assert [c.cause for c in report.cut_points] == ["numpy_function"]
    assert report.cut_points[0].source == line_of(HERE, "MARK array")
    assert report.cut_points[0].starved_variables == ("w",)
    assert report.variables["v"].state == "flowing"
    assert report_states(report) == tape_states(loss_fn, [x], [w, v])
