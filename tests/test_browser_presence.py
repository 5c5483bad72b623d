"""Presence in the tab, in Debian's Chromium over a real TensorBoard: a dead-ReLU layer called out
in the banner, marked on the graph (its group at the overview, the op itself when shown), its
presence and history in the details, and the share present in the layers view."""
from __future__ import annotations

import urllib.parse

import pytest

pytest.importorskip("playwright")
from support.browser import (  # noqa: E402,F401
    browser,
    doc_screenshot,
    no_errors_from_the_tab,
    open_tab,
    page,
    route,
    screenshot,
)
from support.loop_logdir import TIME_STEPS, write_vanishing_rnn_run  # noqa: E402
from support.presence_logdir import STEPS, write_dead_relu_run  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(TensorBoard's URL, the Relu op's name and presence) over a dead-ReLU logdir."""
    from support.tensorboard_proc import running_tensorboard

    logdir = str(tmp_path_factory.mktemp("presence-tab"))
    report = write_dead_relu_run(logdir)
    write_vanishing_rnn_run(logdir)  # run "loop": issue 17's loop chart, on the same TensorBoard
    relu = next(op for op in report.ops if op.type == "Relu")
    with running_tensorboard(logdir, load_fast="false") as url:
        yield url, relu


def test_dead_relu_called_out_in_the_banner_and_marked_on_the_graph(page, served):
    url, relu = served
    story = route(url, "diagnosis", run="dead", tag="gradflow")["story"]
    [note] = [n for n in story["notes"] if n["kind"] == "dead_units"]  # its units are counted (issue 17)
    frame = open_tab(page, url)
    banner = frame.locator("#gf-banner")
    assert banner.get_attribute("data-tone") == "warn"
    shown = banner.locator("[data-note=dead_units]")
    assert note["text"] in shown.inner_text() and "15 of 16 units dead" in shown.inner_text()
    assert shown.locator("[data-field=note]").inner_text() == note["text"]  # the op's name is not listed twice
    assert shown.locator("[data-field=hint]").inner_text() == f"Fix: {note['hint']}"
    # At the overview the layer's group carries the mark; its members are not drawn yet.
    marked = frame.locator("#gf-panes .gf-pane:first-child .gf-node[data-dead-gate]")
    marked.first.wait_for()
    assert marked.count() >= 1
    screenshot(page, "presence-overview.png")

    frame = open_tab(page, url, f"gradflow&p.gradflow.op={urllib.parse.quote(relu.name, safe='')}")
    node = frame.locator(f'#gf-panes .gf-pane:first-child .gf-node[data-op-name="{relu.name}"]')
    node.wait_for()
    assert node.get_attribute("data-dead-gate") == "true"
    # Keras 3 traces layer dense_3 under the scope dense_3_1: its group says which layer it is.
    scope = relu.name.rsplit("/", 1)[0]
    assert scope != "dense_3"
    header = frame.locator(f'#gf-panes .gf-pane:first-child .gf-cluster[data-group="{scope}"] .gf-cluster-header')
    assert header.locator("text").text_content() == f"▾ {scope} · layer dense_3"
    assert header.locator("title").text_content() == f"{scope}\nlayer dense_3"
    assert abs(float(node.get_attribute("data-presence")) - relu.presence) < 1e-3
    fill = float(node.locator(".gf-presence-fill").get_attribute("width"))
    track = float(node.locator(".gf-presence-track").get_attribute("width"))
    assert fill == pytest.approx(track * relu.presence, abs=0.2)
    details = frame.locator("#gf-details")
    assert details.locator("[data-field=presence]").inner_text() == (f"{round(100 * relu.presence)} % of what arrives "
                                                                     "passed back to its input")
    assert details.locator("[data-field=dead-units]").inner_text() == "15 of 16 units dead (94 %) for the whole batch"
    strip = details.locator("[data-field=presence-history] .gf-presence-cell")
    strip.first.wait_for()
    assert strip.evaluate_all("cs => cs.map(c => Number(c.dataset.step))") == list(STEPS)
    screenshot(page, "presence-details.png")


def test_layers_view_shows_the_share_present(page, served):
    url, _ = served
    frame = open_tab(page, url, "gradflow&p.gradflow.view=layers")
    kernel = frame.locator('.gf-layer[data-layer="dense_3"] .gf-bar-presence').first
    kernel.wait_for()
    assert kernel.inner_text().strip().endswith("present")
    assert float(kernel.get_attribute("data-presence")) < 0.1
    rows = frame.locator('.gf-layer[data-layer="embed"] .gf-bar-presence')
    assert rows.first.inner_text().strip() == "· under 1 % of rows"


def test_loop_op_details_chart_its_iterations(page, served):
    """Issue 17: a SimpleRNN's While op shows the gradient norm at each of its 30 iterations, the
    same numbers as the graph route, and says it vanishes."""
    url, _ = served
    graph = route(url, "graph", run="loop", tag="gradflow")
    ops = graph["ops"]
    [i] = [k for k, norms in enumerate(ops["iteration_norms"]) if norms is not None]
    name, norms = ops["name"][i], ops["iteration_norms"][i]
    assert len(norms) == TIME_STEPS
    frame = open_tab(page, url, f"gradflow&p.gradflow.run=loop&p.gradflow.op={urllib.parse.quote(name, safe='')}")
    section = frame.locator("#gf-details [data-field=iterations]")
    section.wait_for()
    assert section.get_attribute("data-trend") == "vanishing"
    dots = section.locator("circle[data-iteration]")
    assert dots.count() == TIME_STEPS
    shown = dots.evaluate_all("ds => ds.map(d => Number(d.dataset.norm))")
    assert shown == pytest.approx(norms, rel=1e-6)
    assert "vanishes through the loop" in section.inner_text()
    doc_screenshot(page, "loop-iterations.png")
