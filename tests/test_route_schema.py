"""Every route's body, as a real TensorBoard serves it, conforms to the one route schema
(tb_gradflow/plugin/route_schema.json), which frontend/test/schema.test.ts checks types.ts against."""
from __future__ import annotations

import urllib.parse

import pytest

from support.plugin_logdirs import TAG
from support.plugin_servers import plugin_tensorboard
from support.route_schema import errors, load_schema
from support.tensorboard_proc import fetch_json

SCHEMA = load_schema()


@pytest.fixture(scope="module")
def tb():
    return plugin_tensorboard("false")


def body(tb, route: str, **params) -> dict:
    status, data = fetch_json(f"{tb.url}/data/plugin/gradflow/{route}?{urllib.parse.urlencode(params)}")
    assert status == 200, data
    return data


def conforms(value, route: str) -> None:
    problems = errors(value, SCHEMA["routes"][route], SCHEMA)
    assert not problems, problems[:10]


@pytest.mark.parametrize("run", ["cut", "retrace", "keras/train"])
def test_graph_diagnosis_and_history_bodies_conform(tb, run):
    graph = body(tb, "graph", run=run, tag=TAG)
    conforms(graph, "graph")
    conforms(body(tb, "diagnosis", run=run, tag=TAG), "diagnosis")
    conforms(body(tb, "diagnosis", run=run, tag=TAG, step=graph["steps"][0]), "diagnosis")
    conforms(body(tb, "history", run=run, tag=TAG, op=graph["ops"]["name"][-1]), "history")
    conforms(body(tb, "history", run=run, tag=TAG, variable=graph["variables"]["name"][0]), "history")


def test_runs_conform_and_the_schema_catches_drift(tb):
    conforms(body(tb, "runs"), "runs")
    graph = body(tb, "graph", run="cut", tag=TAG)
    # every served key is in the schema and every schema key is served
    assert set(graph) == set(SCHEMA["routes"]["graph"]["required"])
    assert errors({**graph, "surprise": 1}, SCHEMA["routes"]["graph"], SCHEMA) == ["$: unexpected 'surprise'"]
    broken = {**graph, "ops": {**graph["ops"], "state": ["sideways"] * len(graph["ops"]["state"])}}
    assert errors(broken, SCHEMA["routes"]["graph"], SCHEMA)


def test_graph_groups_bodies_conform(tb):
    top = body(tb, "graph_groups", run="cut", tag=TAG)
    conforms(top, "graph_groups")
    assert set(top) == set(SCHEMA["routes"]["graph_groups"]["required"])
    assert set(top["ops"]) == set(SCHEMA["routes"]["graph_groups"]["properties"]["ops"]["required"])
    for group in top["groups"]["name"]:
        conforms(body(tb, "graph_groups", run="cut", tag=TAG, group=group), "graph_groups")


@pytest.mark.parametrize("run", ["cut", "retrace"])
def test_layers_bodies_conform_and_columns_bound_them(tb, run):
    whole = body(tb, "layers", run=run, tag=TAG)
    conforms(whole, "layers")
    assert set(whole) == set(SCHEMA["routes"]["layers"]["required"])
    assert whole["count"] == len(whole["steps"]) or len(whole["steps"]) == 2000
    few = body(tb, "layers", run=run, tag=TAG, columns=3)
    conforms(few, "layers")
    assert len(few["steps"]) == min(3, whole["count"])
    assert few["steps"][0] == whole["steps"][0] and few["steps"][-1] == whole["steps"][-1]
    for bad in ("0", "-1", "x", "10001"):
        query = urllib.parse.urlencode(dict(run=run, tag=TAG, columns=bad))
        status, data = fetch_json(f"{tb.url}/data/plugin/gradflow/layers?{query}")
        assert status == 400 and "columns" in data["error"]
