"""Keras-frozen variables and losses that read nothing (issue 16, items 1 and 2).

Keras 3's `layer.trainable = False` leaves the backing tf.Variable's own `trainable` flag True, and
tf_keras never touches it: the reference is what Keras itself trains, `model.trainable_variables`,
checked with a plain `tf.GradientTape`. A frozen variable is never counted, starved or blamed; it
is listed apart. A loss that reads no trainable variable is the headline failure and fails the CLI.
"""
from __future__ import annotations

import json

import keras
import pytest
import tensorflow as tf

import tb_gradflow
from support.oracle import report_states, tape_states
from tb_gradflow import cli
from tb_gradflow.story import story

X = tf.random.stateless_normal([8, 6], seed=[1, 2])
Y = tf.one_hot(tf.range(8) % 3, 3)


def _backbone(name: str) -> keras.Model:
    return keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(5, activation="relu", name="conv"),
         keras.layers.BatchNormalization(name="bn"), keras.layers.Dense(4, name="proj")],
        name=name,
    )


def _transfer(stop_features: bool) -> tuple[keras.Model, list[str]]:
    """The keras.io transfer-learning guide's shape: a frozen base, then a new head."""
    base = _backbone("base")
    frozen = [v.path for v in base.trainable_weights]
    base.trainable = False
    inputs = keras.Input((6,))
    features = base(inputs, training=False)
    if stop_features:
        features = keras.layers.Lambda(tf.stop_gradient, name="stop")(features)
    outputs = keras.layers.Dense(3, name="head")(features)
    return keras.Model(inputs, outputs, name="classifier"), frozen


def _check_against_keras(report, loss_fn, model_variables) -> None:
    """The report covers exactly the variables Keras trains, in the states a plain tape gives."""
    assert set(report.variables) == {v.path for v in model_variables}
    assert report_states(report) == tape_states(loss_fn, (X, Y), model_variables)


def _cce(model):
    def loss_fn(x, y):
        logits = model(x, training=True)
        return tf.reduce_mean(keras.losses.categorical_crossentropy(y, logits, from_logits=True))
    return loss_fn


def _cli_report(tmp_path, loss_fn) -> tuple[int, str]:
    """Logs two steps of `loss_fn` and runs `tb-gradflow report` (text and --json) on them."""
    logdir = str(tmp_path / "logs")
    with tf.summary.create_file_writer(logdir).as_default():
        for step in (0, 1):
            tb_gradflow.summary.gradflow("gradflow", loss_fn, X, Y, step=step, strict=True)
    status = cli.main(["report", logdir, "--color", "never"])
    return status, logdir


@pytest.mark.parametrize("stop_features", [False, True])
def test_transfer_learning_counts_only_the_head(stop_features, tmp_path, capsys):
    model, frozen = _transfer(stop_features)
    loss_fn = _cce(model)
    report = tb_gradflow.analyze(loss_fn, X, Y)
    _check_against_keras(report, loss_fn, model.trainable_variables)
    assert sorted(report.frozen_variables) == sorted(frozen)
    assert report.starved_variables == [] and report.starving_cut_points == []
    told = story(report)
    assert told["tone"] == "ok"
    frozen_note = next(n for n in told["notes"] if n["kind"] == "frozen")
    assert frozen_note["names"] == list(report.frozen_variables)
    # The correct model passes CI, and the CLI shows what it left out.
    status, logdir = _cli_report(tmp_path, loss_fn)
    out = capsys.readouterr().out
    assert status == 0, out
    assert "6 frozen variables left out" in out and "2 trainable variables, 6 frozen" in out
    assert cli.main(["report", logdir, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)["runs"]["."]["tags"]["gradflow"]
    assert sorted(data["frozen_variables"]) == sorted(frozen)
    assert set(data["variables"]) == {"head/kernel", "head/bias"}


def test_frozen_teacher_is_left_out_of_distillation(tmp_path, capsys):
    teacher = _backbone("teacher")
    teacher.trainable = False
    student = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, name="s")], name="student")

    def distill(x, y):
        soft = tf.nn.softmax(teacher(x, training=False) / 3.0)
        pred = student(x, training=True)
        kl = keras.losses.KLDivergence()(soft, tf.nn.softmax(pred / 3.0))
        return kl + tf.reduce_mean(tf.square(pred[:, :3] - y))

    report = tb_gradflow.analyze(distill, X, Y)
    _check_against_keras(report, distill, student.trainable_variables)
    assert sorted(report.frozen_variables) == sorted(
        ["teacher/conv/kernel", "teacher/conv/bias", "teacher/bn/gamma", "teacher/bn/beta",
         "teacher/proj/kernel", "teacher/proj/bias"])
    assert report.frozen_models == ("teacher",)
    told = story(report)
    # The healthy verdict, and the frozen model in the same sentence.
    assert told["tone"] == "ok"
    assert told["headline"]["text"] == (
        "Gradient reaches every trainable variable; model `teacher` is frozen "
        "(6 frozen variables left out)")
    status, _ = _cli_report(tmp_path, distill)
    out = " ".join(capsys.readouterr().out.split())  # the CLI wraps its lines
    assert status == 0, out
    assert "variable; model `teacher` is frozen (6 frozen variables left out)." in out
    assert "6 frozen variables left out: they are not trained" in out


def test_fully_frozen_model_is_the_headline_failure(tmp_path, capsys):
    model, _ = _transfer(False)
    model.trainable = False
    loss_fn = _cce(model)
    assert model.trainable_variables == []
    report = tb_gradflow.analyze(loss_fn, X, Y)
    _check_against_keras(report, loss_fn, model.trainable_variables)
    assert len(report.frozen_variables) == 8 and report.reads_nothing
    told = story(report)
    assert told["tone"] == "cut"
    assert told["headline"]["text"].startswith(
        "Every model the loss reaches is frozen (trainable=False) (`model`)")
    status, _ = _cli_report(tmp_path, loss_fn)
    assert status == 1
    assert "nothing would train" in capsys.readouterr().out


def test_explicit_variables_keep_the_users_choice_and_list_the_frozen_rest():
    """`variables=model.trainable_variables` (what GradFlowCallback passes): frozen ones apart."""
    model, frozen = _transfer(True)
    loss_fn = _cce(model)
    report = tb_gradflow.analyze(loss_fn, X, Y, variables=model.trainable_variables)
    _check_against_keras(report, loss_fn, model.trainable_variables)
    assert sorted(report.frozen_variables) == sorted(frozen)
    # Asking for a frozen variable by name still reports it: the user chose it.
    chosen = [*model.trainable_variables, model.get_layer("base").weights[0]]
    report = tb_gradflow.analyze(loss_fn, X, Y, variables=chosen)
    assert "base/conv/kernel" in report.variables
    assert report.variables["base/conv/kernel"].state == "none"


def test_tf_keras_frozen_layer_is_left_out():
    K = pytest.importorskip("tf_keras")
    base = K.Sequential([K.layers.Dense(4, input_shape=(6,), name="feat")], name="base")
    base.trainable = False
    model = K.Sequential([base, K.layers.Dense(3, name="out")], name="net")

    def loss_fn(x, y):
        return tf.reduce_mean(tf.square(model(x, training=True) - y))

    report = tb_gradflow.analyze(loss_fn, X, Y)
    assert all(v.trainable for v in base.weights)  # tf_keras leaves the tf.Variable's flag
    names = sorted(report.variables)
    assert names == ["net/out/bias", "net/out/kernel"]
    expected = tape_states(loss_fn, (X, Y), model.trainable_variables,
                           names=["net/out/kernel", "net/out/bias"])
    assert report_states(report) == expected
    assert sorted(report.frozen_variables) == ["net/base/feat/bias", "net/base/feat/kernel"]


# -- item 2: a loss that reads no trainable variable -----------------------------------------------


def test_precomputed_predictions_are_the_headline_failure(tmp_path, capsys):
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, name="d")], name="net")
    preds = model(X)

    def loss_fn(x, y):
        return tf.reduce_mean(tf.square(preds - y))

    with tf.GradientTape() as tape:
        loss = loss_fn(X, Y)
    assert all(g is None for g in tape.gradient(loss, model.trainable_variables))
    report = tb_gradflow.analyze(loss_fn, X, Y)
    assert report.reads_nothing and not report.variables
    told = story(report)
    assert told["tone"] == "cut"
    assert told["headline"]["text"] == "The loss reads no trainable variable: nothing would train"
    causes = " ".join(n["text"] for n in told["notes"] if n["kind"] == "reads_nothing")
    assert "model was called outside the loss function" in causes
    status, _ = _cli_report(tmp_path, loss_fn)
    assert status == 1
    assert "reads no trainable variable" in capsys.readouterr().out


class _CachedEncoder:
    """An object whose loss uses a tensor computed once, while holding the model that made it."""

    def __init__(self):
        self.encoder = keras.Sequential([keras.Input((6,)), keras.layers.Dense(2)], name="enc")
        self.codes = self.encoder(X)

    def loss(self, x, y):
        return tf.reduce_mean(tf.square(self.codes)) + 0.0 * tf.reduce_sum(y)


def test_a_model_the_loss_refers_to_but_never_calls_is_named():
    owner = _CachedEncoder()
    report = tb_gradflow.analyze(owner.loss, X, Y)
    assert report.reads_nothing and report.unread_models == ("encoder",)
    notes = [n for n in story(report)["notes"] if n["kind"] == "reads_nothing"]
    assert notes[0]["text"] == "the loss refers to model `encoder` but never calls it"


@pytest.mark.parametrize("case", ["constant", "no_variables"])
def test_constant_loss_and_empty_variables_read_nothing(case):
    w = tf.Variable(tf.ones([6, 3]), name="w")
    if case == "constant":
        report = tb_gradflow.analyze(lambda x, y: tf.constant(2.0) * tf.reduce_sum(y), X, Y)
    else:
        report = tb_gradflow.analyze(lambda x, y: tf.reduce_sum(x @ w - y), X, Y, variables=[])
    assert report.reads_nothing and story(report)["tone"] == "cut"


def test_a_model_that_is_called_is_not_named_unread():
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)], name="net")
    idle = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)], name="idle")
    idle(X)

    def loss_fn(x, y):
        return tf.reduce_mean(tf.square(model(x) - y)) + 0.0 * tf.reduce_sum(idle.weights[0] * 0)

    report = tb_gradflow.analyze(loss_fn, X, Y)
    assert not report.reads_nothing and report.unread_models == ()
    assert "reads_nothing" not in {n["kind"] for n in story(report)["notes"]}


# -- item 5: the call mistakes ---------------------------------------------------------------------


def test_a_loss_function_returning_none_is_named():
    def forgot_return(x, y):
        tf.reduce_mean(tf.square(x[:, :3] - y))

    with pytest.raises(ValueError, match=r"forgot_return returned None.*`return` missing"):
        tb_gradflow.analyze(forgot_return, X, Y)


def test_a_tensor_passed_for_the_loss_function_is_explained():
    message = "takes the function that computes the loss, not the loss itself"
    with pytest.raises(TypeError, match=message):
        tb_gradflow.analyze(tf.reduce_sum(X), X, Y)


def test_a_non_scalar_loss_is_summed_and_said_so():
    w = tf.Variable(tf.ones([6, 3]), name="w")

    def per_example(x, y):
        return tf.reduce_sum(tf.square(x @ w - y), axis=1)

    report = tb_gradflow.analyze(per_example, X, Y)
    assert report.loss_shape == "8"
    with tf.GradientTape() as tape:
        loss = per_example(X, Y)
    expected = float(tf.norm(tape.gradient(loss, w)))  # the tape differentiates the sum
    assert report.variables["w"].norm == pytest.approx(expected, rel=1e-5)
    note = next(n for n in story(report)["notes"] if n["kind"] == "summed_loss")
    assert note["text"].startswith("the loss has shape 8, not a scalar: its sum is differentiated")


def test_classic_gan_combined_model_trains_only_the_generator():
    """The Keras 2 GAN recipe: compile the discriminator, freeze it, stack it on the generator."""
    gen = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, name="g")], name="generator")
    disc = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, name="d")],
                            name="discriminator")
    disc.compile(optimizer="adam", loss="binary_crossentropy")
    disc.trainable = False
    z = keras.Input((6,))
    gan = keras.Model(z, disc(gen(z)), name="gan")
    labels = tf.ones([8, 1])

    def loss_fn(x, y):
        return tf.reduce_mean(keras.losses.binary_crossentropy(labels, gan(x), from_logits=True))

    report = tb_gradflow.analyze(loss_fn, X, Y)
    _check_against_keras(report, loss_fn, gan.trainable_variables)
    assert sorted(report.frozen_variables) == ["discriminator/d/bias", "discriminator/d/kernel"]


def test_embedding_made_frozen_is_listed_apart():
    """Pretrained embeddings made with trainable=False (Keras 3 keeps the tf.Variable trainable)."""
    emb = keras.layers.Embedding(10, 3, trainable=False, name="pretrained")
    model = keras.Sequential([keras.Input((2,), dtype="int32"), emb, keras.layers.Flatten(),
                              keras.layers.Dense(3, name="out")], name="net")
    ids = tf.constant([[1, 2]] * 8)

    def loss_fn(x, y):
        return tf.reduce_mean(tf.square(model(x) - y))

    report = tb_gradflow.analyze(loss_fn, ids, Y)
    assert set(report.variables) == {v.path for v in model.trainable_variables}
    assert report_states(report) == tape_states(loss_fn, (ids, Y), model.trainable_variables)
    assert report.frozen_variables == ("net/pretrained/embeddings",)
