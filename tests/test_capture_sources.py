"""`.source` is the user's own line; a third-party library's line is kept as `.library_source`."""
from __future__ import annotations

import importlib.util
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import tb_gradflow
from support.oracle import line_of, report_states, tape_states

HERE = __file__
X = tf.constant(np.linspace(-1.0, 1.0, 20, dtype=np.float32).reshape(4, 5))


def _installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


@pytest.mark.skipif(not _installed("tensorflow_probability", "tf_keras"), reason="test-libs extra absent")
def test_tensorflow_probability_sample_is_blamed_on_the_users_line():
    import tensorflow_probability as tfp

    keras.utils.set_random_seed(0)
    policy = keras.layers.Dense(3, name="policy")
    values = keras.layers.Embedding(3, 1, name="values")

    def loss_fn(x):
        action = tfp.distributions.Categorical(logits=policy(x)).sample()  # MARK sample
        return tf.reduce_sum(values(action))

    report = tb_gradflow.analyze(loss_fn, X)

    variables = policy.trainable_variables + values.trainable_variables
    assert report_states(report) == tape_states(loss_fn, [X], variables)
    [cut] = report.starving_cut_points
    assert cut.starved_variables == ("policy/kernel", "policy/bias")
    assert cut.source == line_of(HERE, "MARK sample")
    assert re.search(r"tensorflow_probability/.*/categorical\.py:\d+$", cut.library_source)
    assert cut.to_dict()["library_source"] == cut.library_source


@pytest.mark.skipif(not _installed("keras_hub"), reason="test-libs extra absent")
def test_keras_hub_backbone_ops_point_at_the_call_in_user_code():
    import keras_hub

    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
        max_sequence_length=16,
    )
    tokens = tf.constant([[1, 2, 3, 4, 0, 0]] * 2)
    mask = tf.constant([[True] * 4 + [False] * 2] * 2)

    def loss_fn(t, m):
        h = backbone({"token_ids": t, "padding_mask": m})  # MARK backbone
        return tf.reduce_mean(tf.round(h) * h)

    report = tb_gradflow.analyze(loss_fn, tokens, mask)

    assert report_states(report) == tape_states(loss_fn, [tokens, mask], backbone.trainable_variables)
    sources = {c.source for c in report.cut_points}
    assert sources == {line_of(HERE, "MARK backbone"), line_of(HERE, "tf.round(h)")}
    assert any("keras_hub" in c.library_source for c in report.cut_points)


def test_a_lambda_layer_in_a_functional_model_points_inside_the_lambda():
    keras.utils.set_random_seed(0)
    x = keras.Input((5,))
    h = keras.layers.Dense(4, name="first")(x)
    h = keras.layers.Lambda(lambda t: tf.round(t) * 2.0)(h)  # MARK lambda
    model = keras.Model(x, keras.layers.Dense(1, name="second")(h))

    def loss_fn(x):
        return tf.reduce_sum(model(x) ** 2)

    report = tb_gradflow.analyze(loss_fn, X)

    assert report_states(report) == tape_states(loss_fn, [X], model.trainable_variables)
    [cut] = report.starving_cut_points
    assert (cut.op_type, cut.source, cut.library_source) == ("Round", line_of(HERE, "MARK lambda"), "")


NOTEBOOK_CELLS = [
    "import tensorflow as tf\nimport tb_gradflow",
    "w = tf.Variable(tf.ones([3]), name='w')\n"
    "def loss_fn():\n"
    "    return tf.reduce_sum(tf.numpy_function(lambda a: a, [w * 2.0], tf.float32))\n",
    "report = tb_gradflow.analyze(loss_fn)",
]


@pytest.mark.skipif(not _installed("IPython", "ipykernel"), reason="test-libs extra absent")
def test_a_notebook_cell_is_named_as_ipython_names_it():
    from ipykernel.compiler import XCachingCompiler
    from IPython.core.interactiveshell import InteractiveShell

    # The compiler an IPython kernel uses: each cell runs from a file in a temporary directory.
    shell = InteractiveShell.instance(compiler_class=XCachingCompiler)
    try:
        numbers = []
        for cell in NOTEBOOK_CELLS:
            numbers.append(shell.execution_count)
            assert shell.run_cell(cell, store_history=True).success
        [cut] = shell.user_ns["report"].cut_points
        assert cut.source == f"Cell In[{numbers[1]}], line 3"
        assert "ipykernel_" in next(iter(shell.compile._filename_map))  # the temp file is not shown
    finally:
        InteractiveShell.clear_instance()


def test_frame_kinds():
    from tb_gradflow.capture.sources import FRAMEWORK, THIRD_PARTY, USER, frame_kind, frame_text

    assert frame_kind(os.__file__) == FRAMEWORK
    assert frame_kind("/opt/py/lib/python3.11/site-packages/tensorflow/python/ops/math_ops.py") == FRAMEWORK
    assert frame_kind("/usr/lib/python3/dist-packages/keras/src/layers/layer.py") == FRAMEWORK
    assert frame_kind("/opt/py/lib/python3.11/site-packages/tensorflow_probability/x.py") == THIRD_PARTY
    assert frame_kind("/usr/lib/python3/dist-packages/keras_hub/src/models/x.py") == THIRD_PARTY
    assert frame_kind(tb_gradflow.__file__) == FRAMEWORK
    assert frame_kind(HERE) == USER
    assert frame_kind("/tmp/ipykernel_4242/3941404902.py") == USER
    assert frame_text("/tmp/ipykernel_4242/3941404902.py", 7) == "notebook cell, line 7"
    assert frame_text("<ipython-input-12-0123abcd>", 3) == "Cell In[12], line 3"


_TRAIN_SCRIPT = '''
import sys
import tensorflow as tf
import tb_gradflow

w = tf.Variable(tf.ones([3]), name="w")


def loss_fn():
    return tf.reduce_sum(tf.numpy_function(lambda a: a, [w * 2.0], tf.float32))  # MARK cut


writer = tf.summary.create_file_writer(sys.argv[1])
with writer.as_default():
    report = tb_gradflow.summary.gradflow("gradflow", loss_fn, step=0, strict=True)
writer.close()
[cut] = report.cut_points
print("SOURCE", cut.source)
print("PATH", cut.source_path)
'''


def _run_script(script, cwd, logdir):
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run([sys.executable, str(script), str(logdir)], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    found = dict(line.split(" ", 1) for line in done.stdout.splitlines() if line.startswith(("SOURCE ", "PATH ")))
    return found["SOURCE"], found["PATH"]


def test_a_source_is_relative_to_its_git_repository_from_any_directory(tmp_path):
    import subprocess

    from tb_gradflow.cli import load

    repo, elsewhere = tmp_path / "repo", tmp_path / "elsewhere"
    (repo / "pkg").mkdir(parents=True)
    elsewhere.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    script = repo / "pkg" / "train.py"
    script.write_text(_TRAIN_SCRIPT)
    line = next(i for i, text in enumerate(_TRAIN_SCRIPT.splitlines(), 1) if "MARK cut" in text)
    for cwd in (elsewhere, repo / "pkg"):  # run by absolute path, from outside and from inside
        logdir = tmp_path / f"logs_{cwd.name}"
        source, path = _run_script(script, cwd, logdir)
        assert source == f"pkg/train.py:{line}", cwd
        assert path == f"{script}:{line}"  # the absolute path, kept apart for local use
        [series] = load(str(logdir)).series.values()
        [cut] = series.report().cut_points
        assert cut.source == f"pkg/train.py:{line}"  # what travels in the logdir
        assert str(tmp_path) not in str(series.report())  # the absolute path is not shown


def test_outside_a_repository_a_source_is_relative_to_the_working_directory(tmp_path):
    from tb_gradflow.capture.sources import git_root, relative_source_path

    if git_root(str(tmp_path)) is not None:
        pytest.skip("the temporary folder is inside a git repository")
    (tmp_path / "sub").mkdir()
    script = tmp_path / "sub" / "train.py"
    script.write_text(_TRAIN_SCRIPT)
    line = next(i for i, text in enumerate(_TRAIN_SCRIPT.splitlines(), 1) if "MARK cut" in text)
    source, path = _run_script(script, tmp_path, tmp_path / "logs")
    assert (source, path) == (f"sub/train.py:{line}", f"{script}:{line}")
    assert relative_source_path(str(script), cwd=str(tmp_path / "sub")) == "train.py"
    assert relative_source_path("/elsewhere/x.py", cwd=str(tmp_path)) == "/elsewhere/x.py"
