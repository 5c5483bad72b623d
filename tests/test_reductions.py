"""The device reductions, grouped by shape or one by one, against numpy over the same gradients."""
from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

import tb_gradflow
from support.oracle import report_states, tape_states
from tb_gradflow import vocabulary as V
from tb_gradflow.capture import reductions
from tb_gradflow.capture.reductions import Reducer, tensor_state
from tb_gradflow.capture.step_layout import exact_states


def _gradients() -> list:
    """Dense gradients of several shapes and dtypes (groups of many, singles, one too large to
    group, scalars, an empty one, float16, float64 values that round to 0 in float32), with a
    repeat and an IndexedSlices."""
    rng = np.random.default_rng(0)
    n = reductions.STACK_MIN_MEMBERS
    dense = [rng.normal(size=[4, 3]).astype(np.float32) * (i % 3) for i in range(n + 1)]
    dense[2][0, :] = 0.0
    dense += [np.float32(v) for v in [2.5, 0.0, -1.0] * n][:n]
    dense += [np.zeros([0, 3], np.float32), rng.normal(size=[300, 300]).astype(np.float32)]
    dense += [rng.normal(size=[5]).astype(np.float16) for _ in range(n)]
    dense += [np.array([1e-30, 0.0, 3.0 * (i % 2)], np.float64) for i in range(n)]
    dense += [np.array([1e-40, 0.0, 0.0], np.float64), rng.normal(size=[2, 2]).astype(np.float32)]
    tensors = [tf.constant(d) for d in dense]
    tensors.append(tensors[1])
    # Narrow rows (summed by Bincount), int64 indices, wide rows and float16 (UnsortedSegmentSum).
    slices = [
        tf.IndexedSlices(tf.constant([[1.0, 0.0], [2.0, 0.0], [-1.0, 0.0]]), tf.constant([3, 0, 3]), tf.constant([6,
                2])),
        tf.IndexedSlices(tf.constant([[1.5], [-1.5], [2.0]], tf.float64), tf.constant([2, 2, 0], tf.int64),
                         tf.constant([4, 1])),
        tf.IndexedSlices(tf.constant(rng.normal(size=[3, 20]).astype(np.float32)), tf.constant([1, 4, 1]),
                         tf.constant([6, 20])),
        tf.IndexedSlices(tf.constant([[1.0, 2.0], [-1.0, 0.0]], tf.float16), tf.constant([0, 0]), tf.constant([3, 2])),
    ]
    assert [reductions._bincount_fits(s) for s in slices] == [True, True, False, False]
    return [*tensors, *slices]


def _as_numpy(g) -> np.ndarray:
    if isinstance(g, tf.IndexedSlices):
        return tf.convert_to_tensor(g).numpy().astype(np.float64)
    return np.asarray(g.numpy(), np.float64)


@pytest.mark.parametrize("grouped, planned", [(True, False), (True, True), (False, False)])
def test_reductions_equal_numpy_in_a_graph(grouped, planned):
    """Planned: stacks made beforehand from a list that holds only some of the gradients (as
    the probe plans its op, variable and presence lists together), the rest placed later."""
    grads = _gradients()
    stacks, alone = reductions._stack_plan(grads)
    assert len(stacks) == 4 and alone, "the case must hold stacks and gradients alone"

    @tf.function
    def reduce():
        def rebuilt(g):  # the gradients as graph tensors, shapes known
            if isinstance(g, tf.IndexedSlices):
                return tf.IndexedSlices(tf.identity(g.values), tf.identity(g.indices), g.dense_shape)
            return tf.identity(g)

        inside = [rebuilt(g) for g in grads]
        inside[-5] = inside[1]  # the repeat stays one tensor inside the graph too
        reducer = Reducer(grouped=grouped, planned=[inside[3:20], inside[30:]] if planned else ())
        return reducer.sums(inside), reducer.exact(inside), reducer.presence(inside)

    sums, exact, presence = (x.numpy() for x in reduce())
    for i, g in enumerate(grads):
        values = _as_numpy(g)
        as_f32 = values.astype(np.float32).astype(np.float64)
        half = 0.5 * float(np.sum(as_f32 ** 2))
        assert sums[i] == pytest.approx(half, rel=1e-5, abs=1e-30), i
        assert exact[i, 0] == pytest.approx(half, rel=1e-5, abs=1e-30), i
        if values.size:
            assert exact[i, 1] == pytest.approx(as_f32.max()) and exact[i, 2] == pytest.approx(as_f32.min()), i
        assert 2.0 * presence[i, 0] == np.count_nonzero(values), i  # float64 1e-40 still counts
        assert presence[i, 1] == values.size, i


def test_a_py_function_in_a_custom_gradient_turns_grouping_off():
    """TensorFlow stamps the input's static shape on a custom gradient's py_function result,
    whatever its run-time shape: a rank-0 zero here. Grouping by shape would fail on it."""
    w = tf.Variable(tf.ones([4, 3]), name="w")
    v = tf.Variable(tf.ones([4, 3]), name="v")

    @tf.custom_gradient
    def opaque_grad(x):
        return tf.identity(x), lambda dy: tf.py_function(lambda d: tf.zeros([]), [dy], tf.float32)

    def loss_fn(x):
        return tf.reduce_sum(tf.tanh(opaque_grad(w * x) + v * x) * x)

    x = tf.fill([4, 3], 0.5)
    report = tb_gradflow.analyze(loss_fn, x, variables=[w, v])
    assert report_states(report) == tape_states(loss_fn, [x], [w, v]) == {"w": V.ZERO, "v": V.FLOWING}


def test_exact_states_equal_tensor_state_row_by_row():
    tiny, huge = 1e-30, 1e30
    rows = np.array([
        [0.0, 0.0, 0.0],  # all zero
        [2.0, 1.0, -2.0],  # flowing
        [0.0, tiny, 0.0],  # sum underflows, max does not
        [np.inf, huge, -1.0],  # sum overflows, values finite
        [np.inf, np.inf, 0.0],  # an Inf
        [np.inf, 0.0, -np.inf],  # a -Inf
        [np.nan, 1.0, -1.0],  # a NaN
        [0.0, -np.inf, np.inf],  # empty: max and min of nothing
    ])
    codes, norms = exact_states(rows)
    for row, code, norm in zip(rows, codes, norms, strict=False):
        state, expected = tensor_state(True, *row)
        assert V.STATES[code] == state, row
        assert (math.isnan(norm) and math.isnan(expected)) or norm == expected, row


def test_an_embedding_norm_is_that_of_the_tapes_dense_gradient():
    """A batch that looks a row up twice: the tape's gradient holds one row, the sum of both
    lookups' values (which cancel here), not the two values apart."""
    table = tf.Variable(tf.ones([5, 2]), name="table")
    ids = tf.constant([3, 3, 1])
    sign = tf.constant([[1.0], [-1.0], [2.0]])

    def loss_fn():
        return tf.reduce_sum(tf.gather(table, ids) * sign)

    with tf.GradientTape() as tape:
        loss = loss_fn()
    dense = tf.convert_to_tensor(tape.gradient(loss, table)).numpy()
    record = tb_gradflow.analyze(loss_fn, variables=[table]).variables["table"]
    assert record.norm == pytest.approx(np.linalg.norm(dense)) == pytest.approx(np.sqrt(8.0))
    assert record.presence == pytest.approx(np.count_nonzero(dense) / dense.size, abs=1 / 254)


def test_reshaped_gradients_are_reduced_once_with_their_source():
    """A Reshape, ExpandDims or Identity holds its input's elements: its reductions are the
    input's, computed once; a Cast (which may round to zero) is reduced on its own."""
    values = np.array([[0.0, -2.0, 3.0], [0.0, 0.5, 0.0]], np.float32)

    @tf.function
    def reduce():
        source = tf.identity(tf.constant(values))
        grads = [source, tf.reshape(source, [3, 2]), tf.expand_dims(tf.identity(source), 0),
                 tf.cast(source, tf.float16)]
        reducer = Reducer()
        return reducer.sums(grads), reducer.exact(grads), reducer.presence(grads)

    sums, exact, presence = (x.numpy() for x in reduce())
    half = 0.5 * float(np.sum(values.astype(np.float64) ** 2))
    np.testing.assert_allclose(sums, [half] * 4, rtol=1e-6)
    np.testing.assert_allclose(np.maximum(exact[:, 1], -exact[:, 2]), [3.0] * 4)
    assert (2.0 * presence[:, 0]).tolist() == [3.0] * 4 and presence[:, 1].tolist() == [6.0] * 4
    graph = reduce.get_concrete_function().graph
    # sums, exact, presence: source and Cast
    assert [op.type for op in graph.get_operations()].count("L2Loss") == 2 * 2 + 2
