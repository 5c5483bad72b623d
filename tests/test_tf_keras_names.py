"""tf_keras (Keras 2) variables: one entry each, named by their place in the layer tree.

tf_keras variables have no Keras `path`, and their TensorFlow name misses the models a Sequential
or functional model nests (`hidden/kernel:0` in both a DQN's online and target network). The
report names them as Keras 3 would name the same models, with the same collision rule, and each
test first checks that the TensorFlow names alone would have collided.

The tests run tf_keras next to Keras 3 (`import tf_keras`); the last one runs this file as a
script with TF_USE_LEGACY_KERAS=1, where `tf.keras` is tf_keras and Keras 3 is never imported.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import tensorflow as tf

import tb_gradflow
from support.oracle import report_states, tape_states
from tb_gradflow.capture.probe import Probe

if os.environ.get("TF_USE_LEGACY_KERAS") == "1":
    K = tf.keras
else:
    K = pytest.importorskip("tf_keras")


def _tf_names(variables) -> list[str]:
    return [v.name[: -len(":0")] for v in variables]


# -- models -----------------------------------------------------------------------------------------


class DQN:
    """An online Q-network and its `clone_model` target behind stop_gradient: both are named
    `online`, with the same layer names."""

    def __init__(self):
        K.utils.set_random_seed(0)
        self.online = K.Sequential(
            [K.Input((4,)), K.layers.Dense(16, activation="relu", name="hidden"), K.layers.Dense(2, name="q")],
            name="online",
        )
        self.target = K.models.clone_model(self.online)
        self.target.set_weights(self.online.get_weights())

    def loss(self, states, actions, rewards, next_states):
        q = tf.gather(self.online(states), actions, batch_dims=1)
        next_q = tf.stop_gradient(self.target(next_states))
        return tf.reduce_mean(tf.square(rewards + 0.99 * tf.reduce_max(next_q, axis=1) - q))


def _batch(n: int = 8, seed: int = 0):
    return (
        tf.random.stateless_normal([n, 4], seed=[seed, 1]),
        tf.random.stateless_uniform([n], seed=[seed, 2], maxval=2, dtype=tf.int32),
        tf.random.stateless_normal([n], seed=[seed, 3]),
        tf.random.stateless_normal([n, 4], seed=[seed, 4]),
    )


_DQN_LAYERS = ["hidden/kernel", "hidden/bias", "q/kernel", "q/bias"]
DQN_NAMES = [f"online/{p}" for p in _DQN_LAYERS] + [f"target/online/{p}" for p in _DQN_LAYERS]


# Like support.models' GAN, built here: that module imports Keras 3, which the TF_USE_LEGACY_KERAS
# run must not load.
def _mlp(name: str, inputs: int, outputs: int):
    x = K.Input((inputs,))
    h = K.layers.Dense(16, activation="relu", name="hidden")(x)
    return K.Model(x, K.layers.Dense(outputs, name="out")(h), name=name)


class Block(K.layers.Layer):
    """A layer holding a Dense, a Sequential (whose variables tf_keras names outside the block's
    scope: `up/kernel:0`) and a LayerNormalization."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.mix = K.layers.Dense(8, name="mix")
        self.ffn = K.Sequential([K.layers.Dense(16, activation="relu", name="up"), K.layers.Dense(8, name="down")],
                                name="ffn")
        self.norm = K.layers.LayerNormalization(name="norm")

    def call(self, x):
        x = x + self.mix(x)
        return self.norm(x + self.ffn(x))


class Net(K.Model):
    """A subclassed model: an embedding, two Blocks from one class, a probe head behind
    stop_gradient (read, never trained by this loss) and an output layer."""

    def __init__(self):
        super().__init__(name="net")
        self.embed = K.layers.Embedding(20, 8, name="embed")
        self.blocks = [Block(name=f"block_{i}") for i in range(2)]
        self.probe = K.layers.Dense(8, name="probe")
        self.head = K.layers.Dense(20, name="head")

    def call(self, tokens):
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
        return self.head(x + tf.stop_gradient(self.probe(x)))


def _block_names(i: int) -> list[str]:
    b = f"net/block_{i}"
    return [f"{b}/mix/kernel", f"{b}/mix/bias", f"{b}/ffn/up/kernel", f"{b}/ffn/up/bias",
            f"{b}/ffn/down/kernel", f"{b}/ffn/down/bias", f"{b}/norm/gamma", f"{b}/norm/beta"]


NET_NAMES = ["net/embed/embeddings", *_block_names(0), *_block_names(1), "net/probe/kernel",
             "net/probe/bias", "net/head/kernel", "net/head/bias"]


def _net():
    K.utils.set_random_seed(0)
    model = Net()
    tokens = tf.random.stateless_uniform([4, 7], seed=[0, 7], maxval=20, dtype=tf.int32)
    model(tokens[:, :-1])
    xent = K.losses.SparseCategoricalCrossentropy(from_logits=True)

    def loss_fn(tokens):
        return xent(tokens[:, 1:], model(tokens[:, :-1]))

    return model, loss_fn, tokens


# -- tests ------------------------------------------------------------------------------------------


def test_dqn_target_made_by_clone_model_gets_its_own_entries():
    agent = DQN()
    batch = _batch()
    variables = agent.online.trainable_variables + agent.target.trainable_variables
    assert agent.target.name == agent.online.name == "online"
    assert _tf_names(agent.target.trainable_variables) == _tf_names(agent.online.trainable_variables) == _DQN_LAYERS

    report = tb_gradflow.analyze(agent.loss, *batch)

    assert list(report.variables) == DQN_NAMES
    expected = tape_states(agent.loss, batch, variables, DQN_NAMES)
    assert report_states(report) == expected
    assert {s for n, s in expected.items() if n.startswith("target/")} == {"none"}
    assert {s for n, s in expected.items() if n.startswith("online/")} == {"flowing"}
    assert set(report.cut_points[0].starved_variables) == set(DQN_NAMES[4:])

    explicit = tb_gradflow.analyze(agent.loss, *batch, variables=variables)
    assert list(explicit.variables) == DQN_NAMES
    assert report_states(explicit) == expected


class CompiledDQN(DQN):
    """The same agent with its loss decorated by `tf.function`, as a custom training loop has it."""

    @tf.function
    def loss(self, states, actions, rewards, next_states):
        return DQN.loss(self, states, actions, rewards, next_states)


def test_a_tf_function_loss_finds_the_models_of_its_object():
    agent = CompiledDQN()
    batch = _batch()
    variables = agent.online.trainable_variables + agent.target.trainable_variables

    first = tb_gradflow.analyze(agent.loss, *batch)
    again = tb_gradflow.analyze(agent.loss, *_batch(5))  # a new trace of the rewrapped loss

    assert list(first.variables) == list(again.variables) == DQN_NAMES
    assert report_states(first) == tape_states(agent.loss, batch, variables, DQN_NAMES)


def test_gan_models_with_equal_layer_names_are_told_apart_by_model_name():
    K.utils.set_random_seed(0)
    generator, discriminator = _mlp("generator", 3, 5), _mlp("discriminator", 5, 1)
    xent = K.losses.BinaryCrossentropy(from_logits=True)

    def generator_loss(z):
        fake = discriminator(generator(z))
        return xent(tf.ones_like(fake), fake)

    def discriminator_loss(z, real):
        fake = discriminator(tf.stop_gradient(generator(z)))
        real_logits = discriminator(real)
        return xent(tf.zeros_like(fake), fake) + xent(tf.ones_like(real_logits), real_logits)

    z = tf.random.stateless_normal([8, 3], seed=[0, 5])
    real = tf.random.stateless_normal([8, 5], seed=[0, 6])
    variables = generator.trainable_variables + discriminator.trainable_variables
    layers = ["hidden/kernel", "hidden/bias", "out/kernel", "out/bias"]
    assert _tf_names(generator.trainable_variables) == _tf_names(discriminator.trainable_variables) == layers
    names = [f"generator/{p}" for p in layers] + [f"discriminator/{p}" for p in layers]

    d_report = tb_gradflow.analyze(discriminator_loss, z, real)
    g_report = tb_gradflow.analyze(generator_loss, z)

    assert sorted(d_report.variables) == sorted(names)
    assert report_states(d_report) == tape_states(discriminator_loss, [z, real], variables, names)
    assert d_report.starved_variables == names[:4]
    assert sorted(g_report.variables) == sorted(names)
    g_expected = tape_states(generator_loss, [z], variables, names)
    assert set(g_expected.values()) == {"flowing"}
    assert report_states(g_report) == g_expected


def test_models_inside_a_combined_model_are_named_from_it():
    K.utils.set_random_seed(0)
    generator, discriminator = _mlp("generator", 3, 5), _mlp("discriminator", 5, 1)
    gan = K.Sequential([generator, discriminator], name="gan")

    def loss_fn(z):
        return tf.reduce_mean(gan(z))

    z = tf.random.stateless_normal([8, 3], seed=[0, 5])
    report = tb_gradflow.analyze(loss_fn, z)

    layers = ["hidden/kernel", "hidden/bias", "out/kernel", "out/bias"]
    names = [f"gan/generator/{p}" for p in layers] + [f"gan/discriminator/{p}" for p in layers]
    assert sorted(report.variables) == sorted(names)
    assert report_states(report) == tape_states(loss_fn, [z], gan.trainable_variables, names)


def test_default_variables_of_a_subclassed_model_are_named_by_the_layer_tree():
    model, loss_fn, tokens = _net()
    variables = model.trainable_variables
    tf_names = _tf_names(variables)
    assert tf_names.count("up/kernel") == 2, tf_names  # the TF names alone collide
    assert tf_names[0] == "net/embed/embeddings"

    report = tb_gradflow.analyze(loss_fn, tokens)

    assert len(report.variables) == len(variables) == len(NET_NAMES)
    assert sorted(report.variables) == sorted(NET_NAMES)
    expected = tape_states(loss_fn, [tokens], variables, NET_NAMES)
    assert {n for n, s in expected.items() if s != "flowing"} == {"net/probe/kernel", "net/probe/bias"}
    assert report_states(report) == expected

    explicit = tb_gradflow.analyze(loss_fn, tokens, variables=variables)
    assert list(explicit.variables) == NET_NAMES
    assert report_states(explicit) == expected


def test_mixed_precision_variables_are_named_alike_with_or_without_variables():
    """Under mixed_float16 `model.weights` lists AutoCastVariables; a trace reads the float32
    variables inside them."""
    K.mixed_precision.set_global_policy("mixed_float16")
    try:
        K.utils.set_random_seed(0)
        model = K.Sequential([K.Input((4,)), K.layers.Dense(8, name="hidden"),
                              K.layers.Dense(1, name="out", dtype="float32")], name="mp")
    finally:
        K.mixed_precision.set_global_policy("float32")
    x = tf.random.stateless_normal([8, 4], seed=[0, 8])

    def loss_fn(x):
        return tf.reduce_mean(tf.square(tf.cast(model(x), tf.float32)))

    variables = model.trainable_variables
    assert type(variables[0]).__name__ == "AutoCastVariable"
    names = ["mp/hidden/kernel", "mp/hidden/bias", "mp/out/kernel", "mp/out/bias"]
    default = tb_gradflow.analyze(loss_fn, x)
    explicit = tb_gradflow.analyze(loss_fn, x, variables=variables)
    assert list(default.variables) == list(explicit.variables) == names
    expected = tape_states(loss_fn, [x], variables, names)
    assert report_states(default) == report_states(explicit) == expected


def _graph_names(graph) -> list[str]:
    return [v.name for v in graph.variables]


def test_names_stay_the_same_across_calls_steps_and_retraces():
    agent = DQN()
    first = tb_gradflow.analyze(agent.loss, *_batch(8))
    again = tb_gradflow.analyze(agent.loss, *_batch(8, seed=1))
    retraced = tb_gradflow.analyze(agent.loss, *_batch(5))
    assert list(first.variables) == list(again.variables) == list(retraced.variables) == DQN_NAMES

    model, loss_fn, tokens = _net()
    probe = Probe(loss_fn)
    steps = [probe(tokens), probe(tokens), probe(tokens[:2])]  # two steps, then a new trace
    assert len(probe.graphs) == 2
    for graph in probe.graphs.values():
        assert sorted(_graph_names(graph)) == sorted(NET_NAMES)
    assert _graph_names(steps[1].graph) == _graph_names(steps[0].graph)
    assert sorted(_graph_names(steps[2].graph)) == sorted(NET_NAMES)


def test_under_tf_use_legacy_keras(tmp_path):
    """This file's checks in a process where `tf.keras` is tf_keras and Keras 3 is not loaded."""
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, os.path.abspath(__file__)], capture_output=True, text=True,
                          timeout=300, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "tf_keras names: keras 3 not loaded, 6 checks passed"


def _main() -> None:
    checks = [
        test_dqn_target_made_by_clone_model_gets_its_own_entries,
        test_a_tf_function_loss_finds_the_models_of_its_object,
        test_gan_models_with_equal_layer_names_are_told_apart_by_model_name,
        test_models_inside_a_combined_model_are_named_from_it,
        test_default_variables_of_a_subclassed_model_are_named_by_the_layer_tree,
        test_mixed_precision_variables_are_named_alike_with_or_without_variables,
    ]
    assert K.__name__.startswith("tf_keras"), K.__name__
    for check in checks:
        check()
    assert "keras" not in sys.modules, "Keras 3 got imported"
    print(f"tf_keras names: keras 3 not loaded, {len(checks)} checks passed")


if __name__ == "__main__":
    _main()
