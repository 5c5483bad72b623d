"""Presence against a plain GradientTape: the fraction of a gradient's elements that are nonzero
and finite, on ops (a gating op at the input it passes back to) and variables, to the byte's
precision (tb_gradflow/format/presence.py)."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import tb_gradflow
from tb_gradflow.format.presence import PRECISION


def fraction(grad) -> float:
    """The oracle: presence of one tape gradient, from its dense values on the host."""
    values = tf.convert_to_tensor(grad).numpy()
    return float(np.mean(np.isfinite(values) & (values != 0)))


def share(passed, arrived) -> float:
    """The oracle for a gating op: the nonzero elements it passes back over those arriving at
    its output (what the gate itself blocks, whatever was zero on arrival)."""
    passed, arrived = (tf.convert_to_tensor(g).numpy() for g in (passed, arrived))
    return float(np.count_nonzero(np.isfinite(passed) & (passed != 0)) / np.count_nonzero(arrived))


def tape_grads(loss_fn, args, seen: dict, targets: list):
    """Tape gradients of `loss_fn(*args)` w.r.t. variables and intermediates it put in `seen`."""
    seen.clear()
    with tf.GradientTape() as tape:
        loss = loss_fn(*args)
    return tape.gradient(loss, [seen[t] if isinstance(t, str) else t for t in targets])


def op_of(report, op_type: str, nth: int = 0):
    return [op for op in report.ops if op.type == op_type][nth]


def test_relu_layer_with_half_its_units_dead():
    keras.utils.set_random_seed(3)
    layer = keras.layers.Dense(8, activation="relu", name="hidden")
    head = keras.layers.Dense(1, name="head")
    x = tf.random.normal([16, 5], seed=4)
    head(layer(x))
    bias = np.zeros(8, np.float32)
    bias[[0, 2, 5, 7]] = -1e4  # these four units never fire
    layer.bias.assign(bias)
    seen: dict = {}

    def loss_fn(x):
        h = layer(x)
        seen["h"] = h
        return tf.reduce_sum(head(h) ** 2)

    report = tb_gradflow.analyze(loss_fn, x)
    relu = op_of(report, "Relu")
    assert relu.presence_at_input and relu.presence_of == "input"
    # What the ReLU passes back to its input is the gradient of the pre-activation, which feeds
    # nothing else: the tape's gradient w.r.t. the layer's kernel output plus bias.
    z_grad, kernel_grad, head_grad = _pre_activation_grads(layer, head, x)
    expected = fraction(z_grad)
    assert expected <= 0.5  # at most the four live units
    assert abs(relu.presence - expected) <= PRECISION
    # The gradient arriving at the ReLU's output is dense: the dead units still receive it.
    _, h_grad = tape_grads(loss_fn, [x], seen, [layer.kernel, "h"])
    assert fraction(h_grad) == 1.0
    kernel = report.variables[layer.kernel.path]
    assert abs(kernel.presence - fraction(kernel_grad)) <= PRECISION
    assert kernel.presence <= 0.5 and not kernel.sparse_gradient
    assert abs(report.variables[head.kernel.path].presence - fraction(head_grad)) <= PRECISION


def _pre_activation_grads(layer, head, x):
    with tf.GradientTape() as tape:
        z = tf.matmul(x, layer.kernel) + layer.bias
        loss = tf.reduce_sum(head(tf.nn.relu(z)) ** 2)
    return tape.gradient(loss, [z, layer.kernel, head.kernel])


def test_sign_passes_a_full_gradient_and_leaves_zero_behind():
    w = tf.Variable(tf.random.normal([3, 4], seed=1), name="w")
    x = tf.random.normal([6, 3], seed=2)
    seen: dict = {}

    def loss_fn(x):
        y = tf.matmul(x, w)
        seen["s"] = s = tf.sign(y)
        return tf.reduce_sum(s * tf.range(4, dtype=tf.float32))

    report = tb_gradflow.analyze(loss_fn, x)
    w_grad, s_grad = tape_grads(loss_fn, [x], seen, [w, "s"])
    assert report.variables["w"].presence == fraction(w_grad) == 0.0
    sign = op_of(report, "Sign")
    assert not sign.presence_at_input
    # A quarter of the arriving gradient is zero (the column weighted by 0).
    assert abs(sign.presence - fraction(s_grad)) <= PRECISION and fraction(s_grad) == 0.75
    assert op_of(report, "MatMul").presence == 0.0


def test_embedding_presence_is_the_share_of_rows_the_batch_touches():
    keras.utils.set_random_seed(5)
    embedding = keras.layers.Embedding(100, 4, name="embed")
    ids = tf.constant([[3, 17, 17, 42], [3, 99, 0, 42]])  # 5 distinct rows of 100
    embedding(ids)

    def loss_fn(ids):
        return tf.reduce_sum(embedding(ids) ** 2)

    report = tb_gradflow.analyze(loss_fn, ids)
    (grad,) = tape_grads(loss_fn, [ids], {}, [embedding.embeddings])
    assert isinstance(grad, tf.IndexedSlices)
    table = report.variables[embedding.embeddings.path]
    assert table.sparse_gradient
    assert abs(table.presence - fraction(grad)) <= PRECISION
    assert fraction(grad) == pytest.approx(5 / 100)


def test_repeated_rows_that_cancel_get_no_gradient():
    table = tf.Variable(tf.ones([10, 2]), name="table")
    ids = tf.constant([1, 1, 4])
    sign = tf.constant([[1.0], [-1.0], [1.0]])  # row 1's two lookups cancel exactly

    def loss_fn(ids):
        return tf.reduce_sum(tf.gather(table, ids) * sign)

    report = tb_gradflow.analyze(loss_fn, ids)
    (grad,) = tape_grads(loss_fn, [ids], {}, [table])
    assert fraction(grad) == pytest.approx(0.1)
    assert abs(report.variables["table"].presence - fraction(grad)) <= PRECISION


def test_clipped_activation_counts_what_the_clip_passes_back():
    w = tf.Variable(tf.random.normal([4, 32], seed=6) * 2.0, name="w")
    x = tf.random.normal([8, 4], seed=7)
    seen: dict = {}

    def loss_fn(x):
        seen["z"] = z = tf.matmul(x, w)
        return tf.reduce_sum(tf.clip_by_value(z, -1.0, 1.0) ** 2)

    def written_out(x):  # clip_by_value as TensorFlow builds it, its Minimum's output watched
        seen["z"] = z = tf.matmul(x, w)
        seen["m"] = m = tf.minimum(z, 1.0)
        return tf.reduce_sum(tf.maximum(m, -1.0) ** 2)

    report = tb_gradflow.analyze(loss_fn, x)
    w_grad, z_grad, m_grad = tape_grads(written_out, [x], seen, [w, "z", "m"])
    # clip_by_value is Maximum(Minimum(z, 1), -1): Minimum gates z itself, and gets from the
    # Maximum a gradient already zero where z < -1.
    low_side = op_of(report, "Minimum")
    assert low_side.presence_at_input
    assert abs(low_side.presence - share(z_grad, m_grad)) <= PRECISION
    assert 0.05 < share(z_grad, m_grad) < 0.95  # a real mix of clipped and passed elements
    assert share(z_grad, m_grad) > fraction(z_grad) + 0.05  # not counted against every element
    assert abs(report.variables["w"].presence - fraction(w_grad)) <= PRECISION


def test_explicit_min_max_and_where_against_constants():
    w = tf.Variable(tf.random.normal([4, 16], seed=8), name="w")
    v = tf.Variable(tf.random.normal([4, 16], seed=9), name="v")
    x = tf.random.normal([8, 4], seed=10)
    seen: dict = {}

    def loss_fn(x):
        seen["a"] = a = tf.matmul(x, w)
        seen["m"] = m = tf.minimum(a, 0.5)
        capped = tf.maximum(m, -0.5)
        seen["b"] = b = tf.matmul(x, v)
        kept = tf.where(b > 0.3, b, 0.0)
        both = tf.maximum(a, b)  # two path tensors: not a gate, presence at its output
        return tf.reduce_sum(capped ** 2) + tf.reduce_sum(kept ** 2) + tf.reduce_sum(both)

    report = tb_gradflow.analyze(loss_fn, x)
    (m_grad,) = tape_grads(loss_fn, [x], seen, ["m"])  # m feeds only the Maximum
    a, b, m = seen["a"], seen["b"], seen["m"]  # a and b feed several ops: each gate on its own share
    minimum = op_of(report, "Minimum")
    assert abs(minimum.presence - share(_passed(lambda t: tf.maximum(tf.minimum(t, 0.5), -0.5) ** 2, a),
                                        _passed(lambda t: tf.maximum(t, -0.5) ** 2, m))) <= PRECISION
    capped = next(op for op in report.ops if op.type == "Maximum" and op.presence_at_input)
    assert abs(capped.presence - share(m_grad, _passed(lambda t: t ** 2, tf.maximum(m, -0.5)))) <= PRECISION
    select = op_of(report, "SelectV2")
    assert select.presence_at_input
    kept = tf.where(b > 0.3, b, 0.0)
    assert abs(select.presence - share(_passed(lambda t: tf.where(b > 0.3, t, 0.0) ** 2, b),
                                       _passed(lambda t: t ** 2, kept))) <= PRECISION
    both = next(op for op in report.ops if op.type == "Maximum" and not op.presence_at_input)
    assert both.presence == 1.0


def _passed(fn, t):
    """The gradient a single use `fn` of tensor `t` passes back to it, on a tape."""
    t = tf.identity(t)
    with tf.GradientTape() as tape:
        tape.watch(t)
        y = tf.reduce_sum(fn(t))
    return tape.gradient(y, t)


def test_presence_is_unknown_for_a_nan_or_inf_gradient():
    w = tf.Variable([0.0, 1.0, 4.0], name="w")  # d sqrt(w)/dw is Inf at 0
    ok = tf.Variable([1.0, 0.0], name="ok")

    def loss_fn(x):
        return tf.reduce_sum(tf.sqrt(w)) + tf.reduce_sum(ok * x)

    report = tb_gradflow.analyze(loss_fn, tf.constant([2.0, 0.0]))
    assert report.variables["w"].state == "nonfinite" and report.variables["w"].presence is None
    assert report.variables["ok"].presence == 0.5  # the x of 0 gives ok[1] none
    sqrt = op_of(report, "Sqrt")
    assert sqrt.state == "flowing" and sqrt.presence == 1.0


def test_eager_fallback_measures_variable_presence():
    table = tf.Variable(tf.ones([20, 3]), name="table")
    dense = tf.Variable(tf.ones([3]), name="dense")

    def loss_fn(ids):
        scale = float(tf.reduce_sum(tf.cast(ids, tf.float32)).numpy())  # untraceable: eager tape
        return tf.reduce_sum(tf.gather(table, ids)) * scale + tf.reduce_sum(dense * [1.0, 0.0, 2.0])

    report = tb_gradflow.analyze(loss_fn, tf.constant([0, 5, 5, 9]))
    assert report.fallback_reason
    table_grad, dense_grad = tape_grads(loss_fn, [tf.constant([0, 5, 5, 9])], {}, [table, dense])
    assert report.variables["table"].presence == pytest.approx(fraction(table_grad), abs=PRECISION)
    assert fraction(table_grad) == pytest.approx(3 / 20) and report.variables["table"].sparse_gradient
    assert report.variables["dense"].presence == pytest.approx(2 / 3, abs=PRECISION)


def test_relu6_counts_what_it_passes_back():
    w = tf.Variable(tf.random.normal([4, 32], seed=11) * 8.0, name="w")
    x = tf.random.normal([8, 4], seed=12)
    seen: dict = {}

    def loss_fn(x):
        seen["z"] = z = tf.matmul(x, w)
        seen["h"] = h = tf.nn.relu6(z)
        return tf.reduce_sum(h * tf.range(1.0, 33.0))  # a gradient arrives at every element

    report = tb_gradflow.analyze(loss_fn, x)
    z_grad, h_grad = tape_grads(loss_fn, [x], seen, ["z", "h"])
    relu6 = op_of(report, "Relu6")
    assert relu6.presence_at_input and 0.05 < fraction(z_grad) < 0.5  # negatives and saturated both pass none
    assert np.all(h_grad.numpy() != 0) and abs(relu6.presence - fraction(z_grad)) <= PRECISION


def test_presence_logged_from_inside_a_tf_function_train_step(tmp_path):
    from tb_gradflow.reading.local_logdir import local_provider
    from tb_gradflow.reading.reader import GradflowReader

    keras.utils.set_random_seed(4)
    layer = keras.layers.Dense(8, activation="relu", name="hidden")
    x = tf.random.normal([16, 5], seed=13)
    layer(x)
    layer.bias.assign(np.array([0, 0, -1e4, -1e4, -1e4, -1e4, -1e4, -1e4], np.float32))
    optimizer = keras.optimizers.SGD(0.0)  # a real optimizer step that changes nothing

    def loss_fn(x):
        return tf.reduce_sum(layer(x) * tf.range(1.0, 9.0))

    writer = tf.summary.create_file_writer(str(tmp_path / "run"))

    @tf.function
    def train_step(x, step):
        with writer.as_default():
            return tb_gradflow.summary.gradflow("gradflow", loss_fn, x, step=step, optimizer=optimizer)

    for step in range(2):
        train_step(x, tf.constant(step, tf.int64))
    writer.close()
    reader = GradflowReader(local_provider(str(tmp_path)))
    logged = reader.read("run", "gradflow", reader.list()["run"]["gradflow"]).report()
    expected = tb_gradflow.analyze(loss_fn, x)
    assert [op.presence for op in logged.ops] == [op.presence for op in expected.ops]
    assert op_of(logged, "Relu").presence <= 0.25
    assert logged.variables[layer.kernel.path].presence == expected.variables[layer.kernel.path].presence


def test_ops_inside_a_nested_function_are_not_measured_and_have_no_presence():
    w = tf.Variable(tf.random.normal([3, 4], seed=14), name="w")

    @tf.function
    def inner(h):
        return tf.nn.relu(h)

    def loss_fn(x):
        return tf.reduce_sum(inner(tf.matmul(x, w)))

    report = tb_gradflow.analyze(loss_fn, tf.random.normal([5, 3], seed=15))
    body_relu = next(op for op in report.ops if op.type == "Relu")
    assert "/" in body_relu.name and not body_relu.measured
    assert body_relu.presence is None
    assert report.to_dict()["ops"][report.ops.index(body_relu)]["measured"] is False
    call = next(op for op in report.ops if op.type in ("PartitionedCall", "StatefulPartitionedCall"))
    assert call.measured and call.presence is not None  # the call's output is fetched
    assert report.variables["w"].presence is not None


def test_a_relu_before_a_pooler_is_not_blamed_for_the_positions_the_pooler_drops():
    """A ReLU feed-forward layer whose output is read at the first of twelve positions only (a
    [CLS] pooler): it receives a gradient at one position in twelve and passes back about half of
    that. Its presence is that half, not 4 %, and the story does not call it dead."""
    from tb_gradflow import vocabulary as V
    from tb_gradflow.story import story

    keras.utils.set_random_seed(0)
    ffn, proj, head = keras.layers.Dense(16, activation="relu"), keras.layers.Dense(8), keras.layers.Dense(2)
    tokens = tf.random.normal([8, 12, 8], seed=15)
    seen: dict = {}

    def loss_fn(t):
        seen["h"] = h = ffn(t)
        return tf.reduce_mean(head(proj(h)[:, 0, :]) ** 2)

    report = tb_gradflow.analyze(loss_fn, tokens)
    with tf.GradientTape() as tape:
        z = tokens @ ffn.kernel + ffn.bias
        tape.watch(z)
        h = tf.nn.relu(z)
        tape.watch(h)
        loss = tf.reduce_mean(head(proj(h)[:, 0, :]) ** 2)
    z_grad, h_grad = tape.gradient(loss, [z, h])
    relu = op_of(report, "Relu")
    assert fraction(z_grad) < 0.1  # counted against every element, it would be called dead
    assert 0.3 < share(z_grad, h_grad) < 0.8
    assert abs(relu.presence - share(z_grad, h_grad)) <= PRECISION
    told = story(report)
    assert told["tone"] == "ok" and not [n for n in told["notes"] if n["kind"] == V.DEAD_GATE]
