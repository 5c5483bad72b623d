"""model.fit of a tf_keras (Keras 2) model with GradFlowCallback; run with TF_USE_LEGACY_KERAS=1.

Separate process: TensorFlow picks tf.keras' Keras at import. Prints, as JSON, what a plain
GradientTape says of each variable on the probe batch, the training history and the callback's
base class, for the test to compare with what it reads back from the logdir.
"""
import json
import sys

import numpy as np
import tensorflow as tf

import tb_gradflow.keras

keras = tf.keras
logdir, kind = sys.argv[1], sys.argv[2]


class Quantized(keras.Model):
    """Rounds its hidden layer through numpy: the first layer never learns."""

    def __init__(self):
        super().__init__(name="quantized")
        self.first = keras.layers.Dense(8, name="first")
        self.second = keras.layers.Dense(1, name="second")

    def call(self, x, training=False):
        h = self.first(x)
        q = tf.numpy_function(lambda a: np.round(a).astype(np.float32), [h], tf.float32)  # MARK legacy quantize
        return self.second(tf.ensure_shape(q, h.shape))


rng = np.random.default_rng(0)
x = rng.normal(size=(64, 4)).astype("float32")
y = rng.normal(size=(64, 1)).astype("float32")
if kind == "quantized":
    model = Quantized()
else:
    model = keras.Sequential([keras.layers.Dense(8, activation="tanh", input_shape=(4,), name="hidden"),
                              keras.layers.BatchNormalization(name="norm"), keras.layers.Dense(1, name="out")])
model.compile(optimizer="adam", loss="mse")
probe = (tf.constant(x[:8]), tf.constant(y[:8]))
model(probe[0])
with tf.GradientTape() as tape:
    loss = model.compute_loss(x=probe[0], y=probe[1], y_pred=model(probe[0], training=True))
grads = tape.gradient(loss, model.trainable_variables)
# The report names a variable by its layer path from the model; tf_keras' own name leaves the
# model out for a Sequential's layers (`hidden/kernel:0`), not for a subclassed model's.
shown = [v.name[:-2] if v.name.startswith(model.name + "/") else f"{model.name}/{v.name[:-2]}"
         for v in model.trainable_variables]
tape_states = {name: ("none" if g is None else "flowing") for name, g in zip(shown, grads, strict=False)}
callbacks = [tb_gradflow.keras.GradFlowCallback(logdir, probe, every_n_steps=1, strict=True)]
history = model.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=callbacks)
print(json.dumps({
    "tape": tape_states,
    "epochs": len(history.history["loss"]),
    "base": type(callbacks[0]).__mro__[1].__module__,
}))
