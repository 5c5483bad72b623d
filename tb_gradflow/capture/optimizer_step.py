"""The optimizer step `optimizer=` asks for: exactly the step the optimizer documents.

Keras' documented custom step is `scaled = opt.scale_loss(loss)`, gradients of `scaled`, then
`opt.apply_gradients(...)`, which unscales them (a `LossScaleOptimizer` also skips steps whose
gradients are not finite and adapts its scale). The probe follows it: its one backward pass
starts from the scaled loss, the optimizer gets those scaled gradients, and the report's
reductions are divided by the scale, so that states and norms are those of the true gradient.
`tf_keras`' loss-scale optimizer (`get_scaled_loss` / `get_unscaled_gradients`) is followed too.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf


def _is_tf_keras_loss_scaled(optimizer: Any) -> bool:
    return hasattr(optimizer, "get_scaled_loss") and hasattr(optimizer, "get_unscaled_gradients")


def _keras3_optimizer(optimizer: Any) -> bool:
    try:
        import keras
    except ImportError:  # tf_keras alone
        return False
    return isinstance(optimizer, keras.optimizers.Optimizer)


def build_on(optimizer: Any, variables: Sequence[Any]) -> None:
    """Builds an unbuilt optimizer on every variable, as Keras' own `apply_gradients` does.

    Applying only the variables that have a gradient at the first step would build it on that
    subset, and a variable whose gradient appears later (an auxiliary loss switched on) would
    then be "unknown" to it at every later step.
    """
    variables = list(variables)
    if _keras3_optimizer(optimizer):
        if not optimizer.built:
            import keras

            with keras.name_scope(optimizer.name, caller=optimizer):
                optimizer.build(variables)
            optimizer.built = True
    elif hasattr(optimizer, "build") and not getattr(optimizer, "_built", True):
        with tf.init_scope():
            optimizer.build(variables)


def loss_scale(optimizer: Any, loss: tf.Tensor, variables: Sequence[Any]) -> tf.Tensor | None:
    """d(scaled loss)/d(loss): the factor the optimizer scales the loss by, None when it is 1.

    Asked of the optimizer itself (`scale_loss` of ones), so that a `LossScaleOptimizer`'s current
    dynamic scale and a plain optimizer's `loss_scale_factor` are both taken as they are. The
    optimizer is built first (on `variables`): unbuilt, a `LossScaleOptimizer` would hand back
    its initial scale as a constant, not its dynamic scale.
    """
    if optimizer is None:
        return None
    build_on(optimizer, variables)
    ones = tf.ones_like(loss)
    if _is_tf_keras_loss_scaled(optimizer):
        scaled = optimizer.get_scaled_loss(ones)
    elif hasattr(optimizer, "scale_loss"):
        scaled = optimizer.scale_loss(ones)
    else:
        return None
    if scaled is ones:
        return None
    return tf.cast(tf.convert_to_tensor(scaled), loss.dtype)


def unscale_reductions(
    sums: tf.Tensor, exact: tf.Tensor, scale: tf.Tensor | None
) -> tuple[tf.Tensor, tf.Tensor]:
    """Reductions of scaled gradients turned into those of the true gradients.

    `sums` are half sums of squares ([N]); `exact` rows are (half sum of squares, max, min).
    """
    if scale is None:
        return sums, exact
    inverse = 1.0 / tf.cast(tf.reduce_mean(scale), tf.float32)
    squared = inverse * inverse
    return sums * squared, exact * tf.stack([squared, inverse, inverse])


def apply_gradients(optimizer: Any, variables: Sequence[Any], grads: Sequence[Any]) -> None:
    """The optimizer's own update from the gradients of its scaled loss.

    `variables` are the user's variable objects, `grads` the gradients (None where none reaches
    the variable). The optimizer is built on all of them; only present gradients are applied.
    """
    build_on(optimizer, variables)
    present = [(g, v) for g, v in zip(grads, variables, strict=False) if g is not None]
    if not present:
        return
    if _is_tf_keras_loss_scaled(optimizer):
        unscaled = optimizer.get_unscaled_gradients([g for g, _ in present])
        present = list(zip(unscaled, [v for _, v in present], strict=False))
    if tf.distribute.has_strategy() and tf.distribute.in_cross_replica_context():
        # The probe ran once, outside the replicas; optimizers update distributed variables
        # from replica context, summing over replicas: give each replica an equal share.
        strategy = tf.distribute.get_strategy()
        share = 1.0 / strategy.num_replicas_in_sync
        targets = [v for _, v in present]
        shares = [
            strategy.experimental_distribute_values_from_function(lambda _, g=g: g * share)
            for g, _ in present
        ]
        strategy.run(lambda *gs: optimizer.apply_gradients(zip(gs, targets, strict=False)), args=tuple(shares))
    else:
        optimizer.apply_gradients(present)


def _tf_variable(v: Any) -> Any:
    return v if isinstance(v, tf.Variable) else getattr(v, "value", v)


def plain_step(
    loss_fn: Callable[..., Any], args: tuple, kwargs: dict, variables: Sequence[Any] | None, optimizer: Any
) -> tf.Tensor:
    """The optimizer's documented step without any probing: where nothing can be logged (XLA),
    training must still take the step the user asked for."""
    with tf.GradientTape() as tape:
        loss = loss_fn(*args, **kwargs)
    if variables is None:
        variables = [v for v in tape.watched_variables() if v.trainable]
    with tape:
        scale = loss_scale(optimizer, tf.convert_to_tensor(loss), variables)
        scaled = loss if scale is None else loss * scale
    grads = tape.gradient(scaled, [_tf_variable(v) for v in variables])
    apply_gradients(optimizer, variables, grads)
    return loss
