"""Ordinary Keras code, as users write it: every answer checked against a plain GradientTape.

Each case builds a small model the way people do (Sequential, functional, subclassed; custom
loops, `model.fit`, a `tf.function` train step; RNNs, attention, batch norm, mixed precision,
XLA) with at most one real cut, and asserts: every variable's state equals the tape's, the one
starving cut point's op type, cause and line (marked `# CUT <case>` in this file), and the exact
set of starved variables. Cases without a cut assert that nothing starves. Models are tiny so
that the file stays fast.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

import tb_gradflow
from support.oracle import line_of, report_states, tape_states
from tb_gradflow.reading.local_logdir import local_provider
from tb_gradflow.reading.reader import GradflowReader


@dataclasses.dataclass
class Case:
    loss_fn: Callable[..., Any]
    args: Sequence[Any]
    variables: Sequence[Any]  # every trainable variable the report must cover
    starved: set[str]  # exact names of the variables no gradient reaches
    cut: tuple[str, str] | None  # (op type, cause) of the one starving cut, None if none
    # How the report is obtained: "analyze", "summary" (eager logging call), "tf_function" (inside
    # the user's own train step) or "fit" (GradFlowCallback in model.fit; `model` required).
    via: str = "analyze"
    model: Any = None
    fit_kwargs: dict = dataclasses.field(default_factory=dict)
    explicit_variables: bool = False


def _x(n: int = 8, d: int = 6, seed: int = 0) -> tf.Tensor:
    return tf.random.stateless_normal([n, d], seed=[seed, 1])


def _y(n: int = 8, d: int = 1, seed: int = 0) -> tf.Tensor:
    return tf.random.stateless_normal([n, d], seed=[seed, 2])


def _paths(*layers) -> set[str]:
    return {v.path for layer in layers for v in layer.trainable_variables}


def _mse(model):
    def loss_fn(x, y):
        return tf.reduce_mean(tf.square(tf.cast(model(x, training=True), tf.float32) - y))

    return loss_fn


# -- the cases ------------------------------------------------------------------------------------

def sequential_lambda_numpy_function() -> Case:
    keras.utils.set_random_seed(0)
    first = keras.layers.Dense(4, name="first")
    model = keras.Sequential([
        keras.Input((6,)), first,
        keras.layers.Lambda(
            lambda h: tf.ensure_shape(tf.numpy_function(np.tanh, [h], tf.float32), h.shape)  # CUT sequential_lambda_numpy_function  # noqa: E501
        ),
        keras.layers.Dense(1, name="last"),
    ], name="seq")
    return Case(_mse(model), (_x(), _y()), model.trainable_variables, _paths(first), ("PyFunc", "numpy_function"))


def functional_argmax_router() -> Case:
    keras.utils.set_random_seed(0)
    x = keras.Input((6,))
    router = keras.layers.Dense(3, name="router")
    experts = keras.layers.Dense(3, name="experts")
    route = keras.layers.Lambda(
        lambda r: tf.one_hot(tf.argmax(r, axis=-1), 3)  # CUT functional_argmax_router
    )(router(x))
    out = keras.layers.Dense(1, name="out")(experts(x) * route)
    model = keras.Model(x, out, name="moe")
    return Case(_mse(model), (_x(), _y()), model.trainable_variables, _paths(router), ("ArgMax", "non_differentiable"))


class IntQuantized(keras.Model):
    def __init__(self):
        super().__init__(name="int_quantized")
        self.encode = keras.layers.Dense(4, name="encode")
        self.decode = keras.layers.Dense(1, name="decode")

    def call(self, x, training=False):
        codes = tf.cast(self.encode(x) * 4.0, tf.int32)  # CUT subclassed_integer_cast
        return self.decode(tf.cast(codes, tf.float32))


def subclassed_integer_cast() -> Case:
    keras.utils.set_random_seed(0)
    model = IntQuantized()
    model(_x())
    return Case(_mse(model), (_x(), _y()), model.trainable_variables, _paths(model.encode), ("Cast", "integer_cast"))


class Siamese(keras.Model):
    """A BYOL-style pair: the target branch is held still by stop_gradient."""

    def __init__(self):
        super().__init__(name="siamese")
        self.online = keras.layers.Dense(4, name="online")
        self.target = keras.layers.Dense(4, name="target")
        self.predictor = keras.layers.Dense(4, name="predictor")

    def call(self, x, training=False):
        p = self.predictor(self.online(x))
        z = tf.stop_gradient(self.target(x + 0.1))  # CUT custom_loop_stop_gradient
        return tf.reduce_mean(tf.square(p - z))


def custom_loop_stop_gradient() -> Case:
    keras.utils.set_random_seed(0)
    model = Siamese()
    model(_x())
    return Case(lambda x: model(x, training=True), (_x(),), model.trainable_variables,
                _paths(model.target), ("StopGradient", "stop_gradient"), via="summary")


class RoundedLSTM(keras.Model):
    def __init__(self):
        super().__init__(name="rounded_lstm")
        self.project = keras.layers.Dense(4, name="project")
        self.lstm = keras.layers.LSTM(5, name="lstm")
        self.head = keras.layers.Dense(1, name="head")

    def call(self, x, training=False):
        steps = tf.round(self.project(x))  # CUT lstm_after_round
        return self.head(self.lstm(steps))


def lstm_after_round() -> Case:
    keras.utils.set_random_seed(0)
    model = RoundedLSTM()
    x = tf.random.stateless_normal([4, 5, 3], seed=[0, 3])
    model(x)
    return Case(_mse(model), (x, _y(4)), model.trainable_variables, _paths(model.project), ("Round",
            "non_differentiable"))


class GRUThroughNumpy(keras.Model):
    def __init__(self):
        super().__init__(name="gru_numpy")
        self.gru = keras.layers.GRU(4, return_sequences=True, name="gru")
        self.head = keras.layers.Dense(1, name="head")

    def call(self, x, training=False):
        h = self.gru(x)
        pooled = tf.numpy_function(lambda a: a.mean(axis=1), [h], tf.float32)  # CUT gru_then_numpy_function
        return self.head(tf.ensure_shape(pooled, [None, 4]))


def gru_then_numpy_function() -> Case:
    keras.utils.set_random_seed(0)
    model = GRUThroughNumpy()
    x = tf.random.stateless_normal([4, 5, 3], seed=[0, 4])
    model(x)
    return Case(_mse(model), (x, _y(4)), model.trainable_variables, _paths(model.gru), ("PyFunc", "numpy_function"))


class FrozenMemoryAttention(keras.Model):
    """Cross-attention over a memory whose encoder sits behind stop_gradient."""

    def __init__(self):
        super().__init__(name="cross_attention")
        self.memory_encoder = keras.layers.Dense(8, name="memory_encoder")
        self.query = keras.layers.Dense(8, name="query_proj")
        self.attention = keras.layers.MultiHeadAttention(2, 4, name="attention")
        self.head = keras.layers.Dense(1, name="head")

    def call(self, inputs, training=False):
        x, memory = inputs
        memory = tf.stop_gradient(self.memory_encoder(memory))  # CUT attention_frozen_memory
        h = self.attention(self.query(x), memory)
        return self.head(tf.reduce_mean(h, axis=1))


def attention_frozen_memory() -> Case:
    keras.utils.set_random_seed(0)
    model = FrozenMemoryAttention()
    x = tf.random.stateless_normal([2, 3, 5], seed=[0, 5])
    memory = tf.random.stateless_normal([2, 4, 5], seed=[0, 6])
    model((x, memory))

    def loss_fn(x, memory, y):
        return tf.reduce_mean(tf.square(model((x, memory), training=True) - y))

    return Case(loss_fn, (x, memory, _y(2)), model.trainable_variables, _paths(model.memory_encoder),
                ("StopGradient", "stop_gradient"))


def batchnorm_after_round() -> Case:
    keras.utils.set_random_seed(0)
    first = keras.layers.Dense(4, name="first")
    model = keras.Sequential([
        keras.Input((6,)), first,
        keras.layers.Lambda(lambda h: tf.round(h * 3.0)),  # CUT batchnorm_after_round
        keras.layers.BatchNormalization(name="norm"),
        keras.layers.Dense(1, name="out"),
    ], name="bn")
    return Case(_mse(model), (_x(), _y()), model.trainable_variables, _paths(first), ("Round", "non_differentiable"))


def healthy_functional_dropout_layernorm() -> Case:
    keras.utils.set_random_seed(0)
    x = keras.Input((6,))
    h = keras.layers.Dense(8, activation="relu", name="hidden")(x)
    h = keras.layers.Dropout(0.1)(h)
    h = keras.layers.LayerNormalization(name="norm")(h)
    model = keras.Model(x, keras.layers.Dense(1, name="out")(h), name="healthy")
    return Case(_mse(model), (_x(), _y()), model.trainable_variables, set(), None)


class WithUnusedHead(keras.Model):
    """A head built but never called: starved, with no cut to blame."""

    def __init__(self):
        super().__init__(name="unused_head")
        self.body = keras.layers.Dense(4, name="body")
        self.head = keras.layers.Dense(1, name="head")
        self.spare = keras.layers.Dense(1, name="spare")

    def call(self, x, training=False):
        return self.head(self.body(x))


def subclassed_unused_layer() -> Case:
    keras.utils.set_random_seed(0)
    model = WithUnusedHead()
    model(_x())
    model.spare(tf.zeros([1, 4]))
    return Case(_mse(model), (_x(), _y()), model.trainable_variables, _paths(model.spare), None,
                explicit_variables=True)


@tf.custom_gradient
def _straight_through_forgotten(x):
    def grad(upstream):
        return None

    return tf.round(x), grad


class ForgottenGradient(keras.Model):
    def __init__(self):
        super().__init__(name="custom_gradient")
        self.first = keras.layers.Dense(4, name="first")
        self.last = keras.layers.Dense(1, name="last")

    def call(self, x, training=False):
        return self.last(_straight_through_forgotten(self.first(x)))  # CUT subclassed_custom_gradient


def subclassed_custom_gradient() -> Case:
    keras.utils.set_random_seed(0)
    model = ForgottenGradient()
    model(_x())
    return Case(_mse(model), (_x(), _y()), model.trainable_variables, _paths(model.first), ("IdentityN",
            "custom_gradient"))


def conv_floor_quantization() -> Case:
    keras.utils.set_random_seed(0)
    conv = keras.layers.Conv2D(4, 3, name="conv")
    model = keras.Sequential([
        keras.Input((8, 8, 2)), conv,
        keras.layers.Lambda(lambda h: tf.floor(h * 8.0) / 8.0),  # CUT conv_floor_quantization
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(1, name="out"),
    ], name="convnet")
    x = tf.random.stateless_normal([2, 8, 8, 2], seed=[0, 7])
    return Case(_mse(model), (x, _y(2)), model.trainable_variables, _paths(conv), ("Floor", "non_differentiable"))


class ArgmaxLookup(keras.Model):
    """Picks embedding rows by the argmax of a scorer: the scorer never learns."""

    def __init__(self):
        super().__init__(name="argmax_lookup")
        self.scorer = keras.layers.Dense(5, name="scorer")
        self.table = keras.layers.Embedding(5, 3, name="table")
        self.head = keras.layers.Dense(1, name="head")

    def call(self, x, training=False):
        ids = tf.argmax(self.scorer(x), axis=-1)  # CUT embedding_by_argmax
        return self.head(self.table(ids))


def embedding_by_argmax() -> Case:
    keras.utils.set_random_seed(0)
    model = ArgmaxLookup()
    model(_x())
    return Case(_mse(model), (_x(), _y()), model.trainable_variables, _paths(model.scorer), ("ArgMax",
            "non_differentiable"))


def mixed_precision_numpy_function() -> Case:
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(0)
        first = keras.layers.Dense(4, name="first")
        model = keras.Sequential([
            keras.Input((6,)), first,
            keras.layers.Lambda(
                lambda h: tf.ensure_shape(
                    tf.numpy_function(lambda a: np.clip(a, -1, 1), [h], tf.float16),  # CUT mixed_precision_numpy_function  # noqa: E501
                    h.shape,
                )
            ),
            keras.layers.Dense(1, name="out"),
        ], name="mixed")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert first.compute_dtype == "float16"
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.01))
    case = Case(_mse(model), (_x(), _y()), model.trainable_variables, _paths(first), ("PyFunc", "numpy_function"))
    case.fit_kwargs = {"optimizer": optimizer}
    return case


class RoundedGate(keras.Model):
    def __init__(self):
        super().__init__(name="gated")
        self.gate = keras.layers.Dense(4, name="gate")
        self.body = keras.layers.Dense(4, name="body")
        self.out = keras.layers.Dense(1, name="out")

    def call(self, x, training=False):
        return self.out(self.body(x) * tf.round(tf.sigmoid(self.gate(x))))  # CUT tf_function_train_step


def tf_function_train_step() -> Case:
    keras.utils.set_random_seed(0)
    model = RoundedGate()
    model(_x())
    case = Case(_mse(model), (_x(), _y()), model.trainable_variables, _paths(model.gate),
                ("Round", "non_differentiable"), via="tf_function")
    case.fit_kwargs = {"optimizer": keras.optimizers.Adam(0.01)}
    return case


class FitQuantized(keras.Model):
    def __init__(self):
        super().__init__(name="fit_quantized")
        self.first = keras.layers.Dense(4, name="first")
        self.second = keras.layers.Dense(1, name="second")

    def call(self, x, training=False):
        return self.second(tf.round(self.first(x)))  # CUT fit_jit_compile


def fit_jit_compile() -> Case:
    keras.utils.set_random_seed(0)
    model = FitQuantized()
    model.compile(optimizer="adam", loss="mse", jit_compile=True)
    return Case(_mse(model), (_x(16), _y(16)), None, {"fit_quantized/first/kernel", "fit_quantized/first/bias"},
                ("Round", "non_differentiable"), via="fit", model=model)


def fit_functional_stop_gradient_branch() -> Case:
    keras.utils.set_random_seed(0)
    x = keras.Input((6,))
    frozen = keras.layers.Dense(3, name="frozen_features")
    trained = keras.layers.Dense(3, name="trained_features")
    stopped = keras.layers.Lambda(lambda h: tf.stop_gradient(h))(frozen(x))  # CUT fit_functional_stop_gradient_branch
    out = keras.layers.Dense(1, name="out")(keras.layers.Concatenate()([stopped, trained(x)]))
    model = keras.Model(x, out, name="two_branch")
    model.compile(optimizer="sgd", loss="mse")
    return Case(_mse(model), (_x(16), _y(16)), None, _paths(frozen), ("StopGradient", "stop_gradient"),
                via="fit", model=model)


def transformer_lm_sampled_tokens() -> Case:
    """The shared Transformer LM fed by tokens sampled from a (cut) sampler's logits."""
    from support.models import transformer_lm

    model, lm_loss, tokens = transformer_lm(n_blocks=1, vocab=16, dim=8, seq=6, batch=2)
    sampler = keras.layers.Dense(16, name="sampler")
    sampler(tf.zeros([1, 8]))
    noise = tf.random.stateless_normal([2, 7, 8], seed=[0, 8])

    def loss_fn(noise):
        sampled = tf.argmax(sampler(noise), axis=-1, output_type=tf.int32)  # CUT transformer_lm_sampled_tokens
        return lm_loss(sampled)

    variables = model.trainable_variables + sampler.trainable_variables
    return Case(loss_fn, (noise,), variables, _paths(sampler), ("ArgMax", "non_differentiable"))


CASES = {
    f.__name__: f
    for f in (
        sequential_lambda_numpy_function, functional_argmax_router, subclassed_integer_cast,
        custom_loop_stop_gradient, lstm_after_round, gru_then_numpy_function,
        attention_frozen_memory, batchnorm_after_round, healthy_functional_dropout_layernorm,
        subclassed_unused_layer, subclassed_custom_gradient, conv_floor_quantization,
        embedding_by_argmax, mixed_precision_numpy_function, tf_function_train_step,
        fit_jit_compile, fit_functional_stop_gradient_branch, transformer_lm_sampled_tokens,
    )
}


# -- running a case -------------------------------------------------------------------------------

def _read_last(logdir: str, run: str, tag: str):
    reader = GradflowReader(local_provider(logdir))
    return reader.read(run, tag, reader.list()[run][tag]).report()


def _report(case: Case, logdir: str):
    variables = case.variables if case.explicit_variables else None
    if case.via == "analyze":
        return tb_gradflow.analyze(case.loss_fn, *case.args, variables=variables)
    if case.via == "summary":
        writer = tf.summary.create_file_writer(logdir)
        with writer.as_default():
            tb_gradflow.summary.gradflow("flow", case.loss_fn, *case.args, step=0, variables=variables,
                                         optimizer=case.fit_kwargs.get("optimizer"), strict=True)
        writer.flush()
        return _read_last(logdir, ".", "flow")
    if case.via == "tf_function":
        optimizer = case.fit_kwargs["optimizer"]

        @tf.function
        def train_step(*args):
            tb_gradflow.summary.gradflow("flow", case.loss_fn, *args, step=optimizer.iterations,
                                         optimizer=optimizer, strict=True)

        writer = tf.summary.create_file_writer(logdir)
        with writer.as_default():
            for _ in range(2):
                train_step(*case.args)
        writer.flush()
        return _read_last(logdir, ".", "flow")
    if case.via == "fit":
        x, y = case.args
        callback = tb_gradflow.keras.GradFlowCallback(logdir, (x[:8], y[:8]), every_n_steps=1, strict=True)
        case.model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback])
        case.variables = case.model.trainable_variables
        case.args = (x[:8], y[:8])
        return _read_last(logdir, "train", "gradflow")
    raise AssertionError(case.via)


@pytest.mark.parametrize("name", list(CASES))
def test_ordinary_model(name, tmp_path):
    case = CASES[name]()
    if case.fit_kwargs.get("optimizer") is not None and case.via == "analyze":
        case.via = "summary"
    report = _report(case, str(tmp_path))
    names = [v.path for v in case.variables]

    # Every variable object, under its Keras path, in the tape's state.
    assert sorted(report.variables) == sorted(names)
    assert report_states(report) == tape_states(case.loss_fn, case.args, case.variables)
    # The exact starved set, and the one cut that starves it: op, cause, line.
    assert set(report.starved_variables) == case.starved
    starving = report.starving_cut_points
    if case.cut is None:
        assert starving == []
        return
    assert len(starving) == 1, [(c.op_name, c.op_type, c.starved_variables) for c in starving]
    [cut] = starving
    assert (cut.op_type, cut.cause) == case.cut
    assert cut.source == line_of(__file__, f"# CUT {name}")
    assert set(cut.starved_variables) == case.starved
