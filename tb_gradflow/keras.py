"""`GradFlowCallback`: gradient flow of a probe batch, logged during `model.fit`."""
from __future__ import annotations

import logging
import os
from typing import Any

import keras
import tensorflow as tf

from tb_gradflow import summary

logger = logging.getLogger("tb_gradflow")


class GradFlowCallback(keras.callbacks.Callback):
    """Logs every `every_n_steps` batches (and the first) under `log_dir/train`.

    That is where Keras' own TensorBoard callback writes, so both can share one logdir. The probe
    runs the model's own loss on `data=(x, y)` in a separate, non-XLA graph, so it works whether
    or not the model was compiled with `jit_compile`; it restores non-trainable state (batch-norm
    statistics) so that probing does not change the model.
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
        self._batches = 0
        self.last_report = None

    def _loss(self, x: Any, y: Any) -> tf.Tensor:
        y_pred = self.model(x, training=True)
        return self.model.compute_loss(x=x, y=y, y_pred=y_pred, training=True)

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "train"))

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        due = self._batches % self.every_n_steps == 0
        self._batches += 1
        if due:
            self.log_now()

    def log_now(self) -> None:
        """Logs one step now, at the optimizer's current iteration."""
        try:
            step = int(self.model.optimizer.iterations.numpy())
            saved = [(v, tf.identity(v.value)) for v in self.model.non_trainable_variables]
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
            for v, value in saved:
                v.assign(value)
            self._writer.flush()
            self.last_report = report
        except Exception as e:  # noqa: BLE001 - logging must never stop training
            if self.strict:
                raise
            logger.warning("tb_gradflow: GradFlowCallback failed: %s: %s", type(e).__name__, e)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._writer is not None:
            self._writer.flush()
