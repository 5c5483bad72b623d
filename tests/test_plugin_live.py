"""A logdir written while TensorBoard runs: new steps, and a graph version that appears mid-run,
are served after the next reload, although the plugin cached the series before."""
from __future__ import annotations

import pytest

from support.plugin_logdirs import TAG, RunWriter
from support.plugin_servers import LOADERS
from support.tensorboard_proc import TensorBoardProcess, fetch_json


def get(tb: TensorBoardProcess, route: str) -> dict:
    status, body = fetch_json(tb.plugin_url(route))
    assert status == 200, (route, body)
    return body


@pytest.mark.parametrize("load_fast", LOADERS)
def test_steps_and_graph_versions_written_while_running(load_fast, tmp_path):
    writer = RunWriter(str(tmp_path / "live"))
    writer.log(range(0, 3), 8)
    try:
        with TensorBoardProcess(str(tmp_path), load_fast=load_fast) as tb:
            tb.wait_for_runs({"live": {TAG: 3}})
            first = get(tb, f"graph?run=live&tag={TAG}")
            assert (first["step"], first["count"], first["graph_versions"]) == (2, 3, 1)

            writer.log(range(3, 6), 8)
            tb.wait_for_runs({"live": {TAG: 6}})
            assert get(tb, f"graph?run=live&tag={TAG}")["step"] == 5

            writer.log(range(6, 9), 4)  # new input shape: the probe retraces, a second graph version
            runs = tb.wait_for_runs({"live": {TAG: 9}})
            new = get(tb, f"graph?run=live&tag={TAG}")
            # `ops` counts the graph version of the last step (the tab's progressive threshold)
            assert runs["live"][TAG] == {"steps": [0, 8], "count": 9, "graph_versions": 2, "description": "",
                                         "ops": len(new["ops"]["name"])}
            old = get(tb, f"graph?run=live&tag={TAG}&step=5")
            assert (new["step"], new["graph_version"], old["graph_version"]) == (8, 2, 1)
            assert new["graph_id"] != first["graph_id"] == old["graph_id"]
            placeholder = new["ops"]["type"].index("Placeholder")
            assert new["ops"]["shape"][placeholder] == ["4x3"]
            history = get(tb, f"history?run=live&tag={TAG}&variable=decoder%2Fkernel")
            assert history["steps"] == list(range(9))
            assert get(tb, f"diagnosis?run=live&tag={TAG}")["last_step"] == 8
    finally:
        writer.close()
