"""The seed article's three examples, rewritten in their spirit, with what really happens."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

import tb_gradflow
from support.oracle import report_states, tape_states

IMAGE = tf.random.stateless_uniform([1, 8, 8, 3], seed=[5, 6])


def _scale_by_lookup(image: np.ndarray, table: np.ndarray) -> np.ndarray:
    level = int(image[0, 0, 0, 0] * 255)
    return (image * table[level]).astype(np.float32)


def test_lookup_inside_numpy_function_starves_the_table():
    table = tf.Variable(tf.random.stateless_normal([256], seed=[1, 1]), name="lookup_table")

    def loss_fn(image):
        out = tf.numpy_function(_scale_by_lookup, [image, table], tf.float32)
        return tf.reduce_sum(out)

    report = tb_gradflow.analyze(loss_fn, IMAGE)
    assert report.variables["lookup_table"].state == "none"
    assert [c.cause for c in report.cut_points] == ["numpy_function"]
    assert report.cut_points[0].starved_variables == ("lookup_table",)
    assert report_states(report) == tape_states(loss_fn, [IMAGE], [table])


def test_lookup_with_gather_lets_the_gradient_through():
    table = tf.Variable(tf.random.stateless_normal([256], seed=[1, 1]), name="lookup_table")

    def loss_fn(image):
        level = tf.cast(image[..., :1] * 255.0, tf.int32)
        gains = tf.gather(table, tf.reshape(level, [-1]))
        return tf.reduce_sum(image * tf.reshape(gains, [1, 8, 8, 1]))

    report = tb_gradflow.analyze(loss_fn, IMAGE)
    assert report.variables["lookup_table"].state == "flowing"
    assert report.starved_variables == []
    # The index cast blocks, but the table still gets its gradient through the gather.
    assert [(c.cause, c.starved_variables) for c in report.cut_points] in ([], [("integer_cast", ())])
    assert report_states(report) == tape_states(loss_fn, [IMAGE], [table])


def test_encoder_before_numpy_function_gets_no_gradient_either():
    """The article claims the encoder still learns; the gradient says otherwise."""
    encoder = keras.layers.Dense(16, name="encoder")
    scale = tf.Variable(2.0, name="scale")
    features = tf.random.stateless_normal([1, 8], seed=[2, 3])
    encoder.build((None, 8))

    def loss_fn(x):
        hidden = encoder(x)
        scaled = tf.numpy_function(lambda h, s: (h * s).astype(np.float32), [hidden, scale], tf.float32)
        return tf.reduce_sum(scaled)

    variables = encoder.trainable_variables + [scale]
    report = tb_gradflow.analyze(loss_fn, features, variables=variables)
    assert set(report.starved_variables) == {"encoder/kernel", "encoder/bias", "scale"}
    assert set(report.cut_points[0].starved_variables) == {"encoder/kernel", "encoder/bias", "scale"}
    assert report_states(report) == tape_states(loss_fn, [features], variables)
