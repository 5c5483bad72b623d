"""A 100,000-step run of a 1,400-op graph, written as crafted steps (not by training), served
whole by both loaders: the Rust data server's 256 MiB reply limit is never reached, because a
step is small (format version 2) and the reader asks for a bounded amount at once."""
from __future__ import annotations

import urllib.parse

import pytest

from support import crafted_logdir as crafted
from support.plugin_servers import LOADERS
from support.tensorboard_proc import TensorBoardProcess, fetch_json

STEPS = 100_000
OPS = 1_400
TAG = "gradflow"


@pytest.fixture(scope="module")
def long_logdir(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("long")
    crafted.write_fast_run(str(root / "long"), crafted.chain_graph("long-1", OPS, 50), range(STEPS))
    return str(root)


@pytest.mark.parametrize("load_fast", LOADERS, ids=[f"load_fast={v}" for v in LOADERS])
def test_a_100000_step_run_is_served_whole(long_logdir, load_fast):
    with TensorBoardProcess(long_logdir, load_fast=load_fast, timeout=600) as tb:
        runs = tb.wait_for_runs({"long": {TAG: STEPS}}, timeout=600)
        assert runs["long"][TAG]["steps"] == [0, STEPS - 1]

        def get(route: str, **params: str) -> dict:
            query = urllib.parse.urlencode({"run": "long", "tag": TAG, **params})
            status, body = fetch_json(tb.plugin_url(f"{route}?{query}"), timeout=120)
            assert status == 200, body
            return body

        for step in (0, 54_321, STEPS - 1):
            graph = get("graph", step=str(step))
            assert graph["step"] == step and len(graph["ops"]["name"]) == OPS
            for op in (0, 735, OPS - 1):
                assert graph["ops"]["norm"][op] == pytest.approx(crafted.step_norm(step, op), rel=0.045)
        history = get("history", op="block_7/layer_3/op_735")
        assert history["steps"] == list(range(STEPS))
        for step in (0, 17, 54_321, STEPS - 1):
            assert history["norms"][step] == pytest.approx(crafted.step_norm(step, 735), rel=0.045)
        assert get("diagnosis")["last_step"] == STEPS - 1
        assert "serving a sample" not in tb.log()
