"""The view fits the model: resize keeps the selection in view, Compare's panes move together
(or not), labels by level of detail, a small legend, a steady toolbar, a minimap and an
overview. On the demo logdir in Debian's Chromium."""
from __future__ import annotations

import pytest

pytest.importorskip("playwright")
from support.browser import (  # noqa: E402,F401
    base_url,
    browser,
    diagnosis,
    doc_screenshot,
    edge_crossings,
    no_errors_from_the_tab,
    open_tab,
    page,
    render_seq,
    screenshot,
    wait_render,
)


def pane(frame, n: int):
    return frame.locator(f"#gf-panes .gf-pane:nth-child({n})")


def centre_offset(frame, op: str, n: int = 1) -> tuple[float, float]:
    node = pane(frame, n).locator(f'[data-op-name="{op}"]').first.bounding_box()
    view = pane(frame, n).locator(".gf-svg").bounding_box()
    return (node["x"] + node["width"] / 2 - (view["x"] + view["width"] / 2),
            node["y"] + node["height"] / 2 - (view["y"] + view["height"] / 2))


def test_the_selection_stays_in_view_on_every_resize(page, base_url):
    cut = diagnosis(base_url)["story"]["cuts"][0]["op_name"]
    frame = open_tab(page, base_url)
    seq = render_seq(frame)
    frame.locator(".gf-cut-link").click()
    seq = wait_render(frame, seq)
    frame.wait_for_timeout(100)
    assert max(map(abs, centre_offset(frame, cut))) < 5
    # opening Compare halves the pane: the cut stays in its centre
    frame.locator("#gf-compare").select_option("fixed")
    seq = wait_render(frame, seq)
    frame.wait_for_timeout(150)
    assert max(map(abs, centre_offset(frame, cut))) < 5
    assert pane(frame, 1).locator("[data-region]").count() > 0
    assert pane(frame, 2).locator("[data-region], [data-path]").count() == 0  # the cut's region is the run's
    doc_screenshot(page, "compare.png")
    # a narrower window, then closing Compare: still centred
    page.set_viewport_size({"width": 1000, "height": 700})
    frame.wait_for_timeout(200)
    assert max(map(abs, centre_offset(frame, cut))) < 5
    frame.locator("#gf-compare").select_option("")
    wait_render(frame, seq)
    frame.wait_for_timeout(150)
    assert max(map(abs, centre_offset(frame, cut))) < 5


def test_compare_panes_move_together_until_unlinked(page, base_url):
    frame = open_tab(page, base_url, "gradflow&p.gradflow.compare=fixed")
    zoom = lambda n: pane(frame, n).locator(".gf-graph").get_attribute("data-zoom")  # noqa: E731
    world = lambda n: pane(frame, n).locator(".gf-world").get_attribute("transform")  # noqa: E731
    assert world(1) == world(2)  # a new linked pane starts where the run's pane looks
    pane(frame, 1).get_by_role("button", name="zoom in (+)").click()
    frame.wait_for_timeout(100)
    assert zoom(1) == zoom(2)
    pane(frame, 2).locator(".gf-svg").hover()
    page.mouse.wheel(0, 300)
    frame.wait_for_timeout(150)
    assert zoom(1) == zoom(2) and world(1) == world(2)
    # opening (closing) a group in one pane does it in the other
    header = pane(frame, 1).locator(".gf-cluster-header").first
    group = header.get_attribute("data-group")
    seq = render_seq(frame)
    header.focus()
    header.press("Enter")
    wait_render(frame, seq)
    for n in (1, 2):
        assert pane(frame, n).locator(f'.gf-group[data-group="{group}"]').get_attribute("data-expanded") == "false"
    # unlinked: each pane on its own
    seq = render_seq(frame)
    frame.locator("#gf-linked").uncheck()
    wait_render(frame, seq)
    assert "p.gradflow.linked=false" in page.url
    before = zoom(2)
    pane(frame, 1).get_by_role("button", name="zoom in (+)").click()
    frame.wait_for_timeout(100)
    assert zoom(2) == before != zoom(1)


def test_labels_by_level_of_detail_without_repeated_types(page, base_url):
    frame = open_tab(page, base_url)
    graph = pane(frame, 1).locator(".gf-graph")
    zoom = float(graph.get_attribute("data-zoom"))
    assert graph.get_attribute("data-lod") == ("full" if zoom * 11 >= 7 else "none")
    text = pane(frame, 1).locator(".gf-op text").first
    assert text.evaluate("t => getComputedStyle(t).display") != "none"
    for _ in range(12):
        pane(frame, 1).get_by_role("button", name="zoom out (-)").click()
    frame.wait_for_timeout(150)
    assert float(graph.get_attribute("data-zoom")) * 11 < 7
    assert graph.get_attribute("data-lod") == "none"
    assert text.evaluate("t => getComputedStyle(t).display") == "none"
    pane(frame, 1).get_by_role("button", name="fit the graph to the view (0)").click()
    frame.wait_for_timeout(100)
    # a node named as its type says the type once; the tooltip has the whole name
    nodes = frame.locator('[data-op-type="ReadVariableOp"]').evaluate_all(
        "ns => ns.map(n => [n.dataset.opName, [...n.querySelectorAll('text')].map(t => t.textContent), "
        "n.querySelector('title').textContent])"
    )
    assert nodes
    for name, lines, title in nodes:
        assert not any("ReadVariableOp · " in line for line in lines), lines
        assert title.startswith(name + "\n")


def test_a_small_legend_and_a_toolbar_that_does_not_move(page, base_url):
    page.set_viewport_size({"width": 1024, "height": 700})
    frame = open_tab(page, base_url, "gradflow&p.gradflow.compare=fixed")
    for n in (1, 2):
        legend = pane(frame, n).locator(".gf-legend").bounding_box()
        view = pane(frame, n).locator(".gf-svg").bounding_box()
        assert legend["width"] * legend["height"] < 0.05 * view["width"] * view["height"]
    pane(frame, 1).locator(".gf-legend summary").click()
    assert pane(frame, 1).locator(".gf-legend-items").is_visible()
    pane(frame, 1).locator(".gf-legend summary").click()
    assert not pane(frame, 1).locator(".gf-legend-items").is_visible()
    x = frame.locator("#gf-compare").bounding_box()["x"]
    seq = render_seq(frame)
    frame.locator("#gf-step").focus()
    frame.locator("#gf-step").press("Home")
    wait_render(frame, seq)
    assert "(latest)" not in frame.locator("#gf-step-label").inner_text()
    assert frame.locator("#gf-compare").bounding_box()["x"] == x


def test_minimap_and_overview_show_the_cut(page, base_url):
    cut = diagnosis(base_url)["story"]["cuts"][0]["op_name"]
    frame = open_tab(page, base_url)
    minimap = pane(frame, 1).locator(".gf-minimap")
    assert int(minimap.get_attribute("data-items")) > 10
    assert minimap.get_attribute("data-cuts") == "1"
    before = pane(frame, 1).locator(".gf-world").get_attribute("transform")
    box = minimap.bounding_box()
    page.mouse.click(box["x"] + 5, box["y"] + box["height"] - 5)
    frame.wait_for_timeout(100)
    assert pane(frame, 1).locator(".gf-world").get_attribute("transform") != before
    pane(frame, 1).locator(".gf-overview-toggle").click()
    overview = pane(frame, 1).locator(".gf-overview")
    assert overview.is_visible()
    cards = overview.locator(".gf-ov-group")
    assert cards.count() >= 2
    # the cut point is on a card of its own (or in a group's card) in red
    card = overview.locator(f'.gf-ov-group[data-op="{cut}"]')
    assert card.get_attribute("data-cut") == "numpy_function"
    assert card.evaluate("c => getComputedStyle(c).borderTopColor") == "rgb(213, 0, 0)"
    starved = overview.locator(".gf-ov-group[data-starved]")
    assert starved.count() >= 1
    screenshot(page, "overview-demo.png")
    seq = render_seq(frame)
    group = starved.first.get_attribute("data-group")
    starved.first.click()
    wait_render(frame, seq)
    assert not overview.is_visible()
    assert pane(frame, 1).locator(f'.gf-cluster[data-group="{group}"]').count() == 1
    pane(frame, 1).locator(".gf-overview-toggle").click()
    seq = render_seq(frame)
    card.click()
    wait_render(frame, seq)
    assert frame.locator("#gf-details [data-field=name]").inner_text() == cut


@pytest.mark.parametrize("run", ["broken", "fixed"])
def test_edges_go_around_nodes(page, base_url, run):
    frame = open_tab(page, base_url, f"gradflow&p.gradflow.run={run}")
    pane(frame, 1).get_by_role("button", name="fit the graph to the view (0)").click()
    frame.wait_for_timeout(150)
    found = edge_crossings(frame)
    assert found["edges"] > 30 and found["crossings"] == 0, found
