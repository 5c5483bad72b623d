"""The story behind a selection and over time: which cut starves an op and its path to the loss,
a cut's starved region, the history chart's axes and version marks, the first NaN step, layers
far off their neighbours, and an empty logdir. The demo logdir plus runs written by hand."""
from __future__ import annotations

import shutil
import tempfile
import urllib.parse

import pytest

pytest.importorskip("playwright")
from support.browser import (  # noqa: E402,F401
    base_url,
    browser,
    diagnosis,
    doc_screenshot,
    graph,
    no_errors_from_the_tab,
    open_tab,
    page,
    route,
    screenshot,
)
from support.crafted_logdir import CraftedOp, CraftedVariable, write_run  # noqa: E402
from support.tensorboard_proc import running_tensorboard  # noqa: E402


def select(page, base_url, op: str):
    return open_tab(page, base_url, f"gradflow&p.gradflow.op={urllib.parse.quote(op, safe='')}")


def upstream_none(g: dict, cut: int) -> set[str]:
    ops = g["ops"]
    seen, todo = set(), list(ops["inputs"][cut])
    while todo:
        i = todo.pop()
        if i in seen or ops["state"][i] != "none":
            continue
        seen.add(i)
        todo.extend(ops["inputs"][i])
    return {ops["name"][i] for i in seen}


def test_a_starved_op_names_its_cut_and_the_path_to_the_loss(page, base_url):
    g = graph(base_url)
    cut = g["cut_points"][0]
    ops = g["ops"]
    starved = next(n for n, s, t in zip(ops["name"], ops["state"], ops["type"],
                                        strict=False) if s == "none" and t == "ReadVariableOp" and "decoder" in n)
    frame = select(page, base_url, starved)
    details = frame.locator("#gf-details")
    details.locator(".gf-chart").wait_for()
    doc_screenshot(page, "path.png")
    starved_by = details.locator("[data-field=starved-by] [data-op-link]")
    links = starved_by.evaluate_all("ls => ls.map(l => l.dataset.opLink)")
    assert links == [cut["op_name"]]
    frame.get_by_role("button", name="fit the graph to the view (0)").first.click()
    frame.wait_for_timeout(150)
    on_path = set(frame.locator("[data-op-name][data-path]").evaluate_all("ns => ns.map(n => n.dataset.opName)"))
    assert {starved, cut["op_name"]} <= on_path
    sinks = [n for i, n in enumerate(ops["name"]) if not any(i in ins for ins in ops["inputs"])]
    assert on_path & set(sinks), "the path ends at the loss"
    assert all(ops["state"][ops["name"].index(n)] == "none" or n == cut["op_name"] or n in sinks
               or ops["state"][ops["name"].index(n)] == "flowing" for n in on_path)
    assert frame.locator(".gf-edge[data-path]").count() >= len(on_path) - 1 > 0
    screenshot(page, "path.png")


def test_a_cut_shows_its_starved_region(page, base_url):
    g = graph(base_url)
    cut = g["cut_points"][0]
    region = upstream_none(g, cut["op"])
    frame = select(page, base_url, cut["op_name"])
    frame.get_by_role("button", name="fit the graph to the view (0)").first.click()
    frame.wait_for_timeout(150)
    assert f"{len(region)} ops upstream" in frame.locator("#gf-details [data-field=region]").inner_text()
    marked = set(frame.locator("[data-op-name][data-region]").evaluate_all("ns => ns.map(n => n.dataset.opName)"))
    drawn = set(frame.locator("[data-op-name]").evaluate_all("ns => ns.map(n => n.dataset.opName)"))
    assert marked == region & drawn and marked


def test_the_history_chart_has_axes_ticks_and_units(page, base_url):
    steps = diagnosis(base_url)["steps"]
    cut = graph(base_url)["cut_points"][0]["op_name"]
    frame = select(page, base_url, cut)
    chart = frame.locator("#gf-details .gf-chart")
    chart.wait_for()
    xs = chart.locator(".gf-axis-x .gf-chart-tick").evaluate_all("ts => ts.map(t => Number(t.dataset.step))")
    assert xs[0] == steps[0] and xs[-1] == steps[-1] and set(xs) <= set(steps)
    assert chart.locator(".gf-axis-y .gf-chart-tick").count() >= 2
    labels = chart.locator(".gf-axis-label").all_text_contents()
    assert labels == ["step", "|grad| (L2, log)"]


OPS = [
    CraftedOp("x", "Placeholder", "none", norm=None),
    *[CraftedOp(f"layer{i}/MatMul", "MatMul", "flowing", inputs=[i], variable_inputs=[i]) for i in range(5)],
    CraftedOp("loss", "Mean", "flowing", inputs=[5]),
]
VARS = [CraftedVariable(f"layer{i}/kernel", "flowing", n) for i, n in enumerate([1.0, 0.5, 1e-6, 0.4, 0.8])]
NAN_OPS = [*OPS[:-2], CraftedOp("layer4/MatMul", "MatMul", "nonfinite", inputs=[4], variable_inputs=[4],
                                norm=float("nan")), CraftedOp("loss", "Mean", "nonfinite", inputs=[5],
                                norm=float("nan"))]
NAN_VARS = [*VARS[:-1], CraftedVariable("layer4/kernel", "nonfinite", float("nan"))]


@pytest.fixture(scope="module")
def crafted_url():
    root = tempfile.mkdtemp(prefix="gradflow-why-")
    write_run(f"{root}/turns_nan", OPS, VARS, steps=[0, 1, 2], graph_id="g1")
    write_run(f"{root}/turns_nan", NAN_OPS, NAN_VARS, steps=[3, 4], graph_id="g2")
    with running_tensorboard(root, load_fast="false") as url:
        yield url
    shutil.rmtree(root, True)


def test_nan_steps_and_graph_versions_on_the_slider_banner_and_chart(page, crafted_url):
    d = route(crafted_url, "diagnosis", run="turns_nan", tag="gradflow")
    assert d["first_nonfinite_step"] == 3 and [c["step"] for c in d["version_changes"]] == [0, 3]
    frame = open_tab(page, crafted_url, "gradflow&p.gradflow.run=turns_nan&p.gradflow.op=layer1%2FMatMul")
    assert "NaN or Inf gradients first appear at step 3" in frame.locator("#gf-banner").inner_text()
    marks = frame.locator("#gf-step-marks .gf-mark").evaluate_all("ms => ms.map(m => [m.dataset.kind, "
                                                                  "Number(m.dataset.step)])")
    assert sorted(marks) == [["nonfinite", 3], ["version", 3]]
    frame.locator("#gf-details .gf-chart").wait_for()
    versions = frame.locator("#gf-details .gf-chart-version").evaluate_all("vs => vs.map(v => Number(v.dataset.step))")
    assert versions == [3]


def test_a_layer_far_below_its_neighbours_is_called_out(page, crafted_url):
    frame = open_tab(page, crafted_url, "gradflow&p.gradflow.run=turns_nan&p.gradflow.step=2&p.gradflow.view=layers")
    flagged = frame.locator(".gf-layer[data-flag]").evaluate_all("ls => ls.map(l => [l.dataset.layer, l.dataset.flag])")
    assert flagged == [["layer2", "vanishing"]]
    assert "vanishing" in frame.locator('.gf-layer[data-layer="layer2"] .gf-layer-flag').inner_text()


def test_an_empty_logdir_shows_how_to_log(page):
    root = tempfile.mkdtemp(prefix="gradflow-empty-")
    try:
        with running_tensorboard(root, load_fast="false") as url:
            page.goto(f"{url}/#gradflow")
            page.frame_locator("iframe").locator("#gf-root[data-status=empty]").wait_for(timeout=30000)
            frame = [f for f in page.frames if "plugin_entry.html" in f.url][0]
            text = frame.locator("#gf-empty").inner_text()
            assert 'tb_gradflow.summary.gradflow("gradflow", loss_fn, x, y, step=step)' in text
            assert "tb_gradflow.keras.GradFlowCallback(log_dir" in text
            screenshot(page, "empty.png")
    finally:
        shutil.rmtree(root, True)
