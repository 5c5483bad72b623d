"""Cuts inside loops and map_fn, and sentences that must be true (issue 16, items 4 and 5).

A TensorList (TensorArray, map_fn and scan results) carries a gradient only if its elements
can: the walk reads their dtype, follows the gradient into the loop body to the op that really
cuts it and names it with the user's line there. Checked against a plain tf.GradientTape.
"""
from __future__ import annotations

import keras
import pytest
import tensorflow as tf

import tb_gradflow
from support.oracle import line_of, report_states, tape_states
from tb_gradflow import vocabulary as V
from tb_gradflow.story import story, story_lines

X = tf.random.stateless_normal([3, 4], seed=[4, 2])


def _only_cut(report):
    [cut] = report.starving_cut_points
    return cut


def _not_unused(report) -> None:
    assert "unused" not in {n["kind"] for n in story(report)["notes"]}


def test_sampling_in_a_while_loop_into_a_tensor_array():
    policy = tf.Variable(tf.random.stateless_normal([4, 5], seed=[1, 1]), name="policy")
    emb = tf.Variable(tf.random.stateless_normal([5, 3], seed=[1, 2]), name="emb")

    def loss_fn(x):
        logits = x @ policy
        ids = tf.TensorArray(tf.int32, size=3)

        def body(i, ids):
            drawn = tf.random.categorical(logits, 1)[:, 0]  # MARK sample
            return i + 1, ids.write(i, tf.cast(drawn, tf.int32))

        _, ids = tf.while_loop(lambda i, _: i < 3, body, [0, ids])
        return tf.reduce_sum(tf.gather(emb, ids.stack()))

    report = tb_gradflow.analyze(loss_fn, X)
    assert report_states(report) == tape_states(loss_fn, [X], [policy, emb])
    cut = _only_cut(report)
    assert (cut.op_type, cut.cause) == ("Multinomial", V.NON_DIFFERENTIABLE)
    assert cut.starved_variables == ("policy",)
    assert cut.op_name.startswith("while/body/")
    assert cut.source == line_of(__file__, "MARK sample")
    assert not [c for c in report.cut_points if c.op_type == "TensorListStack"]
    _not_unused(report)


def test_map_fn_over_searchsorted_buckets():
    w = tf.Variable(tf.random.stateless_normal([4, 4], seed=[2, 1]), name="w")
    head = tf.Variable(tf.ones([6]), name="head")
    edges = tf.linspace(-3.0, 3.0, 5)

    def loss_fn(x):
        h = x @ w
        buckets = tf.map_fn(lambda row: tf.searchsorted(edges, row), h,  # MARK buckets
                            fn_output_signature=tf.int32)
        return tf.reduce_sum(tf.one_hot(buckets, 6) * head)

    report = tb_gradflow.analyze(loss_fn, X)
    assert report_states(report) == tape_states(loss_fn, [X], [w, head])
    cut = _only_cut(report)
    assert (cut.op_type, cut.starved_variables) == ("LowerBound", ("w",))
    assert cut.source == line_of(__file__, "MARK buckets")
    _not_unused(report)


def test_tfp_histogram_as_a_feature():
    tfp = pytest.importorskip("tensorflow_probability")
    w = tf.Variable(tf.random.stateless_normal([4, 4], seed=[3, 1]), name="w")
    head = tf.Variable(tf.ones([4, 1]), name="head")
    edges = tf.linspace(-3.0, 3.0, 5)

    def loss_fn(x):
        h = tf.clip_by_value(x @ w, -2.9, 2.9)
        counts = tfp.stats.histogram(h, edges=edges, axis=0)  # MARK histogram
        return tf.reduce_sum(tf.cast(counts, tf.float32) * head)

    report = tb_gradflow.analyze(loss_fn, X)
    assert report_states(report) == tape_states(loss_fn, [X], [w, head])
    starving = report.starving_cut_points
    assert {c.op_type for c in starving} == {"UpperBound", "Less", "Greater"}
    assert all(c.starved_variables == ("w",) for c in starving)
    assert {c.source for c in starving} == {line_of(__file__, "MARK histogram")}
    _not_unused(report)


def test_float_loop_results_still_flow():
    """A TensorArray of floats is a path: nothing is cut, the tape agrees."""
    w = tf.Variable(tf.ones([4, 4]), name="w")

    def loss_fn(x):
        acc = tf.TensorArray(tf.float32, size=3)
        _, acc = tf.while_loop(lambda i, _: i < 3, lambda i, a: (i + 1, a.write(i, x @ w)),
                               [0, acc])
        return tf.reduce_sum(acc.stack())

    report = tb_gradflow.analyze(loss_fn, X)
    assert report_states(report) == tape_states(loss_fn, [X], [w]) == {"w": "flowing"}
    assert report.cut_points == ()


class _Scaled(keras.layers.Layer):
    """A layer with an integer trainable weight (keras-team/keras#20058)."""

    def build(self, shape):
        self.k = self.add_weight(shape=(), initializer="ones", dtype="int32", name="k")
        self.w = self.add_weight(shape=(shape[-1], 2), name="w")

    def call(self, x):
        return (x @ self.w) * tf.cast(self.k, tf.float32)


@pytest.mark.parametrize("eager", [False, True])
def test_an_integer_variable_is_its_own_cause(eager):
    model = keras.Sequential([keras.Input((4,)), _Scaled(name="scaled")], name="net")

    def loss_fn(x):
        if eager:  # untraceable: the eager fallback must tell the same
            float(tf.reduce_sum(x).numpy())
        return tf.reduce_sum(model(x))

    report = tb_gradflow.analyze(loss_fn, X)
    assert bool(report.fallback_reason) == eager
    assert report_states(report) == tape_states(loss_fn, [X], model.trainable_variables)
    cut = _only_cut(report)
    assert cut.cause == V.INTEGER_VARIABLE and cut.starved_variables == ("net/scaled/k",)
    assert "make it float" in cut.hint and "not trainable" in cut.hint
    assert "integer variable" in " ".join(story_lines(report))


@pytest.mark.parametrize("case", ["argmax_embedding", "cast_pair"])
def test_a_cut_never_claims_an_unnamed_closer_cut(case):
    w = tf.Variable(tf.random.stateless_normal([4, 5], seed=[5, 1]), name="w")
    emb = keras.layers.Embedding(5, 3, name="emb")
    emb.build((None,))

    def loss_fn(x):
        h = x @ w
        if case == "argmax_embedding":
            return tf.reduce_sum(emb(tf.argmax(h, axis=-1)))
        return tf.reduce_sum(tf.cast(tf.cast(h * 3.0, tf.int32), tf.float32))

    report = tb_gradflow.analyze(loss_fn, X)
    told = story(report)
    [cut] = told["cuts"]
    assert "closer" not in cut["arriving"]
    assert cut["arriving"] == V.ARRIVING[V.NONE]
    # A top-level cut is measured: the tab must not call it "not measured inside a body".
    op = next(o for o in report.ops if o.name == cut["op_name"])
    assert op.measured and op.name.count("/body/") == 0


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_a_keras_rnn_loop_is_reached_through_its_tensor_list(kind):
    """A Keras RNN hands its outputs to the loss through a TensorList stacked after the loop: the
    `While` op and its body ops are reached (never "none"), as every RNN variable's tape says."""
    x = tf.random.stateless_normal([4, 5, 3], seed=[1, 2])
    y = tf.random.stateless_normal([4, 2], seed=[3, 4])
    model = keras.Sequential(
        [keras.Input((5, 3)), getattr(keras.layers, kind)(6, name="rnn"), keras.layers.Dense(2)]
    )

    def loss_fn(x, y):
        return tf.reduce_mean(tf.square(model(x, training=True) - y))

    report = tb_gradflow.analyze(loss_fn, x, y)
    tape = tape_states(loss_fn, (x, y), model.trainable_variables)
    assert report_states(report) == tape and set(tape.values()) == {V.FLOWING}
    loops = [op for op in report.ops if op.type in ("While", "StatelessWhile")]
    assert loops and all(op.state == V.FLOWING and op.norm > 0 for op in loops)
    body = [op for op in report.ops if "/while/body/" in op.name]
    assert len(body) > 10 and {op.state for op in body} == {V.FLOWING}
    assert story(report)["tone"] == "ok"
