"""Issue 17, layers over training: each layer's gradient norm at every logged step
(tb_gradflow/reading/layer_series.py), as `report --json` and `report --layers` print it.

A layer's norm is checked against a plain tf.GradientTape over the variables Keras trains; the
rules for none / zero / NaN cells, the data-flow order and the sampling on crafted runs.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import tensorflow as tf

from support.crafted_logdir import CraftedOp, CraftedVariable, crafted_graph, write_run
from tb_gradflow import summary
from tb_gradflow import vocabulary as V
from tb_gradflow.layer_norms import flowing_range, layer_norms, reduce_layers
from tb_gradflow.reading.layer_series import ABSENT, layer_order, layer_series, layer_series_json
from tb_gradflow.reading.local_logdir import local_provider
from tb_gradflow.reading.reader import GradflowReader, TagSeries, VersionValues

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(logdir: str, run: str):
    reader = GradflowReader(local_provider(logdir))
    return reader.read(run, "gradflow", reader.list()[run]["gradflow"])


def test_layer_norms_are_the_tape_gradient_of_each_layer_of_a_keras_model(tmp_path):
    """A functional model with BatchNormalization: each layer's norm at each step is the L2
    norm over the tape's gradients of that layer's trainable variables."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((6,))
    h = keras.layers.Dense(8, activation="tanh", name="first")(inputs)
    h = keras.layers.BatchNormalization(name="norm")(h)
    h = keras.layers.Dense(8, activation="relu", name="second")(h)
    model = keras.Model(inputs, keras.layers.Dense(1, name="head")(h))
    optimizer = keras.optimizers.SGD(0.1)
    rng = np.random.default_rng(0)
    expected: dict[int, dict[str, float]] = {}
    writer = tf.summary.create_file_writer(str(tmp_path / "run"))
    with writer.as_default():
        for step in range(3):
            x = tf.constant(rng.normal(size=(16, 6)), tf.float32)
            y = tf.constant(rng.normal(size=(16, 1)), tf.float32)

            def loss_fn(x=x, y=y):
                return tf.reduce_mean(tf.square(model(x, training=True) - y))

            with tf.GradientTape() as tape:
                loss = loss_fn()
            grads = tape.gradient(loss, model.trainable_variables)
            per_layer: dict[str, float] = {}
            for v, g in zip(model.trainable_variables, grads, strict=True):
                layer = v.path.rpartition("/")[0]
                per_layer[layer] = per_layer.get(layer, 0.0) + float(tf.reduce_sum(tf.square(g)))
            expected[step] = {k: math.sqrt(s) for k, s in per_layer.items()}
            summary.gradflow("gradflow", loss_fn, step=step, strict=True)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
    writer.close()
    served = layer_series_json(layer_series(read(str(tmp_path), "run")))
    assert [layer["name"] for layer in served["layers"]] == ["first", "norm", "second", "head"]
    for layer in served["layers"]:
        assert layer["states"] == ["flowing"] * 3
        for step, norm in zip(served["steps"], layer["norms"], strict=True):
            assert math.isclose(norm, expected[step][layer["name"]], rel_tol=1e-4), (layer["name"], step)
    lo, hi = served["range"]
    assert math.isclose(lo, min(min(e.values()) for e in expected.values()), rel_tol=1e-4)
    assert math.isclose(hi, max(max(e.values()) for e in expected.values()), rel_tol=1e-4)


def crafted_run(tmp_path, steps=range(5)):
    """x -> a (reads a/w, a/b) -> b (reads b/w) -> c (reads c/w, c/b); listed loss first, and the
    variable reads have no inputs (depth 0 by plain depth)."""
    ops = [
        CraftedOp("loss", "Mean", "flowing", inputs=[3]),
        CraftedOp("a/read", "ReadVariableOp", "flowing", variable_inputs=[0, 1]),
        CraftedOp("c/read", "ReadVariableOp", "flowing", variable_inputs=[3, 4]),
        CraftedOp("c/MatMul", "MatMul", "flowing", inputs=[6, 2]),
        CraftedOp("x", "Placeholder", "none"),
        CraftedOp("a/MatMul", "MatMul", "flowing", inputs=[4, 1]),
        CraftedOp("b/MatMul", "MatMul", "flowing", inputs=[5], variable_inputs=[2]),
    ]
    variables = [
        CraftedVariable("a/w", "flowing", 3.0), CraftedVariable("a/b", "flowing", 4.0),
        CraftedVariable("b/w", "none", None),
        CraftedVariable("c/w", "zero", 0.0), CraftedVariable("c/b", "nonfinite", math.inf),
    ]
    write_run(str(tmp_path / "crafted"), ops, variables, list(steps))
    return read(str(tmp_path), "crafted")


def test_states_of_a_layer_and_the_data_flow_order(tmp_path):
    series = crafted_run(tmp_path)
    graph = next(iter(series.versions.values())).graph
    assert [layer for layer, _ in layer_order(graph)] == ["a", "b", "c"]  # reads do not come first
    served = layer_series_json(layer_series(series))
    a, b, c = served["layers"]
    assert a["variables"] == ["a/w", "a/b"]
    # write_run scales flowing norms by 1 + step: the L2 of 3 and 4 is 5
    assert a["norms"] == [5.0 * (1 + s) for s in served["steps"]] and set(a["states"]) == {"flowing"}
    assert b["states"] == ["none"] * 5 and b["norms"] == [None] * 5
    assert c["states"] == ["nonfinite"] * 5 and c["norms"] == ["inf"] * 5  # nonfinite wins over zero
    assert served["range"] == [5.0, 25.0]


def test_columns_sample_evenly_with_the_first_and_last_step(tmp_path):
    series = crafted_run(tmp_path, steps=range(0, 100, 10))
    few = layer_series_json(layer_series(series, columns=4))
    assert few["steps"] == [0, 30, 60, 90] and few["count"] == 10
    assert few["range"] == [5.0, 5.0 * 91]  # over every step, not only those shown
    assert len(few["layers"][0]["norms"]) == 4


def test_report_json_carries_the_layers_and_layers_prints_a_sparkline_each(tmp_path):
    crafted_run(tmp_path)
    env = dict(os.environ, PYTHONPATH=ROOT)
    done = subprocess.run([sys.executable, "-m", "tb_gradflow", "report", str(tmp_path), "--json"],
                          capture_output=True, text=True, env=env, timeout=120)
    layers = json.loads(done.stdout)["runs"]["crafted"]["tags"]["gradflow"]["layers"]
    assert layers == layer_series_json(layer_series(read(str(tmp_path), "crafted")))
    text = subprocess.run([sys.executable, "-m", "tb_gradflow", "report", str(tmp_path), "--layers", "--color",
                           "never"],
                          capture_output=True, text=True, env=env, timeout=120).stdout
    lines = {line.split()[0]: line.split()[1] for line in text.splitlines()
             if line.startswith("  ") and len(line.split()) == 2}
    assert lines["a"] == "▁▄▆▇█"  # 5, 10 ... 25 on the log scale 5 ... 25
    assert lines["b"] == "·····" and lines["c"] == "!!!!!"
    assert "inputs first" in text


def _random_states_and_norms(rng, shape):
    """State codes drawn from all four states, with norms as a step stores them: none NaN, zero
    0, flowing positive, nonfinite Inf or NaN."""
    codes = np.array([V.STATE_CODE[s] for s in (V.NONE, V.ZERO, V.FLOWING, V.NONFINITE)], np.uint8)
    states = codes[rng.choice(4, size=shape, p=[0.15, 0.1, 0.7, 0.05])]
    norms = np.exp(rng.normal(0.0, 4.0, size=shape)).astype(np.float32)
    norms[states == V.STATE_CODE[V.NONE]] = np.nan
    norms[states == V.STATE_CODE[V.ZERO]] = 0.0
    nonfinite = states == V.STATE_CODE[V.NONFINITE]
    norms[nonfinite] = np.where(rng.random(shape) < 0.5, np.inf, np.nan)[nonfinite]
    return states, norms


def test_the_colour_scale_rule_gives_the_bounds_of_the_layer_norms_rule():
    """flowing_range (the scale, over every step) against reduce_layers (the cells): the same
    smallest and largest flowing norm, to the bit, whatever the mix of states."""
    for seed in range(20):
        rng = np.random.default_rng(seed)
        sizes = rng.integers(1, 4, size=int(rng.integers(1, 12)))
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        states, norms = _random_states_and_norms(rng, (int(sizes.sum()), int(rng.integers(1, 40))))
        layer_states, layer_norms = reduce_layers(states, norms, starts)
        flowing = layer_norms[(layer_states == V.STATE_CODE[V.FLOWING]) & np.isfinite(layer_norms)]
        expected = (float(flowing.min()), float(flowing.max())) if flowing.size else None
        assert flowing_range(states, norms, starts) == expected, seed
    none = np.full((2, 3), V.STATE_CODE[V.NONE], np.uint8)
    assert flowing_range(none, np.full((2, 3), np.nan, np.float32), np.array([0])) is None


def _random_series(steps: int, seed: int):
    """A series of `steps` logged steps of one crafted graph (layers a, b, c) with random states
    and norms, built in memory."""
    ops = [CraftedOp("x", "Placeholder", "none"),
           CraftedOp("a/MatMul", "MatMul", "flowing", inputs=[0], variable_inputs=[0, 1]),
           CraftedOp("b/MatMul", "MatMul", "flowing", inputs=[1], variable_inputs=[2]),
           CraftedOp("c/MatMul", "MatMul", "flowing", inputs=[2], variable_inputs=[3, 4])]
    names = ["a/w", "a/b", "b/w", "c/w", "c/b"]
    graph = crafted_graph("random-1", ops, [CraftedVariable(n, "flowing", 1.0) for n in names])
    rng = np.random.default_rng(seed)
    var_states, var_norms = _random_states_and_norms(rng, (steps, len(names)))
    op_states = np.full((steps, len(ops)), V.STATE_CODE[V.FLOWING], np.uint8)
    values = VersionValues(graph, np.arange(steps, dtype=np.int64), op_states,
                           np.ones((steps, len(ops)), np.float32), var_states, var_norms,
                           np.zeros(steps, np.float32), np.zeros(steps))
    return TagSeries("run", "gradflow", "", {graph.graph_id: values}, list(range(steps)),
                     {s: (graph.graph_id, s) for s in range(steps)})


def test_a_few_columns_of_a_long_run_keep_its_cells_and_its_whole_scale():
    """Sampled columns are reduced alone and the scale is summed in chunks of steps: the cells
    at the kept steps, and the scale over every step, equal those of all columns."""
    series = _random_series(1_300, seed=3)
    whole, few = layer_series(series), layer_series(series, columns=7)
    assert len(few.steps) == 7 and few.steps[0] == 0 and few.steps[-1] == 1_299
    assert few.range == whole.range
    finite = whole.norms[(whole.states == V.STATE_CODE[V.FLOWING]) & np.isfinite(whole.norms)]
    assert whole.range == [float(finite.min()), float(finite.max())]
    # the extremes sit at steps that are not kept, so only a scale over every step has them
    kept = few.norms[(few.states == V.STATE_CODE[V.FLOWING]) & np.isfinite(few.norms)]
    assert kept.min() > finite.min() and kept.max() < finite.max()
    np.testing.assert_array_equal(few.states, whole.states[:, few.steps])
    np.testing.assert_array_equal(few.norms, whole.norms[:, few.steps])


def _version(graph_id: str, names: list[str], steps: list[int], seed: int) -> VersionValues:
    ops = [CraftedOp("x", "Placeholder", "none")]
    for i, name in enumerate(names):
        ops.append(CraftedOp(f"{name.rpartition('/')[0]}/op_{i}", "MatMul", "flowing", inputs=[i], variable_inputs=[i]))
    graph = crafted_graph(graph_id, ops, [CraftedVariable(n, "flowing", 1.0) for n in names])
    var_states, var_norms = _random_states_and_norms(np.random.default_rng(seed), (len(steps), len(names)))
    n = len(steps)
    op_states = np.full((n, len(ops)), V.STATE_CODE[V.FLOWING], np.uint8)
    return VersionValues(graph, np.array(steps, np.int64), op_states, np.ones((n, len(ops)), np.float32),
                         var_states, var_norms, np.zeros(n, np.float32), np.zeros(n))


def test_cells_across_graph_versions_are_each_steps_own_layer_norms():
    """Two graph versions (a retrace that dropped layer b and added c), over 1,500 steps, step 700
    logged in both (the later row counts): every cell, sampled or not, is what layer_norms gives
    for that step alone; a layer missing from a step's version is absent."""
    first = _version("v-1", ["a/w", "a/b", "b/w"], list(range(0, 701)), seed=5)
    second = _version("v-2", ["a/w", "c/w", "a/b", "c/b"], list(range(700, 1_500)), seed=6)
    where = {s: ("v-1", s) for s in range(700)} | {s: ("v-2", s - 700) for s in range(700, 1_500)}
    series = TagSeries("run", "gradflow", "", {"v-1": first, "v-2": second}, list(range(1_500)), where)
    whole, few = layer_series(series), layer_series(series, columns=9)
    assert whole.layers == ["a", "c", "b"]  # the last version's order, then what only earlier ones had
    for s in range(1_500):
        gid, row = where[s]
        values = series.versions[gid]
        expected = layer_norms([v.name for v in values.graph.variables], values.variable_states[row],
                               values.variable_norms[row])
        for k, layer in enumerate(whole.layers):
            if layer not in expected:
                assert whole.states[k, s] == ABSENT and math.isnan(whole.norms[k, s])
                continue
            state, norm = expected[layer]
            assert whole.states[k, s] == V.STATE_CODE[state], (s, layer)
            assert norm == whole.norms[k, s] or (math.isnan(norm) and math.isnan(whole.norms[k, s])), (s, layer)
    np.testing.assert_array_equal(few.states, whole.states[:, few.steps])
    np.testing.assert_array_equal(few.norms, whole.norms[:, few.steps])
    assert few.range == whole.range
