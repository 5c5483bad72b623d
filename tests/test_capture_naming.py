"""One report entry per variable object, under the user's Keras path, unique and stable."""
from __future__ import annotations

import tensorflow as tf

import tb_gradflow
from support.models import DQNAgent, gan, transformer_lm
from support.oracle import report_states, tape_states


def test_default_variables_of_a_subclassed_transformer_are_named_by_keras_path():
    model, loss_fn, tokens = transformer_lm(n_blocks=2)
    variables = model.trainable_variables

    report = tb_gradflow.analyze(loss_fn, tokens)

    assert len(report.variables) == len(variables) == 37
    assert list(report.variables) == [v.path for v in variables]
    assert sum(n.startswith("lm/block_1/") for n in report.variables) == 16
    assert report_states(report) == tape_states(loss_fn, [tokens], variables)


def _dqn_names(agent: DQNAgent) -> list[str]:
    return [v.path for v in agent.online.trainable_variables] + [
        f"target/{v.path}" for v in agent.target.trainable_variables
    ]


def test_dqn_target_made_by_clone_model_gets_its_own_entries():
    agent = DQNAgent()
    batch = agent.batch()
    variables = agent.online.trainable_variables + agent.target.trainable_variables
    assert {v.path for v in agent.online.trainable_variables} == {
        v.path for v in agent.target.trainable_variables
    }
    names = _dqn_names(agent)

    report = tb_gradflow.analyze(agent.loss, *batch)

    assert list(report.variables) == names
    expected = tape_states(agent.loss, batch, variables, names)
    assert report_states(report) == expected
    assert {s for n, s in expected.items() if n.startswith("target/")} == {"none"}
    assert {s for n, s in expected.items() if not n.startswith("target/")} == {"flowing"}
    assert set(report.cut_points[0].starved_variables) == set(names[4:])

    explicit = tb_gradflow.analyze(agent.loss, *batch, variables=variables)
    assert report_states(explicit) == expected


def test_gan_models_with_equal_layer_paths_are_told_apart_by_model_name():
    generator, discriminator, generator_loss, discriminator_loss, z, real = gan()
    variables = generator.trainable_variables + discriminator.trainable_variables
    assert [v.path for v in generator.trainable_variables] == [
        v.path for v in discriminator.trainable_variables
    ]
    names = [f"generator/{v.path}" for v in generator.trainable_variables] + [
        f"discriminator/{v.path}" for v in discriminator.trainable_variables
    ]

    d_report = tb_gradflow.analyze(discriminator_loss, z, real)
    g_report = tb_gradflow.analyze(generator_loss, z)

    assert sorted(d_report.variables) == sorted(names)
    assert report_states(d_report) == tape_states(discriminator_loss, [z, real], variables, names)
    assert d_report.starved_variables == names[:4]
    assert report_states(g_report) == tape_states(generator_loss, [z], variables, names)


def test_names_stay_the_same_across_calls_and_retraces():
    agent = DQNAgent()
    first = tb_gradflow.analyze(agent.loss, *agent.batch(8))
    again = tb_gradflow.analyze(agent.loss, *agent.batch(8, seed=1))
    retraced = tb_gradflow.analyze(agent.loss, *agent.batch(5))  # new shapes: a new trace
    assert list(first.variables) == list(again.variables) == list(retraced.variables)
    assert list(first.variables) == _dqn_names(agent)


def test_plain_variables_with_one_name_get_a_numbered_suffix():
    a = tf.Variable(1.0, name="w")
    b = tf.Variable(2.0, name="w")

    def loss_fn():
        return a * 3.0 + tf.stop_gradient(b)

    report = tb_gradflow.analyze(loss_fn)
    assert report_states(report) == tape_states(loss_fn, [], [a, b], ["w", "w#2"])


def test_unique_names_rule():
    from tb_gradflow.capture.owners import Owner
    from tb_gradflow.capture.variables import unique_names

    class Model:
        def __init__(self, name):
            self.name = name

    gen, disc = Owner(Model("gen"), "g"), Owner(Model("disc"), "d")
    twin_a, twin_b = Owner(Model("net"), "online"), Owner(Model("net"), "target")
    assert unique_names([("d/k", gen), ("d/k", disc), ("x", None)]) == ["gen/d/k", "disc/d/k", "x"]
    assert unique_names([("net/k", twin_a), ("net/k", twin_b)]) == ["online/net/k", "target/net/k"]
    assert unique_names([("k", None), ("k", gen), ("k", None)]) == ["k", "k#2", "k#3"]
