"""One backward iteration's row of reductions (capture/iteration_rows.py): every gradient's
columns add up to its half sum of squares and half count of nonzero elements, whether it was
reduced in a same-shape group, alone, or (a join of others) from its parts' columns."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tb_gradflow.capture import iteration_rows
from tb_gradflow.capture.iteration_rows import GROUP_MIN_MEMBERS, iteration_row
from tb_gradflow.capture.reductions import values_key


def _values(rng: np.random.Generator, shape: tuple[int, ...], zeros: float) -> np.ndarray:
    """Normal values with about `zeros` of them exactly 0."""
    x = rng.normal(size=shape).astype(np.float32)
    x[rng.random(shape) < zeros] = 0.0
    return x


def _row_of(make, inputs: list[np.ndarray], signature: list[tf.TensorSpec]):
    """Runs `make(*tensors) -> (grads, counted)` in a graph; returns the row's values, its column
    maps and the numpy value of every distinct gradient, by the same keys."""
    built: dict = {}

    @tf.function(input_signature=signature)
    def run(*xs):
        grads, counted = make(*xs)
        row = iteration_row(grads, counted)
        built["row"] = row
        built["keys"] = [values_key(g) for g in grads]
        return row.values, grads

    values, grads = run(*inputs)
    return values.numpy(), built["row"], dict(zip(built["keys"], [g.numpy() for g in grads], strict=True))


def _check(values: np.ndarray, row, by_key: dict, counted_keys: list) -> None:
    for key, g in by_key.items():
        g = g.astype(np.float64)
        assert 2 * values[row.sums[key]].sum() == pytest.approx(float((g * g).sum()), rel=1e-5)
        if key in counted_keys:
            assert 2 * values[row.counts[key]].sum() == np.count_nonzero(g)
            if key in row.sizes:
                assert values[row.sizes[key]].sum() == g.size


def _all_counted(inputs: list[np.ndarray]) -> list[str]:
    """Each input made a counted gradient of one row; every column checked against numpy.
    Returns the op types of the row's graph."""

    def make(*xs):
        grads = [x * 1.0 for x in xs]  # each its own op, as gradients are
        return grads, grads

    values, row, by_key = _row_of(make, inputs, [tf.TensorSpec(x.shape, x.dtype) for x in inputs])
    _check(values, row, by_key, list(by_key))
    return [op.type for op in row.values.graph.get_operations()]


def test_groups_alone_and_joins_all_add_up():
    """Five [4, 6] gradients (a group), two [2, 3] ones (too few to group), a float16 one and a
    sum-only one (alone), one of unknown shape (its size counted), and a concatenation of two
    grouped ones (summed from their columns)."""
    rng = np.random.default_rng(0)
    same = [_values(rng, (4, 6), 0.3) for _ in range(5)]
    small = [_values(rng, (2, 3), 0.5) for _ in range(2)]
    half = _values(rng, (4, 6), 0.2).astype(np.float16)
    dynamic = _values(rng, (5, 3), 0.4)
    inputs = [*same, *small, half, dynamic]
    signature = [tf.TensorSpec(x.shape, x.dtype) for x in inputs[:-1]] + [tf.TensorSpec([None, 3], tf.float32)]

    def make(*xs):
        grads = [x * 1.0 for x in xs]  # each its own op, as gradients are
        joined = tf.concat([grads[0], grads[1]], axis=0)
        sum_only = grads[2] * 2.0
        counted = [*grads, joined]
        return [*counted, sum_only], counted

    values, row, by_key = _row_of(make, inputs, signature)
    assert len(same) >= GROUP_MIN_MEMBERS > len(small)
    counted_keys = list(by_key)[:-1]
    _check(values, row, by_key, counted_keys)
    dynamic_key = list(by_key)[len(inputs) - 1]
    assert dynamic_key in row.sizes


def test_a_group_is_reduced_in_a_few_kernels_not_three_per_gradient():
    """Thirteen same-shape gradients (an LSTM's gate and state gradients): no L2Loss or Sign of
    their own, but one Sign and two products for the whole group."""
    rng = np.random.default_rng(1)
    types = _all_counted([_values(rng, (8, 16), 0.1) for _ in range(13)])
    assert (types.count("L2Loss"), types.count("Sign"), types.count("MatMul")) == (0, 1, 2)


def test_a_py_function_in_the_graph_turns_grouping_off(monkeypatch):
    """tf.py_function may stamp a static shape its value lacks: no concatenation trusts it."""
    rng = np.random.default_rng(2)
    inputs = [_values(rng, (3, 4), 0.2) for _ in range(4)]
    made: list[int] = []
    original = iteration_rows._RowBuilder.add_group

    def counting(self, keys, grads):
        made.append(len(keys))
        return original(self, keys, grads)

    monkeypatch.setattr(iteration_rows._RowBuilder, "add_group", counting)

    def make(*xs):
        grads = [x * 1.0 for x in xs]
        tf.py_function(lambda t: t, [xs[0]], tf.float32)
        return grads, grads

    values, row, by_key = _row_of(make, inputs, [tf.TensorSpec(x.shape, tf.float32) for x in inputs])
    _check(values, row, by_key, list(by_key))
    assert made == []

    _all_counted(inputs)
    assert made == [4]


def test_a_keras_lstm_reads_the_same_grouped_or_one_by_one(monkeypatch):
    """On a Keras LSTM (thirteen [batch, units] gradients per iteration, grouped), every body op's
    norm and presence equal those of the same capture with nothing grouped."""
    import keras

    import tb_gradflow
    from tb_gradflow.capture.bodies import BODY_OPS_ENV

    monkeypatch.setenv(BODY_OPS_ENV, "1")
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((9, 5)), keras.layers.LSTM(8), keras.layers.Dense(3)])
    x = tf.random.stateless_normal([4, 9, 5], seed=[1, 2])

    def loss_fn(x):
        return tf.reduce_sum(model(x) ** 2)

    def body_ops(report):
        return {op.name: (op.norm, op.presence) for op in report.ops if "/body/" in op.name and op.measured}

    grouped = body_ops(tb_gradflow.analyze(loss_fn, x, variables=model.trainable_variables))
    monkeypatch.setattr(iteration_rows, "GROUP_MIN_MEMBERS", 10**9)
    # A new function, so that the cached probe is not reused: traced again, nothing grouped.
    alone = body_ops(tb_gradflow.analyze(lambda x: loss_fn(x), x, variables=model.trainable_variables))
    assert len(grouped) >= 13 and grouped.keys() == alone.keys()
    for name, (norm, presence) in grouped.items():
        assert norm == pytest.approx(alone[name][0], rel=1e-4), name
        assert presence == pytest.approx(alone[name][1], abs=1e-6), name


def test_groups_are_bounded_in_bytes_and_large_gradients_stay_alone():
    """Gradients over MEMBER_MAX_BYTES are reduced alone (the concatenation would be a large
    copy), and a group holds at most GROUP_MAX_BYTES."""
    from tb_gradflow.capture.iteration_rows import GROUP_MAX_BYTES, MEMBER_MAX_BYTES

    rng = np.random.default_rng(4)
    large = [_values(rng, (300, 300), 0.1) for _ in range(3)]
    medium = [_values(rng, (128, 128), 0.1) for _ in range(40)]
    assert 4 * large[0].size > MEMBER_MAX_BYTES and GROUP_MAX_BYTES // (4 * medium[0].size) == 32
    types = _all_counted([*large, *medium])
    # Two groups (32 and 8 of the medium ones), two products each; the large ones alone.
    assert types.count("MatMul") == 4 and types.count("L2Loss") == 2 * len(large)
