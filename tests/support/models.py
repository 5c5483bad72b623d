"""Ordinary Keras models shared by tests, test scripts and benchmarks.

They are what users write, not hand-made minimal cases: a subclassed Transformer language model
(the 64-block one has about 5,000 ops on its loss path) and ResNet50 without weights. Benchmarks
import this module after putting `tests/` on `sys.path`.
"""
from __future__ import annotations

from typing import Callable

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
