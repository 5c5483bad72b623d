"""The `graph_groups` route (a large graph one name-scope group at a time) over a real
TensorBoard under both loaders, and the diagnosis computed once per step and read."""
from __future__ import annotations

import urllib.parse

import pytest

from support import crafted_logdir as crafted
from support.plugin_servers import LOADERS
from support.tensorboard_proc import TensorBoardProcess, fetch_json
from tb_gradflow import route_json
from tb_gradflow.plugin import views
from tb_gradflow.reading.cache import SeriesCache
from tb_gradflow.reading.local_logdir import local_provider
from tb_gradflow.reading.reader import GradflowReader

TAG = "gradflow"
OPS = 3_000


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("groups")
    crafted.write_fast_run(str(root / "wide"), crafted.chain_graph("wide-1", OPS, 20, cuts=(735, 1234)), range(10))
    return str(root)


@pytest.fixture(scope="module", params=LOADERS, ids=[f"load_fast={v}" for v in LOADERS])
def tb(request, logdir):
    with TensorBoardProcess(logdir, load_fast=request.param) as tb:
        tb.wait_for_runs({"wide": {TAG: 10}})
        yield tb


def groups(tb, **params) -> tuple[int, dict]:
    query = urllib.parse.urlencode({"run": "wide", "tag": TAG, **params})
    return fetch_json(tb.plugin_url(f"graph_groups?{query}"))


def test_top_level_lists_blocks_with_counts_and_edges(tb):
    status, top = groups(tb, step="4")
    assert status == 200, top
    assert top["step"] == 4 and top["ops_total"] == OPS == top["ops_in_group"] and top["group"] == ""
    names = top["groups"]["name"]
    assert sorted(names) == sorted(f"block_{k}" for k in range(30)) and names == sorted(names)
    assert top["groups"]["ops"] == [100] * 30 and top["groups"]["states"]["flowing"] == [100] * 30
    assert top["groups"]["states"]["none"] == [0] * 30
    cuts = dict(zip(names, top["groups"]["cut_points"], strict=False))
    assert cuts["block_7"] == 1 and cuts["block_12"] == 1 and sum(cuts.values()) == 2
    inputs = dict(zip(names, top["groups"]["inputs"], strict=False))
    assert [names[i] for i in inputs["block_8"]] == ["block_7"] and inputs["block_0"] == []
    assert top["ops"]["name"] == [] and top["ops"]["index"] == []


def test_opening_a_group_and_its_ops(tb):
    _, block = groups(tb, group="block_7")
    assert block["groups"]["name"] == [f"block_7/layer_{j}" for j in range(10)]
    assert block["ops_in_group"] == 100 and block["groups"]["ops"] == [10] * 10
    assert block["groups"]["inputs"][0] == [] and block["groups"]["inputs"][4] == [3]
    _, layer = groups(tb, group="block_7/layer_3", step="9")
    ops = layer["ops"]
    assert layer["groups"]["name"] == [] and ops["name"] == [f"block_7/layer_3/op_{i}" for i in range(730, 740)]
    assert ops["index"] == list(range(730, 740)) and ops["inputs"][1] == [730]
    assert ops["input_children"][0] == [-1] and ops["input_children"][1] == [0]
    assert ops["cause"][5] == "numpy_function" and ops["cause"][4] is None
    for k, i in enumerate(ops["index"]):
        assert ops["norm"][k] == pytest.approx(crafted.step_norm(9, i), rel=0.045)
    assert set(ops["state"]) == {"flowing"}


@pytest.mark.parametrize("group,code", [("block_99", 404), ("block_7/", 400), ("/block_7", 400), ("block_7//layer_1",
        400)])
def test_bad_groups(tb, group, code):
    status, body = groups(tb, group=group)
    assert status == code and "error" in body


def test_diagnosis_is_computed_once_per_step(logdir, monkeypatch):
    reader = GradflowReader(local_provider(logdir), warn=lambda m: None)
    cached = SeriesCache().get(reader, "", "wide", TAG, reader.list()["wide"][TAG], None)
    calls = []
    original = route_json.diagnosis_json
    monkeypatch.setattr(route_json, "diagnosis_json", lambda series, step: calls.append(step) or original(series, step))
    first = views.diagnosis_view(cached, 3)
    assert views.diagnosis_view(cached, 3) == first and views.diagnosis_view(cached, None) != first
    assert calls == [3, 9]
