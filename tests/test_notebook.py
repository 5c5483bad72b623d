"""In Jupyter: a notebook executed by nbclient on a real IPython kernel shows a Report as its
diagnosis and the interactive graph (checked in Chromium), its text form is the text report, and
a TensorBoard started with `%tensorboard` serves the plugin's routes."""
from __future__ import annotations

import os
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("playwright")
from support.browser import READY, browser, page  # noqa: E402,F401

ANALYZE = '''
import tensorflow as tf
import tb_gradflow

w = tf.Variable(tf.ones([3, 2]), name="w")
head = tf.Variable(tf.ones([2]), name="head")

def loss_fn(x):
    h = tf.ensure_shape(tf.numpy_function(lambda a: a * 1.0, [tf.matmul(x, w)], tf.float32), [None, 2])
    return tf.reduce_sum(h * head)

report = tb_gradflow.analyze(loss_fn, tf.ones([2, 3]))
'''

TENSORBOARD_ROUTE = '''
import json, urllib.request
from tensorboard import manager
info = [i for i in manager.get_all() if i.logdir == LOGDIR][-1]
with urllib.request.urlopen(f"http://localhost:{info.port}/data/plugin/gradflow/runs", timeout=60) as r:
    print("RUNS", json.dumps(json.load(r), sort_keys=True))
print("PID", info.pid)
'''


def _execute(cells: list[str], cwd: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": cwd}}).execute()
    return nb


def _stream(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


@pytest.fixture(autouse=True)
def _kernel_env(monkeypatch):
    """The kernel runs this venv's Python; `%tensorboard` starts this venv's TensorBoard."""
    bindir = os.path.dirname(sys.executable)
    monkeypatch.setenv("PATH", bindir + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.setenv("TENSORBOARD_BINARY", os.path.join(bindir, "tensorboard"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")


def test_report_displays_its_diagnosis_and_graph(tmp_path, page):
    nb = _execute([ANALYZE, "report", "print(repr(report)[:40])"], str(tmp_path))
    shown = nb.cells[1].outputs[0]
    assert shown.output_type == "execute_result"
    html, text = shown.data["text/html"], shown.data["text/plain"]
    assert text.startswith("gradflow:") and "starves: w" in text  # _repr_pretty_: the text report
    path = tmp_path / "cell.html"
    path.write_text(f"<html><body>{html}</body></html>", encoding="utf-8")
    page.goto(f"file://{path}")
    diagnosis = page.inner_text(".gradflow-diagnosis")
    assert "1 cut point starves 1 trainable variable: w" in diagnosis and "tf.numpy_function" in diagnosis
    assert "hint:" in diagnosis
    frame = page.frame_locator("iframe.gradflow-graph")
    frame.locator(READY).wait_for(timeout=60000)
    assert frame.locator("[data-cut]").count() >= 1
    assert page.errors == []


def test_tensorboard_magic_serves_the_plugin(tmp_path):
    logdir = tmp_path / "logs"
    write = f'''
import tensorflow as tf
LOGDIR = {str(logdir)!r}
writer = tf.summary.create_file_writer(LOGDIR + "/run")
with writer.as_default():
    tb_gradflow.summary.gradflow("gradflow", loss_fn, tf.ones([2, 3]), step=1, strict=True)
writer.close()
'''
    nb = _execute([ANALYZE, write, "%load_ext tensorboard",
                   f"%tensorboard --logdir {logdir} --port 0 --load_fast false",
                   TENSORBOARD_ROUTE], str(tmp_path))
    out = _stream(nb.cells[4])
    pid = int(out.split("PID ")[1].split()[0])
    try:
        assert 'RUNS {"run": {"gradflow": {"count": 1' in out, out
    finally:
        os.kill(pid, 15)
