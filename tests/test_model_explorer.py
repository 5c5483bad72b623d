"""`tb-gradflow export --format model-explorer`: the graph JSON and node-data overlays, checked
against the demo's report and drawn by the real Model Explorer client in Chromium."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import types

import pytest

from support.browser import browser, demo_logdir, doc_screenshot, page  # noqa: F401 (fixtures)
from tb_gradflow import cli
from tb_gradflow.export import model_explorer as ME

CUT_OP = "colour_vae_1/PyFunc"
CUT_RGB = (0xD5, 0x00, 0x00)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> str:
    folder = str(tmp_path_factory.mktemp("me") / "broken")
    assert (
        cli.main(
            ["export", demo_logdir(), "--format", "model-explorer", "--run", "broken", "-o", folder]
        )
        == 0
    )
    return folder


def _load(folder: str, name: str) -> dict:
    with open(os.path.join(folder, name), encoding="utf-8") as f:
        return json.load(f)


def test_graph_nodes_are_our_ops_and_variables_with_their_scopes(exported):
    [series] = cli.load(demo_logdir(), ["broken"]).series.values()
    report = series.report()
    collection = _load(exported, ME.GRAPH_FILE)
    [graph] = collection["graphs"]
    assert graph["id"] == f"broken · gradflow · step {series.last_step}"
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert [op.name for op in report.ops] == [n["id"] for n in graph["nodes"][: len(report.ops)]]
    assert set(nodes) == {op.name for op in report.ops} | {
        ME.VARIABLE_PREFIX + v for v in report.variables
    }
    cut = nodes[CUT_OP]
    assert (cut["label"], cut["namespace"]) == ("PyFunc", "colour_vae_1")
    for op in report.ops:  # every op input is an edge, in order
        assert [e["sourceNodeId"] for e in nodes[op.name]["incomingEdges"]][
            : len(op.inputs)
        ] == list(op.inputs)
    assert all(e["sourceNodeId"] in nodes for n in graph["nodes"] for e in n["incomingEdges"])
    kernel = nodes["variable:colour_vae/decoder/dense/kernel"]
    assert (kernel["label"], kernel["namespace"]) == ("kernel", "colour_vae/decoder/dense")
    attrs = {a["key"]: a["value"] for a in cut["attrs"]}
    assert attrs["gradient"] == "cut: numpy_function" and attrs["source"] == "demo/vae.py:72"
    assert "colour_vae/decoder/dense/kernel" in attrs["starves"]


def test_overlays_are_graph_node_data_keyed_by_node_id(exported):
    from model_explorer import node_data_builder as NDB  # the client's own classes

    [series] = cli.load(demo_logdir(), ["broken"]).series.values()
    report = series.report()
    ids = {n["id"] for n in _load(exported, ME.GRAPH_FILE)["graphs"][0]["nodes"]}
    state = _load(exported, ME.STATE_FILE)
    assert state["results"][CUT_OP] == {
        "value": "cut: numpy_function",
        "bgColor": "#d50000",
        "textColor": "#ffffff",
    }
    for name in report.starved_variables:
        assert state["results"][ME.VARIABLE_PREFIX + name]["value"] == "none"
    norms = _load(exported, ME.LOG_NORM_FILE)
    presence = _load(exported, ME.PRESENCE_FILE)
    for data in (state, norms, presence):
        assert set(data["results"]) <= ids
        NDB.GraphNodeData(
            **{**data, "results": {k: NDB.NodeDataResult(**v) for k, v in data["results"].items()}}
        )
    flowing = [op for op in report.ops if op.norm]
    assert norms["results"][flowing[0].name]["value"] == pytest.approx(
        __import__("math").log10(flowing[0].norm), abs=1e-4
    )
    assert [g["stop"] for g in norms["gradient"]] == [0, 1]
    assert all(0 <= r["value"] <= 1 for r in presence["results"].values())
    # The VAE's ReLUs count their dead units: the overlay holds each counted gate's fraction.
    with open(os.path.join(exported, ME.DEAD_UNITS_FILE)) as f:
        dead = json.load(f)
    counted = {op.name: op.dead_units / op.units for op in report.ops if op.units and op.dead_units is not None}
    assert counted and {k: r["value"] for k, r in dead["results"].items()} == pytest.approx(counted, abs=1e-4)


def test_dead_units_overlay_is_written_once_ops_carry_them():
    ops = [
        types.SimpleNamespace(name="dense/Relu", dead_units=30, units=40),
        types.SimpleNamespace(name="MatMul"),
    ]
    data = ME.dead_units_data(types.SimpleNamespace(ops=ops))
    assert data["results"] == {"dense/Relu": {"value": 0.75}}
    assert ME.dead_units_data(types.SimpleNamespace(ops=ops[1:])) is None


def test_several_runs_are_refused_with_their_names(tmp_path, capsys):
    status = cli.main(
        ["export", demo_logdir(), "--format", "model-explorer", "-o", str(tmp_path / "x")]
    )
    assert status == cli.EXIT_USAGE
    assert (
        "--run 'broken' --tag 'gradflow', --run 'fixed' --tag 'gradflow'" in capsys.readouterr().err
    )
    assert not (tmp_path / "x").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def model_explorer_url(exported):
    """The real Model Explorer server on loopback, serving the export; its page URL."""
    if importlib.util.find_spec("model_explorer") is None:
        pytest.skip("ai-edge-model-explorer is not installed (the model-explorer test extra)")
    overlays = ",".join(
        os.path.join(exported, f) for f in (ME.LOG_NORM_FILE, ME.PRESENCE_FILE, ME.STATE_FILE)
    )
    command = [
        sys.executable,
        "-c",
        "from model_explorer.cmdline import main; main()",
        os.path.join(exported, ME.GRAPH_FILE),
        f"--node_data_paths={overlays}",
        "--host",
        "127.0.0.1",
        "--port",
        str(_free_port()),
        "--no_open_in_browser",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, url = time.monotonic() + 120, None
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline()
            url = line.strip() if line.startswith("http://127.0.0.1:") else None
        assert url is not None, "Model Explorer did not start"
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _cut_coloured_pixels(path: str, box: tuple[int, int, int, int]) -> int:
    from PIL import Image

    with Image.open(path) as image:
        pixels = image.convert("RGB").crop(box).getdata()
        near = [all(abs(a - b) <= 12 for a, b in zip(p, CUT_RGB, strict=True)) for p in pixels]
        return sum(near)


def _select_search_result(tab, label: str, attempts: int = 5) -> None:
    """Alt+click on a search result: Model Explorer locates the node and selects it. The result
    list is rebuilt while the search settles, so a click can land on a list being replaced."""
    node_info = tab.locator("text=Node info >> visible=true").first
    for _ in range(attempts):
        tab.locator(f"text={label} >> visible=true").first.click(modifiers=["Alt"])
        try:
            node_info.wait_for(timeout=3000)
            return
        except Exception:  # noqa: BLE001 - playwright's TimeoutError; try again
            continue
    raise AssertionError(f"Model Explorer did not select {label!r}")


def test_model_explorer_draws_the_cut_op_with_its_overlay(model_explorer_url, page):  # noqa: F811 (a fixture)
    def loopback_only(route):
        if route.request.url.startswith(("http://127.0.0.1:", "data:", "blob:")):
            route.continue_()
        else:  # web fonts: the client works offline, and nothing leaves the machine
            route.abort()

    page.route("**/*", loopback_only)
    page.goto(model_explorer_url)
    page.get_by_text("gradient state", exact=True).first.click()  # the overlay shown on the graph
    page.locator("div.expand-all").click()
    search = page.get_by_placeholder("Search nodes/layers by regex")
    search.fill("PyFunc")
    page.keyboard.press("Enter")
    _select_search_result(page, "PyFunc")
    search.fill("")  # the selection stays; the search highlight goes
    # The side panel of the selected node: our op name as its id, the overlay's value.
    page.locator(f"text={CUT_OP} >> visible=true").first.wait_for()
    page.locator("text=cut: numpy_function >> visible=true").first.wait_for()
    time.sleep(1.0)  # the canvas animates to the located node
    shot = doc_screenshot(page, "model_explorer.png")
    graph_area = page.locator("body").bounding_box()
    # The graph canvas is the page's left part (the side panel is on the right): the located cut
    # op is drawn there in the overlay's cut colour.
    red = _cut_coloured_pixels(
        shot, (0, 60, int(graph_area["width"] * 0.7), int(graph_area["height"]))
    )
    assert red > 2000, red
    assert page.errors == []
