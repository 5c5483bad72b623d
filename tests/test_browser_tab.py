"""The Gradient Flow tab in Debian's Chromium, on a real TensorBoard serving the demo logdir.

The demo's `broken` run has a `tf.numpy_function` colour lookup that cuts the gradient; its
`fixed` run uses `tf.gather`. Expected values come from the plugin's own routes over HTTP.
"""
from __future__ import annotations

import re
import urllib.parse

import pytest

pytest.importorskip("playwright")
from support.browser import (  # noqa: E402,F401
    READY,
    base_url,
    browser,
    demo_logdir,
    graph,
    no_errors_from_the_tab,
    open_tab,
    page,
    render_seq,
    route,
    screenshot,
    tab_frame,
    wait_render,
)
from support.tensorboard_proc import running_tensorboard  # noqa: E402


def fit(frame) -> None:
    frame.get_by_role("button", name=re.compile("^fit the graph")).first.click()
    frame.wait_for_timeout(100)


def drawn_states(frame) -> dict[str, str]:
    return frame.evaluate(
        "Object.fromEntries([...document.querySelectorAll('#gf-panes .gf-pane:first-child [data-op-name]')]"
        ".map(n => [n.getAttribute('data-op-name'), n.getAttribute('data-state')]))"
    )


def test_tab_appears_and_renders_the_broken_run(page, base_url):
    page.goto(f"{base_url}/")
    tab = page.get_by_text("Gradient Flow", exact=True).first
    tab.wait_for()
    tab.click()
    page.frame_locator("iframe").locator(READY).wait_for(timeout=30000)
    frame = [f for f in page.frames if "plugin_entry.html" in f.url][0]
    assert frame.locator("#gf-run").input_value() == "broken"
    assert frame.locator("[data-op-name]").count() > 10
    screenshot(page, "tab-broken.png")


def test_banner_names_the_cut_point_and_its_starved_variables(page, base_url):
    g = graph(base_url)
    [cut] = g["cut_points"]
    frame = open_tab(page, base_url)
    banner = frame.locator("#gf-banner")
    assert banner.get_attribute("data-tone") == "cut"
    text = banner.inner_text()
    starved = cut["starved_variables"]
    assert len(starved) == 7
    assert f"1 cut point starves {len(starved)} trainable variables" in text
    for name in starved[:4]:
        assert name in text
    assert f"({len(starved) - 4} more)" in text
    assert f"tf.numpy_function at {cut['source']} has no gradient" in text
    link = banner.locator(".gf-cut-link")
    assert link.inner_text() == cut["op_name"]
    # the link centres the graph on the cut point and selects it
    fit(frame)
    seq = render_seq(frame)
    link.click()
    wait_render(frame, seq)
    frame.wait_for_timeout(100)
    node = frame.locator(f'[data-op-name="{cut["op_name"]}"]').first
    box = node.bounding_box()
    view = frame.locator("#gf-panes .gf-svg").first.bounding_box()
    assert abs(box["x"] + box["width"] / 2 - (view["x"] + view["width"] / 2)) < 5
    assert abs(box["y"] + box["height"] / 2 - (view["y"] + view["height"] / 2)) < 5
    assert node.get_attribute("data-selected") == "true"


def test_the_cut_op_is_drawn_in_the_cut_style(page, base_url):
    g = graph(base_url)
    cut_name = g["cut_points"][0]["op_name"]
    frame = open_tab(page, base_url)
    fit(frame)
    cut = frame.locator(f'[data-op-name="{cut_name}"]')
    assert cut.get_attribute("data-cut") == "numpy_function"
    shape = cut.locator(".gf-shape")
    assert shape.evaluate("s => s.tagName") == "polygon"
    fill = shape.evaluate("s => getComputedStyle(s).fill")
    assert fill == "rgb(213, 0, 0)"
    assert "no gradient: numpy_function" in cut.text_content()
    others = frame.evaluate(
        "[...document.querySelectorAll('[data-op-name]:not([data-cut]) .gf-shape')]"
        ".filter(s => s.tagName === 'polygon' || getComputedStyle(s).fill === 'rgb(213, 0, 0)').length"
    )
    assert others == 0
    screenshot(page, "cut-point.png")


def _starved_region(g: dict) -> set[str]:
    """Ops upstream of the cut that reach the loss only through it."""
    ops = g["ops"]
    n = len(ops["name"])
    cut = g["cut_points"][0]["op"]
    upstream, todo = set(), list(ops["inputs"][cut])
    while todo:
        i = todo.pop()
        if i not in upstream:
            upstream.add(i)
            todo.extend(ops["inputs"][i])
    consumers = [[] for _ in range(n)]
    for i, ins in enumerate(ops["inputs"]):
        for j in ins:
            consumers[j].append(i)
    sinks = [i for i in range(n) if not consumers[i]]
    reach, todo = set(), list(sinks)  # ops that reach a sink without passing the cut
    while todo:
        i = todo.pop()
        if i in reach or i == cut:
            continue
        reach.add(i)
        todo.extend(ops["inputs"][i])
    return {ops["name"][i] for i in upstream - reach}


def test_ops_upstream_of_the_cut_are_none_and_dimmed(page, base_url):
    g = graph(base_url)
    region = _starved_region(g)
    assert len(region) >= 5
    frame = open_tab(page, base_url)
    fit(frame)
    states = drawn_states(frame)
    assert region <= set(states), region - set(states)
    assert {states[name] for name in region} == {"none"}
    # every drawn op shows the state the route reports
    expected = dict(zip(g["ops"]["name"], g["ops"]["state"], strict=False))
    assert {name: expected[name] for name in states} == states
    some = sorted(region)[0]
    opacity = frame.locator(f'[data-op-name="{some}"]').evaluate("n => getComputedStyle(n).opacity")
    assert float(opacity) < 1
    dead = frame.locator(".gf-edge[data-flow=dead]").count()
    live = frame.locator(".gf-edge[data-flow=flowing]").count()
    assert dead > 0 and live > 0
    dash = frame.locator(".gf-edge[data-flow=dead]").first.evaluate("e => getComputedStyle(e).strokeDasharray")
    assert dash != "none"


def test_the_step_slider_changes_the_values_shown(page, base_url):
    steps = route(base_url, "diagnosis", run="broken", tag="gradflow")["steps"]
    first, last = steps[0], steps[-1]
    cut = graph(base_url)["cut_points"][0]["op_name"]
    frame = open_tab(page, base_url, f"gradflow&p.gradflow.op={urllib.parse.quote(cut, safe='')}")
    norm_at = {s: graph(base_url, step=s)["ops"]["norm"][graph(base_url,
                                                               step=s)["cut_points"][0]["op"]] for s in (first, last)}
    assert norm_at[first] != pytest.approx(norm_at[last], rel=0.02)
    shown = frame.locator("#gf-details [data-field=norm]")
    assert float(shown.inner_text()) == pytest.approx(norm_at[last], rel=0.01)
    node_text = frame.locator(f'[data-op-name="{cut}"]').text_content()
    zoom = frame.locator(".gf-graph").first.get_attribute("data-zoom")
    seq = render_seq(frame)
    slider = frame.locator("#gf-step")
    slider.focus()
    slider.press("Home")
    wait_render(frame, seq)
    assert frame.locator("#gf-root").get_attribute("data-step") == str(first)
    assert float(shown.inner_text()) == pytest.approx(norm_at[first], rel=0.01)
    assert frame.locator(f'[data-op-name="{cut}"]').text_content() != node_text
    # the view is kept: selection and zoom
    assert frame.locator(f'[data-op-name="{cut}"]').get_attribute("data-selected") == "true"
    assert frame.locator(".gf-graph").first.get_attribute("data-zoom") == zoom
    assert f"p.gradflow.step={first}" in page.url


def test_the_details_panel_shows_the_source_line_and_history(page, base_url):
    g = graph(base_url)
    steps = route(base_url, "diagnosis", run="broken", tag="gradflow")["steps"]
    cut = g["cut_points"][0]
    frame = open_tab(page, base_url)
    frame.locator(f'[data-op-name="{cut["op_name"]}"]').click()
    details = frame.locator("#gf-details")
    details.wait_for()
    assert details.locator("[data-field=name]").inner_text() == cut["op_name"]
    assert details.locator("[data-field=type]").inner_text() == cut["op_type"]
    assert details.locator("[data-field=source]").inner_text() == cut["source"]
    assert re.match(r"demo/vae\.py:\d+$", cut["source"])
    assert "numpy_function" in details.locator("[data-field=cause]").inner_text()
    frame.locator("#gf-details .gf-chart").wait_for()
    assert details.locator(".gf-chart-dot").count() == len(steps)
    inputs = [g["ops"]["name"][i] for i in g["ops"]["inputs"][cut["op"]]]
    assert details.locator("[data-op-link]").evaluate_all("ls => ls.map(l => l.textContent)")[: len(inputs)] == inputs
    screenshot(page, "details.png")


def test_view_state_lives_in_the_url(page, base_url, browser):
    steps = route(base_url, "diagnosis", run="broken", tag="gradflow")["steps"]
    cut = graph(base_url)["cut_points"][0]["op_name"]
    frame = open_tab(page, base_url)
    frame.locator(f'[data-op-name="{cut}"]').click()
    frame.locator("#gf-details").wait_for()
    seq = render_seq(frame)
    header = frame.locator(".gf-cluster-header").first
    group = header.get_attribute("data-group")
    header.focus()
    header.press("Enter")  # the keyboard way: the header may be off screen
    seq = wait_render(frame, seq)
    slider = frame.locator("#gf-step")
    slider.focus()
    slider.press("Home")
    wait_render(frame, seq)
    url = page.url
    assert "p.gradflow.op=" in url and f"p.gradflow.step={steps[0]}" in url and "p.gradflow.expanded=" in url
    # the same link in a new window shows the same view
    other = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    other.goto(url)
    f2 = tab_frame(other)
    assert f2.locator("#gf-root").get_attribute("data-step") == str(steps[0])
    assert f2.locator("#gf-details [data-field=name]").inner_text() == cut
    assert f2.locator(f'.gf-group[data-group="{group}"]').get_attribute("data-expanded") == "false"
    other.context.close()


def test_groups_collapse_show_their_worst_state_and_their_cut_point(page, base_url):
    g = graph(base_url)
    cut = g["cut_points"][0]["op_name"]
    scope = cut.rsplit("/", 1)[0]
    frame = open_tab(page, base_url)
    seq = render_seq(frame)
    fit(frame)
    frame.locator(f'.gf-cluster-header[data-group="{scope}"]').click()
    seq = wait_render(frame, seq)
    node = frame.locator(f'.gf-group[data-group="{scope}"]')
    assert node.get_attribute("data-expanded") == "false"
    assert node.get_attribute("data-has-cut") == "1"
    assert node.get_attribute("data-state") == "none"
    assert "holds 1 cut point" in node.text_content()
    assert frame.locator(f'[data-op-name="{cut}"]').count() == 0
    node.focus()
    node.press("Enter")
    wait_render(frame, seq)
    assert frame.locator(f'[data-op-name="{cut}"]').count() == 1


def test_layers_view_in_depth_order_with_starved_variables_marked(page, base_url):
    g = graph(base_url)
    frame = open_tab(page, base_url)
    seq = render_seq(frame)
    frame.locator("#gf-view-layers").click()
    wait_render(frame, seq)
    layers = frame.locator(".gf-layer").evaluate_all("ls => ls.map(l => l.dataset.layer)")
    order = [layers.index(f"colour_vae/{name}") for name in ("encoder/conv1", "encoder/dense", "decoder/dense")]
    assert order == sorted(order)
    for name, state in zip(g["variables"]["name"], g["variables"]["state"], strict=False):
        var = frame.locator(f'.gf-var[data-variable="{name}"]')
        assert var.get_attribute("data-state") == state
        if state == "none":
            assert "no gradient" in var.inner_text()
    assert "p.gradflow.view=layers" in page.url
    screenshot(page, "layers.png")


def test_compare_two_runs_side_by_side(page, base_url):
    frame = open_tab(page, base_url)
    seq = render_seq(frame)
    frame.locator("#gf-compare").select_option("fixed")
    wait_render(frame, seq)
    assert frame.locator("#gf-panes .gf-pane").count() == 2
    assert "fixed: Gradient reaches every trainable variable" in frame.locator("#gf-banner").inner_text()
    seq = render_seq(frame)
    frame.locator("#gf-view-layers").click()
    wait_render(frame, seq)
    rows = frame.locator('.gf-var[data-variable="colour_vae/decoder/dense/kernel"] .gf-bar-row')
    assert rows.evaluate_all("rs => rs.map(r => [r.dataset.run, r.dataset.state])") == [["broken", "none"], ["fixed",
            "flowing"]]
    assert "p.gradflow.compare=fixed" in page.url


def test_regex_search_and_keyboard(page, base_url):
    g = graph(base_url)
    cut = g["cut_points"][0]["op_name"]
    frame = open_tab(page, base_url)
    frame.locator("#gf-panes .gf-svg").first.press("/")  # "/" from anywhere in the tab focuses the search
    search = frame.locator("#gf-search")
    assert frame.evaluate("document.activeElement.id") == "gf-search"
    search.fill("Py[F]unc$")
    frame.locator(f'#gf-search-results [data-hit="{cut}"]').wait_for()
    seq = render_seq(frame)
    search.press("Enter")
    wait_render(frame, seq)
    assert frame.locator("#gf-details [data-field=name]").inner_text() == cut
    assert frame.evaluate("document.activeElement.getAttribute('data-op-name')") == cut
    search.fill("([")
    frame.locator("#gf-search-results .gf-error").wait_for()


def test_dark_mode_follows_tensorboard(page, base_url):
    frame = open_tab(page, base_url)
    assert frame.locator("#gf-root").get_attribute("data-theme") == "light"
    page.evaluate("document.body.classList.add('dark-mode')")  # what TensorBoard's dark-mode toggle does
    frame.wait_for_function("document.querySelector('#gf-root').dataset.theme === 'dark'")
    bg = frame.locator("#gf-root").evaluate("r => getComputedStyle(r).backgroundColor")
    assert bg == "rgb(32, 33, 36)"
    screenshot(page, "dark-mode.png")


def test_the_tab_works_under_the_rust_loader_and_a_path_prefix(page):
    with running_tensorboard(demo_logdir(), load_fast="true", path_prefix="/tb/gf") as url:
        assert url.endswith("/tb/gf")
        g = graph(url)
        frame = open_tab(page, url)
        assert g["cut_points"][0]["op_name"] in frame.locator("#gf-banner").inner_text()
        assert frame.locator(".gf-graph").first.get_attribute("data-drawn") not in (None, "0")
        cut = frame.locator(f'[data-op-name="{g["cut_points"][0]["op_name"]}"]')
        assert cut.get_attribute("data-cut") == "numpy_function"
        assert frame.evaluate("document.querySelector('#gf-root').dataset.layoutMs") is not None
