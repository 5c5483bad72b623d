"""Run under MirroredStrategy on two logical CPUs: model.fit with the callback, then
summary.gradflow in a custom loop. Separate process: logical devices must be set before
TensorFlow initialises."""
import os
import sys

import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

import tb_gradflow  # noqa: E402

logdir = sys.argv[1]
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 4)).astype("float32")
y = rng.normal(size=(64, 1)).astype("float32")
with strategy.scope():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh", name="hidden"),
                              keras.layers.Dense(1, name="out")])
    model.compile(optimizer="sgd", loss="mse")
model.fit(x, y, batch_size=16, epochs=1, verbose=0,
          callbacks=[tb_gradflow.keras.GradFlowCallback(logdir, (x[:8], y[:8]), every_n_steps=1, strict=True)])

with strategy.scope():
    scale = tf.Variable(1.0, name="scale")
    optimizer = keras.optimizers.SGD(0.1)
writer = tf.summary.create_file_writer(os.path.join(logdir, "loop"))


def loss_fn(batch):
    return tf.reduce_mean(tf.square(model(batch) * scale))


with writer.as_default(), strategy.scope():
    for step in range(3):
        pred, s = model(tf.constant(x[:8])).numpy(), scale.numpy()
        expected = s - 0.1 * np.mean(2.0 * pred**2 * s)  # d/ds mean((pred*s)^2), one SGD step
        report = tb_gradflow.summary.gradflow("gradflow", loss_fn, tf.constant(x[:8]), step=step,
                                              optimizer=optimizer, strict=True)
        assert report.starved_variables == [], report
        # Applied once, not once per replica.
        assert np.isclose(scale.numpy(), expected, rtol=1e-5), (scale.numpy(), expected)
writer.flush()

# Inside strategy.run (replica context) in a tf.function, as a custom distributed step is written:
# the chief replica probes and writes, the other takes the plain step; the update is the same.
with strategy.scope():
    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    logged_optimizer, plain_optimizer = keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1)
replica_writer = tf.summary.create_file_writer(os.path.join(logdir, "replicas"))
batches = strategy.experimental_distribute_values_from_function(
    lambda ctx: tf.constant(x[8 * ctx.replica_id_in_sync_group: 8 * ctx.replica_id_in_sync_group + 8]))


def logged_loss(batch):
    return tf.reduce_mean(tf.square(model(batch)))


def plain_loss(batch):
    return tf.reduce_mean(tf.square(twin(batch)))


@tf.function
def logged_step(batches):
    def step(batch):
        tb_gradflow.summary.gradflow("gradflow", logged_loss, batch, step=logged_optimizer.iterations,
                                     optimizer=logged_optimizer, strict=True)

    strategy.run(step, args=(batches,))


@tf.function
def plain_step(batches):
    def step(batch):
        with tf.GradientTape() as tape:
            loss = plain_loss(batch)
        grads = tape.gradient(loss, twin.trainable_variables)
        plain_optimizer.apply_gradients(zip(grads, twin.trainable_variables, strict=False))

    strategy.run(step, args=(batches,))


with replica_writer.as_default():
    for _ in range(2):
        logged_step(batches)
        plain_step(batches)
replica_writer.flush()
for a, b in zip(model.trainable_variables, twin.trainable_variables, strict=False):
    assert np.allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6), (a.path, a.numpy(), b.numpy())
assert int(logged_optimizer.iterations.numpy()) == 2
print("OK")
