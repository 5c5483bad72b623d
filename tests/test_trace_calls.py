"""tf_internals.TraceCalls: a logged call goes straight to its trace only when tf.function would
pick that same trace, and then computes exactly what tf.function's own call does."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import tb_gradflow
from support.oracle import report_states, tape_states
from tb_gradflow.capture.analyze import probe_for
from tb_gradflow.capture.tf_internals import TraceCalls


def _scaled():
    scale = tf.Variable(2.0)
    function = tf.function(lambda x: x * scale)
    return scale, function, TraceCalls(function, accept=lambda concrete: True)


def test_a_repeated_call_goes_to_its_trace_and_reads_captured_variables_afresh():
    scale, function, calls = _scaled()
    x = tf.constant([1.0, 2.0])
    np.testing.assert_allclose(calls(x).numpy(), [2.0, 4.0])
    assert len(calls._traces) == 1  # pylint: disable=protected-access
    scale.assign(3.0)
    np.testing.assert_allclose(calls(x).numpy(), [3.0, 6.0])
    np.testing.assert_allclose(calls(tf.constant([5.0, 1.0])).numpy(), [15.0, 3.0])
    assert function.experimental_get_tracing_count() == 1


def test_each_shape_and_dtype_gets_its_own_trace():
    _, function, calls = _scaled()
    calls(tf.constant([1.0, 2.0]))
    np.testing.assert_allclose(calls(tf.constant([1.0, 2.0, 3.0])).numpy(), [2.0, 4.0, 6.0])
    np.testing.assert_allclose(calls(tf.constant([1.0, 2.0])).numpy(), [2.0, 4.0])
    assert function.experimental_get_tracing_count() == 2
    assert len(calls._traces) == 2  # pylint: disable=protected-access
    with pytest.raises(Exception):  # noqa: B017 - whatever tf.function raises for a float64 times a float32
        calls(tf.constant([1.0], tf.float64))


@pytest.mark.parametrize("call", [
    lambda calls: calls(np.array([1.0, 2.0], np.float32)),  # not an eager tensor
    lambda calls: calls(x=tf.constant([1.0, 2.0])),  # a keyword
])
def test_other_arguments_go_through_tf_function(call):
    _, _, calls = _scaled()
    np.testing.assert_allclose(call(calls).numpy(), [2.0, 4.0])
    np.testing.assert_allclose(call(calls).numpy(), [2.0, 4.0])
    assert not calls._traces  # pylint: disable=protected-access


def test_a_trace_the_caller_does_not_accept_is_never_called_directly():
    scale = tf.Variable(2.0)
    function = tf.function(lambda x: x * scale)
    calls = TraceCalls(function, accept=lambda concrete: False)
    for _ in range(2):
        np.testing.assert_allclose(calls(tf.constant([1.0])).numpy(), [2.0])
    assert not calls._traces  # pylint: disable=protected-access


def test_under_a_distribution_strategy_or_run_eagerly_tf_function_decides():
    _, _, calls = _scaled()
    x = tf.constant([1.0, 2.0])
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        calls(x)
        calls(x)
    assert not calls._traces  # pylint: disable=protected-access
    tf.config.run_functions_eagerly(True)
    try:
        calls(x)
        calls(x)
    finally:
        tf.config.run_functions_eagerly(False)
    assert not calls._traces  # pylint: disable=protected-access


def _keras_training():
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((6, 4)), keras.layers.LSTM(5), keras.layers.Dense(3)])
    x = tf.random.stateless_normal([8, 6, 4], seed=[1, 2])
    y = tf.constant([0, 1, 2, 0, 1, 2, 0, 1])
    loss_object = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def loss_fn(x, y):
        return loss_object(y, model(x, training=True))

    return model, loss_fn, x, y


def test_logged_training_steps_equal_with_and_without_the_direct_call(tmp_path):
    """Two identical models trained by logged calls, one through tf.function's own dispatch
    (its calls take a keyword): the same reports and the same weights, step by step."""
    reports = []
    weights = []
    for keyword in (False, True):
        model, loss_fn, x, y = _keras_training()
        optimizer = keras.optimizers.SGD(0.5)
        steps = []
        for step in range(3):
            kwargs = {"y": y} if keyword else {}
            args = (x,) if keyword else (x, y)
            report = tb_gradflow.summary.gradflow(
                "flow", loss_fn, *args, step=step, optimizer=optimizer, variables=model.trainable_variables,
                strict=True, **kwargs,
            )
            steps.append([(o.name, o.state, o.norm, o.presence) for o in report.ops])
        probe = probe_for(loss_fn, model.trainable_variables, optimizer)
        assert bool(probe._calls._traces) is not keyword  # pylint: disable=protected-access
        reports.append(steps)
        weights.append([v.numpy() for v in model.trainable_variables])
        assert report_states(report) == tape_states(loss_fn, (x, y), model.trainable_variables)
    for a, b in zip(reports[0], reports[1], strict=True):
        # The same ops in the same order (an input placeholder is named by its argument's name).
        assert [r[1] for r in a] == [r[1] for r in b]
        for column in (2, 3):
            np.testing.assert_allclose(
                [np.nan if r[column] is None else r[column] for r in a],
                [np.nan if r[column] is None else r[column] for r in b], rtol=1e-5,
            )
    for a, b in zip(weights[0], weights[1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
