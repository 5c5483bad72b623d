"""Ordinary Keras models shared by tests, test scripts and benchmarks.

They are what users write, not hand-made minimal cases: a subclassed Transformer language model
(the 64-block one has about 5,000 ops on its loss path) and ResNet50 without weights. Benchmarks
import this module after putting `tests/` on `sys.path`.
"""
from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf


class TransformerBlock(keras.layers.Layer):
    """Pre-norm block: LayerNorm, MultiHeadAttention, LayerNorm, two Dense layers."""

    def __init__(self, dim: int, heads: int, **kwargs):
        super().__init__(**kwargs)
        self.norm_1 = keras.layers.LayerNormalization()
        self.attention = keras.layers.MultiHeadAttention(heads, dim // heads)
        self.norm_2 = keras.layers.LayerNormalization()
        self.up = keras.layers.Dense(2 * dim, activation="gelu")
        self.down = keras.layers.Dense(dim)

    def call(self, x):
        h = self.norm_1(x)
        x = x + self.attention(h, h, use_causal_mask=True)
        return x + self.down(self.up(self.norm_2(x)))


class TransformerLM(keras.Model):
    """A subclassed decoder-only language model: Embedding, `n_blocks` blocks, LayerNorm, Dense."""

    def __init__(self, vocab: int = 64, dim: int = 32, heads: int = 2, n_blocks: int = 2, **kwargs):
        kwargs.setdefault("name", "lm")
        super().__init__(**kwargs)
        self.embed = keras.layers.Embedding(vocab, dim)
        self.blocks = [TransformerBlock(dim, heads, name=f"block_{i}") for i in range(n_blocks)]
        self.final_norm = keras.layers.LayerNormalization()
        self.head = keras.layers.Dense(vocab)

    def call(self, tokens):
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
        return self.head(self.final_norm(x))


def transformer_lm(
    n_blocks: int = 2, vocab: int = 64, dim: int = 32, seq: int = 16, batch: int = 4, seed: int = 0
) -> tuple[TransformerLM, Callable[[tf.Tensor], tf.Tensor], tf.Tensor]:
    """A built TransformerLM, its next-token loss and one batch of tokens."""
    keras.utils.set_random_seed(seed)
    model = TransformerLM(vocab=vocab, dim=dim, n_blocks=n_blocks)
    tokens = tf.random.uniform([batch, seq + 1], 0, vocab, dtype=tf.int32, seed=seed)
    model(tokens[:, :-1])
    xent = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def loss_fn(tokens):
        return xent(tokens[:, 1:], model(tokens[:, :-1]))

    return model, loss_fn, tokens


def resnet50(batch: int = 8, size: int = 64, classes: int = 10, seed: int = 0):
    """Keras' ResNet50 without weights, its classification loss and one batch."""
    keras.utils.set_random_seed(seed)
    model = keras.applications.ResNet50(weights=None, input_shape=(size, size, 3), classes=classes)
    x = tf.random.normal([batch, size, size, 3], seed=seed)
    y = tf.random.uniform([batch], 0, classes, dtype=tf.int32, seed=seed)
    xent = keras.losses.SparseCategoricalCrossentropy()

    def loss_fn(x, y):
        return xent(y, model(x, training=True))

    return model, loss_fn, (x, y)


class DQNAgent:
    """A DQN agent as users write one: an online Q-network and a `clone_model` target network.

    The clone keeps the model's and layers' names, so both networks' variables share paths
    (`online/hidden/kernel`); only the online one trains, the target sits behind stop_gradient.
    """

    def __init__(self, state_dim: int = 4, actions: int = 2, seed: int = 0):
        keras.utils.set_random_seed(seed)
        self.online = keras.Sequential(
            [keras.Input((state_dim,)), keras.layers.Dense(16, activation="relu", name="hidden"),
             keras.layers.Dense(actions, name="q")],
            name="online",
        )
        self.target = keras.models.clone_model(self.online)
        self.target.set_weights(self.online.get_weights())
        self.gamma = 0.99

    def loss(self, states, actions, rewards, next_states):
        q = tf.gather(self.online(states), actions, batch_dims=1)
        next_q = tf.stop_gradient(self.target(next_states))
        return tf.reduce_mean(tf.square(rewards + self.gamma * tf.reduce_max(next_q, axis=1) - q))

    def batch(self, n: int = 8, seed: int = 0):
        states = tf.random.stateless_normal([n, 4], seed=[seed, 1])
        actions = tf.random.stateless_uniform([n], seed=[seed, 2], maxval=2, dtype=tf.int32)
        rewards = tf.random.stateless_normal([n], seed=[seed, 3])
        next_states = tf.random.stateless_normal([n, 4], seed=[seed, 4])
        return states, actions, rewards, next_states


def _mlp(name: str, inputs: int, outputs: int) -> keras.Model:
    """A functional MLP whose layers carry fixed names: two of them share every variable path."""
    x = keras.Input((inputs,))
    h = keras.layers.Dense(16, activation="relu", name="hidden")(x)
    return keras.Model(x, keras.layers.Dense(outputs, name="out")(h), name=name)


def gan(latent: int = 3, features: int = 5, batch: int = 8, seed: int = 0):
    """A generator and a discriminator built by one function (equal layer paths), their losses and data.

    Returns (generator, discriminator, generator_loss(z), discriminator_loss(z, real), z, real).
    The discriminator's loss holds the generator behind stop_gradient.
    """
    keras.utils.set_random_seed(seed)
    generator = _mlp("generator", latent, features)
    discriminator = _mlp("discriminator", features, 1)
    xent = keras.losses.BinaryCrossentropy(from_logits=True)

    def generator_loss(z):
        fake = discriminator(generator(z))
        return xent(tf.ones_like(fake), fake)

    def discriminator_loss(z, real):
        fake = discriminator(tf.stop_gradient(generator(z)))
        real_logits = discriminator(real)
        return xent(tf.zeros_like(fake), fake) + xent(tf.ones_like(real_logits), real_logits)

    z = tf.random.stateless_normal([batch, latent], seed=[seed, 5])
    real = tf.random.stateless_normal([batch, features], seed=[seed, 6])
    return generator, discriminator, generator_loss, discriminator_loss, z, real


def dead_relu_model(live_units: int):
    """(loss_fn, x): a ReLU layer of 16 units of which only `live_units` ever fire (the others'
    bias is -1e3), and a head; the kernels get a gradient through the live units alone."""
    import numpy as np

    keras.utils.set_random_seed(0)
    layer = keras.layers.Dense(16, activation="relu", name="dense_3")
    head = keras.layers.Dense(1, name="head")
    x = tf.random.normal([32, 5], seed=1)
    head(layer(x))
    bias = np.full(16, -1e3, np.float32)
    bias[:live_units] = 0.0
    layer.bias.assign(bias)

    def loss_fn(x):
        return tf.reduce_sum(head(layer(x)) ** 2)

    return loss_fn, x
