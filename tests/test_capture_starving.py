"""A cut point starves a variable only if letting that one op pass would feed the variable."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

import tb_gradflow
from support.oracle import report_states, tape_states
from tb_gradflow import vocabulary as V
from tb_gradflow.story import story

X = tf.constant(np.linspace(-1.0, 1.0, 30, dtype=np.float32).reshape(5, 6))


def _identity(a):
    return a


def _paths(layer) -> tuple[str, ...]:
    return tuple(v.path for v in layer.trainable_variables)


def test_one_argmax_before_63_layer_norms_is_the_only_cut_that_starves():
    keras.utils.set_random_seed(0)
    router = keras.layers.Dense(4, name="router")
    table = keras.layers.Embedding(4, 8, name="table")
    norms = [keras.layers.LayerNormalization(name=f"norm_{i}") for i in range(63)]
    head = keras.layers.Dense(1, name="head")

    def loss_fn(x):
        h = table(tf.argmax(router(x), axis=-1))
        for norm in norms:
            h = norm(h)
        return tf.reduce_mean(head(h) ** 2)

    report = tb_gradflow.analyze(loss_fn, X)

    variables = [v for layer in [router, table, *norms, head] for v in layer.trainable_variables]
    assert report_states(report) == tape_states(loss_fn, [X], variables)
    [cut] = report.starving_cut_points
    assert cut.op_type == "ArgMax"
    assert cut.starved_variables == _paths(router) == tuple(report.starved_variables)
    harmless = [c for c in report.cut_points if not c.starved_variables]
    assert len(harmless) == 63 and {c.op_type for c in harmless} == {"StopGradient"}
    # tf.nn.moments' own StopGradients: told as such, with no fix to make
    assert {c.detail for c in harmless} == {V.MOMENTS_DETAIL} and {c.hint for c in harmless} == {V.MOMENTS_HINT}
    told = story(report)
    assert told["harmless_hints"] == [{"cause": V.STOP_GRADIENT, "hint": V.MOMENTS_HINT}]
    assert told["cuts"][0]["hint"] == V.HINTS[V.NON_DIFFERENTIABLE]


def test_only_the_moments_stop_gradient_is_told_harmless_by_design():
    """The StopGradient of tf.nn.moments loses nothing: the variance's gradient with respect to
    the mean is zero (checked here with a tape). A user's own stop_gradient on a mean, read by a
    subtraction, does lose a gradient, and keeps the usual hint."""
    keras.utils.set_random_seed(0)
    pre, norm, post = keras.layers.Dense(8, name="pre"), keras.layers.BatchNormalization(), keras.layers.Dense(1)
    y = pre(X)
    with tf.GradientTape() as tape:
        tape.watch(y)
        mean = tf.reduce_mean(y, 0)
        variance = tf.reduce_mean(tf.math.squared_difference(y, mean), 0)
    with tf.GradientTape() as stopped:
        stopped.watch(y)
        stopped_variance = tf.nn.moments(y, [0])[1]
    np.testing.assert_allclose(stopped.gradient(stopped_variance, y), tape.gradient(variance, y), atol=1e-6)

    def batch_norm_loss(x):
        return tf.reduce_mean(post(norm(pre(x), training=True)) ** 2)

    def centred_by_hand_loss(x):
        h = pre(x)
        return tf.reduce_mean(post(h - tf.stop_gradient(tf.reduce_mean(h, 0))) ** 2)

    [moments] = tb_gradflow.analyze(batch_norm_loss, X).cut_points
    assert (moments.op_type, moments.detail, moments.hint) == ("StopGradient", V.MOMENTS_DETAIL, V.MOMENTS_HINT)
    assert V.MOMENTS_HINT in " ".join(str(tb_gradflow.analyze(batch_norm_loss, X)).split())
    [by_hand] = tb_gradflow.analyze(centred_by_hand_loss, X).cut_points
    assert by_hand.op_type == "StopGradient" and by_hand.detail != V.MOMENTS_DETAIL
    assert by_hand.hint == V.HINTS[V.STOP_GRADIENT]


def test_only_the_logsumexp_shift_is_told_harmless_by_design():
    """tf.reduce_logsumexp subtracts its stopped maximum and adds it back: the gradient through
    that shift is zero (a tape gives the same gradient as the unshifted formula). A user's own
    shift by a stopped maximum, not added back, keeps the usual hint."""
    keras.utils.set_random_seed(0)
    dense = keras.layers.Dense(7, name="logits")
    y = dense(X)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(y)
        stable = tf.reduce_logsumexp(y, axis=-1)
        plain = tf.math.log(tf.reduce_sum(tf.exp(y), axis=-1))
    np.testing.assert_allclose(tape.gradient(stable, y), tape.gradient(plain, y), atol=1e-6)

    def losses():
        yield lambda x: tf.reduce_mean(tf.reduce_logsumexp(dense(x), axis=-1))
        yield lambda x: tf.reduce_mean(tf.reduce_logsumexp(dense(x), axis=-1, keepdims=True))
        yield lambda x: tf.reduce_mean(keras.ops.logsumexp(dense(x), axis=-1))

    for loss_fn in losses():
        report = tb_gradflow.analyze(loss_fn, X)
        assert report_states(report) == tape_states(loss_fn, [X], dense.trainable_variables)
        [shift] = report.cut_points
        assert (shift.op_type, shift.detail, shift.hint) == ("StopGradient", V.LOGSUMEXP_DETAIL, V.LOGSUMEXP_HINT)
        assert not shift.starved_variables

    def shifted_by_hand(x):
        h = dense(x)
        return tf.reduce_mean(tf.nn.softmax(h - tf.stop_gradient(tf.reduce_max(h, -1, keepdims=True)))[:, 0])

    [by_hand] = tb_gradflow.analyze(shifted_by_hand, X).cut_points
    assert by_hand.op_type == "StopGradient" and by_hand.detail != V.LOGSUMEXP_DETAIL
    assert by_hand.hint == V.HINTS[V.STOP_GRADIENT]


def test_round_before_batch_norm_blames_the_round_only():
    keras.utils.set_random_seed(0)
    pre, norm, post = keras.layers.Dense(8, name="pre"), keras.layers.BatchNormalization(), keras.layers.Dense(1)

    def loss_fn(x):
        return tf.reduce_mean(post(norm(tf.round(pre(x)), training=True)) ** 2)

    report = tb_gradflow.analyze(loss_fn, X)

    variables = pre.trainable_variables + norm.trainable_variables + post.trainable_variables
    assert report_states(report) == tape_states(loss_fn, [X], variables)
    assert [(c.op_type, c.starved_variables) for c in report.starving_cut_points] == [("Round", _paths(pre))]
    assert "StopGradient" in {c.op_type for c in report.cut_points if not c.starved_variables}


def test_sigmoid_with_binary_cross_entropy_does_not_blame_the_loss_internals():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((6,)), keras.layers.Dense(4, name="first"), keras.layers.Lambda(tf.round),
        keras.layers.Dense(1, activation="sigmoid", name="second"),
    ], name="clf")
    bce = keras.losses.BinaryCrossentropy()
    y = tf.ones([5, 1])

    def loss_fn(x):
        return bce(y, model(x))

    report = tb_gradflow.analyze(loss_fn, X)

    assert report_states(report) == tape_states(loss_fn, [X], model.trainable_variables)
    assert [(c.op_type, c.starved_variables) for c in report.starving_cut_points] == [
        ("Round", ("clf/first/kernel", "clf/first/bias"))
    ]
    assert "GreaterEqual" in {c.op_type for c in report.cut_points if not c.starved_variables}


def _harmless(report) -> list[tuple[str, str, str]]:
    return [(c.op_type, c.detail, c.hint) for c in report.cut_points if not c.starved_variables]


def test_a_tf_where_condition_in_a_loss_is_told_as_needing_nothing():
    """Sigmoid cross-entropy from logits picks its stable formula per element by
    `logits >= 0`, Huber its branch by `|error| <= delta`: both comparisons lose nothing (the
    gradient flows through the branches), so neither gets the "use a soft version" hint."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
    y = tf.constant([[1.0], [0.0], [1.0], [0.0], [1.0]])
    from_logits = keras.losses.BinaryCrossentropy(from_logits=True)
    losses = {
        "keras": lambda x: from_logits(y, model(x)),
        "tf.nn": lambda x: tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(y, model(x))),
        "huber": lambda x: keras.losses.Huber(delta=0.5)(y, model(x)),
    }
    for name, loss_fn in losses.items():
        report = tb_gradflow.analyze(loss_fn, X)
        assert report_states(report) == tape_states(loss_fn, [X], model.trainable_variables), name
        assert not report.starving_cut_points, name
        [(op_type, detail, hint)] = _harmless(report)
        assert op_type in ("GreaterEqual", "LessEqual"), name
        assert (detail, hint) == (V.WHERE_CONDITION_DETAIL, V.WHERE_CONDITION_HINT), name
        assert story(report)["harmless_hints"] == [{"cause": V.NON_DIFFERENTIABLE, "hint": V.WHERE_CONDITION_HINT}]


def test_a_comparison_read_otherwise_than_as_a_where_condition_keeps_its_hint():
    """The same comparison as a hard mask (cast and multiplied), or as a where condition that
    is the only way to some variable, is a real loss of gradient: the usual cause and hint."""
    w = tf.Variable(tf.ones([6, 3]), name="w")
    gate = tf.Variable(tf.fill([3], 0.5), name="gate")

    def masked(x):
        h = tf.matmul(x, w)
        positive = h >= 0.0
        return tf.reduce_sum(h * tf.cast(positive, tf.float32)) + tf.reduce_sum(tf.where(positive, h, 0.0))

    def gated(x):
        h = tf.matmul(x, w)
        return tf.reduce_sum(tf.where(gate > 0.2, h, -h))

    report = tb_gradflow.analyze(masked, X)
    assert report_states(report) == tape_states(masked, [X], [w])
    [(op_type, detail, hint)] = _harmless(report)
    assert op_type == "GreaterEqual" and hint == V.HINTS[V.NON_DIFFERENTIABLE]
    assert detail != V.WHERE_CONDITION_DETAIL
    report = tb_gradflow.analyze(gated, X)
    assert report_states(report) == tape_states(gated, [X], [w, gate])
    [cut] = report.starving_cut_points
    assert (cut.op_type, cut.starved_variables) == ("Greater", ("gate",))
    assert cut.detail != V.WHERE_CONDITION_DETAIL and cut.hint == V.HINTS[V.NON_DIFFERENTIABLE]


def test_cuts_in_parallel_starve_only_together_and_name_each_other():
    w = tf.Variable(tf.ones([6, 3]), name="w")
    b = tf.Variable(tf.ones([3]), name="b")

    def loss_fn(x):
        h = tf.matmul(x, w)
        left = tf.numpy_function(_identity, [h], tf.float32)
        right = tf.numpy_function(_identity, [h * 2.0], tf.float32)
        return tf.reduce_sum(left) + tf.reduce_sum(right) + tf.reduce_sum(b)

    report = tb_gradflow.analyze(loss_fn, X)

    assert report_states(report) == tape_states(loss_fn, [X], [w, b]) == {"w": "none", "b": "flowing"}
    left, right = report.starving_cut_points
    assert left.starved_variables == right.starved_variables == ("w",)
    assert left.parallel_cuts == (right.op_name,) and right.parallel_cuts == (left.op_name,)


def test_two_cuts_in_a_chain_name_the_one_nearest_the_loss():
    w = tf.Variable(tf.ones([6, 3]), name="w")

    def loss_fn(x):
        index = tf.argmax(tf.matmul(x, w), axis=-1)  # behind the numpy_function: reached by nothing
        h = tf.numpy_function(_identity, [tf.cast(index, tf.float32)], tf.float32)
        return tf.reduce_sum(h)

    report = tb_gradflow.analyze(loss_fn, X)

    assert report_states(report) == tape_states(loss_fn, [X], [w]) == {"w": "none"}
    [cut] = report.starving_cut_points
    assert cut.op_type == "PyFunc" and cut.starved_variables == ("w",) and cut.parallel_cuts == ()


def test_parallel_cuts_are_those_sharing_a_starved_variable():
    from tb_gradflow.capture.starving import parallel_cuts

    assert parallel_cuts({1: [0], 2: [0, 1], 3: [], 4: [1]}) == {1: [2], 2: [1, 4], 3: [], 4: [2]}
