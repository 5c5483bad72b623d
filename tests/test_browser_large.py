"""The tab on large real models: Keras' ResNet50 (~1,400 ops) and a 64-block Transformer LM
(~5,000 ops) with a tf.numpy_function in block 32, written by tests/scripts/write_large_logdirs.py.
From the overview and the minimap the whole model is readable, with the cut and the starved
region visible."""
from __future__ import annotations

import re

import pytest

pytest.importorskip("playwright")
from support.browser import (  # noqa: E402,F401
    browser,
    doc_screenshot,
    edge_crossings,
    large_logdir,
    no_errors_from_the_tab,
    open_tab,
    page,
    render_seq,
    route,
    screenshot,
    wait_render,
)
from support.tensorboard_proc import running_tensorboard  # noqa: E402


@pytest.fixture(scope="module")
def base_url():
    with running_tensorboard(large_logdir(), load_fast="false") as url:
        yield url


def overview(frame):
    frame.locator("#gf-panes .gf-pane:first-child .gf-overview-toggle").click()
    o = frame.locator("#gf-panes .gf-pane:first-child .gf-overview")
    o.wait_for()
    return o


def readable(cards) -> None:
    """Every card's name is at least 12 px and drawn whole or cut with an ellipsis, never clipped to nothing."""
    sizes = cards.evaluate_all("cs => cs.map(c => { const n = c.querySelector('.gf-ov-name'); const r = "
                               "n.getBoundingClientRect(); return [parseFloat(getComputedStyle(n).fontSize), r.width, "
                               "r.height]; })")
    assert all(size >= 12 and width > 30 and height >= 12 for size, width, height in sizes), sizes[:5]


def test_transformer_overview_shows_every_block_the_cut_and_the_starved_region(page, base_url):
    d = route(base_url, "diagnosis", run="transformer64", tag="gradflow")
    [cut] = [c for c in d["story"]["cuts"] if c["cause"] == "numpy_function"]
    assert d["ops"] > 4000
    page.set_viewport_size({"width": 1400, "height": 900})
    frame = open_tab(page, base_url, "gradflow&p.gradflow.run=transformer64")
    first_paint = float(frame.locator("#gf-root").get_attribute("data-first-paint-ms"))
    assert first_paint > 0
    o = overview(frame)
    cards = o.locator(".gf-ov-group")
    blocks = {}
    for group, starved in cards.evaluate_all("cs => cs.map(c => [c.dataset.group || '', c.dataset.starved || ''])"):
        m = re.search(r"block_(\d+)(?:_\d+)?$", group)
        if m:
            blocks[int(m.group(1))] = starved
    assert sorted(blocks) == list(range(64))
    assert all(blocks[b] == "true" for b in range(32)), blocks
    assert all(blocks[b] == "" for b in range(33, 64)), blocks
    holder = o.locator(f'.gf-ov-group[data-group="{cut["op_name"].rpartition("/")[0]}"]')
    assert holder.get_attribute("data-has-cut")
    assert "PyFunc" in holder.locator(".gf-ov-cut").inner_text()
    assert holder.evaluate("c => getComputedStyle(c).borderTopColor") == "rgb(213, 0, 0)"
    readable(cards)
    doc_screenshot(page, "overview.png")
    # the minimap of the fitted graph shows the cut
    o.page.keyboard.press("Escape")
    frame.locator("#gf-panes .gf-pane:first-child .gf-overview-toggle").click()
    assert int(frame.locator(".gf-minimap").first.get_attribute("data-cuts")) >= 1


def test_resnet50_overview_is_readable(page, base_url):
    d = route(base_url, "diagnosis", run="resnet50", tag="gradflow")
    assert d["story"]["tone"] == "ok" and d["story"]["harmless"]  # BatchNorm's StopGradients
    frame = open_tab(page, base_url, "gradflow&p.gradflow.run=resnet50")
    o = overview(frame)
    cards = o.locator(".gf-ov-group")
    assert cards.count() >= 16
    readable(cards)
    seq = render_seq(frame)
    group = cards.nth(3).get_attribute("data-group")
    cards.nth(3).click()
    wait_render(frame, seq)
    assert frame.locator(f'#gf-panes .gf-cluster[data-group="{group}"]').count() == 1


def test_resnet50_overview_on_a_laptop_titles_whole_inputs_first_coloured_by_norm(page, base_url):
    """Issue 17: at 1440x900 no card title is cut at the prefix every card shares, the cards run
    in data-flow order (variable reads do not pull conv5 to the front) and each flowing card is
    filled by its gradient norm on the run's scale."""
    page.set_viewport_size({"width": 1440, "height": 900})
    frame = open_tab(page, base_url, "gradflow&p.gradflow.run=resnet50")
    o = overview(frame)
    cards = o.locator(".gf-ov-group")
    info = cards.evaluate_all(
        "cs => cs.map(c => { const n = c.querySelector('.gf-ov-name'); return {group: c.dataset.group || '', title: "
        "n.textContent,"
        " whole: n.scrollWidth <= n.clientWidth + 1 && n.scrollHeight <= n.clientHeight + 1, norm: c.dataset.norm,"
        " fill: c.style.backgroundColor, state: c.dataset.state, starved: c.dataset.starved || ''}; })")
    assert len(info) > 100
    assert all(c["whole"] for c in info), [c["title"] for c in info if not c["whole"]][:5]
    assert not any(c["title"].startswith("resnet50") for c in info)
    assert all(c["group"].endswith(c["title"]) for c in info if c["group"])
    titles = [c["title"] for c in info]
    assert titles[0].startswith("conv1")
    stage = [int(re.match(r"conv(\d)", t).group(1)) for t in titles if re.match(r"conv\d", t)]
    assert stage == sorted(stage), stage  # conv1, conv2 ... conv5 in data-flow order
    flowing = [c for c in info if c["state"] == "flowing" and c["starved"] != "true"]
    assert flowing and all(c["norm"] and c["fill"] for c in flowing)
    # the fill follows the norm on one scale: the largest and smallest norms differ in colour
    by_norm = sorted(flowing, key=lambda c: float(c["norm"]))
    assert by_norm[0]["fill"] != by_norm[-1]["fill"]
    screenshot(page, "resnet50_overview_laptop.png")


def test_transformer_heatmap_shows_the_starved_blocks_at_a_glance(page, base_url):
    """Issue 17: the layers view's heatmap of the 64-block Transformer fits the laptop screen,
    blocks 0-31 (starved by the cut in block 32) hatched at every step, the blocks after it
    coloured."""
    page.set_viewport_size({"width": 1440, "height": 900})
    frame = open_tab(page, base_url, "gradflow&p.gradflow.run=transformer64&p.gradflow.view=layers")
    frame.locator("[data-field=heatmap][data-status=ready] .gf-hm-cell").first.wait_for(timeout=60000)
    rows = frame.locator(".gf-hm-row").evaluate_all(
        "rs => rs.map(r => [r.dataset.layer, [...r.querySelectorAll('.gf-hm-cell')].map(c => c.dataset.state)])")
    states: dict[int, set] = {}
    for layer, cells in rows:
        m = re.match(r"lm/block_(\d+)/", layer)
        if m:
            states.setdefault(int(m.group(1)), set()).update(cells)
    assert sorted(states) == list(range(64))
    assert all(states[b] == {"none"} for b in range(32)), {b: states[b] for b in range(32) if states[b] != {"none"}}
    assert all(states[b] == {"flowing"} for b in range(33, 64))
    assert sum(len(cells) for _, cells in rows) <= 40_000
    assert frame.locator(".gf-hm-grid").bounding_box()["height"] <= 600


def test_healthy_attention_layers_are_not_called_out(page, base_url):
    """The layers list flags a layer decades off its neighbours. In the Transformer's flowing
    blocks each attention key bias gets a gradient that is zero but for rounding (softmax
    ignores what is added to every key alike): a median of its layer's variables called every
    key layer vanishing; the layer's L2 norm does not. The heatmap's cells are that same norm."""
    page.set_viewport_size({"width": 1440, "height": 900})
    frame = open_tab(page, base_url, "gradflow&p.gradflow.run=transformer64&p.gradflow.view=layers")
    frame.locator(".gf-layers-table[data-complete]").wait_for(timeout=60000)
    layers = frame.locator(".gf-layer").evaluate_all("ls => ls.map(l => [l.dataset.layer, l.dataset.flag || null])")
    keys = [name for name, _ in layers if re.fullmatch(r"lm/block_(3[3-9]|[4-6]\d)/multi_head_attention_\d+/key", name)]
    assert len(keys) == 31, [name for name, _ in layers][:20]
    assert [(name, flag) for name, flag in layers if flag] == []


@pytest.mark.parametrize("run", ["resnet50", "transformer64"])
def test_edges_go_around_nodes_on_large_models(page, base_url, run):
    frame = open_tab(page, base_url, f"gradflow&p.gradflow.run={run}")
    frame.locator("#gf-panes .gf-pane:first-child button[aria-label^='fit the graph']").click()
    frame.wait_for_timeout(200)
    found = edge_crossings(frame)
    assert found["edges"] > 100 and found["crossings"] == 0, found
