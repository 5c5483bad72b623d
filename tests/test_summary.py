"""summary.gradflow: what it writes, when it writes the graph, retraces, optimizer, failures."""
from __future__ import annotations

import glob
import logging
import os

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.compat.proto import summary_pb2

import tb_gradflow
from support.oracle import report_states, tape_states
from tb_gradflow.capture.analyze import probe_for
from tb_gradflow.format import metadata
from tb_gradflow.reading.local_logdir import local_provider
from tb_gradflow.reading.reader import GradflowReader


def _events(logdir: str) -> list:
    values = []
    for path in sorted(glob.glob(os.path.join(logdir, "**", "events.out.tfevents.*"), recursive=True)):
        for event in event_file_loader.LegacyEventFileLoader(path).Load():
            for value in event.summary.value:
                values.append((event.step, value))
    return values


def _model():
    w = tf.Variable(tf.ones([3, 2]), name="w")
    table = tf.Variable(tf.ones([2]), name="table")

    def loss_fn(x):
        h = tf.matmul(x, w)
        g = tf.numpy_function(lambda a, t: (a * t).astype(np.float32), [h, table], tf.float32)
        return tf.reduce_sum(g) + tf.reduce_sum(h)

    return loss_fn, w, table


def test_writes_graph_once_and_a_step_per_call(tmp_path):
    loss_fn, _, _ = _model()
    x = tf.ones([4, 3])
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        for step in range(5):
            report = tb_gradflow.summary.gradflow("flow", loss_fn, x, step=step, description="d")
            assert report.step == step
    writer.flush()
    values = _events(str(tmp_path))
    graph_values = [(s, v) for s, v in values if v.tag.startswith("flow/_graph/")]
    step_values = [(s, v) for s, v in values if v.tag == "flow"]
    assert len(graph_values) == 1
    assert [s for s, _ in step_values] == [0, 1, 2, 3, 4]
    for _, value in graph_values + step_values:
        assert value.metadata.plugin_data.plugin_name in ("", metadata.PLUGIN_NAME)
    first_step_meta = step_values[0][1].metadata
    assert first_step_meta.plugin_data.plugin_name == "gradflow"
    assert first_step_meta.data_class == summary_pb2.DATA_CLASS_TENSOR
    assert graph_values[0][1].metadata.data_class == summary_pb2.DATA_CLASS_BLOB_SEQUENCE
    assert first_step_meta.summary_description == "d"


def test_no_retrace_on_repeated_calls():
    loss_fn, _, _ = _model()
    x = tf.ones([4, 3])
    for _ in range(4):
        tb_gradflow.analyze(loss_fn, x)
    probe = probe_for(loss_fn, None, None)
    assert probe._function.experimental_get_tracing_count() == 1  # pylint: disable=protected-access


def test_retrace_makes_a_new_graph_version_and_old_steps_keep_theirs(tmp_path):
    loss_fn, _, _ = _model()
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        tb_gradflow.summary.gradflow("flow", loss_fn, tf.ones([4, 3]), step=0)
        tb_gradflow.summary.gradflow("flow", loss_fn, tf.ones([4, 3]), step=1)
        tb_gradflow.summary.gradflow("flow", loss_fn, tf.ones([5, 3]), step=2)  # a retrace
        tb_gradflow.summary.gradflow("flow", loss_fn, tf.ones([4, 3]), step=3)
    writer.flush()
    reader = GradflowReader(local_provider(str(tmp_path)))
    info = reader.list()["."]["flow"]
    assert len(info.graph_tags) == 2
    series = reader.read(".", "flow", info)
    assert series.steps == [0, 1, 2, 3]
    ids = [series.where[s][0] for s in series.steps]
    assert ids[0] == ids[1] == ids[3] != ids[2]
    assert series.versions[ids[2]].graph != series.versions[ids[0]].graph
    assert series.report(2).loss == pytest.approx(series.report(0).loss * 5 / 4)


def test_new_input_shape_retraces(tmp_path):
    loss_fn, _, _ = _model()
    tb_gradflow.analyze(loss_fn, tf.ones([4, 3]))
    a = tb_gradflow.analyze(loss_fn, tf.ones([4, 3]))
    b = tb_gradflow.analyze(loss_fn, tf.ones([5, 3]))
    assert a.graph_id != b.graph_id


def test_without_default_writer_returns_report_and_writes_nothing(tmp_path):
    loss_fn, _, _ = _model()
    report = tb_gradflow.summary.gradflow("flow", loss_fn, tf.ones([2, 3]), step=0)
    assert report is not None
    assert report.starved_variables == ["table"]


def test_step_defaults_to_the_global_summary_step(tmp_path):
    loss_fn, _, _ = _model()
    writer = tf.summary.create_file_writer(str(tmp_path))
    tf.summary.experimental.set_step(42)
    try:
        with writer.as_default():
            report = tb_gradflow.summary.gradflow("flow", loss_fn, tf.ones([2, 3]))
    finally:
        tf.summary.experimental.set_step(None)
    writer.flush()
    assert report.step == 42
    assert [s for s, v in _events(str(tmp_path)) if v.tag == "flow"] == [42]


def test_step_may_be_a_variable_or_a_tensor():
    loss_fn, _, _ = _model()
    iterations = tf.Variable(5, dtype=tf.int64)
    assert tb_gradflow.summary.gradflow("flow", loss_fn, tf.ones([2, 3]), step=iterations, strict=True).step == 5
    assert tb_gradflow.summary.gradflow("flow", loss_fn, tf.ones([2, 3]), step=tf.constant(7), strict=True).step == 7


def test_optimizer_applies_the_probe_gradients():
    w = tf.Variable([1.0, 2.0], name="w")
    frozen_by_cut = tf.Variable([3.0], name="cut_off")

    def loss_fn(x):
        blocked = tf.stop_gradient(frozen_by_cut * 2.0)
        return tf.reduce_sum(w * x) + tf.reduce_sum(blocked)

    x = tf.constant([0.5, -1.0])
    optimizer = tf.keras.optimizers.SGD(learning_rate=0.1)
    report = tb_gradflow.summary.gradflow(
        "flow", loss_fn, x, step=0, optimizer=optimizer, variables=[w, frozen_by_cut], strict=True
    )
    assert report.variables["w"].state == "flowing"
    np.testing.assert_allclose(w.numpy(), [1.0 - 0.05, 2.0 + 0.1], rtol=1e-6)
    np.testing.assert_allclose(frozen_by_cut.numpy(), [3.0])


def test_failure_warns_and_returns_none_unless_strict(caplog):
    def broken(x):
        raise RuntimeError("boom")

    with caplog.at_level(logging.WARNING, logger="tb_gradflow"):
        assert tb_gradflow.summary.gradflow("flow", broken, tf.ones([1]), step=0) is None
    assert "boom" in caplog.text
    with pytest.raises(RuntimeError, match="boom"):
        tb_gradflow.summary.gradflow("flow", broken, tf.ones([1]), step=0, strict=True)


def test_untraceable_loss_falls_back_to_an_eager_tape():
    w = tf.Variable([1.0, 2.0], name="w")
    cut = tf.Variable(1.0, name="cut")

    def loss_fn(x):
        host = (x * cut).numpy()  # cannot be traced into a graph
        return tf.reduce_sum(w * x) + float(host.sum())

    report = tb_gradflow.analyze(loss_fn, tf.constant([1.0, 3.0]))
    assert "could not be traced" in report.fallback_reason
    assert report.ops == ()
    assert report.variables["w"].state == "flowing"
    assert report.variables["cut"].state == "none"
    assert "op-level detail unavailable" in str(report)


def test_step_proto_of_a_resnet_sized_graph_fits_in_10kb():
    from tb_gradflow.format.records import encode_step

    rng = np.random.default_rng(0)
    states = ["flowing", "none", "zero", "nonfinite"]
    step = encode_step(
        "0123456789abcdef",
        [states[i] for i in rng.integers(0, 4, 1400)],
        list(rng.lognormal(size=1400)),
        [states[i] for i in rng.integers(0, 4, 214)],
        list(rng.lognormal(size=214)),
        1.5,
    )
    assert len(step.SerializeToString()) <= 10_000


# -- Logged steps are never lost (issue 7, section 4) ---------------------------------------------

def _read(logdir: str, tag: str):
    reader = GradflowReader(local_provider(logdir))
    listing = reader.list()
    return reader.read(".", tag, listing["."][tag])


def _assert_matches_tape(series, loss_fn, x, variables):
    expected = tape_states(loss_fn, [x], variables)
    for step in series.steps:
        assert report_states(series.report(step)) == expected


def test_record_if_keeps_every_recorded_step_readable(tmp_path):
    loss_fn, w, table = _model()
    x = tf.ones([4, 3])
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        for step in range(1, 10):
            with tf.summary.record_if(lambda step=step: step % 3 == 0):
                report = tb_gradflow.summary.gradflow("flow", loss_fn, x, step=step, strict=True)
            assert report.step == step
    writer.flush()
    series = _read(str(tmp_path), "flow")
    assert series.steps == [3, 6, 9]
    _assert_matches_tape(series, loss_fn, x, [w, table])
    assert len([v for _, v in _events(str(tmp_path)) if "/_graph/" in v.tag]) == 1


def test_two_names_on_one_loss_each_get_their_graph(tmp_path):
    loss_fn, w, table = _model()
    x = tf.ones([4, 3])
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        for step in range(3):
            tb_gradflow.summary.gradflow("first", loss_fn, x, step=step, strict=True)
            tb_gradflow.summary.gradflow("second", loss_fn, x, step=step, strict=True)
    writer.flush()
    for tag in ("first", "second"):
        series = _read(str(tmp_path), tag)
        assert series.steps == [0, 1, 2]
        _assert_matches_tape(series, loss_fn, x, [w, table])


def test_name_scope_prefixes_the_tag_like_tf_summary(tmp_path):
    loss_fn, w, table = _model()
    x = tf.ones([4, 3])
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        with tf.name_scope("train"):
            tb_gradflow.summary.gradflow("flow", loss_fn, x, step=0, strict=True)
            tf.summary.scalar("loss", 1.0, step=0)
        # Eager tags are remembered per scope: the same name elsewhere is another tag.
        tb_gradflow.summary.gradflow("flow", loss_fn, x, step=0, strict=True)
        with tf.name_scope("eval"):
            tb_gradflow.summary.gradflow("flow", loss_fn, x, step=0, strict=True)
    writer.flush()
    tags = {v.tag for _, v in _events(str(tmp_path))}
    assert "train/loss" in tags and "train/flow" in tags
    assert any(t.startswith("train/flow/_graph/") for t in tags)
    assert sorted(GradflowReader(local_provider(str(tmp_path))).list()["."]) == ["eval/flow", "flow", "train/flow"]
    _assert_matches_tape(_read(str(tmp_path), "train/flow"), loss_fn, x, [w, table])


# -- Inside the user's own tf.function ------------------------------------------------------------

def _same_report(a, b):
    assert [(o.name, o.state) for o in a.ops] == [(o.name, o.state) for o in b.ops]
    assert report_states(a) == report_states(b)
    for x, y in zip(a.ops, b.ops, strict=False):
        if x.norm is not None:
            np.testing.assert_allclose(x.norm, y.norm, rtol=1e-5)


@pytest.mark.parametrize("step_kind", ["python_int", "tensor"])
def test_inside_a_tf_function_each_call_writes_one_step(tmp_path, step_kind):
    w = tf.Variable(tf.ones([3, 2]), name="w")
    table = tf.Variable(tf.ones([2]), name="table")
    host_calls = []

    def lookup(a, t):
        host_calls.append(1)
        return (a * t).astype(np.float32)

    def loss_fn(x):
        h = tf.matmul(x, w)
        return tf.reduce_sum(tf.numpy_function(lookup, [h, table], tf.float32)) + tf.reduce_sum(h)

    x = tf.ones([4, 3])
    writer = tf.summary.create_file_writer(str(tmp_path))
    returned = []

    @tf.function
    def train_step(x, step):
        with tf.name_scope("train"), tf.summary.record_if(step % 2 == 0):
            return tb_gradflow.summary.gradflow("flow", loss_fn, x, step=step, strict=True)

    with writer.as_default():
        for step in range(1, 7):
            step_arg = step if step_kind == "python_int" else tf.constant(step, tf.int64)
            returned.append(bool(train_step(x, step_arg).numpy()))
    writer.flush()
    assert returned == [False, True, False, True, False, True]
    assert len(host_calls) == 3  # steps that record_if skips do not even run the probe
    series = _read(str(tmp_path), "train/flow")
    assert series.steps == [2, 4, 6]
    _assert_matches_tape(series, loss_fn, x, [w, table])
    eager = tb_gradflow.analyze(loss_fn, x)
    for step in series.steps:
        _same_report(series.report(step), eager)
        assert series.report(step).graph_id == eager.graph_id  # one traced probe serves both
    graph_blobs = [v for _, v in _events(str(tmp_path)) if "/_graph/" in v.tag]
    assert len(graph_blobs) == 1


def test_inside_a_tf_function_with_optimizer_iterations_as_step(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu", name="a"),
                              keras.layers.Dense(1, name="b")])
    optimizer = keras.optimizers.Adam(0.01)
    x, y = tf.random.normal([8, 3], seed=1), tf.random.normal([8, 1], seed=2)

    def loss_fn(x, y):
        return tf.reduce_mean(tf.square(model(x) - y))

    @tf.function
    def train_step(x, y):
        tb_gradflow.summary.gradflow("flow", loss_fn, x, y, step=optimizer.iterations,
                                     optimizer=optimizer, strict=True)
        tb_gradflow.summary.gradflow("again", loss_fn, x, y, step=optimizer.iterations, strict=True)

    writer = tf.summary.create_file_writer(str(tmp_path))
    expected = []
    with writer.as_default():
        for _ in range(3):
            expected.append(tape_states(loss_fn, [x, y], model.trainable_variables))
            train_step(x, y)
    writer.flush()
    assert int(optimizer.iterations.numpy()) == 3
    for tag in ("flow", "again"):
        series = _read(str(tmp_path), tag)
        assert series.steps == [1, 2, 3]
        for step, states in zip(series.steps, expected, strict=False):
            assert report_states(series.report(step)) == states
    # The step written is the optimizer's, after its update, as when called eagerly.
    eager = tb_gradflow.analyze(loss_fn, x, y)
    _same_report(_read(str(tmp_path), "again").report(3), eager)


def test_inside_jit_compile_warns_and_still_takes_the_optimizer_step(tmp_path, caplog):
    import keras

    w = tf.Variable([1.0, 2.0], name="w")
    twin = tf.Variable([1.0, 2.0], name="twin")
    optimizer, plain_optimizer = keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1)
    x = tf.constant([0.5, -1.0])

    @tf.function(jit_compile=True)
    def train_step(x):
        return tb_gradflow.summary.gradflow(
            "flow", lambda x: tf.reduce_sum(w * w * x), x, step=0, optimizer=optimizer
        )

    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default(), caplog.at_level(logging.WARNING, logger="tb_gradflow"):
        train_step(x)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(twin * twin * x)
    plain_optimizer.apply_gradients([(tape.gradient(loss, twin), twin)])
    np.testing.assert_allclose(w.numpy(), twin.numpy(), rtol=1e-6)
    assert "jit_compile=True" in caplog.text and "optimizer step is still taken" in caplog.text

    @tf.function(jit_compile=True)
    def strict_step(x):
        return tb_gradflow.summary.gradflow("flow", lambda x: tf.reduce_sum(w * x), x, step=0, strict=True)

    with writer.as_default(), pytest.raises(Exception, match="XLA-compiled"):
        strict_step(x)


def test_inside_a_tf_function_a_retrace_writes_its_own_graph_version(tmp_path):
    loss_fn, w, table = _model()
    writer = tf.summary.create_file_writer(str(tmp_path))

    @tf.function
    def train_step(x, step):
        return tb_gradflow.summary.gradflow("flow", loss_fn, x, step=step, strict=True)

    with writer.as_default():
        for step, rows in enumerate([4, 5, 4, 5], start=1):  # a new input shape retraces
            assert bool(train_step(tf.ones([rows, 3]), tf.constant(step, tf.int64)).numpy())
    writer.flush()
    series = _read(str(tmp_path), "flow")
    assert series.steps == [1, 2, 3, 4]
    assert len(series.versions) == 2
    assert len([v for _, v in _events(str(tmp_path)) if "/_graph/" in v.tag]) == 2
    _assert_matches_tape(series, loss_fn, tf.ones([4, 3]), [w, table])
