"""A run larger than one bounded read of the fast loader (lowered through
TB_GRADFLOW_READ_BUDGET_BYTES so that 300 small steps exceed it): over a local logdir every
step is served on both loaders; over a remote data server (no logdir to read) the sample says it
is one everywhere, and a logged step outside it never answers a bare 404."""
from __future__ import annotations

import functools
import os
import random

import pytest

from support import crafted_logdir as crafted
from support.plugin_servers import LOADERS
from support.route_schema import errors, load_schema
from support.tensorboard_proc import TensorBoardProcess, fetch_json, running_data_server

TAG = "gradflow"
STEPS = 300
CHANGE = 150  # the graph version changes here


@functools.cache
def logdir() -> str:
    import tempfile

    root = tempfile.mkdtemp(prefix="gradflow-sampled-")
    run = os.path.join(root, "long")
    crafted.write_fast_run(run, crafted.chain_graph("long-1", 200, 10), range(CHANGE))
    crafted.write_fast_run(run, crafted.chain_graph("long-2", 210, 10), range(CHANGE, STEPS))
    return root


@pytest.fixture()
def small_budget(monkeypatch):
    monkeypatch.setenv("TB_GRADFLOW_READ_BUDGET_BYTES", "40000")  # about 50 steps of ~700 bytes


def url(tb: TensorBoardProcess, route: str, **args: object) -> str:
    return tb.plugin_url(route) + "?" + "&".join(f"{k}={v}" for k, v in {"run": "long", "tag": TAG, **args}.items())


@pytest.mark.parametrize("load_fast", LOADERS, ids=[f"load_fast={v}" for v in LOADERS])
def test_a_run_over_the_read_limit_is_served_whole_from_a_local_logdir(small_budget, load_fast):
    with TensorBoardProcess(logdir(), load_fast=load_fast) as tb:
        runs = tb.wait_for_runs({"long": {TAG: STEPS}}, timeout=120)
        assert runs["long"][TAG]["count"] == STEPS and "sampled" not in runs["long"][TAG]
        assert runs["long"][TAG]["graph_versions"] == 2
        for step in [0, 1, CHANGE - 1, CHANGE, STEPS - 1, *random.Random(0).sample(range(STEPS), 5)]:
            status, body = fetch_json(url(tb, "graph", step=step))
            assert status == 200 and body["step"] == step and "sampled" not in body, (step, body)
        assert fetch_json(tb.plugin_url("notices"))[1] == {"notices": []}
        if load_fast == "true":
            assert "reading every step from the run's event files" in tb.log()


def test_a_remote_sample_says_so_in_every_answer(small_budget):
    with running_data_server(logdir()) as address:
        with TensorBoardProcess(None, extra_args=["--grpc_data_provider", address]) as tb:
            runs = tb.wait_for_runs({"long": {TAG: 2}}, timeout=120)
            entry = runs["long"][TAG]
            assert entry["count"] < STEPS and entry["steps"][1] == STEPS - 1, entry
            assert "sampled" in entry and "--load_fast=false" in entry["sampled"], entry
            assert f"{entry['count']:,} steps" in entry["sampled"]
            status, graph = fetch_json(url(tb, "graph"))
            assert status == 200 and graph["sampled"] == entry["sampled"]
            status, history = fetch_json(url(tb, "history", op="block_0/layer_0/op_0"))
            assert status == 200 and history["sampled"] == entry["sampled"] and len(history["steps"]) == entry["count"]
            served = set(history["steps"])
            missing = next(s for s in range(STEPS) if s not in served)
            status, body = fetch_json(url(tb, "graph", step=missing))
            assert status == 404
            assert "not among the steps served" in body["error"] and "--load_fast=false" in body["error"]
            status, notices = fetch_json(tb.plugin_url("notices"))
            assert [(n["kind"], n["run"], n["tag"]) for n in notices["notices"]] == [("sampled", "long", TAG)]
            schema = load_schema()
            for route, answer in (("runs", runs), ("graph", graph), ("history", history), ("notices", notices)):
                assert not errors(answer, schema["routes"][route], schema), route
