"""Issue 17, `scalars=True`: one TensorBoard scalar per layer and step (its gradient norm, and the
dead share of its ReLU units), written by summary.gradflow (eagerly and inside a tf.function),
GradFlowCallback and tb_gradflow.torch.gradflow (tb_gradflow/capture/layer_scalars.py).

Read back through TensorBoard's own data provider and a real `tensorboard` process. Each value is
checked against a plain tf.GradientTape / torch.autograd.grad over the trained variables, against
the Report's layer norms (tb_gradflow/layer_norms.py) and against the Layers view's cells.
"""
from __future__ import annotations

import logging
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard import context

import tb_gradflow.keras
from support.tensorboard_proc import TensorBoardProcess, fetch_json
from tb_gradflow import summary
from tb_gradflow import vocabulary as V
from tb_gradflow.capture.layer_scalars import scalar_summary
from tb_gradflow.format.records import encode_step_arrays
from tb_gradflow.layer_norms import layer_norms, layer_of
from tb_gradflow.proto import gradflow_pb2
from tb_gradflow.reading.layer_series import layer_series
from tb_gradflow.reading.local_logdir import local_provider
from tb_gradflow.reading.reader import GradflowReader

NAME = "gradflow"


def read_scalars(logdir: str) -> dict[str, dict[str, dict[int, float]]]:
    """{run: {tag: {step: value}}} of every scalars-plugin series, through TensorBoard's data
    provider (the one its scalars plugin reads from)."""
    provider = local_provider(logdir)
    ctx = context.RequestContext()
    listed = provider.list_scalars(ctx, experiment_id="", plugin_name="scalars")
    data = provider.read_scalars(
        ctx, experiment_id="", plugin_name="scalars", downsample=1000,
        run_tag_filter=None,
    )
    assert set(data) == set(listed)
    return {run: {tag: {d.step: d.value for d in points} for tag, points in tags.items()}
            for run, tags in data.items()}


def report_layer_norms(report) -> dict[str, tuple[str, float]]:
    """The Report's layer norms, by the rule the Layers view uses."""
    names = list(report.variables)
    states = [V.STATE_CODE[report.variables[n].state] for n in names]
    norms = [math.nan if report.variables[n].norm is None else report.variables[n].norm for n in names]
    return layer_norms(names, states, norms)


def tape_layer_norms(names: list[str], grads: list) -> dict[str, float]:
    """Per layer, the L2 norm of the tape's gradients of its variables."""
    sums: dict[str, float] = {}
    for name, g in zip(names, grads, strict=True):
        sums[layer_of(name)] = sums.get(layer_of(name), 0.0) + float(np.sum(np.square(np.asarray(g, np.float64))))
    return {layer: math.sqrt(s) for layer, s in sums.items()}


def dead_shares(report, layers: tuple[str, ...]) -> dict[str, float]:
    """Per layer, the dead share of the units of the counted gates its name scope holds (a
    traced Keras 3 model names the ReLU of layer `hidden` `functional_1/hidden_1/Relu`)."""
    dead: dict[str, list[int]] = {}
    for op in report.ops:
        if op.units and op.dead_units is not None:
            layer = next(layer for layer in layers if f"/{layer}_1/" in op.name)
            d = dead.setdefault(layer, [0, 0])
            d[0] += op.dead_units
            d[1] += op.units
    return {layer: d / u for layer, (d, u) in dead.items()}


def _model() -> keras.Model:
    """A conv net with BatchNorm and two ReLU gates, half of the dense gate's units dead."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((6, 6, 2))
    h = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    h = keras.layers.BatchNormalization(name="norm")(h)
    h = keras.layers.Flatten()(h)
    dense = keras.layers.Dense(8, activation="relu", name="hidden")
    h = dense(h)
    model = keras.Model(inputs, keras.layers.Dense(1, name="head")(h))
    dense.bias.assign(np.array([-50.0] * 4 + [0.0] * 4, np.float32))  # units 0-3 never open
    return model


@pytest.fixture(scope="module")
def keras_run(tmp_path_factory):
    """Three training steps logged with scalars=True: step 0 eagerly, 1 and 2 inside a
    tf.function; with each step, the tape's layer norms taken just before it."""
    model = _model()
    optimizer = keras.optimizers.SGD(0.05)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(16, 6, 6, 2)), tf.float32)
    y = tf.constant(rng.normal(size=(16, 1)), tf.float32)

    def loss_fn():
        return tf.reduce_mean(tf.square(model(x, training=True) - y))

    @tf.function
    def train(step):
        return summary.gradflow(NAME, loss_fn, step=step, optimizer=optimizer, strict=True, scalars=True)

    names = [v.path for v in model.trainable_variables]
    logdir = tmp_path_factory.mktemp("scalars")
    expected: dict[int, dict[str, float]] = {}
    writer = tf.summary.create_file_writer(str(logdir / "run"))
    with writer.as_default():
        for step in range(3):
            with tf.GradientTape() as tape:
                loss = loss_fn()
            expected[step] = tape_layer_norms(names, tape.gradient(loss, model.trainable_variables))
            if step == 0:
                report = summary.gradflow(NAME, loss_fn, step=0, optimizer=optimizer, strict=True, scalars=True)
            else:
                assert bool(train(tf.constant(step, tf.int64)))
    writer.close()
    return str(logdir), expected, report


def test_layer_scalars_equal_the_tape_the_report_and_the_layers_view(keras_run):
    logdir, expected, report = keras_run
    scalars = read_scalars(logdir)["run"]
    layers = ["conv", "norm", "hidden", "head"]
    norm_tags = {f"{NAME}/grad_norm/{layer}" for layer in layers}
    # One scalar per layer and measure, nothing per parameter; the ReLUs' units under the
    # layers they belong to, named as their norms are.
    assert set(scalars) == norm_tags | {f"{NAME}/dead_units/conv", f"{NAME}/dead_units/hidden"}
    for step, by_layer in expected.items():
        for layer in layers:
            value = scalars[f"{NAME}/grad_norm/{layer}"][step]
            assert math.isclose(value, by_layer[layer], rel_tol=1e-5), (layer, step)
    # The eager step's values are the Report's layer norms, to the float32 written.
    for layer, (state, norm) in report_layer_norms(report).items():
        assert state == V.FLOWING
        assert scalars[f"{NAME}/grad_norm/{layer}"][0] == np.float32(norm)
    # ... and every step's values are the Layers view's cells: one rule for both.
    reader = GradflowReader(local_provider(logdir))
    cells = layer_series(reader.read("run", NAME, reader.list()["run"][NAME]))
    for row, layer in enumerate(cells.layers):
        for column, step in enumerate(cells.steps):
            assert scalars[f"{NAME}/grad_norm/{layer}"][step] == np.float32(cells.norms[row, column])


def test_dead_unit_scalars_are_the_reports_dead_share(keras_run):
    logdir, _, report = keras_run
    scalars = read_scalars(logdir)["run"]
    shares = dead_shares(report, ("conv", "hidden"))
    assert set(shares) == {"conv", "hidden"}
    for layer, share in shares.items():
        assert scalars[f"{NAME}/dead_units/{layer}"][0] == np.float32(share)
    assert shares["hidden"] == 0.5  # the four units whose bias shuts them
    assert set(scalars[f"{NAME}/dead_units/hidden"]) == {0, 1, 2}


def test_a_real_tensorboard_lists_the_scalar_tags(keras_run):
    logdir = keras_run[0]
    with TensorBoardProcess(logdir, load_fast="true") as tb:

        def tags():
            status, listing = fetch_json(tb.url + "/data/plugin/scalars/tags")
            return listing.get("run") if status == 200 else None

        listed = tb.wait_until(tags, "the scalars plugin's tags")
        assert {f"{NAME}/grad_norm/{layer}" for layer in ("conv", "norm", "hidden", "head")} <= set(listed)
        assert {f"{NAME}/dead_units/conv", f"{NAME}/dead_units/hidden"} <= set(listed)
        assert not any("/_graph/" in tag or tag == NAME for tag in listed)  # gradflow's own stay its own


def test_none_zero_and_nonfinite_layers():
    """No gradient: no scalar (nothing to chart; the tab tells the cut). Zero: 0. NaN or Inf:
    kept, so that an explosion stays in the data. Gates without a gradient count no dead units;
    a gate goes to the layer of the nearest variable upstream, else to its name scope."""
    flowing, zero, none, bad = (V.STATE_CODE[s] for s in (V.FLOWING, V.ZERO, V.NONE, V.NONFINITE))
    graph = gradflow_pb2.Graph(
        graph_id="g",
        variables=[gradflow_pb2.Variable(name=n) for n in ("a/w", "a/b", "b/w", "c/w", "c/b", "d/w", "e/w")],
        ops=[gradflow_pb2.Op(name="m/l1/Relu", type="Relu", units=4),
             gradflow_pb2.Op(name="m/l1/Relu_1", type="Relu", units=4),
             gradflow_pb2.Op(name="m/l2/Relu", type="Relu", units=8),
             gradflow_pb2.Op(name="m/a_1/w/Read", type="ReadVariableOp", variable_inputs=[1, 0]),
             gradflow_pb2.Op(name="m/a_1/MatMul", type="MatMul", inputs=[3]),
             gradflow_pb2.Op(name="m/a_1/Relu", type="Relu", inputs=[4], units=10)],
    )
    step = encode_step_arrays(
        "g", np.array([flowing, flowing, none, flowing, flowing, flowing], np.uint8),
        np.array([1, 1, np.nan, 1, 1, 1], np.float32),
        np.array([flowing, flowing, none, bad, flowing, zero, bad], np.uint8),
        np.array([3, 4, np.nan, np.nan, 1, 0, np.inf], np.float32), 1.0, dead_units=[1, 3, 8, 2],
    )
    written = {v.tag: v.tensor.float_val[0] for v in scalar_summary("t", graph, step).value}
    assert set(written) == {"t/grad_norm/a", "t/grad_norm/c", "t/grad_norm/d", "t/grad_norm/e",
                            "t/dead_units/m/l1", "t/dead_units/a"}
    assert written["t/grad_norm/a"] == 5.0
    assert math.isnan(written["t/grad_norm/c"])
    assert written["t/grad_norm/d"] == 0.0
    assert written["t/grad_norm/e"] == math.inf
    assert written["t/dead_units/m/l1"] == 0.5
    assert written["t/dead_units/a"] == np.float32(0.2)


def test_a_failure_to_make_the_scalars_warns_and_training_is_unchanged(tmp_path, monkeypatch, caplog):
    """Inside the user's tf.function the scalars are made on the host at every run: an error
    there must neither stop training nor change it, and the step itself is still logged."""

    def broken(*_args):
        raise RuntimeError("boom")

    monkeypatch.setattr(summary, "scalar_summary", broken)
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(1)])
    plain = keras.models.clone_model(model)
    plain.set_weights(model.get_weights())
    x = tf.constant(np.random.default_rng(1).normal(size=(8, 3)), tf.float32)

    def loss_of(m):
        return lambda: tf.reduce_mean(tf.square(m(x)))

    optimizer, plain_optimizer = keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1)

    @tf.function
    def train(step):
        return summary.gradflow(NAME, loss_of(model), step=step, optimizer=optimizer, scalars=True)

    with tf.summary.create_file_writer(str(tmp_path / "run")).as_default(), caplog.at_level(logging.WARNING):
        for step in range(2):
            train(tf.constant(step, tf.int64))
            with tf.GradientTape() as tape:
                loss = loss_of(plain)()
            grads = tape.gradient(loss, plain.trainable_variables)
            plain_optimizer.apply_gradients(zip(grads, plain.trainable_variables, strict=True))
    for a, b in zip(model.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert "layer scalars of 'gradflow' failed: RuntimeError: boom" in caplog.text
    assert read_scalars(str(tmp_path)) == {}
    reader = GradflowReader(local_provider(str(tmp_path)))
    assert reader.list()["run"][NAME]


def test_callback_writes_layer_scalars_only_when_asked(tmp_path):
    keras.utils.set_random_seed(2)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 5)).astype("float32"), rng.normal(size=(32, 1)).astype("float32")
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(6, activation="relu", name="inner"),
                              keras.layers.Dense(1, name="out")], name="seq")
    model.compile(optimizer="sgd", loss="mse")
    on = tb_gradflow.keras.GradFlowCallback(str(tmp_path / "on"), (x[:8], y[:8]), every_n_steps=3,
                                            strict=True, scalars=True)
    off = tb_gradflow.keras.GradFlowCallback(str(tmp_path / "off"), (x[:8], y[:8]), every_n_steps=3, strict=True)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[on, off])
    assert read_scalars(str(tmp_path / "off")) == {}
    scalars = read_scalars(str(tmp_path / "on"))["train"]
    last = on.last_report
    assert set(scalars) == {f"{NAME}/grad_norm/seq/inner", f"{NAME}/grad_norm/seq/out",
                            f"{NAME}/dead_units/seq/inner"}
    assert sorted(scalars[f"{NAME}/grad_norm/seq/out"]) == [1, 4]  # after the first and last batch
    for layer, (_, norm) in report_layer_norms(last).items():
        assert scalars[f"{NAME}/grad_norm/{layer}"][last.step] == np.float32(norm)
    with tf.GradientTape() as tape:
        loss = model.compute_loss(x=x[:8], y=y[:8], y_pred=model(x[:8], training=True))
    tape_norms = tape_layer_norms([v.path for v in model.trainable_variables],
                                  tape.gradient(loss, model.trainable_variables))
    for layer, norm in tape_norms.items():  # the probe ran on the weights fit ended with
        assert math.isclose(scalars[f"{NAME}/grad_norm/{layer}"][last.step], norm, rel_tol=1e-5)


def test_torch_layer_scalars_equal_autograd(tmp_path):
    torch = pytest.importorskip("torch")
    import tb_gradflow.torch as gt

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y = torch.randn(16, 4), torch.randn(16, 1)

    def loss_fn():
        return torch.nn.functional.mse_loss(net(x), y)

    expected: dict[int, dict[str, float]] = {}
    for step in range(2):
        names, params = zip(*net.named_parameters(), strict=True)
        grads = torch.autograd.grad(loss_fn(), params)
        expected[step] = tape_layer_norms(list(names), [g.numpy() for g in grads])
        report = gt.gradflow(str(tmp_path / "run"), NAME, loss_fn, step=step, optimizer=optimizer,
                             strict=True, scalars=True)
    scalars = read_scalars(str(tmp_path))["run"]
    # The ReLU (module 1) follows layer 0: its dead units are told under that layer.
    assert set(scalars) == {f"{NAME}/grad_norm/0", f"{NAME}/grad_norm/2", f"{NAME}/dead_units/0"}
    [relu] = [op for op in report.ops if op.units]
    assert scalars[f"{NAME}/dead_units/0"][1] == np.float32(relu.dead_units / relu.units)
    for step, by_layer in expected.items():
        for layer, norm in by_layer.items():
            assert math.isclose(scalars[f"{NAME}/grad_norm/{layer}"][step], norm, rel_tol=1e-5)
    for layer, (_, norm) in report_layer_norms(report).items():
        assert scalars[f"{NAME}/grad_norm/{layer}"][1] == np.float32(norm)
