"""The diagnosis of partial presence: dead gates called out, an embedding's untouched rows told as
normal, and the same sentences in the CLI's text and JSON."""
from __future__ import annotations

import json

import keras
import tensorflow as tf

import tb_gradflow
from support.models import dead_relu_model
from support.presence_logdir import relu_graph
from tb_gradflow import vocabulary as V
from tb_gradflow.format.records import build_report, decode_step, encode_step
from tb_gradflow.story import story, story_lines


def test_mostly_dead_relu_is_called_out_with_its_share_and_step():
    loss_fn, x = dead_relu_model(live_units=1)
    report = tb_gradflow.analyze(loss_fn, x)
    relu = next(op for op in report.ops if op.type == "Relu")
    assert relu.presence < V.PRESENCE_GATE_THRESHOLD
    told = story(report)
    assert told["tone"] == "warn"
    # Its units are counted (issue 17): told as dead units, not again as a share of elements.
    assert (relu.units, relu.dead_units) == (16, 15)
    assert not [n for n in told["notes"] if n["kind"] == V.DEAD_GATE]
    dead = [n for n in told["notes"] if n["kind"] == V.DEAD_UNITS]
    assert len(dead) == 1 and dead[0]["names"] == [relu.name]
    # Named as the Layers view names the layer: Keras 3 traces the ReLU under "dense_3_1".
    assert dead[0]["text"].startswith(f"{relu.name} (layer dense_3): 15 of 16 units dead (over 50 % dead is called out")
    assert dead[0]["hint"] == V.DEAD_UNITS_HINT
    # The layer's kernel and the head's kernel get a gradient only through the live unit.
    thin = [n for n in told["notes"] if n["kind"] == V.SPARSE_VARIABLE]
    assert thin and "dense_3/kernel" in thin[0]["names"]
    text = "\n".join(story_lines(report))
    assert "15 of 16 units dead" in text and V.DEAD_UNITS_HINT in text


def test_half_dead_relu_is_not_an_alarm():
    loss_fn, x = dead_relu_model(live_units=8)
    report = tb_gradflow.analyze(loss_fn, x)
    relu = next(op for op in report.ops if op.type == "Relu")
    assert 0.1 < relu.presence <= 0.5
    told = story(report)
    assert told["tone"] == "ok"
    assert (relu.units, relu.dead_units) == (16, 8)  # half dead: not over the threshold
    assert not [n for n in told["notes"] if n["kind"] in (V.DEAD_GATE, V.SPARSE_VARIABLE, V.DEAD_UNITS)]


def test_embedding_touching_few_rows_is_told_as_normal():
    keras.utils.set_random_seed(2)
    embedding = keras.layers.Embedding(1000, 8, name="embed")
    ids = tf.constant([[4, 8, 15, 16, 23, 42]])
    embedding(ids)

    def loss_fn(ids):
        return tf.reduce_sum(embedding(ids) ** 2)

    report = tb_gradflow.analyze(loss_fn, ids)
    told = story(report)
    assert told["tone"] == "ok"
    (note,) = told["notes"]
    assert note["kind"] == V.FEW_ROWS and note["names"] == [embedding.embeddings.path]
    assert "under 1 % of its rows" in note["text"] and V.FEW_ROWS_NORMAL in note["text"]


def test_step_number_and_unknown_presence():
    step = encode_step("g", ["flowing", "flowing"], [1.0, 1.0], ["flowing"], [1.0], 0.0,
                       op_presence=[0.08, 1.0], variable_presence=[1.0])
    report = build_report(relu_graph(), decode_step(step.SerializeToString()), 1200)
    (note,) = story(report)["notes"]
    assert note["text"] == "dense_3/Relu: 92 % of units pass no gradient at step 1,200 (dead ReLUs)"
    old = encode_step("g", ["flowing", "flowing"], [1.0, 1.0], ["flowing"], [1.0], 0.0)
    unknown = build_report(relu_graph(), decode_step(old.SerializeToString()), 3)
    assert story(unknown)["notes"] == [] and story(unknown)["tone"] == "ok"  # unknown is not 0
    json.dumps(story(report), allow_nan=False)
