"""Trains the demo VAE twice, broken (numpy_function lookup) and fixed (tf.gather), with gradflow.

Every `--log-every` steps the training step *is* `tb_gradflow.summary.gradflow(..., optimizer=)`,
so logging costs no extra forward or backward pass. Writes LOGDIR/broken and LOGDIR/fixed and
prints both reports. LOGDIR is checked first: the demo replaces its own two runs and refuses a
folder holding anything else, so a user's files are never deleted.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from logdir import prepare_logdir  # noqa: E402
from vae import ColourVAE, make_images, vae_loss  # noqa: E402

import tb_gradflow  # noqa: E402


def train(logdir: str, lookup: str, run: str, steps: int, log_every: int, batch: int = 32) -> None:
    keras.backend.clear_session()  # both runs name their variables colour_vae/..., not colour_vae_1/...
    keras.utils.set_random_seed(1)
    images = tf.constant(make_images(512))
    model = ColourVAE(lookup=lookup)
    model(images[:1])  # build the variables
    optimizer = keras.optimizers.Adam(1e-3)
    variables = model.trainable_variables

    @tf.function
    def train_step(batch_images: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = vae_loss(model, batch_images)
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients([(g, v) for g, v in zip(grads, variables, strict=False) if g is not None])
        return loss

    writer = tf.summary.create_file_writer(os.path.join(logdir, run))
    report = None
    with writer.as_default():
        for step in range(steps):
            start = (step * batch) % (len(images) - batch)
            batch_images = images[start : start + batch]
            if step % log_every == 0 or step == steps - 1:
                report = tb_gradflow.summary.gradflow(
                    "gradflow", vae_loss, model, batch_images, variables=variables, step=step,
                    optimizer=optimizer, description=f"Colour VAE, {lookup} lookup",
                )
                tf.summary.scalar("loss", report.loss, step=step)
            else:
                train_step(batch_images)
    writer.flush()
    print(f"==== {run} ({lookup} lookup)\n{report}\n", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", default=os.path.join(os.path.dirname(__file__), "logs"))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="a few steps, for tests")
    args = parser.parse_args()
    steps, log_every = (12, 3) if args.quick else (args.steps, args.log_every)
    prepare_logdir(args.logdir)
    train(args.logdir, "numpy", "broken", steps, log_every)
    train(args.logdir, "gather", "fixed", steps, log_every)


if __name__ == "__main__":
    main()
