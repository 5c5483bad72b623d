"""Inside loops (issue 17): a loop op's iteration_norms against the recurrence written out and
watched by a tape (SimpleRNN, GRU, LSTM with its (h, c) state, a tf.while_loop of our own); body
ops measured over all iterations; the story on a vanishing loop."""

from __future__ import annotations

import gc
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import tb_gradflow
from tb_gradflow import vocabulary as V
from tb_gradflow.capture.bodies import BODY_OPS_ENV
from tb_gradflow.capture.probe import Probe
from tb_gradflow.format.records import build_report
from tb_gradflow.reading.local_logdir import local_provider
from tb_gradflow.reading.reader import GradflowReader
from tb_gradflow.story import story

T, BATCH = 7, 3


def _loop(report):
    (loop,) = [op for op in report.ops if op.iteration_norms is not None]
    return loop


def _unrolled_norms(layer, x, y, head) -> np.ndarray:
    """‖dL/d(state_{i+1})‖ per step of the layer's own cell, run step by step under a tape."""
    cell = layer.cell
    states = [
        tf.zeros([BATCH, s])
        for s in (
            cell.state_size if isinstance(cell.state_size, (list, tuple)) else [cell.state_size]
        )
    ]
    with tf.GradientTape(persistent=True) as tape:
        per_step = []
        for t in range(T):
            out, states = cell(x[:, t], states)
            states = list(states) if isinstance(states, (list, tuple)) else [states]
            for s in states:
                tape.watch(s)
            per_step.append(states)
        loss = tf.reduce_mean((head(out) - y) ** 2)
    norms = []
    for states in per_step:
        grads = tape.gradient(loss, states, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        norms.append(math.sqrt(sum(float(tf.reduce_sum(g * g)) for g in grads)))
    return np.array(norms)


@pytest.fixture
def body_ops(monkeypatch):
    """Body ops measured (the default), whatever the environment running the tests says."""
    monkeypatch.delenv(BODY_OPS_ENV, raising=False)


@pytest.mark.parametrize("kind", ["SimpleRNN", "GRU", "LSTM"])
def test_keras_rnn_iteration_norms_match_the_unrolled_tape(kind, body_ops):
    keras.utils.set_random_seed(11)
    layer = getattr(keras.layers, kind)(5)
    head = keras.layers.Dense(1)
    model = keras.Sequential([keras.Input((T, 4)), layer, head])
    x, y = tf.random.normal([BATCH, T, 4], seed=12), tf.random.normal([BATCH, 1], seed=13)

    def loss_fn(x, y):
        return tf.reduce_mean((model(x) - y) ** 2)

    report = tb_gradflow.analyze(loss_fn, x, y)
    loop = _loop(report)
    assert loop.type in ("While", "StatelessWhile") and len(loop.iteration_norms) == T
    np.testing.assert_allclose(
        loop.iteration_norms, _unrolled_norms(layer, x, y, head), rtol=1e-3, atol=1e-7
    )
    # Body ops now carry a norm and a presence over all iterations instead of `measured: false`;
    # all of them are reached (through the loop's TensorList), and only the ops that hold that
    # list (a variant: no norm) stay unmeasured.
    body = [op for op in report.ops if op.name.startswith(loop.name + "/body/")]
    assert body and {op.state for op in body} == {V.FLOWING}
    by_name = {op.name: op for op in report.ops}
    holds_list = {op.name for op in body if op.type == "TensorListSetItem"}
    holds_list |= {op.name for op in body if op.type == "Identity" and set(op.inputs) & holds_list}
    assert holds_list and all(by_name[n].measured is False for n in holds_list)
    assert all(op.measured for op in body if op.name not in holds_list)
    assert any(op.norm and op.presence is not None for op in body)


def test_while_loop_of_our_own_and_its_body_op_norm(body_ops):
    w = tf.Variable(tf.random.stateless_normal([4, 4], seed=[1, 2]) * 0.6)
    xs = tf.random.stateless_normal([T, 2, 4], seed=[3, 4])

    def loss_fn(xs):
        def body(i, h):
            return i + 1, tf.tanh(h @ w + xs[i])

        _, h = tf.while_loop(lambda i, h: i < T, body, (tf.constant(0), tf.zeros([2, 4])))
        return tf.reduce_sum(h**2)

    report = tb_gradflow.analyze(loss_fn, xs, variables=[w])
    loop = _loop(report)
    with tf.GradientTape(persistent=True) as tape:
        h, hs = tf.zeros([2, 4]), []
        for i in range(T):
            h = tf.tanh(h @ w + xs[i])
            tape.watch(h)
            hs.append(h)
        loss = tf.reduce_sum(h**2)
    expected = np.array([float(tf.norm(g)) for g in tape.gradient(loss, hs)])
    np.testing.assert_allclose(loop.iteration_norms, expected, rtol=1e-3)
    # The Tanh's output is the carried state: its norm over all iterations is theirs together
    # (op norms are stored to a byte, within 4.4 %).
    (tanh,) = [op for op in report.ops if op.type == "Tanh"]
    assert tanh.measured and tanh.state == V.FLOWING
    assert tanh.norm == pytest.approx(float(np.sqrt(np.sum(expected**2))), rel=0.05)
    assert tanh.presence == 1.0
    # A second call of the same probe, after a collection: the accumulators were reset, and
    # they outlive the trace that made them.
    gc.collect()
    again = tb_gradflow.analyze(loss_fn, xs, variables=[w])
    np.testing.assert_allclose(_loop(again).iteration_norms, loop.iteration_norms, rtol=1e-6)


def test_a_vanishing_loop_is_told():
    keras.utils.set_random_seed(2)
    layer = keras.layers.SimpleRNN(
        4, recurrent_initializer=keras.initializers.Orthogonal(gain=0.05)
    )
    model = keras.Sequential([keras.Input((30, 3)), layer, keras.layers.Dense(1)])
    x = tf.random.normal([2, 30, 3], seed=3)

    def loss_fn(x):
        return tf.reduce_sum(model(x) ** 2)

    report = tb_gradflow.analyze(loss_fn, x)
    loop = _loop(report)
    assert loop.iteration_norms[0] < V.LOOP_VANISHING_RATIO * loop.iteration_norms[-1]
    told = story(report)
    (note,) = [n for n in told["notes"] if n["kind"] == V.LOOP_VANISHING]
    assert (
        note["names"] == [loop.name] and "vanishes through the loop's 30 iterations" in note["text"]
    )
    assert note["hint"] == V.LOOP_VANISHING_HINT and told["tone"] == "warn"
    # The headline names the loop, not layers that "little passes" (no gate is thin here).
    assert told["headline"]["text"].endswith("but it vanishes through 1 loop")
    assert told["headline"]["names"] == [loop.name]


def test_body_ops_are_measured_unless_turned_off_iterations_always():
    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((T, 2)), keras.layers.GRU(3), keras.layers.Dense(1)])
    x = tf.random.normal([BATCH, T, 2], seed=5)
    reports = {}
    for on in (False, True):
        probe = Probe(
            lambda x: tf.reduce_sum(model(x)), model.trainable_variables, measure_bodies=on
        )
        result = probe(x)
        reports[on] = build_report(result.graph, result.step)
    assert not any(op.measured for op in reports[False].ops if "/body/" in op.name)
    assert any(op.measured for op in reports[True].ops if "/body/" in op.name)
    np.testing.assert_allclose(
        _loop(reports[False]).iteration_norms, _loop(reports[True]).iteration_norms, rtol=1e-6
    )


def test_summary_and_callback_pass_the_body_switch(tmp_path, monkeypatch):
    """`measure_bodies=` of summary.gradflow and GradFlowCallback reaches the probe; None
    measures bodies unless the environment variable says 0."""
    keras.utils.set_random_seed(6)
    model = keras.Sequential([keras.Input((T, 2)), keras.layers.GRU(3), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = tf.random.normal([BATCH, T, 2], seed=7), tf.random.normal([BATCH, 1], seed=8)

    def loss_fn(x, y):
        return tf.reduce_mean((model(x) - y) ** 2)

    def body_measured(report) -> bool:
        return any(op.measured for op in report.ops if "/body/" in op.name)

    monkeypatch.delenv(BODY_OPS_ENV, raising=False)
    def logged(**switch):
        return tb_gradflow.summary.gradflow(
            "g", loss_fn, x, y, variables=model.trainable_variables, step=0, strict=True, **switch
        )

    assert body_measured(logged())
    assert not body_measured(logged(measure_bodies=False))
    monkeypatch.setenv(BODY_OPS_ENV, "0")
    assert not body_measured(logged())
    assert body_measured(logged(measure_bodies=True))
    monkeypatch.setenv(BODY_OPS_ENV, "1")
    assert body_measured(logged())

    monkeypatch.setenv(BODY_OPS_ENV, "0")
    callback = tb_gradflow.keras.GradFlowCallback(
        str(tmp_path), (x, y), strict=True, measure_bodies=True
    )
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[callback])
    reader = GradflowReader(local_provider(str(tmp_path)))
    listing = reader.list()
    assert body_measured(reader.read("train", "gradflow", listing["train"]["gradflow"]).report())


def _gated_loop(w, xs):
    """h_{i+1} = tanh(relu(h @ w + x_i)): the Relu cuts part of each iteration's gradient."""

    def body(i, h):
        return i + 1, tf.tanh(tf.nn.relu(h @ w + xs[i]))

    _, h = tf.while_loop(lambda i, h: i < T, body, (tf.constant(0), tf.ones([2, 4])))
    return tf.reduce_sum(h**2)


def _unrolled_body_grads(w, xs) -> dict[str, list[tf.Tensor]]:
    """Per body op type, the gradient of its output at each iteration, from a tape."""
    with tf.GradientTape(persistent=True) as tape:
        h, outs = tf.ones([2, 4]), {"MatMul": [], "AddV2": [], "Relu": [], "Tanh": []}
        for i in range(T):
            steps = {"MatMul": h @ w}
            steps["AddV2"] = steps["MatMul"] + xs[i]
            steps["Relu"] = tf.nn.relu(steps["AddV2"])
            steps["Tanh"] = h = tf.tanh(steps["Relu"])
            for kind, t in steps.items():
                tape.watch(t)
                outs[kind].append(t)
        loss = tf.reduce_sum(h**2)
    return {kind: tape.gradient(loss, ts) for kind, ts in outs.items()}


def test_body_op_norms_and_presence_match_the_unrolled_tape(body_ops):
    """Each body op's norm is the L2 norm of its gradient over all iterations and its presence
    the share of nonzero elements over all iterations, as a tape over the loop written out
    gives them (the Relu's input gets part of the gradient only)."""
    w = tf.Variable(tf.random.stateless_normal([4, 4], seed=[5, 6]))
    xs = tf.random.stateless_normal([T, 2, 4], seed=[7, 8])
    report = tb_gradflow.analyze(lambda xs: _gated_loop(w, xs), xs, variables=[w])
    expected = _unrolled_body_grads(w, xs)
    by_type = {op.type: op for op in report.ops if "/body/" in op.name and op.type in expected}
    assert set(by_type) == set(expected)
    for kind, grads in expected.items():
        op = by_type[kind]
        norm = math.sqrt(sum(float(tf.reduce_sum(g * g)) for g in grads))
        present = sum(int(tf.math.count_nonzero(g)) for g in grads) / sum(int(tf.size(g)) for g in grads)
        assert op.measured and op.norm == pytest.approx(norm, rel=0.05), kind  # norms: a byte
        assert op.presence == pytest.approx(present, abs=0.01), kind
    assert 0.1 < by_type["AddV2"].presence < 0.9  # the Relu really gated


def _backward_loops(probe: Probe, *args) -> list[tf.Operation]:
    graph = probe._function.get_concrete_function(*args).graph  # pylint: disable=protected-access
    return [
        op for op in graph.get_operations()
        if op.type in ("While", "StatelessWhile") and "_grad" in getattr(op, "_body_graph", graph).name
    ]


def test_the_backward_loop_carries_body_numbers_without_a_stateful_update():
    """Body numbers leave the backward loop through a TensorList it carries, one push per
    iteration: no variable update in its body (which made every iteration wait for it), so the
    backward loop stays a StatelessWhile; one L2Loss per distinct gradient and one of its sign."""
    w = tf.Variable(tf.random.stateless_normal([4, 4], seed=[5, 6]))
    xs = tf.random.stateless_normal([T, 2, 4], seed=[7, 8])
    probe = Probe(lambda xs: _gated_loop(w, xs), [w], measure_bodies=True)
    (loop,) = _backward_loops(probe, xs)
    body = loop._body_graph  # pylint: disable=protected-access
    types = [op.type for op in body.get_operations()]
    assert loop.type == "StatelessWhile"
    assert not {"ResourceScatterAdd", "AssignVariableOp", "AssignAddVariableOp"} & set(types)
    assert types.count("TensorListPushBack") == 1
    # MatMul and AddV2 share one gradient (an Add passes its gradient on), the Relu's output
    # and the Tanh's input another, the Tanh's output is the carried state's.
    assert types.count("L2Loss") <= 2 * 4 and types.count("Sign") <= 4


def test_a_loop_inside_a_called_function_is_measured_too(body_ops):
    """A loop inside a `tf.function` the loss calls gets its backward loop inside that call's
    gradient: its numbers go through accumulator variables instead, and agree with a tape."""
    w = tf.Variable(tf.random.stateless_normal([4, 4], seed=[5, 6]))
    xs = tf.random.stateless_normal([T, 2, 4], seed=[7, 8])
    inner = tf.function(_gated_loop)

    def loss_fn(xs):
        return inner(w, xs)

    probe = Probe(loss_fn, [w])
    probe(xs)
    result = probe(xs)  # the accumulators were read and reset by the first call
    report = build_report(result.graph, result.step)
    expected = _unrolled_body_grads(w, xs)
    (tanh,) = [op for op in report.ops if op.type == "Tanh" and "/body/" in op.name]
    norm = math.sqrt(sum(float(tf.reduce_sum(g * g)) for g in expected["Tanh"]))
    assert tanh.measured and tanh.norm == pytest.approx(norm, rel=0.05)
    np.testing.assert_allclose(
        _loop(report).iteration_norms, [float(tf.norm(g)) for g in expected["Tanh"]], rtol=1e-3
    )
