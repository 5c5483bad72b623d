"""`tb-gradflow report`: readable and JSON output, filters, exit status."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf

import tb_gradflow
from tb_gradflow import cli


def _write_run(logdir: str, run: str, broken: bool, steps=(0, 5, 10), tag="gradflow") -> None:
    w = tf.Variable(tf.ones([3, 2]), name="w")
    head = tf.Variable(tf.ones([2]), name="head")

    def loss_fn(x):
        h = tf.matmul(x, w)
        if broken:
            h = tf.ensure_shape(tf.numpy_function(lambda a: a * 1.0, [h], tf.float32), [None, 2])
        return tf.reduce_sum(h * head)

    writer = tf.summary.create_file_writer(os.path.join(logdir, run))
    with writer.as_default():
        for step in steps:
            tb_gradflow.summary.gradflow(tag, loss_fn, tf.ones([2, 3]), step=step, strict=True)
    writer.flush()


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("cli"))
    _write_run(path, "broken", True)
    _write_run(path, os.path.join("nested", "fixed"), False)
    return path


def test_json_has_the_documented_shape(logdir, capsys):
    assert cli.main(["report", logdir, "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert set(data["runs"]) == {"broken", "nested/fixed"}
    broken = data["runs"]["broken"]["tags"]["gradflow"]
    assert broken["steps"] == [0, 5, 10] and broken["last_step"] == 10
    assert broken["starved_variables"] == ["w"]
    assert broken["cut_points"][0]["cause"] == "numpy_function"
    assert broken["cut_points"][0]["starved_variables"] == ["w"]
    fixed = data["runs"]["nested/fixed"]["tags"]["gradflow"]
    assert fixed["cut_points"] == [] and fixed["starved_variables"] == []
    assert fixed["variables"]["w"]["state"] == "flowing"


def test_exit_status_zero_when_nothing_starves(logdir, capsys):
    assert cli.main(["report", logdir, "--run", "nested/fixed"]) == 0
    out = capsys.readouterr().out
    assert "Gradient reaches every trainable variable." in out


def test_readable_output_names_the_cut(logdir, capsys):
    assert cli.main(["report", logdir, "--run", "broken"]) == 1
    out = capsys.readouterr().out
    assert "== run broken, tag gradflow" in out
    assert "numpy_function" in out and "starves: w" in out and "test_cli.py:" in out


def test_tag_filter(logdir, capsys):
    assert cli.main(["report", logdir, "--tag", "nope"]) == 2
    assert "no gradflow data" in capsys.readouterr().err


@pytest.mark.parametrize("make", ["missing", "file", "empty"])
def test_bad_logdir_exits_2_with_a_message(tmp_path, capsys, make):
    target = tmp_path / "logs"
    if make == "file":
        target.write_text("not a logdir")
    elif make == "empty":
        target.mkdir()
    assert cli.main(["report", str(target)]) == 2
    err = capsys.readouterr().err
    assert "tb-gradflow:" in err and str(target) in err


def test_corrupt_event_file_is_skipped_with_a_warning(tmp_path, capsys):
    logdir = str(tmp_path)
    _write_run(logdir, "good", False, steps=(0,))
    os.makedirs(os.path.join(logdir, "bad"))
    with open(os.path.join(logdir, "bad", "events.out.tfevents.1.host"), "wb") as f:
        f.write(np.random.default_rng(0).bytes(500))
    assert cli.main(["report", logdir, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data["runs"]) == ["good"]
