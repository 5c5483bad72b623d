"""A logdir run with a SimpleRNN whose gradient vanishes through its 30 time steps (a recurrent
kernel of gain 0.05): what the loop chart of the tab shows (issue 17)."""

from __future__ import annotations

import tensorflow as tf

import tb_gradflow

LOOP_STEPS = (0, 10)
TIME_STEPS = 30


def write_vanishing_rnn_run(logdir: str, run: str = "loop") -> tb_gradflow.report.Report:
    """Writes LOGDIR/RUN (tag "gradflow") and returns `analyze()`'s report of the same loss."""
    import keras

    keras.utils.set_random_seed(2)
    layer = keras.layers.SimpleRNN(
        4, recurrent_initializer=keras.initializers.Orthogonal(gain=0.05), name="rnn"
    )
    model = keras.Sequential(
        [keras.Input((TIME_STEPS, 3)), layer, keras.layers.Dense(1, name="head")]
    )
    x = tf.random.normal([2, TIME_STEPS, 3], seed=3)

    def loss_fn(x):
        return tf.reduce_sum(model(x) ** 2)

    writer = tf.summary.create_file_writer(f"{logdir}/{run}")
    with writer.as_default():
        for step in LOOP_STEPS:
            tb_gradflow.summary.gradflow("gradflow", loss_fn, x, step=step, strict=True)
    writer.close()
    return tb_gradflow.analyze(loss_fn, x)
