"""`tb-gradflow`: report (readable and JSON output, filters), diff, exit statuses, start-up
without TensorFlow, terminal text."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import tb_gradflow
from tb_gradflow import cli
from tb_gradflow import terminal_text as T


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
    assert cli.main(["report", logdir, "--tag", "nope"]) == cli.EXIT_NO_DATA
    assert "no gradflow data" in capsys.readouterr().err


@pytest.mark.parametrize("make", ["missing", "file", "empty"])
def test_bad_logdir_exits_3_with_a_message(tmp_path, capsys, make):
    target = tmp_path / "logs"
    if make == "file":
        target.write_text("not a logdir")
    elif make == "empty":
        target.mkdir()
    assert cli.main(["report", str(target)]) == cli.EXIT_NO_DATA == 3
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


def _run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tb_gradflow", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_python_m_runs_without_importing_tensorflow_and_stays_quiet(logdir):
    probe = (f"import sys, runpy; sys.argv = ['tb-gradflow', 'report', {logdir!r}];"
             "\ntry: runpy.run_module('tb_gradflow', run_name='__main__')"
             "\nexcept SystemExit as e: print('STATUS', e.code, 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip().splitlines()[-1] == "STATUS 1 False False"
    assert done.stderr == ""  # no TensorFlow start-up lines, no warnings
    assert "numpy_function" in done.stdout


def test_usage_error_is_2_and_bad_logdir_is_3(tmp_path):
    usage = _run_cli("report")
    assert usage.returncode == 2 and "usage:" in usage.stderr
    assert _run_cli("report", logdir_missing := str(tmp_path / "missing")).returncode == 3
    assert _run_cli("frobnicate", logdir_missing).returncode == 2


def test_version_and_exit_codes_in_help():
    version = _run_cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"tb-gradflow {tb_gradflow.__version__}"
    for args in (["--help"], ["report", "--help"], ["diff", "--help"], ["export", "--help"]):
        text = _run_cli(*args).stdout
        assert "exit status:" in text and "3  bad logdir" in text, args


def test_diff_says_what_the_fix_removed_and_exits_for_ci(logdir, capsys):
    assert cli.main(["diff", logdir, "--run", "broken", "--run", "nested/fixed", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)["tags"]["gradflow"]
    assert [c["cause"] for c in d["cuts_only_in_a"]] == ["numpy_function"]
    assert d["starved_only_in_a"] == ["w"] and d["cuts_only_in_b"] == [] and d["starved_only_in_b"] == []
    assert cli.main(["diff", logdir, "--run", "nested/fixed", "--run", "broken"]) == 1
    out = capsys.readouterr().out
    assert "cuts in broken that nested/fixed does not have" in out and "worse" in out
    assert cli.main(["diff", logdir, "--run", "broken", "--run", "broken"]) == 0
    assert "same cuts" in capsys.readouterr().out


def test_diff_errors(logdir, capsys):
    assert cli.main(["diff", logdir, "--run", "broken"]) == 2
    assert cli.main(["diff", logdir, "--run", "broken", "--run", "nope"]) == 3
    assert "no gradflow data for run 'nope'" in capsys.readouterr().err


def test_colour_only_on_request_or_a_terminal(logdir, capsys):
    assert cli.main(["report", logdir, "--run", "broken"]) == 1
    assert "\x1b[" not in capsys.readouterr().out  # captured stdout is not a terminal
    assert cli.main(["report", logdir, "--run", "broken", "--color", "always"]) == 1
    assert "\x1b[1;31m" in capsys.readouterr().out


def test_no_color_is_respected_on_a_terminal(monkeypatch):
    class Tty:
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert T.use_color(Tty())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not T.use_color(Tty())


def test_long_name_lists_are_cut_to_a_count_by_layer():
    names = [f"backbone_block_{i:02d}/{w}" for i in range(30) for w in ("kernel", "bias")]
    assert T.name_list(names) == "60 variables in 30 layers: backbone_block_00 … backbone_block_29"
    assert T.name_list(["a/kernel", "a/bias"]) == "a/kernel, a/bias"


def test_text_is_wrapped_to_the_width():
    text = T.wrap(["  hint: " + "word " * 60], 50)
    assert all(len(line) <= 50 for line in text.splitlines()) and len(text.splitlines()) > 3
    assert all(line.startswith("    ") for line in text.splitlines()[1:])


def test_a_name_too_long_for_a_line_breaks_after_a_scope():
    name = "functional_1/bert_backbone_1/transformer_layer_0_1/feedforward_layer_norm_1/moments/StopGradient"
    lines = T.wrap([f"    StopGradient '{name}' (stop_gradient) at train.py:16"], 80).splitlines()
    assert all(len(line) <= 80 for line in lines)
    # The break falls after a whole scope, not inside one ("transformer_layer_0_1/feedf").
    assert lines[0] == "    StopGradient 'functional_1/bert_backbone_1/transformer_layer_0_1/"
    assert lines[1].startswith("      feedforward_layer_norm_1/moments/StopGradient'")
    # Words that fit are not split at their slashes.
    assert T.wrap(["  starves: " + ", ".join(["model/dense_1/kernel"] * 6)], 60).splitlines()[1].strip().startswith(
        "model/dense_1/kernel"
    )


def test_control_characters_in_names_never_reach_the_terminal():
    assert T.safe("op\x1b[2Jname\n") == "op\\x1b[2Jname\\x0a"


def test_every_step_of_a_custom_tag_is_read_beside_other_summaries(tmp_path, capsys):
    """Only a tag's first value names the plugin; later steps are found by their tag."""
    logdir = str(tmp_path)
    writer = tf.summary.create_file_writer(os.path.join(logdir, "run"))
    with writer.as_default():
        for step in range(3):
            tf.summary.scalar("loss", 1.0 / (step + 1), step=step)
    writer.close()
    _write_run(logdir, "run", True, steps=(0, 5, 10), tag="probe")
    assert cli.main(["report", logdir, "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["runs"]["run"]["tags"]["probe"]["steps"] == [0, 5, 10]


def test_many_harmless_blockers_are_one_line_by_type():
    from tb_gradflow.report import CutPoint, Report, VariableRecord

    cuts = tuple(CutPoint(f"net/block_{i:02d}_bn/moments/StopGradient", "StopGradient", "stop_gradient", "m.py:1", ())
                 for i in range(53))
    report = Report({"net/k": VariableRecord("net/k", "flowing", 1.0)}, (), cuts, step=3)
    lines = T.report_lines(report, T.Style(False))
    assert "53 blocking ops starve nothing" in lines[2]
    assert lines[3] == ("    StopGradient (stop_gradient): 53 ops in 53 layers: "
                        "net/block_00_bn/moments … net/block_52_bn/moments")
    assert len(lines) == 5 and lines[4].startswith("    hint (stop_gradient):")


def test_export_to_a_missing_folder_is_one_line_and_writes_nothing(logdir, tmp_path):
    target = tmp_path / "missing" / "dir" / "x.html"
    done = _run_cli("export", logdir, "-o", str(target))
    assert done.returncode == cli.EXIT_OUTPUT
    assert done.stderr.strip().splitlines() == [f"tb-gradflow: cannot write {str(target)!r}: the folder "
                                                f"{str(target.parent)!r} does not exist"]
    assert not (tmp_path / "missing").exists()


def test_export_of_a_step_not_logged_names_the_logged_steps(logdir, tmp_path, capsys):
    out = tmp_path / "x.html"
    assert cli.main(["export", logdir, "--run", "broken", "--step", "999", "-o", str(out)]) == cli.EXIT_NO_DATA
    assert capsys.readouterr().err.strip() == (
        "tb-gradflow: step 999 is not logged in run 'broken', tag 'gradflow': 3 steps logged: 0, 5, 10")
    assert not out.exists()
    assert cli._steps_text(list(range(0, 1200, 10))) == "120 steps logged: 0, 10, 20 … 1170, 1180, 1190"


def test_a_filter_that_matches_nothing_names_the_runs_and_tags_there(logdir, capsys):
    assert cli.main(["report", logdir, "--run", "nosuch"]) == cli.EXIT_NO_DATA
    err = capsys.readouterr().err
    assert "--run 'nosuch'" in err and "'broken' (tags 'gradflow')" in err and "'nested/fixed' (tags 'gradflow')" in err
    assert cli.main(["report", logdir, "--tag", "nope"]) == cli.EXIT_NO_DATA
    assert "--tag 'nope'" in capsys.readouterr().err


def test_a_reader_that_leaves_early_gets_no_traceback(logdir):
    """`report logs | head -c 10`: the pipe is closed before the report is written."""
    proc = subprocess.Popen([sys.executable, "-m", "tb_gradflow", "report", logdir],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first write
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == cli.EXIT_BROKEN_PIPE
    assert err == ""


def test_colour_keeps_the_hanging_indent_of_wrapped_lines():
    style = T.Style(True)
    plain = T.wrap(["  hint: " + "word " * 30], 40).splitlines()
    coloured = T.wrap([style.dim("  hint: " + "word " * 30)], 40).splitlines()
    assert len(coloured) > 2 and all(line.startswith("    word") for line in plain[1:])
    assert all(line.startswith("    word") for line in coloured[1:]), coloured
