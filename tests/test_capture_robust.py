"""No crash, no silence: py_function, models hidden in numpy functions, untraceable losses, CLI."""
from __future__ import annotations

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import tb_gradflow
from support.oracle import line_of, report_states, tape_states
from tb_gradflow import cli

HERE = __file__


def _numpy_tanh(a):
    return np.tanh(a.numpy())


def test_py_function_around_numpy_code_gets_a_rank_0_zero_and_does_not_crash():
    w = tf.Variable(tf.ones([3, 2]), name="w")
    b = tf.Variable(tf.ones([2]), name="b")
    x = tf.ones([3, 2])

    def loss_fn(x):
        h = tf.py_function(_numpy_tanh, [w], tf.float32) * x  # TF hands back a rank-0 zero for w
        return tf.reduce_sum(h) + tf.reduce_sum(b * x)

    report = tb_gradflow.analyze(loss_fn, x)

    assert report_states(report) == tape_states(loss_fn, [x], [w, b]) == {"w": "zero", "b": "flowing"}


class PolicyAgent:
    """An RL step whose logits come out of a numpy function that calls the policy eagerly."""

    def __init__(self):
        keras.utils.set_random_seed(0)
        self.policy = keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(8, name="hidden"), keras.layers.Dense(2, name="logits")],
            name="policy",
        )
        self.value = keras.layers.Dense(1, name="value")
        self.value.build((None, 4))
        self.observations = np.ones([5, 4], np.float32)

    def np_step(self):
        return self.policy(self.observations).numpy()

    def loss(self, x):
        logits = tf.numpy_function(self.np_step, [], tf.float32)  # MARK hidden model
        logits = tf.ensure_shape(logits, [5, 2])
        return -tf.reduce_mean(tf.nn.log_softmax(logits)) + tf.reduce_mean(self.value(x))


def test_model_called_inside_a_numpy_function_with_no_inputs_is_named_as_the_cut():
    agent = PolicyAgent()
    x = tf.ones([5, 4])

    report = tb_gradflow.analyze(agent.loss, x)

    variables = agent.policy.trainable_variables + agent.value.trainable_variables
    assert report_states(report) == tape_states(agent.loss, [x], variables)
    policy = tuple(v.path for v in agent.policy.trainable_variables)
    assert tuple(report.starved_variables) == policy
    [cut] = report.starving_cut_points
    assert (cut.op_type, cut.cause) == ("PyFunc", "numpy_function")
    assert cut.source == line_of(HERE, "MARK hidden model")
    assert cut.starved_variables == policy
    assert len(report.ops) > 0


def test_eager_fallback_keeps_the_useful_line_and_names_the_op():
    w = tf.Variable(tf.ones([3]), name="w")
    b = tf.Variable(tf.ones([3]), name="b")
    x = tf.constant([1.0, 2.0, 3.0])

    def loss_fn(x):
        scale = float(tf.reduce_sum(b * x).numpy())  # MARK numpy
        index = tf.cast(tf.argmax(w * x), tf.float32)  # MARK argmax
        return tf.reduce_sum(b * x) * scale + index

    report = tb_gradflow.analyze(loss_fn, x)

    assert report_states(report) == tape_states(loss_fn, [x], [w, b]) == {"w": "none", "b": "flowing"}
    assert "'SymbolicTensor' object has no attribute 'numpy'" in report.fallback_reason
    assert report.fallback_reason.endswith(f"at {line_of(HERE, 'MARK numpy')})")
    [cut] = report.starving_cut_points
    assert (cut.op_type, cut.cause, cut.starved_variables) == ("ArgMax", "non_differentiable", ("w",))
    assert cut.source == line_of(HERE, "MARK argmax")


def test_report_exits_1_when_a_variable_starves_without_a_named_cut(tmp_path, capsys):
    w = tf.Variable(tf.ones([3]), name="w")
    unused = tf.Variable(tf.ones([3]), name="unused")

    def loss_fn(x):
        return tf.reduce_sum(w * x)

    writer = tf.summary.create_file_writer(os.path.join(str(tmp_path), "run"))
    with writer.as_default():
        tb_gradflow.summary.gradflow("gradflow", loss_fn, tf.ones([3]), variables=[w, unused], step=0, strict=True)
    writer.flush()

    assert cli.main(["report", str(tmp_path)]) == 1
    assert "unused" in capsys.readouterr().out


def test_eager_fallback_blames_the_cut_not_the_layer_norms_behind_it():
    from support.models import transformer_lm

    model, lm_loss, tokens = transformer_lm(n_blocks=2)

    def loss_fn(t):
        if float(lm_loss(t).numpy()) < 0:  # untraceable: the loss reads a value on the host
            return lm_loss(t)
        logits = tf.reshape(model(t[:, :-1]), [-1])
        return tf.cast(tf.argmax(logits), tf.float32)  # MARK eager argmax

    report = tb_gradflow.analyze(loss_fn, tokens)

    variables = model.trainable_variables
    assert report.fallback_reason
    assert report_states(report) == tape_states(loss_fn, [tokens], variables)
    assert set(report_states(report).values()) == {"none"}
    [cut] = report.cut_points
    assert (cut.op_type, cut.source) == ("ArgMax", line_of(HERE, "MARK eager argmax"))
    assert cut.starved_variables == tuple(v.path for v in variables)


def test_analyze_leaves_the_users_tf_function_as_it_was():
    """The probe converts the user's Python code with autograph; converting a `tf.function`
    itself would rewrap it in place and leave the user holding our converted function."""
    w = tf.Variable(2.0, name="w")

    def loss(x):
        return w * x * x

    fn = tf.function(loss, autograph=False)
    report = tb_gradflow.analyze(fn, tf.constant(3.0))
    assert fn.__wrapped__ is loss and fn.python_function is loss
    assert report_states(report) == tape_states(fn, [tf.constant(3.0)], [w]) == {"w": "flowing"}
    assert report.variables["w"].norm == pytest.approx(9.0)


def test_eager_fallback_tells_a_keras_layers_message_not_its_arguments():
    """Keras ends a layer's error with the call's arguments ("• kwargs=..."): the reason is the
    message before them (a numpy_function's output of unknown shape feeding a Dense)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(4),
        keras.layers.Lambda(lambda t: tf.numpy_function(lambda a: a, [t], tf.float32)),
        keras.layers.Dense(1),
    ])
    x = tf.random.stateless_normal([4, 4], seed=[0, 1])
    model(x)

    def loss_fn(x):
        return tf.reduce_mean(model(x))

    report = tb_gradflow.analyze(loss_fn, x, variables=model.trainable_variables)

    assert report_states(report) == tape_states(loss_fn, [x], model.trainable_variables)
    assert "as_list() is not defined on an unknown TensorShape" in report.fallback_reason
    assert "kwargs" not in report.fallback_reason and "\x1b" not in report.fallback_reason
