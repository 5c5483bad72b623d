"""The optimizer step `optimizer=` asks for, taken with the gradients the probe computed."""
from __future__ import annotations

from typing import Any

import tensorflow as tf


def apply_gradients(optimizer: Any, pairs: list[tuple[Any, Any]]) -> None:
    """Applies (gradient, variable) pairs, sharing them out over replicas under a strategy."""
    if not pairs:
        return
    if tf.distribute.has_strategy() and tf.distribute.in_cross_replica_context():
        # The probe ran once, outside the replicas; optimizers update distributed variables
        # from replica context, summing over replicas: give each replica an equal share.
        strategy = tf.distribute.get_strategy()
        share = 1.0 / strategy.num_replicas_in_sync
        targets = [v for _, v in pairs]
        shares = [
            strategy.experimental_distribute_values_from_function(lambda _, g=g: g * share)
            for g, _ in pairs
        ]
        strategy.run(lambda *gs: optimizer.apply_gradients(zip(gs, targets)), args=tuple(shares))
    else:
        optimizer.apply_gradients(pairs)
