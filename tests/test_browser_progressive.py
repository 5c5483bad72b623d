"""The tab on a graph above the progressive threshold (50,000 ops, `runs` says how many): it never
asks for the whole `graph` route, paints the top groups from `graph_groups`, fetches a group's
members when the user opens it, and says in the page what is limited. A crafted 60,000-op graph
in six top scopes (stage/block/layer), with a numpy_function in stage_3, over a real TensorBoard
and Chromium."""
from __future__ import annotations

import os
import shutil
import tempfile
import urllib.parse

import pytest

pytest.importorskip("playwright")
from support import crafted_logdir as crafted  # noqa: E402
from support.browser import browser, no_errors_from_the_tab, open_tab, page, render_seq, route, screenshot, wait_render  # noqa: E402,F401
from support.tensorboard_proc import running_tensorboard  # noqa: E402

N_OPS = 60_000
CUT = 30_005  # in stage_3/block_300/layer_0
TAG = "gradflow"


@pytest.fixture(scope="module")
def base_url():
    tmp = tempfile.mkdtemp(prefix="gradflow-progressive-")
    try:
        graph = crafted.chain_graph("staged-1", N_OPS, 60, cuts=(CUT,))
        for i, op in enumerate(graph.ops):
            op.name = f"stage_{i // 10_000}/{op.name}"
        crafted.write_fast_run(os.path.join(tmp, "big"), graph, range(2))
        with running_tensorboard(tmp) as url:
            yield url
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def requests_of(page) -> list[str]:
    """Every plugin route the page asks for, as 'route?query', recorded from now on."""
    seen: list[str] = []

    def note(request) -> None:
        path = urllib.parse.urlsplit(request.url)
        if "/data/plugin/gradflow/" in path.path:
            seen.append(path.path.rsplit("/", 1)[1] + ("?" + path.query if path.query else ""))

    page.on("request", note)
    return seen


def groups_asked(seen: list[str]) -> list[str]:
    return [urllib.parse.parse_qs(q.partition("?")[2]).get("group",
                                                           [""])[0] for q in seen if q.startswith("graph_groups?")]


def test_a_huge_graph_loads_group_by_group(page, base_url):
    runs = route(base_url, "runs")
    assert runs["big"][TAG]["ops"] == N_OPS  # what the tab decides by
    seen = requests_of(page)
    frame = open_tab(page, base_url, "gradflow&p.gradflow.run=big")
    note = frame.locator("#gf-progressive")
    assert note.is_visible()
    assert "60,000 ops" in note.inner_text() and "Compare and the Layers view" in note.inner_text()
    # the top level painted: the six stages, each a closed group with its op count
    stages = frame.locator("#gf-panes .gf-group")
    assert sorted(stages.evaluate_all("gs => gs.map(g => g.dataset.group)")) == [f"stage_{k}" for k in range(6)]
    assert "10000 ops" in frame.locator('.gf-group[data-group="stage_2"]').text_content()
    assert int(note.get_attribute("data-loaded-ops")) == 0
    # painted before the diagnosis when that is slow; the banner follows
    frame.locator('#gf-banner [data-field="headline"]').wait_for(timeout=60000)
    frame.wait_for_function("() => document.querySelector('#gf-root').dataset.status === 'ready'")
    assert groups_asked(seen) == [""]
    # the top level is asked for before the diagnosis (slow on a first request), not after it
    first = {q.partition("?")[0]: i for i, q in reversed(list(enumerate(seen)))}
    assert first["graph_groups"] < first["diagnosis"], seen

    # the overview shows the top groups as cards, from the counts alone
    toggle = frame.locator("#gf-panes .gf-pane:first-child .gf-overview-toggle")
    toggle.click()
    cards = frame.locator("#gf-panes .gf-overview .gf-ov-group")
    cards.first.wait_for()
    assert sorted(cards.evaluate_all("cs => cs.map(c => c.dataset.group)")) == [f"stage_{k}" for k in range(6)]
    toggle.click()

    # opening a group fetches its level and draws its members inside its box
    seq = render_seq(frame)
    frame.locator('.gf-group[data-group="stage_2"]').click()
    wait_render(frame, seq, timeout=60000)
    assert groups_asked(seen) == ["", "stage_2"]
    assert frame.locator('#gf-panes .gf-cluster[data-group="stage_2"]').count() == 1
    blocks = frame.locator('#gf-panes .gf-group[data-group^="stage_2/block_"]').evaluate_all("gs => gs.map(g => "
                                                                                             "g.dataset.group)")
    assert blocks and all(b.startswith("stage_2/block_2") for b in blocks), blocks
    # one level deeper, down to ops
    seq = render_seq(frame)
    frame.locator(f'.gf-group[data-group="{blocks[0]}"]').click()
    wait_render(frame, seq, timeout=60000)
    layer = frame.locator(f'#gf-panes .gf-group[data-group^="{blocks[0]}/layer_"]').first
    layer_name = layer.get_attribute("data-group")
    seq = render_seq(frame)
    layer.click()
    wait_render(frame, seq, timeout=60000)
    ops = frame.locator(f'#gf-panes .gf-op[data-op-name^="{layer_name}/op_"]')
    assert ops.count() >= 1
    assert groups_asked(seen)[-2:] == [blocks[0], layer_name]
    assert int(note.get_attribute("data-loaded-ops")) == 10
    screenshot(page, "progressive-open.png")

    # the diagnosis banner's cut point: revealing it loads its groups and selects it
    cut = f"stage_3/block_300/layer_0/op_{CUT}"
    link = frame.locator(f'#gf-banner [data-cut-op="{cut}"]')
    link.wait_for()
    assert link.is_enabled()
    link.click()
    frame.locator(f'#gf-details[data-selected-op="{cut}"]').wait_for(timeout=60000)
    assert {"stage_3", "stage_3/block_300", "stage_3/block_300/layer_0"} <= set(groups_asked(seen))
    frame.locator(f'#gf-panes .gf-op[data-op-name="{cut}"][data-cut]').wait_for(timeout=30000)
    assert "loaded ops only" in frame.locator('#gf-details [data-field="progressive-note"]').inner_text()

    # search covers loaded ops and says so
    frame.locator("#gf-search").fill("op_3000")
    frame.locator('#gf-search-results [data-field="search-scope"]').wait_for(timeout=10000)
    assert frame.locator('#gf-search-results [data-hit="stage_3/block_300/layer_0/op_30001"]').count() == 1

    # the layers view: the heatmap from its own route (every layer over the steps), and why the
    # bars of each variable are off
    frame.locator("#gf-view-layers").click()
    assert "loaded group by group" in frame.locator('#gf-layers [data-field="layers-off"]').inner_text()
    heatmap = frame.locator("#gf-layers [data-field=heatmap][data-status=ready]")
    heatmap.wait_for(timeout=60000)
    layers = route(base_url, "layers", run="big", tag=TAG)["layers"]
    assert len(layers) == 60
    rows = heatmap.locator(".gf-hm-row").evaluate_all("rs => rs.map(r => r.dataset.layer)")
    assert rows == [layer["name"] for layer in layers]
    frame.locator("#gf-layers .gf-hm-cell").first.wait_for()
    assert heatmap.locator('[data-field="heatmap-now"]').get_attribute("data-step") == "1"
    assert frame.locator("#gf-compare").is_disabled()

    # never the whole graph
    assert not [q for q in seen if q.startswith("graph?") or q == "graph"], seen


def test_a_new_step_reloads_the_open_levels_at_that_step(page, base_url):
    seen = requests_of(page)
    frame = open_tab(page, base_url, "gradflow&p.gradflow.run=big&p.gradflow.step=0&p.gradflow.expanded=stage_1")
    frame.locator('#gf-panes .gf-cluster[data-group="stage_1"]').wait_for(timeout=60000)
    assert sorted(groups_asked(seen)) == ["", "stage_1"]
    assert all("step=0" in q for q in seen if q.startswith("graph_groups?"))
    seq = render_seq(frame)
    slider = frame.locator("#gf-step")
    slider.evaluate("s => { s.value = s.max; s.dispatchEvent(new Event('input', {bubbles: true})); }")
    wait_render(frame, seq, timeout=60000)
    frame.wait_for_function("() => document.querySelector('#gf-root').dataset.step === '1'", timeout=60000)
    assert sorted(groups_asked(seen)) == ["", "", "stage_1", "stage_1"]
    assert frame.locator('#gf-panes .gf-cluster[data-group="stage_1"]').count() == 1
    assert not [q for q in seen if q.startswith("graph?")], seen
