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


class GradFlowCallback(_callback_base()):
    """Logs every `every_n_steps` batches (and the first) under `log_dir/train`.

    That is where Keras' own TensorBoard callback writes, so both can share one logdir. The probe
    runs the model's own loss on `data=(x, y)` in a separate, non-XLA graph, so it works whether
    or not the model was compiled with `jit_compile`; it restores non-trainable state (batch-norm
    statistics) so that probing does not change the model. A failure inside the callback logs a
    warning and training goes on (unless `strict=True`). Its first write prints one line naming
    the logdir and how to view it; the end of training closes the writer, as Keras' TensorBoard
    callback does (a later `fit` opens it again).
    """

    def __init__(
        self,
        log_dir: str,
        data: tuple[Any, Any],
        every_n_steps: int = 100,
        name: str = "gradflow",
        strict: bool = False,
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
        self._x = tf.nest.map_structure(tf.convert_to_tensor, data[0])
        self._y = tf.nest.map_structure(tf.convert_to_tensor, data[1])
        self._writer = None
        self._announced = False
        self._batches = 0
        self.last_report = None

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
        def open_writer() -> None:
            if self._writer is None:
                self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "train"))

        self._guarded("opening the writer", open_writer)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
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
        step = int(self.model.optimizer.iterations.numpy())
        saved = _snapshot(self.model.non_trainable_variables)
        try:
            with self._writer.as_default():
                report = summary.gradflow(
                    self.name,
                    self._loss,
                    self._x,
                    self._y,
                    variables=self.model.trainable_variables,
                    step=step,
                    strict=True,
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
        writer, self._writer = self._writer, None
        if writer is not None:
            self._guarded("closing the writer", writer.close)


def first_write_line(log_dir: str) -> str:
    """What the callback says once, at its first write: where it logs and how to look."""
    return (f"tb_gradflow: gradient flow logged to {os.path.join(log_dir, 'train')}; view it with "
            f"`tensorboard --logdir {log_dir}` (Gradient Flow tab) "
            f"or `tb-gradflow report {log_dir}`")
