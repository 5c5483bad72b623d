"""The tab tells the diagnosis route's story and colours on a scale that holds across steps.

On the demo logdir (`broken` has a tf.numpy_function cut, `fixed` uses tf.gather) in Debian's
Chromium. Expected sentences and ranges come from the plugin's routes over HTTP, which are the
CLI's own (tests/test_story.py checks those against the reports).
"""
from __future__ import annotations

import math
import urllib.parse

import pytest

pytest.importorskip("playwright")
from support.browser import (  # noqa: E402,F401
    base_url,
    browser,
    diagnosis,
    graph,
    no_errors_from_the_tab,
    open_tab,
    page,
    render_seq,
    screenshot,
    wait_render,
)


def fit(frame) -> None:
    frame.locator("#gf-panes .gf-pane:first-child button[aria-label^='fit the graph']").click()
    frame.wait_for_timeout(100)


def test_the_banner_says_the_served_story_with_each_cuts_fix(page, base_url):
    story = diagnosis(base_url)["story"]
    [cut] = story["cuts"]
    frame = open_tab(page, base_url)
    banner = frame.locator("#gf-banner")
    assert banner.get_attribute("data-tone") == story["tone"] == "cut"
    assert banner.locator("[data-field=headline-text]").inner_text().startswith(story["headline"]["text"] + ": ")
    item = banner.locator(f'[data-cut-item="{cut["op_name"]}"]')
    assert cut["text"] in item.inner_text()
    assert item.locator("[data-field=hint]").inner_text() == f"Fix: {cut['hint']}"
    assert "tf.gather" in cut["hint"]
    # the long list of starved variables opens on click, grouped by layer
    names = story["headline"]["names"]
    assert len(names) == 7
    more = banner.locator("[data-field=headline-text] .gf-more")
    assert more.inner_text() == f"… ({len(names) - 4} more)"
    more.click()
    groups = banner.locator("[data-field=headline-text] .gf-name-group")
    layers = groups.evaluate_all("gs => gs.map(g => g.dataset.layer)")
    assert layers == list(dict.fromkeys(n.rpartition("/")[0] for n in names))
    text = banner.locator("[data-field=headline-text]").inner_text()
    assert all(n.rpartition("/")[2] in text for n in names)


def test_a_cut_points_details_say_what_it_is(page, base_url):
    story = diagnosis(base_url)["story"]
    [cut] = story["cuts"]
    frame = open_tab(page, base_url, f"gradflow&p.gradflow.op={urllib.parse.quote(cut['op_name'], safe='')}")
    details = frame.locator("#gf-details")
    state = details.locator("[data-field=state] .gf-badge")
    assert state.get_attribute("data-state") == "cut"
    assert state.inner_text() == "✂ cut point"
    assert "flowing" not in details.locator("[data-field=state]").inner_text()
    assert details.locator("[data-field=arriving]").inner_text().startswith(cut["arriving"])
    blocked = details.locator("[data-field=blocked]")
    assert blocked.inner_text().startswith(cut["blocked"])
    links = blocked.locator("[data-op-link]").evaluate_all("ls => ls.map(l => l.dataset.opLink)")
    assert links == cut["blocked_inputs"] and links
    assert details.locator("[data-field=hint]").inner_text() == cut["hint"]
    screenshot(page, "cut-details.png")


def _shade(norm: float, lo: float, hi: float) -> float:
    return (math.log10(norm) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))


def _flowing_shades(frame, pane: int = 1) -> dict[str, float]:
    return frame.evaluate(
        f"Object.fromEntries([...document.querySelectorAll('#gf-panes .gf-pane:nth-child({pane}) [data-shade]')]"
        ".map(n => [n.dataset.opName, Number(n.dataset.shade)]))"
    )


def test_one_colour_scale_over_all_steps_with_the_range_in_the_legend(page, base_url):
    d = diagnosis(base_url)
    lo, hi = d["norm_range"]["ops"]
    first, last = d["steps"][0], d["steps"][-1]
    frame = open_tab(page, base_url)
    fit(frame)
    legend = frame.locator("#gf-panes .gf-pane:first-child .gf-legend")
    assert legend.evaluate("l => l.tagName") == "DETAILS"  # collapsible, closed by default
    assert legend.get_attribute("open") is None
    range_text = legend.locator("[data-field=range]").inner_text()
    assert range_text.startswith("|grad| ") and "…" in range_text
    at = {}
    for step in (last, first):
        g = graph(base_url, step=step)
        if step == first:
            seq = render_seq(frame)
            frame.locator("#gf-step").focus()
            frame.locator("#gf-step").press("Home")
            wait_render(frame, seq)
        shades = _flowing_shades(frame)
        assert len(shades) > 5
        norms = dict(zip(g["ops"]["name"], g["ops"]["norm"], strict=False))
        for name, shade in shades.items():
            assert shade == pytest.approx(_shade(norms[name], lo, hi), abs=2e-4), name
        at[step] = shades
        # the legend names the same range at every step
        assert legend.locator("[data-field=range]").inner_text() == range_text
    # "this step only" is a toggle: then the step's own range is used
    seq = render_seq(frame)
    frame.locator("#gf-scale-step").check()
    wait_render(frame, seq)
    g = graph(base_url, step=first)
    step_norms = [n for n, s in zip(g["ops"]["norm"], g["ops"]["state"],
                                    strict=False) if s == "flowing" and isinstance(n, float) and n > 0]
    shades = _flowing_shades(frame)
    name = next(iter(shades))
    norms = dict(zip(g["ops"]["name"], g["ops"]["norm"], strict=False))
    assert shades[name] == pytest.approx(_shade(norms[name], min(step_norms), max(step_norms)), abs=2e-4)
    assert legend.locator("[data-field=range]").get_attribute("data-scale") == "step"
    assert "p.gradflow.scale=step" in page.url


def test_compare_shares_one_colour_scale_and_one_layers_axis(page, base_url):
    mine, theirs = diagnosis(base_url), diagnosis(base_url, run="fixed")
    lo = min(mine["norm_range"]["ops"][0], theirs["norm_range"]["ops"][0])
    hi = max(mine["norm_range"]["ops"][1], theirs["norm_range"]["ops"][1])
    frame = open_tab(page, base_url, "gradflow&p.gradflow.compare=fixed")
    assert frame.locator("#gf-panes .gf-pane").count() == 2
    legends = frame.locator(".gf-legend [data-field=range]").evaluate_all("ls => ls.map(l => l.textContent)")
    assert len(legends) == 2 and legends[0] == legends[1]
    for pane, run in ((1, "broken"), (2, "fixed")):
        g = graph(base_url, run=run)
        norms = dict(zip(g["ops"]["name"], g["ops"]["norm"], strict=False))
        shades = _flowing_shades(frame, pane)
        assert shades
        for name, shade in shades.items():
            assert shade == pytest.approx(_shade(norms[name], lo, hi), abs=2e-4), (run, name)
    screenshot(page, "compare.png")
    # layers: bars on one absolute log axis (whole decades over both runs' ranges), with ticks
    seq = render_seq(frame)
    frame.locator("#gf-view-layers").click()
    wait_render(frame, seq)
    vlo = math.floor(math.log10(min(mine["norm_range"]["variables"][0], theirs["norm_range"]["variables"][0])))
    vhi = math.ceil(math.log10(max(mine["norm_range"]["variables"][1], theirs["norm_range"]["variables"][1])))
    ticks = frame.locator(".gf-axis-track .gf-tick").evaluate_all("ts => ts.map(t => Number(t.dataset.decade))")
    assert ticks[0] == vlo and ticks[-1] == vhi and len(ticks) >= 2
    for run in ("broken", "fixed"):
        g = graph(base_url, run=run)
        for name, state, norm in zip(g["variables"]["name"], g["variables"]["state"], g["variables"]["norm"],
                                     strict=False):
            row = frame.locator(f'.gf-var[data-variable="{name}"] .gf-bar-row[data-run="{run}"]')
            if row.count() == 0:
                continue  # matched to the other run's name (Keras suffixes)
            length = float(row.get_attribute("data-length"))
            expected = 0 if state != "flowing" else max(0.01, (math.log10(norm) - vlo) / (vhi - vlo))
            assert length == pytest.approx(expected, abs=1e-3), (run, name)


def test_a_pasted_link_applies_to_the_open_tab(page, base_url):
    steps = diagnosis(base_url)["steps"]
    cut = diagnosis(base_url)["story"]["cuts"][0]["op_name"]
    frame = open_tab(page, base_url)
    assert frame.locator("#gf-root").get_attribute("data-step") == str(steps[-1])
    seq = render_seq(frame)
    op = urllib.parse.quote(cut, safe="")
    page.evaluate("location.hash = "
                  f"'#gradflow&p.gradflow.run=broken&p.gradflow.tag=gradflow&p.gradflow.step={steps[0]}&p.gradflow.op={op}&p.gradflow.view=layers'")
    wait_render(frame, seq)
    frame.wait_for_function(f"document.querySelector('#gf-root').dataset.step === '{steps[0]}'")
    assert frame.locator("#gf-details [data-field=name]").inner_text() == cut
    assert frame.locator("#gf-layers").is_visible()
    assert frame.locator("#gf-step-label").inner_text().startswith(f"{steps[0]} ")
