"""A small convolutional VAE whose decoder output goes through a learnable colour lookup.

The lookup maps each pixel's brightness (0..255) to an RGB gain from a table of trainable
variables. Written with `tf.numpy_function` it looks harmless and runs, but autodiff cannot see
through it: the table and the whole decoder get no gradient. Written with `tf.gather` the
gradient reaches everything (the integer cast that builds the indices still blocks, but starves
nothing, since the image also reaches the loss through the multiplication).
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

IMAGE = 32
LATENT = 8
LEVELS = 256


def make_images(n: int, seed: int = 0) -> np.ndarray:
    """Soft coloured blobs on a dark background: enough structure for a VAE to learn."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:IMAGE, 0:IMAGE].astype(np.float32) / IMAGE
    images = np.zeros((n, IMAGE, IMAGE, 3), np.float32)
    for i in range(n):
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.uniform(0.2, 0.8, size=2)
            radius = rng.uniform(0.08, 0.25)
            colour = rng.uniform(0.3, 1.0, size=3)
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius**2))
            images[i] += blob[..., None] * colour
    return np.clip(images, 0.0, 1.0)


def _lookup_numpy(image: np.ndarray, table: np.ndarray) -> np.ndarray:
    brightness = image.mean(axis=-1)
    index = np.clip((brightness * (LEVELS - 1)).astype(np.int32), 0, LEVELS - 1)
    return (image * table[index]).astype(np.float32)


class ColourVAE(keras.Model):
    def __init__(self, lookup: str = "numpy", **kwargs):
        super().__init__(**kwargs)
        if lookup not in ("numpy", "gather"):
            raise ValueError(f"lookup must be 'numpy' or 'gather', not {lookup!r}")
        self.lookup = lookup
        self.encoder = keras.Sequential(
            [
                keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv1"),
                keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="conv2"),
                keras.layers.Flatten(name="flatten"),
                keras.layers.Dense(2 * LATENT, name="dense"),
            ],
            name="encoder",
        )
        side = IMAGE // 4
        self.decoder = keras.Sequential(
            [
                keras.layers.Dense(side * side * 32, activation="relu", name="dense"),
                keras.layers.Reshape((side, side, 32), name="reshape"),
                keras.layers.Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu", name="deconv1"),
                keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same", activation="sigmoid", name="deconv2"),
            ],
            name="decoder",
        )
        self.colour_table = self.add_weight(
            shape=(LEVELS, 3), initializer="ones", name="colour_table", trainable=True
        )

    def colour_lookup(self, image: tf.Tensor) -> tf.Tensor:
        if self.lookup == "numpy":
            out = tf.numpy_function(_lookup_numpy, [image, self.colour_table], tf.float32)
            return tf.ensure_shape(out, image.shape)
        brightness = tf.reduce_mean(image, axis=-1)
        index = tf.clip_by_value(tf.cast(brightness * (LEVELS - 1), tf.int32), 0, LEVELS - 1)
        return image * tf.gather(self.colour_table, index)

    def call(self, images: tf.Tensor, training: bool = False):
        stats = self.encoder(images)
        mean, log_var = tf.split(stats, 2, axis=-1)
        noise = tf.random.normal(tf.shape(mean)) if training else tf.zeros_like(mean)
        z = mean + tf.exp(0.5 * log_var) * noise
        return self.colour_lookup(self.decoder(z)), mean, log_var


def vae_loss(model: ColourVAE, images: tf.Tensor) -> tf.Tensor:
    reconstruction, mean, log_var = model(images, training=True)
    pixel_error = tf.reduce_mean(tf.reduce_sum(tf.square(reconstruction - images), axis=[1, 2, 3]))
    kl = -0.5 * tf.reduce_mean(tf.reduce_sum(1 + log_var - tf.square(mean) - tf.exp(log_var), axis=-1))
    return pixel_error + kl
