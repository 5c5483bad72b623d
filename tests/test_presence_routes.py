"""Presence served: the plugin's graph, history and diagnosis routes over a real TensorBoard (both
loaders) and the CLI's text and JSON, all equal to what `analyze` measured."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse

import pytest

from support.plugin_servers import LOADERS
from support.presence_logdir import STEPS, write_dead_relu_run
from support.route_schema import errors, load_schema
from support.tensorboard_proc import TensorBoardProcess, fetch_json
from tb_gradflow import vocabulary as V
from tb_gradflow.format.presence import PRECISION


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    logdir = str(tmp_path_factory.mktemp("presence"))
    return logdir, write_dead_relu_run(logdir)


def test_cli_text_and_json_carry_presence(logged):
    logdir, report = logged
    relu = next(op for op in report.ops if op.type == "Relu")
    out = subprocess.run([sys.executable, "-m", "tb_gradflow.cli", "report", logdir, "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    tag = json.loads(out.stdout)["runs"]["dead"]["tags"]["gradflow"]
    assert tag["op_presence"][relu.name] == {"presence": relu.presence, "presence_of": "input"}
    for name, v in report.variables.items():
        assert tag["variables"][name]["presence"] == v.presence
    assert tag["variables"]["embed/embeddings"]["sparse_gradient"] is True
    kinds = [n["kind"] for n in tag["story"]["notes"]]
    assert V.DEAD_UNITS in kinds and V.FEW_ROWS in kinds  # its units are counted (issue 17)
    assert tag["dead_units"][relu.name] == {"units": 16, "dead_units": 15, "since": STEPS[0], "layer": "dense_3"}
    wide = {**os.environ, "COLUMNS": "200"}  # one sentence a line: no wrapping inside them
    text = subprocess.run([sys.executable, "-m", "tb_gradflow.cli", "report", logdir],
                          capture_output=True, text=True, timeout=120, env=wide).stdout
    told = f"{relu.name} (layer dense_3): 15 of 16 units dead since step {STEPS[0]:,} (over 50 % dead is called out"
    assert told in text
    assert "embed/embeddings: the batch touches under 1 % of its rows at step 1,200, normal" in text


@pytest.mark.parametrize("load_fast", LOADERS, ids=[f"load_fast={v}" for v in LOADERS])
def test_routes_serve_presence(logged, load_fast):
    logdir, report = logged
    schema = load_schema()
    relu = next(op for op in report.ops if op.type == "Relu")
    with TensorBoardProcess(logdir, load_fast=load_fast) as tb:
        tb.wait_for_runs({"dead": {"gradflow": len(STEPS)}})

        def get(route: str, **params: str) -> dict:
            query = urllib.parse.urlencode({"run": "dead", "tag": "gradflow", **params})
            status, body = fetch_json(tb.plugin_url(f"{route}?{query}"))
            assert status == 200, body
            assert not errors(body, schema["routes"][route], schema), errors(body, schema["routes"][route], schema)[:5]
            return body

        graph = get("graph")
        ops = graph["ops"]
        i = ops["name"].index(relu.name)
        assert ops["presence_at_input"][i] is True
        assert abs(ops["presence"][i] - relu.presence) <= PRECISION / 2
        for name, presence in zip(ops["name"], ops["presence"], strict=False):
            expected = next(op.presence for op in report.ops if op.name == name)
            assert (presence is None) == (expected is None) and (presence is None or abs(presence - expected) < 1e-4)
        variables = dict(zip(graph["variables"]["name"], graph["variables"]["presence"], strict=False))
        assert variables["embed/embeddings"] == pytest.approx(report.variables["embed/embeddings"].presence, abs=1e-4)
        assert graph["variables"]["sparse_gradient"][graph["variables"]["name"].index("embed/embeddings")] is True

        history = get("history", op=relu.name)
        assert history["steps"] == list(STEPS)
        assert history["presences"] == [ops["presence"][i]] * len(STEPS)
        diagnosis = get("diagnosis", step="100")
        (dead,) = [n for n in diagnosis["story"]["notes"] if n["kind"] == V.DEAD_UNITS]
        assert dead["names"] == [relu.name] and f"15 of 16 units dead since step {STEPS[0]:,}" in dead["text"]
        assert (ops["units"][i], ops["dead_units"][i]) == (16, 15)
        assert diagnosis["story"]["tone"] == "warn"


def test_a_reread_keeps_presence_of_the_steps_it_reuses(logged):
    from tb_gradflow.reading.local_logdir import local_provider
    from tb_gradflow.reading.reader import GradflowReader

    logdir, report = logged
    reader = GradflowReader(local_provider(logdir))
    info = reader.list()["dead"]["gradflow"]
    first = reader.read("dead", "gradflow", info)
    again = reader.read("dead", "gradflow", info, previous=first)
    for series in (first, again):
        last = series.report()
        assert [op.presence for op in last.ops] == [op.presence for op in report.ops]
        assert {n: v.presence for n, v in last.variables.items()} == {n: v.presence for n,
                                                                      v in report.variables.items()}
