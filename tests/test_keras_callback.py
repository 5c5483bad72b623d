"""GradFlowCallback in model.fit, read back by the reader and by `tb-gradflow report --json`."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import tb_gradflow
from support.oracle import line_of, report_states
from tb_gradflow.reading.local_logdir import local_provider
from tb_gradflow.reading.reader import GradflowReader


class Quantized(keras.Model):
    """Rounds its hidden layer through numpy: the first layer never learns."""

    def __init__(self):
        super().__init__()
        self.first = keras.layers.Dense(8, name="first")
        self.second = keras.layers.Dense(1, name="second")

    def call(self, x, training=False):
        h = self.first(x)
        q = tf.numpy_function(lambda a: np.round(a).astype(np.float32), [h], tf.float32)  # MARK quantize
        return self.second(tf.ensure_shape(q, h.shape))


def _data(n=64):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4)).astype("float32"), rng.normal(size=(n, 1)).astype("float32")


def _report_json(logdir: str, *extra: str) -> tuple[int, dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "tb_gradflow.cli", "report", logdir, "--json", *extra],
        capture_output=True, text=True, timeout=300,
    )
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else {}


@pytest.mark.parametrize("jit_compile", [False, True])
def test_fit_with_callback_on_a_healthy_model(tmp_path, jit_compile):
    x, y = _data()
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="tanh", name="hidden"),
         keras.layers.BatchNormalization(name="norm"), keras.layers.Dense(1, name="out")]
    )
    model.compile(optimizer="adam", loss="mse", jit_compile=jit_compile)
    logdir = str(tmp_path)
    callback = tb_gradflow.keras.GradFlowCallback(logdir, (x[:16], y[:16]), every_n_steps=3, strict=True)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0,
              callbacks=[callback, keras.callbacks.TensorBoard(logdir)])
    # 8 batches; logged at the 1st, 4th and 7th.
    reader = GradflowReader(local_provider(logdir))
    listing = reader.list()
    assert list(listing) == ["train"]
    series = reader.read("train", "gradflow", listing["train"]["gradflow"])
    assert series.steps == [1, 4, 7]
    report = series.report()
    assert report.starved_variables == []
    assert set(report.variables) == {v.path for v in model.trainable_variables}
    code, data = _report_json(logdir)
    assert code == 0
    assert data["runs"]["train"]["tags"]["gradflow"]["last_step"] == 7


def test_probing_does_not_change_batch_norm_statistics(tmp_path):
    x, y = _data(16)
    model = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization(name="norm"),
                              keras.layers.Dense(1, name="out")])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    callback = tb_gradflow.keras.GradFlowCallback(str(tmp_path), (x * 10 + 3, y), strict=True)
    callback.set_model(model)
    callback.on_train_begin()
    before = [v.numpy().copy() for v in model.non_trainable_variables]
    callback.log_now()
    after = [v.numpy() for v in model.non_trainable_variables]
    for a, b in zip(before, after, strict=False):
        np.testing.assert_array_equal(a, b)
    assert callback.last_report is not None


def test_fit_with_a_cut_is_reported_by_the_cli(tmp_path):
    x, y = _data()
    model = Quantized()
    model.compile(optimizer="sgd", loss="mse")
    logdir = str(tmp_path)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0,
              callbacks=[tb_gradflow.keras.GradFlowCallback(logdir, (x[:8], y[:8]), every_n_steps=1, strict=True)])
    code, data = _report_json(logdir)
    assert code == 1
    entry = data["runs"]["train"]["tags"]["gradflow"]
    assert set(entry) == {"steps", "last_step", "variables", "cut_points", "starved_variables", "ops",
                          "frozen_variables", "dead_units", "iteration_norms", "layers",
                          "op_presence", "story", "norm_range", "first_nonfinite_step", "version_changes"}
    assert entry["steps"] == [1, 2]
    assert sorted(entry["starved_variables"]) == ["quantized/first/bias", "quantized/first/kernel"]
    assert entry["variables"]["quantized/second/kernel"]["state"] == "flowing"
    assert entry["variables"]["quantized/first/kernel"] == {"state": "none", "norm": None, "presence": None,
                                                            "sparse_gradient": False}
    [cut] = entry["cut_points"]
    assert set(cut) == {"op_name", "op_type", "cause", "source", "starved_variables", "parallel_cuts", "library_source"}
    assert cut["cause"] == "numpy_function"
    assert cut["source"] == line_of(__file__, "MARK quantize")
    assert isinstance(entry["ops"], int) and entry["ops"] > 5


def test_callback_failure_never_stops_training(tmp_path, caplog):
    x, y = _data(32)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    bad_probe = (x[:4, :3], y[:4])  # wrong feature count: the probe cannot run the model
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0,
                        callbacks=[tb_gradflow.keras.GradFlowCallback(str(tmp_path), bad_probe, every_n_steps=1)])
    assert len(history.history["loss"]) == 2
    assert "GradFlowCallback failed" in caplog.text


# -- Keras 2 (tf_keras) ---------------------------------------------------------------------------

_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts", "tf_keras_fit.py")


@pytest.mark.parametrize("kind", ["quantized", "sequential"])
def test_fit_under_tf_keras(tmp_path, kind):
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, _SCRIPT, str(tmp_path), kind], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["base"].startswith("tf_keras")
    assert out["epochs"] == 2
    assert "GradFlowCallback failed" not in proc.stderr
    reader = GradflowReader(local_provider(str(tmp_path)))
    series = reader.read("train", "gradflow", reader.list()["train"]["gradflow"])
    assert series.steps == [1, 2, 3, 4]
    for step in series.steps:
        assert report_states(series.report(step)) == out["tape"]
    report = series.report()
    if kind == "quantized":
        assert sorted(report.starved_variables) == ["quantized/first/bias", "quantized/first/kernel"]
        [cut] = report.starving_cut_points
        assert cut.cause == "numpy_function"
        assert cut.source == line_of(_SCRIPT, "MARK legacy quantize")
    else:
        assert report.starved_variables == []


def test_a_writer_that_cannot_open_never_stops_training(tmp_path, caplog):
    x, y = _data(32)
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the logdir should be")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    callback = tb_gradflow.keras.GradFlowCallback(str(blocker), (x[:4], y[:4]), every_n_steps=1)
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[callback])
    assert len(history.history["loss"]) == 2
    assert "GradFlowCallback failed" in caplog.text
    assert callback.last_report is None


def _open_event_files(logdir) -> list[str]:
    """Event files under `logdir` this process holds open (Linux: /proc/self/fd)."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(logdir)) and "tfevents" in target:
            held.append(target)
    return held


def test_first_write_names_the_logdir_once_and_training_end_closes_the_writer(tmp_path, capsys):
    x, y = _data(32)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    callback = tb_gradflow.keras.GradFlowCallback(str(tmp_path), (x[:4], y[:4]), every_n_steps=1, strict=True)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[callback])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("tb_gradflow:")]
    assert lines == [f"tb_gradflow: gradient flow logged to {tmp_path / 'train'}; view it with "
                     f"`tensorboard --logdir {tmp_path}` (Gradient Flow tab) or `tb-gradflow report {tmp_path}`"]
    assert _open_event_files(tmp_path) == []  # closed at the end of training
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[callback])  # opens it again
    assert "tb_gradflow:" not in capsys.readouterr().out  # said once
    assert _open_event_files(tmp_path) == []
    reader = GradflowReader(local_provider(str(tmp_path)))
    series = reader.read("train", "gradflow", reader.list()["train"]["gradflow"])
    assert series.steps == [1, 2, 3, 4, 5, 6]  # both fits, every batch


_BLOCK_TENSORFLOW = """
import importlib.abc, sys

class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoTensorFlow())
try:
    %s
except ModuleNotFoundError as e:
    print("NAME", e.name)
    print("MESSAGE", e)
"""


@pytest.mark.parametrize("statement", ["from tb_gradflow.keras import GradFlowCallback",
                                       "from tb_gradflow.summary import gradflow",
                                       "import tb_gradflow; tb_gradflow.keras"])
def test_without_tensorflow_the_import_names_the_extra(statement):
    proc = subprocess.run([sys.executable, "-c", _BLOCK_TENSORFLOW % statement], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "NAME tensorflow\n" in proc.stdout
    message = proc.stdout.split("MESSAGE ", 1)[1]
    assert "needs TensorFlow and Keras" in message and 'pip install "tb_gradflow[cpu]"' in message
