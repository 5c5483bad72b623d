"""`GradFlowCallback`: gradient flow of a probe batch, logged during `model.fit`.

Works with Keras 3 and with Keras 2 (`tf_keras`, selected by `TF_USE_LEGACY_KERAS=1` as
TensorFlow itself does): each Keras' `fit` drives callbacks through its own `CallbackList`,
which reads private attributes of its own `Callback` base class, so the callback derives from
the base class of the Keras that `tf.keras` is.
"""
from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from tb_gradflow import install_hint

try:
    import tensorflow as tf
except ModuleNotFoundError as _missing:  # a viewer-only install: say which extra to add
    raise install_hint.needs_tensorflow("tb_gradflow.keras", _missing) from _missing

from tb_gradflow import summary

logger = logging.getLogger("tb_gradflow")


def legacy_keras() -> bool:
    """Whether `tf.keras` is Keras 2 (`tf_keras`), by the switch TensorFlow reads."""
    return os.environ.get("TF_USE_LEGACY_KERAS", "").strip().lower() in ("1", "true", "yes")


def _callback_base() -> type:
    if legacy_keras():
        import tf_keras

        return tf_keras.callbacks.Callback
    import keras

    return keras.callbacks.Callback


def _snapshot(variables: list[Any]) -> list[tuple[Any, tf.Tensor]]:
    return [(v, tf.identity(tf.convert_to_tensor(v))) for v in variables]


def _defined_by_keras(model: Any, method: str) -> bool:
    """Whether `model`'s `method` is Keras' own (Keras 3 or tf_keras), not the user's override."""
    for cls in type(model).__mro__:
        if method in vars(cls):
            return cls.__module__.split(".")[0] in ("keras", "tf_keras")
    return True


def has_loss(model: Any) -> bool:
    """Whether the callback can probe `model`'s own loss: a compiled loss, a `compute_loss` of its
    own, or Keras' `train_step` (whose loss may come from `add_loss`)."""
    if getattr(model, "loss", None):  # tf_keras keeps `{}` for no loss, Keras 3 None
        return True
    return _defined_by_keras(model, "train_step") or not _defined_by_keras(model, "compute_loss")


def no_loss_message(model: Any) -> str:
    """The fix, said once, for a model that computes its loss in its own `train_step`."""
    name = getattr(model, "name", "the model")
    return (
        f"GradFlowCallback logs nothing: model {name!r} overrides train_step and was compiled "
        "without a loss, so there is no loss to probe. Pass the loss your train_step "
        "differentiates: GradFlowCallback(..., loss_fn=lambda x, y: ..., variables=...) (for a "
        "distiller, loss_fn=distiller.distill_loss, "
        "variables=distiller.student.trainable_variables), or call tb_gradflow.summary.gradflow "
        "inside your train_step"
    )


class GradFlowCallback(_callback_base()):  # type: ignore[misc]  # Keras or tf_keras, chosen at import
    """Logs every `every_n_steps` batches (and the first) under `log_dir/train`.

    That is where Keras' own TensorBoard callback writes, so both can share one logdir. The probe
    runs the model's own loss on `data=(x, y)` in a separate, non-XLA graph, so it works whether
    or not the model was compiled with `jit_compile`; it restores non-trainable state (batch-norm
    statistics) so that probing does not change the model. A failure inside the callback logs a
    warning and training goes on (unless `strict=True`). Its first write prints one line naming
    the logdir and how to view it; the end of training closes the writer, as Keras' TensorBoard
    callback does (a later `fit` opens it again).

    A model that computes its loss in its own `train_step` (a distiller, a GAN, a VAE) has no
    compiled loss: pass `loss_fn(x, y)`, the scalar loss that `train_step` differentiates (e.g.
    `loss_fn=distiller.distill_loss`), and `variables`, the ones it applies gradients to (by
    default `model.trainable_variables`). `train_step` itself is not probed: it applies the
    optimizer, and probing must not change training.

    `measure_bodies` is passed to `summary.gradflow`: False leaves the ops inside loop bodies
    (an RNN cell's) unmeasured, None measures them unless $TB_GRADFLOW_BODY_OPS is 0.

    `scalars=True` also writes, at each logged step, one TensorBoard scalar per layer (its
    gradient norm, and the dead share of its ReLU units where they are counted) under
    `<name>/grad_norm/<layer>` and `<name>/dead_units/<layer>`: the per-layer gradient norms in
    the Time Series tab that Keras' `write_grads` used to give. Off by default.
    """

    def __init__(
        self,
        log_dir: str,
        data: tuple[Any, Any],
        every_n_steps: int = 100,
        name: str = "gradflow",
        strict: bool = False,
        loss_fn: Callable[[Any, Any], Any] | None = None,
        variables: Sequence[Any] | None = None,
        measure_bodies: bool | None = None,
        scalars: bool = False,
    ):
        super().__init__()
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be at least 1, not {every_n_steps}")
        if not isinstance(data, (tuple, list)) or len(data) != 2:
            raise ValueError("data must be a probe batch (x, y)")
        self.log_dir = log_dir
        self.every_n_steps = every_n_steps
        self.name = name
        self.strict = strict
        self.measure_bodies = measure_bodies
        self.scalars = scalars
        self._x = tf.nest.map_structure(tf.convert_to_tensor, data[0])
        self._y = tf.nest.map_structure(tf.convert_to_tensor, data[1])
        self._writer = None
        self._announced = False
        self._batches = 0
        self.last_report = None
        self._user_loss = loss_fn
        self._user_variables = list(variables) if variables is not None else None
        self._told_no_loss = False

    def _loss(self, x: Any, y: Any) -> tf.Tensor:
        y_pred = self.model(x, training=True)
        compute_loss = self.model.compute_loss
        # Keras 3's compute_loss takes training=; tf_keras' does not.
        if "training" in inspect.signature(compute_loss).parameters:
            return compute_loss(x=x, y=y, y_pred=y_pred, training=True)
        return compute_loss(x=x, y=y, y_pred=y_pred)

    def _guarded(self, what: str, action) -> None:
        try:
            action()
        except Exception as e:  # noqa: BLE001 - logging must never stop training
            if self.strict:
                raise
            logger.warning("tb_gradflow: GradFlowCallback failed (%s): %s: %s", what, type(e).__name__, e)

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Opens the writer lazily, so that a callback never used leaves no empty event file."""
        def open_writer() -> None:
            if self._writer is None:
                self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "train"))

        self._guarded("opening the writer", open_writer)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Logs on the due batches; a logging failure is warned about and never stops training."""
        due = self._batches % self.every_n_steps == 0
        self._batches += 1
        if due:
            self.log_now()

    def log_now(self) -> None:
        """Logs one step now, at the optimizer's current iteration."""
        self._guarded("logging a step", self._log)

    def _log(self) -> None:
        if self._writer is None:
            raise RuntimeError("no summary writer (on_train_begin did not open one)")
        if self._user_loss is None and not has_loss(self.model):
            if not self._told_no_loss:
                self._told_no_loss = True
                logger.warning("tb_gradflow: %s", no_loss_message(self.model))
            return
        step = int(self.model.optimizer.iterations.numpy())
        saved = _snapshot(self.model.non_trainable_variables)
        variables = self._user_variables
        try:
            with self._writer.as_default():
                report = summary.gradflow(
                    self.name,
                    self._user_loss or self._loss,
                    self._x,
                    self._y,
                    variables=self.model.trainable_variables if variables is None else variables,
                    step=step,
                    strict=True,
                    measure_bodies=self.measure_bodies,
                    scalars=self.scalars,
                )
        finally:
            for v, value in saved:
                v.assign(value)
        self._writer.flush()
        self.last_report = report
        if not self._announced:
            self._announced = True
            print(first_write_line(self.log_dir), flush=True)

    def on_train_end(self, logs: dict | None = None) -> None:
        """Closes the writer so that the last steps reach the disk."""
        writer, self._writer = self._writer, None
        if writer is not None:
            self._guarded("closing the writer", writer.close)


def first_write_line(log_dir: str) -> str:
    """What the callback says once, at its first write: where it logs and how to look."""
    return (f"tb_gradflow: gradient flow logged to {os.path.join(log_dir, 'train')}; view it with "
            f"`tensorboard --logdir {log_dir}` (Gradient Flow tab) "
            f"or `tb-gradflow report {log_dir}`")
