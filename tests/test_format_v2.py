"""Format version 2: packed states and log-quantized op norms, and logdirs of version 1 (a small
one committed under tests/data, written by tb_gradflow before the change) still open in the CLI
and in the tab's routes over a real TensorBoard, under both loaders."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse

import numpy as np
import pytest

from support.plugin_servers import LOADERS
from support.tensorboard_proc import TensorBoardProcess, fetch_json
from tb_gradflow import vocabulary as V
from tb_gradflow.format import metadata, records
from tb_gradflow.format.records import dequantize_norms, pack_states, quantize_norms, unpack_states
from tb_gradflow.proto import gradflow_pb2

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
V1_LOGDIR = os.path.join(DATA, "format_v1")
V1_REPORT = os.path.join(DATA, "format_v1_report.json")


@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 8, 9, 1405])
def test_states_pack_four_to_a_byte_and_back(n):
    codes = np.random.default_rng(n).integers(0, 4, n).astype(np.uint8)
    packed = pack_states(codes)
    assert len(packed) == -(-n // 4)
    assert np.array_equal(unpack_states(packed, n), codes)
    rows = np.frombuffer(packed * 3, np.uint8).reshape(3, -1)
    assert np.array_equal(unpack_states(rows, n), np.tile(codes, (3, 1)))


def test_norms_keep_special_values_and_4_percent_over_9_decades():
    rng = np.random.default_rng(0)
    finite = np.exp2(rng.uniform(-31, 0, 5000)) * 1e3  # 31 octaves below the largest
    norms = np.concatenate([[np.nan, 0.0, np.inf], finite, [1e3]])
    codes, top = quantize_norms(norms)
    back = dequantize_norms(codes, top)
    assert np.isnan(back[0]) and back[1] == 0.0 and np.isposinf(back[2])
    relative = np.abs(back[3:] / norms[3:] - 1)
    assert relative.max() <= 2 ** (1 / 16) - 1 + 1e-6  # half a level: 4.4 %
    tiny, _ = quantize_norms(np.array([1e3, 1e-30]))
    assert dequantize_norms(tiny, top)[1] == pytest.approx(1e3 * 2 ** (np.ceil(np.log2(1e3)) - np.log2(1e3) - 31.5),
                                                           rel=0.05)
    assert quantize_norms(np.array([np.nan, 0.0]))[1] == 0
    rows = dequantize_norms(np.stack([codes, codes]), np.array([top, top + 1]))
    assert np.allclose(rows[1, 3:], 2 * back[3:], equal_nan=True)


def test_a_resnet50_sized_step_is_under_4_kb():
    rng = np.random.default_rng(1)
    step = records.encode_step_arrays(
        "resnet50-graph-id-0123456789abcdef", rng.integers(0, 4, 1405).astype(np.uint8),
        np.exp2(rng.uniform(-20, 5, 1405)), rng.integers(0, 4, 214).astype(np.uint8),
        np.exp2(rng.uniform(-20, 5, 214)), 2.5)
    assert step.ByteSize() <= 4096, step.ByteSize()


def test_version_1_steps_decode_exactly_and_versions_are_checked():
    graph = gradflow_pb2.Graph(graph_id="g")
    graph.ops.add(name="a", parent=-1)
    graph.ops.add(name="b", parent=-1)
    graph.variables.add(name="w")
    v1 = gradflow_pb2.Step(graph_id="g", op_states=bytes([1, 0]), op_norms=[0.123456789, float("nan")],
                           variable_states=bytes([2]), variable_norms=[0.0], loss=1.5)
    report = records.build_report(graph, v1, 3)
    assert report.ops[0].norm == pytest.approx(0.123456789, rel=1e-7) and report.ops[1].state == V.NONE
    assert report.variables["w"].state == V.ZERO
    v2 = records.encode_step_arrays("g", np.array([1, 0], np.uint8), np.array([0.123456789, np.nan]),
                                    np.array([2], np.uint8), np.array([0.0]), 1.5)
    report2 = records.build_report(graph, records.decode_step(v2.SerializeToString()), 3)
    assert report2.ops[0].norm == pytest.approx(0.123456789, rel=0.045) and report2.ops[1].norm is None
    assert report2.variables["w"].state == V.ZERO and report2.loss == 1.5
    for version in metadata.READABLE_VERSIONS:
        data = gradflow_pb2.PluginData(version=version, kind=gradflow_pb2.PluginData.STEP, name="x")
        assert metadata.parse_plugin_data(data.SerializeToString()).version == version
    assert metadata.FORMAT_VERSION == 2 and 1 in metadata.READABLE_VERSIONS


def test_cli_reads_the_committed_version_1_logdir_as_before():
    out = subprocess.run([sys.executable, "-m", "tb_gradflow.cli", "report", V1_LOGDIR, "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr  # a cut point starves variables
    expected = json.load(open(V1_REPORT))
    tag = json.loads(out.stdout)["runs"]["cut"]["tags"]["gradflow"]
    assert _without_presence(tag,
                             expected["runs"]["cut"]["tags"]["gradflow"]) == expected["runs"]["cut"]["tags"]["gradflow"]


def _without_presence(diagnosis: dict, expected: dict) -> dict:
    """The diagnosis as the committed report knew it: keys added since (the story, cut points'
    parallel cuts, presence) are left out; presence, which version 1 did not store, must read
    as unknown, never 0."""
    variables = {}
    for name, v in diagnosis["variables"].items():
        assert v.pop("presence") is None and v.pop("sparse_gradient") is False
        variables[name] = v
    assert diagnosis.get("op_presence", {}) == {}
    known = {**diagnosis, "variables": variables}
    known["cut_points"] = [
        {k: c[k] for k in old} for c, old in zip(diagnosis["cut_points"], expected["cut_points"], strict=False)
    ]
    return {k: known[k] for k in expected}


@pytest.mark.parametrize("load_fast", LOADERS, ids=[f"load_fast={v}" for v in LOADERS])
def test_tab_routes_open_the_committed_version_1_logdir(load_fast):
    expected = json.load(open(V1_REPORT))["runs"]["cut"]["tags"]["gradflow"]
    with TensorBoardProcess(V1_LOGDIR, load_fast=load_fast) as tb:
        runs = tb.wait_for_runs({"cut": {"gradflow": 6}})
        assert runs["cut"]["gradflow"]["graph_versions"] == 2

        def get(route: str, **params: str) -> dict:
            status, body = fetch_json(tb.plugin_url(route + "?" + urllib.parse.urlencode({"run": "cut",
                    "tag": "gradflow", **params})))
            assert status == 200, body
            return body

        diagnosis = get("diagnosis")
        assert _without_presence(diagnosis, expected) == expected
        graph = get("graph", step="2")
        assert graph["step"] == 2 and graph["graph_version"] == 2
        assert graph["starved_variables"] == expected["starved_variables"]
        history = get("history", variable="decoder/kernel")
        assert history["steps"] == list(range(6))
        assert history["norms"][-1] == pytest.approx(expected["variables"]["decoder/kernel"]["norm"], rel=1e-5)
