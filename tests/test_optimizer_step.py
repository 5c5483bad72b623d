"""`summary.gradflow(..., optimizer=)` takes exactly the optimizer's own documented step.

Each test trains two fresh copies of one model (same initial weights): one with N logging calls,
one with N plain steps of the same kind of optimizer (`scale_loss`, tape, `apply_gradients`), and
compares the weights. Reported gradients are checked against a plain `tf.GradientTape`.
"""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import tb_gradflow

STEPS = 4


def _model(seed: int = 0, aux: bool = False) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="tanh", name="hidden")(inputs)
    main = keras.layers.Dense(1, name="main")(hidden)
    outputs = [main, keras.layers.Dense(1, name="aux")(hidden)] if aux else main
    return keras.Model(inputs, outputs, name="net")


def _data():
    rng = np.random.default_rng(1)
    return tf.constant(rng.normal(size=(16, 6)), tf.float32), tf.constant(rng.normal(size=(16, 1)), tf.float32)


def _loss_fn(model):
    def loss_fn(x, y):
        pred = tf.cast(model(x, training=True), tf.float32)
        return tf.reduce_mean(tf.square(pred - y))

    return loss_fn


def _plain_step(model, optimizer, loss_fn, *args):
    with tf.GradientTape() as tape:
        loss = loss_fn(*args)
        scaled = optimizer.scale_loss(loss)
    grads = tape.gradient(scaled, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=False))


OPTIMIZERS = {
    "sgd": lambda: keras.optimizers.SGD(learning_rate=0.1, momentum=0.9),
    "adam": lambda: keras.optimizers.Adam(learning_rate=0.01),
    "adam_loss_scaled": lambda: keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(learning_rate=0.01)),
}


@pytest.fixture
def policy(request):
    keras.mixed_precision.set_global_policy(request.param)
    try:
        yield request.param
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize(
    "kind,policy",
    [("sgd", "float32"), ("adam", "float32"), ("adam_loss_scaled", "mixed_float16")],
    indirect=["policy"],
)
def test_logged_steps_train_exactly_like_plain_steps(kind, policy):
    x, y = _data()
    logged, plain = _model(), _model()
    initial = [v.numpy().copy() for v in logged.trainable_variables]
    for a, b in zip(logged.weights, plain.weights, strict=False):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    logged_opt, plain_opt = OPTIMIZERS[kind](), OPTIMIZERS[kind]()
    logged_loss, plain_loss = _loss_fn(logged), _loss_fn(plain)
    for step in range(STEPS):
        # What the report says is the true gradient, from a plain tape before the step.
        with tf.GradientTape() as tape:
            loss = logged_loss(x, y)
        expected = tape.gradient(loss, [v.value for v in logged.trainable_variables])
        report = tb_gradflow.summary.gradflow(
            "flow", logged_loss, x, y, step=step, optimizer=logged_opt,
            variables=logged.trainable_variables, strict=True,
        )
        for v, g in zip(logged.trainable_variables, expected, strict=False):
            record = report.variables[v.path]
            assert record.state == "flowing"
            np.testing.assert_allclose(record.norm, float(tf.norm(tf.cast(g, tf.float32))), rtol=2e-3)
        _plain_step(plain, plain_opt, plain_loss, x, y)
    assert int(logged_opt.iterations.numpy()) == int(plain_opt.iterations.numpy()) == STEPS
    for a, b, start in zip(logged.trainable_variables, plain.trainable_variables, initial, strict=False):
        assert np.abs(a.numpy() - start).max() > 1e-3  # it trained
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    if kind == "adam_loss_scaled":
        assert float(logged_opt.dynamic_scale.numpy()) == float(plain_opt.dynamic_scale.numpy())


def test_a_variable_whose_gradient_appears_later_keeps_training():
    """An auxiliary loss switched on after a few steps: the optimizer knows its head already."""
    x, y = _data()
    logged, plain = _model(aux=True), _model(aux=True)
    logged_opt, plain_opt = keras.optimizers.Adam(0.01), keras.optimizers.Adam(0.01)

    def make_loss(model):
        def loss_fn(x, y, use_aux):
            main, aux = model(x, training=True)
            loss = tf.reduce_mean(tf.square(main - y))
            return loss + tf.reduce_mean(tf.square(aux - y)) if use_aux else loss

        return loss_fn

    logged_loss, plain_loss = make_loss(logged), make_loss(plain)
    for step in range(STEPS + 2):
        use_aux = step >= 2
        report = tb_gradflow.summary.gradflow(
            "flow", logged_loss, x, y, use_aux, step=step, optimizer=logged_opt,
            variables=logged.trainable_variables, strict=True,
        )
        assert report.variables["aux/kernel"].state == ("flowing" if use_aux else "none")
        _plain_step(plain, plain_opt, plain_loss, x, y, use_aux)
    for a, b in zip(logged.trainable_variables, plain.trainable_variables, strict=False):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("policy", ["mixed_float16"], indirect=True)
def test_float16_underflow_is_named_and_loss_scaling_reports_the_true_gradient(policy):
    x, _ = _data()
    model = _model()
    kernel = model.get_layer("main").kernel

    def tiny_loss(x):
        # float16 all the way: the output's gradient (1e-8) is below float16's smallest value.
        small = tf.constant(1e-4, tf.float16)
        return tf.reduce_sum(model(x, training=True) * small * small)

    plain = tb_gradflow.summary.gradflow("flow", tiny_loss, x, step=0, variables=model.trainable_variables,
                                         strict=True)
    assert plain.variables["main/kernel"].state == "zero"
    assert "float16 underflow?" in str(plain) and "LossScaleOptimizer" in str(plain)

    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(learning_rate=0.0))
    scaled = tb_gradflow.summary.gradflow("flow", tiny_loss, x, step=0, optimizer=optimizer,
                                          variables=model.trainable_variables, strict=True)
    with tf.GradientTape() as tape:
        loss = tf.cast(tiny_loss(x), tf.float32) * 32768.0
    true_norm = float(tf.norm(tf.cast(tape.gradient(loss, kernel.value), tf.float32))) / 32768.0
    assert scaled.variables["main/kernel"].state == "flowing"
    np.testing.assert_allclose(scaled.variables["main/kernel"].norm, true_norm, rtol=1e-2)
    assert 1e-10 < true_norm < 1e-6
