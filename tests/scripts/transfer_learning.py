"""Writes a logdir of the keras.io transfer-learning guide's shape: a frozen base, then a new head.

The base (`base`: Dense, BatchNormalization, Dense) is frozen with `base.trainable = False`, the
classifier trained with `model.fit` and `GradFlowCallback` logging every batch. The report covers
the head's 2 variables and lists the base's 6 apart as frozen; tests/test_browser_frozen.py
checks that the tab and the HTML export show them.

Usage: python tests/scripts/transfer_learning.py LOGDIR
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tb_gradflow.keras import GradFlowCallback  # noqa: E402


def transfer_model(seed: int = 0) -> keras.Model:
    """A frozen 3-layer base under a trainable Dense head named `head`."""
    keras.utils.set_random_seed(seed)
    base = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(5, activation="relu", name="conv"),
         keras.layers.BatchNormalization(name="bn"), keras.layers.Dense(4, name="proj")],
        name="base",
    )
    base.trainable = False
    inputs = keras.Input((6,))
    outputs = keras.layers.Dense(3, name="head")(base(inputs, training=False))
    return keras.Model(inputs, outputs, name="classifier")


def write(logdir: str, batches: int = 4) -> None:
    """Trains one epoch of `batches` batches, logging each into `logdir`."""
    model = transfer_model()
    model.compile(optimizer="adam", loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8 * batches, 6)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 8 * batches)]
    model.fit(x, y, batch_size=8, epochs=1, verbose=0,
              callbacks=[GradFlowCallback(logdir, (x[:8], y[:8]), every_n_steps=1)])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir")
    write(parser.parse_args().logdir)
