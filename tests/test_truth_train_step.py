"""Models that compute their loss in their own `train_step` (issue 16, item 3).

The distiller follows the public description of the keras.io knowledge-distillation example: a
`keras.Model` holding a teacher and a student, compiled without a loss, whose `train_step` takes
the gradient of a weighted sum of the student's loss and the KL divergence between softened
teacher and student predictions, for the student's variables only.
"""
from __future__ import annotations

import logging

import keras
import numpy as np
import tensorflow as tf

import tb_gradflow
from support.oracle import report_states, tape_states
from tb_gradflow import cli
from tb_gradflow.reading.local_logdir import local_provider
from tb_gradflow.reading.reader import GradflowReader


class Distiller(keras.Model):
    """Trains `student` on labels and on the teacher's softened predictions."""

    def __init__(self, student: keras.Model, teacher: keras.Model, alpha: float = 0.3,
                 temperature: float = 4.0):
        super().__init__()
        self.student = student
        self.teacher = teacher
        self.alpha = alpha
        self.temperature = temperature

    def call(self, x, training=False):
        return self.student(x, training=training)

    def distill_loss(self, x, y):
        """The scalar that train_step differentiates."""
        soft_teacher = tf.nn.softmax(self.teacher(x, training=False) / self.temperature)
        logits = self.student(x, training=True)
        soft_student = tf.nn.softmax(logits / self.temperature)
        hard = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
        soft = keras.losses.kl_divergence(soft_teacher, soft_student) * self.temperature ** 2
        return tf.reduce_mean(self.alpha * hard + (1 - self.alpha) * soft)

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = self.distill_loss(x, y)
        variables = self.student.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return {"loss": loss}


def _net(name: str, width: int) -> keras.Model:
    return keras.Sequential([keras.Input((5,)),
                             keras.layers.Dense(width, activation="relu", name="h"),
                             keras.layers.Dense(3, name="logits")], name=name)


def _data():
    rng = np.random.default_rng(3)
    return rng.normal(size=(48, 5)).astype("float32"), rng.integers(0, 3, size=48).astype("int32")


def _distiller() -> Distiller:
    teacher = _net("teacher", 12)
    teacher.trainable = False
    distiller = Distiller(_net("student", 4), teacher)
    distiller.compile(optimizer="adam")
    return distiller


def test_distiller_fit_with_loss_fn_is_logged_and_read_back(tmp_path, capsys):
    x, y = _data()
    distiller = _distiller()
    logdir = str(tmp_path)
    callback = tb_gradflow.keras.GradFlowCallback(
        logdir, (x[:16], y[:16]), every_n_steps=2, strict=True, loss_fn=distiller.distill_loss,
        variables=distiller.student.trainable_variables,
    )
    distiller.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[callback])
    reader = GradflowReader(local_provider(logdir))
    listing = reader.list()
    series = reader.read("train", "gradflow", listing["train"]["gradflow"])
    assert series.steps == [1, 3, 5]
    report = series.report()
    student = distiller.student.trainable_variables
    assert set(report.variables) == {v.path for v in student}
    assert report_states(report) == tape_states(distiller.distill_loss, (x[:16], y[:16]), student)
    assert sorted(report.frozen_variables) == sorted(v.path for v in distiller.teacher.weights)
    assert cli.main(["report", logdir, "--color", "never"]) == 0
    out = capsys.readouterr().out
    assert "Gradient reaches every trainable variable" in out and "4 frozen" in out


def test_train_step_without_a_loss_warns_once_with_the_fix(tmp_path, caplog):
    x, y = _data()
    distiller = _distiller()
    callback = tb_gradflow.keras.GradFlowCallback(str(tmp_path), (x[:16], y[:16]), every_n_steps=1)
    with caplog.at_level(logging.WARNING, logger="tb_gradflow"):
        distiller.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[callback])
    warnings = [r.getMessage() for r in caplog.records if r.name == "tb_gradflow"]
    assert len(warnings) == 1, warnings
    assert "overrides train_step" in warnings[0] and "loss_fn=" in warnings[0]
    assert callback.last_report is None


class LoggingDistiller(Distiller):
    """The README's other pattern: `summary.gradflow` as the step inside the user's train_step."""

    def __init__(self, student, teacher, writer):
        super().__init__(student, teacher)
        self.writer = writer

    def train_step(self, data):
        x, y = data
        with self.writer.as_default():
            tb_gradflow.summary.gradflow(
                "gradflow", self.distill_loss, x, y, variables=self.student.trainable_variables,
                optimizer=self.optimizer, step=self.optimizer.iterations, strict=True)
        return {"iterations": tf.identity(self.optimizer.iterations)}


def test_summary_inside_train_step_trains_and_logs(tmp_path):
    x, y = _data()
    teacher = _net("teacher", 12)
    teacher.trainable = False
    writer = tf.summary.create_file_writer(str(tmp_path / "train"))
    distiller = LoggingDistiller(_net("student", 4), teacher, writer)
    distiller.compile(optimizer="adam")
    before = [v.numpy() for v in distiller.student.trainable_variables]
    distiller.fit(x, y, batch_size=16, epochs=1, verbose=0)
    writer.flush()
    after = distiller.student.trainable_variables
    assert all(np.any(b != v.numpy()) for b, v in zip(before, after, strict=True))
    reader = GradflowReader(local_provider(str(tmp_path)))
    series = reader.read("train", "gradflow", reader.list()["train"]["gradflow"])
    assert len(series.steps) == 3
    report = series.report()
    assert set(report.variables) == {v.path for v in distiller.student.trainable_variables}
    assert report.starved_variables == [] and len(report.frozen_variables) == 4
