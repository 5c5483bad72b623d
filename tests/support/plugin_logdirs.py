"""Logdirs for the plugin tests and benchmark, written by the real `tb_gradflow.summary`.

Good runs come from real probe calls. Hostile runs reuse real graph and step protos and damage
one thing each (format version, tensor, graph bytes, event file framing), so that a test can
check that exactly that is skipped and the rest is served.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import tensorflow as tf

from tb_gradflow import summary
from tb_gradflow import vocabulary as V
from tb_gradflow.capture.analyze import run_probe
from tb_gradflow.capture.probe import ProbeResult
from tb_gradflow.format import metadata
from tb_gradflow.format.records import encode_step, presence_arrays, step_arrays
from tb_gradflow.proto import gradflow_pb2

TAG = "gradflow"


def cut_model(seed: int = 0) -> tuple[Callable[[tf.Tensor], tf.Tensor], dict[str, Any]]:
    """A loss whose `tf.numpy_function` starves the encoder; fresh variables at each call."""
    import keras  # imported here: Keras is slow to import and only writers need it

    keras.utils.set_random_seed(seed)
    encoder = keras.layers.Dense(4, name="encoder")
    decoder = keras.layers.Dense(1, name="decoder")
    gate = keras.layers.Dense(1, name="gate")

    def lookup(v: np.ndarray) -> np.ndarray:
        return np.round(v).astype(np.float32)

    def loss_fn(x: tf.Tensor) -> tf.Tensor:
        h = encoder(x)
        cut = tf.numpy_function(lookup, [h], tf.float32)
        cut.set_shape(h.shape)
        # The gate's gradient exists and is exactly zero: a `zero` variable next to `none` ones.
        return tf.reduce_mean(tf.square(decoder(cut))) + 0.0 * tf.reduce_mean(gate(x))

    return loss_fn, {"encoder": encoder, "decoder": decoder, "gate": gate}


def batch(n: int, step: int = 0) -> tf.Tensor:
    return tf.constant(np.random.default_rng(step).normal(size=(n, 3)), tf.float32)


class RunWriter:
    """One run of the cut model, logged with real `summary.gradflow` calls as training would;
    each `log` flushes, so that a TensorBoard reading the run sees its steps."""

    def __init__(self, run_dir: str):
        self.loss_fn, _ = cut_model()
        self.writer = tf.summary.create_file_writer(run_dir)

    def log(self, steps: Iterable[int], batch_size: int | Callable[[int], int] = 8, name: str = TAG,
            description: str | None = None) -> None:
        """`batch_size` (or `batch_size(step)`) sets the input shape: changing it retraces the
        probe and adds a graph version."""
        size = batch_size if callable(batch_size) else (lambda step: batch_size)
        with self.writer.as_default():
            for step in steps:
                report = summary.gradflow(name, self.loss_fn, batch(size(step), step), step=step,
                                          description=description, strict=True)
                assert report is not None
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def write_steps(run_dir: str, steps: Iterable[int], batch_of: Callable[[int], int] = lambda s: 8, name: str = TAG,
                description: str | None = None) -> None:
    writer = RunWriter(run_dir)
    writer.log(steps, batch_of, name, description)
    writer.close()


def probe_protos(n: int = 8) -> ProbeResult:
    """One real graph version and step of the cut model, to re-encode or damage."""
    loss_fn, _ = cut_model()
    return run_probe(loss_fn, (batch(n),), {}, None, None)


def write_protos(run_dir: str, result: ProbeResult, steps: Iterable[int], name: str = TAG, vary: bool = True) -> None:
    """Writes `result`'s graph once and a step at each of `steps` through the summary writer
    path of `tb_gradflow.summary`, with norms varied per step (re-encoded with
    `records.encode_step`), so that long series need no probe call per step."""
    graph, base = result.graph, result.step
    op_codes, op_norms, var_codes, var_norms = step_arrays(base, len(graph.ops), len(graph.variables))
    op_presence, var_presence = (
        [None if np.isnan(p) else p for p in a.tolist()] for a in presence_arrays(base, op_codes, var_codes)
    )
    op_states = [V.STATES[c] for c in op_codes]
    var_states = [V.STATES[c] for c in var_codes]
    writer = tf.summary.create_file_writer(run_dir)
    rng = np.random.default_rng(0)
    for step in steps:
        scale = float(rng.uniform(0.5, 2.0)) if vary else 1.0
        proto = encode_step(
            graph.graph_id,
            op_states,
            [None if np.isnan(n) else n * scale for n in op_norms.tolist()],
            var_states,
            [None if np.isnan(n) else n * scale for n in var_norms.tolist()],
            base.loss,
            op_presence=op_presence,
            variable_presence=var_presence,
        )
        write_result(writer, name, ProbeResult(graph, proto), step)
    writer.close()


def write_result(writer: Any, name: str, result: ProbeResult, step: int) -> None:
    """One probe result as `summary.gradflow` writes it: the graph once per tag, then the step."""
    with writer.as_default():
        summary._write_graph_once(writer, name, result.graph, step)  # pylint: disable=protected-access
        tf.summary.write(tag=name, tensor=tf.constant(result.step.SerializeToString()), step=step,
                         metadata=metadata.step_metadata(name, ""))


def write_unknown_version(run_dir: str, result: ProbeResult, steps: Iterable[int], name: str = TAG) -> None:
    """Steps and graph whose metadata claims a format version this reader does not know."""

    def future(md: Any) -> Any:
        data = gradflow_pb2.PluginData.FromString(md.plugin_data.content)
        data.version = metadata.FORMAT_VERSION + 98
        md.plugin_data.content = data.SerializeToString()
        return md

    gid = result.graph.graph_id
    writer = tf.summary.create_file_writer(run_dir)
    with writer.as_default():
        for i, step in enumerate(steps):
            if i == 0:
                tf.summary.write(metadata.graph_tag(name, gid), tf.constant([result.graph.SerializeToString()]), step,
                                 metadata=future(metadata.graph_metadata(name, gid)))
            tf.summary.write(name, tf.constant(result.step.SerializeToString()), step,
                             metadata=future(metadata.step_metadata(name)))
    writer.close()


def write_malformed_tensors(run_dir: str, result: ProbeResult, name: str, good_steps: Iterable[int],
                            bad_steps: Iterable[int]) -> None:
    """A tag with gradflow step metadata where `bad_steps` hold float vectors, not Step protos."""
    write_protos(run_dir, result, good_steps, name=name)
    writer = tf.summary.create_file_writer(run_dir)
    with writer.as_default():
        for step in bad_steps:
            tf.summary.write(name, tf.constant([1.0, float(step)]), step, metadata=metadata.step_metadata(name))
    writer.close()


def write_corrupt_graph(run_dir: str, result: ProbeResult, steps: Iterable[int], name: str = TAG) -> None:
    """Intact event records whose graph blob is cut in half: its steps cannot be read."""
    gid = result.graph.graph_id
    damaged = result.graph.SerializeToString()[: result.graph.ByteSize() // 2]
    writer = tf.summary.create_file_writer(run_dir)
    with writer.as_default():
        for i, step in enumerate(steps):
            if i == 0:
                tf.summary.write(metadata.graph_tag(name, gid), tf.constant([damaged]), step,
                                 metadata=metadata.graph_metadata(name, gid))
            tf.summary.write(name, tf.constant(result.step.SerializeToString()), step,
                             metadata=metadata.step_metadata(name))
    writer.close()


def event_file(run_dir: str) -> str:
    (name,) = [n for n in os.listdir(run_dir) if "tfevents" in n]
    return os.path.join(run_dir, name)


def damaged_copies(source_run: str, truncated_run: str, flipped_run: str) -> None:
    """Copies of a good run's event file: one cut mid-record, one with bytes flipped mid-file."""
    source = event_file(source_run)
    data = open(source, "rb").read()
    name = os.path.basename(source)
    for run_dir in (truncated_run, flipped_run):
        os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(truncated_run, name), "wb") as f:
        f.write(data[: len(data) * 3 // 5 + 7])
    flipped = bytearray(data)
    for at in range(len(data) // 2, len(data) // 2 + 64, 8):
        flipped[at] ^= 0xFF
    with open(os.path.join(flipped_run, name), "wb") as f:
        f.write(bytes(flipped))


def copy_run(source_run: str, target_run: str) -> None:
    shutil.copytree(source_run, target_run)


def write_keras_run(logdir: str, batches: int = 8, every_n_steps: int = 2) -> None:
    """`model.fit` with the real callback; it writes under `logdir/train`."""
    import keras

    from tb_gradflow.keras import GradFlowCallback

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(1).normal(size=(batches * 4, 3)).astype(np.float32)
    y = x[:, :1] * 2.0
    callback = GradFlowCallback(logdir, data=(x[:4], y[:4]), every_n_steps=every_n_steps)
    model.fit(x, y, batch_size=4, epochs=1, callbacks=[callback], verbose=0)


# The shared logdir of the plugin tests: run -> (tag -> expected readable steps), None for
# runs whose content depends on the loader (damaged event files).
CUT_STEPS = 1000
RETRACE_STEPS = 12
PRISTINE_STEPS = 200


def retrace_batch(step: int) -> int:
    """Batch sizes that alternate between two graph versions, so that their steps interleave."""
    return 4 if step % 3 == 2 else 8


def build_plugin_logdir(root: str) -> dict[str, dict[str, list[int]] | None]:
    """Writes every run of the shared plugin-test logdir under `root`; returns what a reader
    must serve: {run: {tag: steps}} for the good runs, None for damaged event files."""
    write_steps(os.path.join(root, "cut"), range(CUT_STEPS), description="encoder starved by a numpy_function")
    write_steps(os.path.join(root, "retrace"), range(RETRACE_STEPS), batch_of=retrace_batch)
    write_keras_run(os.path.join(root, "keras"))
    result = probe_protos()
    write_unknown_version(os.path.join(root, "hostile", "unknown_version"), result, range(5))
    write_malformed_tensors(os.path.join(root, "hostile", "malformed"), result, TAG, range(10), range(10, 13))
    write_malformed_tensors(os.path.join(root, "hostile", "malformed"), result, "all_bad", [], range(3))
    write_corrupt_graph(os.path.join(root, "hostile", "corrupt_graph"), result, range(5))
    pristine = os.path.join(os.path.dirname(root.rstrip("/")), os.path.basename(root.rstrip("/")) + "-pristine")
    write_protos(pristine, result, range(PRISTINE_STEPS))
    damaged_copies(pristine, os.path.join(root, "hostile", "truncated"), os.path.join(root, "hostile", "flipped"))
    shutil.rmtree(pristine)
    return {
        "cut": {TAG: list(range(CUT_STEPS))},
        "retrace": {TAG: list(range(RETRACE_STEPS))},
        "keras/train": {TAG: [1, 3, 5, 7]},  # optimizer iterations after batches 0, 2, 4, 6
        "hostile/malformed": {TAG: list(range(10))},
        "hostile/truncated": None,
        "hostile/flipped": None,
    }
