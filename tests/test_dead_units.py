"""Dead units (issue 17): counted on the device per ReLU-family gate, checked against a plain
tf.GradientTape on a ReLU MLP and a small NHWC conv net; streaks over logged steps; a tf.where
mask told as a mask."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

import tb_gradflow
from tb_gradflow import vocabulary as V
from tb_gradflow.reading.local_logdir import local_provider
from tb_gradflow.reading.reader import GradflowReader
from tb_gradflow.story import story, story_lines


def _dead_by_tape(passed: tf.Tensor, output: tf.Tensor) -> int:
    """Units (last axis) where the gate's output and the gradient it passes back are zero at
    every other index: off for every example, the definition, in numpy."""
    g, o = (t.numpy().reshape(-1, t.shape[-1]) for t in (passed, output))
    return int(np.sum(np.all(g == 0, axis=0) & np.all(o == 0, axis=0)))


def _of_layer(ops, name: str):
    """The dead units of the one op under the layer's name scope ("h1", "h1_2": Keras numbers
    scopes it enters twice)."""
    (op,) = [
        op
        for op in ops
        if any(part == name or part.startswith(name + "_") for part in op.name.split("/"))
    ]
    return op.dead_units


def _kill(layer: keras.layers.Layer, units: list[int]) -> None:
    bias = layer.bias.numpy()
    bias[units] = -1e3
    layer.bias.assign(bias)


def test_relu_mlp_dead_units_match_a_tape():
    keras.utils.set_random_seed(3)
    layers = [
        keras.layers.Dense(n, activation="relu", name=f"h{k}") for k, n in enumerate((32, 24, 16))
    ]
    layers.append(keras.layers.Dense(1, name="out"))
    model = keras.Sequential([keras.Input((10,)), *layers])
    _kill(layers[0], [0, 3, 5, 7, 11])
    _kill(layers[1], [*range(0, 24, 2), 1, 3])
    x, y = tf.random.normal([64, 10], seed=4), tf.random.normal([64, 1], seed=5)

    def loss_fn(x, y):
        return tf.reduce_mean((model(x) - y) ** 2)

    report = tb_gradflow.analyze(loss_fn, x, y)
    relus = [op for op in report.ops if op.type == "Relu"]
    assert [op.units for op in relus] == [32, 24, 16]

    # The same forward pass written out, each ReLU's input watched.
    with tf.GradientTape() as tape:
        h, pre, post = x, [], []
        for layer in layers[:-1]:
            z = h @ layer.kernel + layer.bias
            tape.watch(z)
            pre.append(z)
            h = tf.nn.relu(z)
            post.append(h)
        loss = tf.reduce_mean((h @ layers[-1].kernel + layers[-1].bias - y) ** 2)
    expected = [_dead_by_tape(g, h) for g, h in zip(tape.gradient(loss, pre), post, strict=True)]
    assert [_of_layer(relus, layer.name) for layer in layers[:-1]] == expected
    assert expected[0] >= 5 and expected[1] >= 14  # the killed units, at least
    # Over half of the second layer is dead: called out, with the threshold said.
    told = [n for n in story(report)["notes"] if n["kind"] == V.DEAD_UNITS]
    assert [n["names"] for n in told] == [[op.name] for op in relus if op.dead_units > op.units / 2]
    assert any(
        f"{expected[1]} of 24 units dead" in n["text"] and "over 50 % dead" in n["text"]
        for n in told
    )


def test_conv_net_counts_channels_nhwc():
    keras.utils.set_random_seed(7)
    conv1 = keras.layers.Conv2D(8, 3, activation="relu", name="c1")
    conv2 = keras.layers.Conv2D(6, 3, activation="relu", name="c2")
    head = keras.layers.Dense(2)
    model = keras.Sequential(
        [keras.Input((9, 9, 3)), conv1, conv2, keras.layers.GlobalAveragePooling2D(), head]
    )
    _kill(conv1, [1, 2, 6])
    _kill(conv2, [4])
    x = tf.random.normal([4, 9, 9, 3], seed=8)

    def loss_fn(x):
        return tf.reduce_sum(model(x) ** 2)

    report = tb_gradflow.analyze(loss_fn, x)
    relus = [op for op in report.ops if op.type == "Relu"]
    assert [op.units for op in relus] == [8, 6]  # channels, the last axis of NHWC

    with tf.GradientTape() as tape:
        z1 = tf.nn.conv2d(x, conv1.kernel, 1, "VALID") + conv1.bias
        tape.watch(z1)
        h1 = tf.nn.relu(z1)
        z2 = tf.nn.conv2d(h1, conv2.kernel, 1, "VALID") + conv2.bias
        tape.watch(z2)
        h2 = tf.nn.relu(z2)
        pooled = tf.reduce_mean(h2, axis=[1, 2])
        loss = tf.reduce_sum((pooled @ head.kernel + head.bias) ** 2)
    g1, g2 = tape.gradient(loss, [z1, z2])
    dead1, dead2 = _of_layer(relus, "c1"), _of_layer(relus, "c2")
    assert (dead1, dead2) == (_dead_by_tape(g1, h1), _dead_by_tape(g2, h2))
    assert dead1 >= 3 and dead2 >= 1


def test_units_nothing_reaches_are_not_dead(tmp_path):
    """A layer whose units all die leaves the ReLU before it with no gradient at all: that ReLU
    passes back zeros everywhere, but its units are on, so none is dead and the dead-unit hint
    names only the layer that died."""
    keras.utils.set_random_seed(0)
    first = keras.layers.Dense(16, activation="relu", name="first")
    second = keras.layers.Dense(16, activation="relu", name="second")
    model = keras.Sequential([keras.Input((8,)), first, second, keras.layers.Dense(1, name="out")], name="net")
    _kill(second, list(range(16)))
    x, y = tf.random.normal([32, 8], seed=1), tf.random.normal([32, 1], seed=2)

    def loss_fn(x, y):
        return tf.reduce_mean((model(x) - y) ** 2)

    with tf.GradientTape(persistent=True) as tape:
        z1 = x @ first.kernel + first.bias
        tape.watch(z1)
        h1 = tf.nn.relu(z1)
        tape.watch(h1)
        loss = tf.reduce_mean((tf.nn.relu(h1 @ second.kernel + second.bias) @ model.layers[-1].kernel - y) ** 2)
    passed, received = tape.gradient(loss, [z1, h1])
    assert not np.any(passed.numpy()) and not np.any(received.numpy())  # nothing arrives at all

    writer = tf.summary.create_file_writer(str(tmp_path / "run"))
    with writer.as_default():
        report = tb_gradflow.summary.gradflow("gradflow", loss_fn, x, y, step=0, strict=True)
    writer.close()
    relus = [op for op in report.ops if op.type == "Relu"]
    assert [(op.units, op.dead_units) for op in relus] == [(16, 0), (16, 16)]
    told = [n for n in story(report)["notes"] if n["kind"] == V.DEAD_UNITS]
    assert [n["names"] for n in told] == [[relus[1].name]]
    assert told[0]["text"].startswith(f"{relus[1].name} (layer net/second): 16 of 16 units dead")
    # The first layer's variables are told as getting an all-zero gradient.
    assert report.variables["net/first/kernel"].state == V.ZERO

    from tb_gradflow.diagnosis import diagnosis_json

    reader = GradflowReader(local_provider(str(tmp_path)))
    series = reader.read("run", "gradflow", reader.list()["run"]["gradflow"])
    dead = diagnosis_json(series)["dead_units"]
    assert {name: (d["layer"], d["dead_units"]) for name, d in dead.items()} == {
        relus[0].name: ("net/first", 0), relus[1].name: ("net/second", 16)
    }


def test_leaky_relu_at_zero_is_counted_and_a_leaking_one_has_none_dead():
    keras.utils.set_random_seed(1)
    dense = keras.layers.Dense(8)
    x = tf.random.normal([16, 4], seed=2)
    dense(x)
    _kill(dense, [0, 1, 2])

    def loss_at(alpha: float):
        return lambda x: tf.reduce_sum(tf.nn.leaky_relu(dense(x), alpha=alpha) ** 2)

    flat = next(op for op in tb_gradflow.analyze(loss_at(0.0), x).ops if op.type == "LeakyRelu")
    leaking = next(op for op in tb_gradflow.analyze(loss_at(0.2), x).ops if op.type == "LeakyRelu")
    assert (flat.units, flat.dead_units) == (8, 3)
    assert (leaking.units, leaking.dead_units) == (8, 0)


def test_an_input_of_exactly_zero_kills_a_relu_but_not_a_leaking_gate():
    """At x = 0 a ReLU's output is zero and it passes nothing back; a LeakyReLU's output is zero
    too, but it passes alpha * g back: off is not enough, it must also pass nothing."""
    zeroed = keras.layers.Dense(8, kernel_initializer="zeros")
    x = tf.random.normal([16, 4], seed=3)
    zeroed(x)

    def count(gate):
        report = tb_gradflow.analyze(lambda x: tf.reduce_sum(gate(zeroed(x)) @ tf.ones([8, 1])), x)
        (op,) = [op for op in report.ops if op.units]
        return op.dead_units

    assert count(tf.nn.relu) == 8
    assert count(lambda h: tf.nn.leaky_relu(h, alpha=0.2)) == 0
    assert count(tf.nn.elu) == 0


def test_streak_says_since_when(tmp_path):
    keras.utils.set_random_seed(0)
    layer = keras.layers.Dense(16, activation="relu", name="hidden")
    head = keras.layers.Dense(1, name="head")
    x = tf.random.normal([32, 5], seed=1)
    head(layer(x))

    def loss_fn(x):
        return tf.reduce_sum(head(layer(x)) ** 2)

    writer = tf.summary.create_file_writer(str(tmp_path / "run"))
    with writer.as_default():
        for step in (0, 100, 1200, 1300):
            if step == 1200:
                _kill(layer, list(range(12)))
            tb_gradflow.summary.gradflow("gradflow", loss_fn, x, step=step, strict=True)
    writer.close()

    reader = GradflowReader(local_provider(str(tmp_path)))
    series = reader.read("run", "gradflow", reader.list()["run"]["gradflow"])
    last = series.report()
    relu = next(op for op in last.ops if op.type == "Relu")
    assert relu.dead_units >= 12 and last.dead_since == {relu.name: 1200}
    text = "\n".join(story_lines(last))
    # Keras 3 traces the layer's ReLU under a scope of its own ("hidden_1/Relu"): the sentence
    # names the layer as the Layers view does.
    assert relu.name != "hidden/Relu"
    assert f"{relu.name} (layer hidden): {relu.dead_units} of 16 units dead since step 1,200" in text
    assert V.DEAD_UNITS_HINT in text
    early = series.report(100)
    assert early.dead_since == {} and not [
        n for n in story(early)["notes"] if n["kind"] == V.DEAD_UNITS
    ]


def test_where_mask_is_told_as_a_mask_without_the_dead_relu_hint():
    """A pooler that keeps only the [CLS] position: tf.where passes back 1 position in 16."""
    keras.utils.set_random_seed(5)
    dense = keras.layers.Dense(8)
    tokens = tf.random.normal([4, 16, 8], seed=6)
    dense(tokens)
    is_cls = tf.range(16)[None, :, None] == 0

    def loss_fn(tokens):
        h = dense(tokens)
        pooled = tf.reduce_sum(tf.where(is_cls, h, tf.zeros_like(h)), axis=1)
        return tf.reduce_sum(pooled**2)

    report = tb_gradflow.analyze(loss_fn, tokens)
    told = story(report)
    kinds = [n["kind"] for n in told["notes"]]
    assert V.MASK in kinds and V.DEAD_GATE not in kinds and V.DEAD_UNITS not in kinds
    assert told["tone"] == "ok"
    text = "\n".join(story_lines(report))
    assert (
        "tf.where mask" in text and V.DEAD_GATE_HINT not in text and V.DEAD_UNITS_HINT not in text
    )
