"""Writes the large-model logdir of the browser tests and the frontend benchmark:
`resnet50` (Keras' ResNet50, ~1,400 ops) and `transformer64` (a 64-block subclassed Transformer
LM, ~5,000 ops) with a tf.numpy_function in block 32, so that blocks 0-31 and the embedding
starve: a cut point and a starved region to find from the overview.

Usage: python tests/scripts/write_large_logdirs.py LOGDIR [--steps N]
Real models from tests/support/models.py, logged with real `summary.gradflow` calls; an optimizer
step between logged steps, so the norms change.
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tb_gradflow  # noqa: E402
from support.models import resnet50, transformer_lm  # noqa: E402

CUT_BLOCK = 32


def _identity_through_numpy(x: tf.Tensor) -> tf.Tensor:
    """An identity that autodiff cannot see through: what a user's numpy helper does."""
    y = tf.numpy_function(lambda a: np.asarray(a), [x], x.dtype)
    y.set_shape(x.shape)
    return y


def _cut_block(model: keras.Model, index: int) -> None:
    block = model.blocks[index]
    call = block.call
    block.call = lambda x: _identity_through_numpy(call(x))


def _log(run_dir: str, loss_fn, args: tuple, variables, steps: int) -> None:
    optimizer = keras.optimizers.SGD(0.01)
    writer = tf.summary.create_file_writer(run_dir)
    with writer.as_default():
        for step in range(steps):
            tb_gradflow.summary.gradflow("gradflow", loss_fn, *args, step=step, strict=True)
            with tf.GradientTape() as tape:
                loss = loss_fn(*args)
            grads = tape.gradient(loss, variables)
            optimizer.apply_gradients([(g, v) for g, v in zip(grads, variables, strict=False) if g is not None])
    writer.close()


def write_transformer(run_dir: str, steps: int) -> None:
    model, loss_fn, tokens = transformer_lm(n_blocks=64)
    _cut_block(model, CUT_BLOCK)
    _log(run_dir, loss_fn, (tokens,), model.trainable_variables, steps)


def write_resnet(run_dir: str, steps: int) -> None:
    model, loss_fn, (x, y) = resnet50()
    _log(run_dir, loss_fn, (x, y), model.trainable_variables, steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    write_resnet(os.path.join(args.logdir, "resnet50"), args.steps)
    write_transformer(os.path.join(args.logdir, "transformer64"), args.steps)


if __name__ == "__main__":
    main()
