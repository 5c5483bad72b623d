"""Issue 17 in the tab on a 1440x900 laptop screen, with a real TensorBoard and Chromium.

- The layers view's heatmap on a 12-layer tanh MLP whose gradient vanishes towards the inputs
  (tests/scripts/vanishing_mlp.py): its cells are what `tb-gradflow report --json` says under
  "layers", hover names layer, step and value, a click picks that step and layer.
- With 200 layers, every bar row listed after the first paint, in the heatmap's order.
- In Compare, the compared run's heatmap below the run's, each labelled, on one log scale (the
  union of both runs' ranges), each run's cells its own CLI series; hover names the run.
- The layers view's axis label clear of its last tick; starved bars not pale grey.
- A small model (the cut model, 17 ops) opens at a zoom where labels are drawn, its cut's label
  drawn at every zoom, also in the HTML export of two runs.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

pytest.importorskip("playwright")
from support.browser import (  # noqa: E402,F401
    ROOT,
    browser,
    cli,
    doc_screenshot,
    no_errors_from_the_tab,
    open_tab,
    page,
    screenshot,
    tab_frame,
    wait_render,
)
from support.tensorboard_proc import running_tensorboard  # noqa: E402

LAPTOP = {"width": 1440, "height": 900}
HEATMAP_READY = "[data-field=heatmap][data-status=ready] .gf-hm-cell"


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    """Runs `mlp/train` (the vanishing MLP, 60 logged steps), `torch_mlp` (the same MLP in PyTorch at
    its default init, 10 logged steps), `cut_a`, `cut_b` (the cut model) and `deep` (a crafted chain
    of 200 layers, 3 steps)."""
    root = str(tmp_path_factory.mktemp("heatmap"))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT + os.pathsep + os.path.join(ROOT, "tests"))
    script = (
        "import sys; sys.path.insert(0, 'tests/scripts'); import vanishing_mlp; "
        "from support.plugin_logdirs import write_steps; "
        f"vanishing_mlp.write({os.path.join(root, 'mlp')!r}); "
        f"vanishing_mlp.write_torch({os.path.join(root, 'torch_mlp')!r}); "
        f"write_steps({os.path.join(root, 'cut_a')!r}, range(0, 6, 2)); write_steps({os.path.join(root, 'cut_b')!r}, "
        "range(0, 6, 2)); "
        "from support.crafted_logdir import chain_graph, write_fast_run; "
        f"write_fast_run({os.path.join(root, 'deep')!r}, chain_graph('deep-1', 2_000, 200), range(3))"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=600)
    return root


@pytest.fixture(scope="module")
def base_url(logdir):
    with running_tensorboard(logdir, load_fast="false") as url:
        yield url


def cli_layers(logdir: str, run: str) -> dict:
    out = cli("report", logdir, "--json")
    assert out.returncode in (0, 1), out.stderr
    return json.loads(out.stdout)["runs"][run]["tags"]["gradflow"]["layers"]


def cells(frame) -> list[dict]:
    frame.locator(HEATMAP_READY).first.wait_for()
    return frame.locator(".gf-hm-cell").evaluate_all(
        "cs => cs.map(c => ({layer: c.dataset.layer, step: Number(c.dataset.step), norm: c.dataset.norm, state: "
        "c.dataset.state, fill: c.dataset.fill || ''}))")


def open_layers(page, base_url: str, run: str):
    page.set_viewport_size(LAPTOP)
    return open_tab(page, base_url, f"gradflow&p.gradflow.run={run}&p.gradflow.view=layers")


def test_heatmap_cells_are_the_cli_layer_series_and_show_the_vanishing_band(page, base_url, logdir):
    frame = open_layers(page, base_url, "mlp/train")
    shown = cells(frame)
    served = cli_layers(logdir, "mlp/train")
    steps = served["steps"]
    names = [layer["name"] for layer in served["layers"]]
    assert names[:12] == [f"layer_{i:02d}" for i in range(1, 13)] and names[-1] == "head"  # inputs first
    rows = frame.locator(".gf-hm-row").evaluate_all("rs => rs.map(r => r.dataset.layer)")
    assert rows == names
    # every cell of the CLI's series is drawn (60 steps fit the width), with its norm and state
    assert len(shown) == len(names) * len(steps)
    by_cell = {(c["layer"], c["step"]): c for c in shown}
    for layer in served["layers"]:
        for step, state, norm in zip(steps, layer["states"], layer["norms"], strict=True):
            cell = by_cell[(layer["name"], step)]
            assert cell["state"] == state
            assert (cell["norm"] == "") if norm is None else math.isclose(float(cell["norm"]), norm, rel_tol=1e-9)
            assert bool(cell["fill"]) == (state == "flowing")  # only flowing cells get a ramp colour
    # the band: the first layer's gradient is orders of magnitude below the last one's at every step
    first, last = served["layers"][0]["norms"], served["layers"][11]["norms"]
    assert all(b / a > 100 for a, b in zip(first, last, strict=True))
    fills = {c["layer"]: c["fill"] for c in shown if c["step"] == steps[-1]}
    assert fills["layer_01"] != fills["layer_12"]
    doc_screenshot(page, "heatmap.png")


def test_heatmap_hover_names_the_cell_and_a_click_picks_step_and_layer(page, base_url, logdir):
    frame = open_layers(page, base_url, "mlp/train")
    cells(frame)
    target = frame.locator('.gf-hm-cell[data-layer="layer_03"]').nth(5)
    step = int(target.get_attribute("data-step"))
    norm = float(target.get_attribute("data-norm"))
    target.hover()
    tip = frame.locator(".gf-hm-tip")
    tip.wait_for(state="visible")
    text = tip.inner_text()
    assert "layer_03" in text and f"step {step}" in text and "|grad|" in text, text
    value = text.split("|grad| ")[1]
    assert math.isclose(float(value.replace("e", "E")), norm, rel_tol=0.01)
    seq = int(frame.locator("#gf-root").get_attribute("data-render-seq"))
    target.click()
    frame.wait_for_function("s => document.querySelector('#gf-root').dataset.step === String(s)", arg=step)
    wait_render(frame, seq)
    assert frame.locator("#gf-step-label").inner_text().startswith(str(step))
    assert frame.locator('.gf-layer[data-layer="layer_03"]').get_attribute("data-selected") is not None
    assert frame.locator('.gf-hm-row[data-layer="layer_03"]').get_attribute("data-selected") is not None
    assert frame.locator(".gf-hm-now").get_attribute("data-step") == str(step)
    # the details panel shows an op that reads the layer's variables
    frame.locator("#gf-details:not([hidden])").wait_for()
    assert "layer_03" in frame.locator("#gf-details").inner_text()


def served_cells(series: dict) -> dict:
    """{(layer, step): (state, norm)} of one run's CLI layer series."""
    return {(layer["name"], step): (state, norm) for layer in series["layers"]
            for step, state, norm in zip(series["steps"], layer["states"], layer["norms"], strict=True)}


def ramp(norm: float, lo: float, hi: float) -> tuple[float, float, float]:
    """Hue, saturation and lightness of `norm` on the log scale lo … hi (colors.ts' ramp)."""
    t = min(1.0, max(0.0, (math.log10(norm) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))))
    return 175 + 50 * t, 55 + 25 * t, 82 - 50 * t


def test_compare_shows_both_runs_heatmaps_on_one_scale(page, base_url, logdir):
    page.set_viewport_size(LAPTOP)
    frame = open_tab(page, base_url, "gradflow&p.gradflow.run=mlp/train&p.gradflow.view=layers"
                                     "&p.gradflow.compare=torch_mlp")
    frame.locator(HEATMAP_READY).first.wait_for()
    grids = frame.locator(".gf-hm-run")
    assert grids.evaluate_all("gs => gs.map(g => g.dataset.run)") == ["mlp/train", "torch_mlp"]
    assert frame.locator("[data-field=heatmap-run]").all_inner_texts() == ["mlp/train", "torch_mlp"]
    keras_series, torch_series = cli_layers(logdir, "mlp/train"), cli_layers(logdir, "torch_mlp")
    lo = min(keras_series["range"][0], torch_series["range"][0])
    hi = max(keras_series["range"][1], torch_series["range"][1])
    assert torch_series["range"][0] > 10 * keras_series["range"][0]  # the Keras run vanishes further
    for run, series in (("mlp/train", keras_series), ("torch_mlp", torch_series)):
        shown = grids.filter(has=frame.locator(f'[data-field=heatmap-run]:text-is("{run}")')).locator(
            ".gf-hm-cell").evaluate_all("cs => cs.map(c => [c.dataset.layer, Number(c.dataset.step), c.dataset.state, "
                                        "c.dataset.norm, c.dataset.fill || ''])")
        served = served_cells(series)
        assert len(shown) == len(served)
        for layer, step, state, norm, fill in shown:
            want_state, want_norm = served[(layer, step)]
            assert state == want_state
            assert (norm == "") if want_norm is None else math.isclose(float(norm), want_norm, rel_tol=1e-9)
            if state == "flowing":  # the colour of the norm on the scale of both runs together
                got = [float(x.strip("%")) for x in fill[fill.index("(") + 1:-1].split(",")]
                assert all(abs(g - w) <= 1 for g, w in zip(got, ramp(want_norm, lo, hi), strict=True)), (fill, norm)
    assert "for both runs" in frame.locator("[data-field=heatmap-range]").inner_text()
    # both heatmaps and the first bar rows on the laptop screen
    assert grids.nth(1).bounding_box()["y"] < LAPTOP["height"]
    assert frame.locator(".gf-layer").first.bounding_box()["y"] < LAPTOP["height"]
    doc_screenshot(page, "heatmap-compare.png")
    # hover on the compared run's grid names that run, its layer, step and value
    target = grids.nth(1).locator('.gf-hm-cell[data-layer="layer_12"]').nth(3)
    target.hover()
    tip = frame.locator(".gf-hm-tip")
    tip.wait_for(state="visible")
    assert tip.inner_text().startswith(f"torch_mlp · layer_12 · step {target.get_attribute('data-step')} · |grad|")
    # a click on it picks that step (the run's nearest logged one) and the layer, in both grids and the
    # list, and shows the layer's op in the graph, as a click on the run's own grid does
    step = int(target.get_attribute("data-step"))
    nearest = min(keras_series["steps"], key=lambda s: abs(s - step))
    seq = int(frame.locator("#gf-root").get_attribute("data-render-seq"))
    target.click()
    wait_render(frame, seq)
    assert frame.locator("#gf-step-label").inner_text().startswith(str(nearest))
    assert frame.locator(".gf-hm-row[data-selected]").evaluate_all("rs => rs.map(r => r.dataset.layer)") == [
        "layer_12", "layer_12"]
    assert frame.locator('.gf-layer[data-layer="layer_12"]').get_attribute("data-selected") is not None
    frame.locator("#gf-details:not([hidden])").wait_for()
    assert "layer_12" in frame.locator("#gf-details").inner_text()


def test_hundreds_of_layers_every_bar_row_follows_the_first_paint_in_order(page, base_url):
    """The bar list builds the first screen's rows before the first paint and the others after it,
    in chunks: all of them end up listed, inputs first, as the heatmap's rows are."""
    frame = open_layers(page, base_url, "deep")
    frame.locator(HEATMAP_READY).first.wait_for()
    frame.locator(".gf-layers-table[data-complete]").wait_for()
    assert frame.locator(".gf-layers-table").get_attribute("data-rows") == "200"
    listed = frame.locator(".gf-layer").evaluate_all("ls => ls.map(l => l.dataset.layer)")
    assert listed == [f"block_{j}" for j in range(200)]
    assert frame.locator(".gf-hm-row").evaluate_all("rs => rs.map(r => r.dataset.layer)") == listed
    assert frame.locator(".gf-layer").first.bounding_box()["y"] < LAPTOP["height"]
    last = frame.locator('.gf-layer[data-layer="block_199"]')
    last.scroll_into_view_if_needed()
    assert last.is_visible() and last.locator(".gf-bar-row").get_attribute("data-state") == "flowing"


def test_layers_axis_label_clear_of_its_last_tick_and_starved_bars_in_contrast(page, base_url):
    frame = open_layers(page, base_url, "cut_a")
    cells(frame)
    last = frame.locator(".gf-axis-track .gf-tick").last.bounding_box()
    label = frame.locator("[data-field=axis-label]").bounding_box()
    assert label["x"] - (last["x"] + last["width"]) >= 4, (last, label)
    starved = frame.locator('.gf-bar-row[data-state="none"] .gf-bar-track').first
    colour = starved.evaluate("t => getComputedStyle(t).outlineColor")
    background = frame.locator("#gf-root").evaluate(
        "r => { const x = document.createElement('i'); x.style.background = 'var(--gf-bg)'; r.append(x); const c = "
        "getComputedStyle(x).backgroundColor; x.remove(); return c; }")
    assert contrast(colour, background) >= 4.5, (colour, background)
    # the heatmap marks starved layers instead of colouring them
    marked = frame.locator('.gf-hm-cell[data-layer="encoder"]').evaluate_all("cs => cs.map(c => [c.dataset.state, "
                                                                             "c.dataset.fill])")
    assert marked and all(state == "none" and not fill for state, fill in marked)
    # the painted hatch follows dark mode
    pixel = ("() => { const c = document.querySelector('.gf-hm-canvas'); return [...c.getContext('2d').getImageData(2, "
             "2, 1, 1).data]; }")
    light = frame.evaluate(pixel)
    frame.evaluate("() => { document.querySelector('#gf-root').dataset.theme = 'dark'; }")
    frame.wait_for_function(f"() => ({pixel})().join() !== {json.dumps(','.join(map(str, light)))}")


def test_a_small_model_opens_with_labels_and_the_cut_label_at_every_zoom(page, base_url):
    page.set_viewport_size(LAPTOP)
    frame = open_tab(page, base_url, "gradflow&p.gradflow.run=cut_a")
    ops = int(frame.evaluate("document.querySelectorAll('#gf-panes .gf-pane:first-child .gf-op').length"))
    assert 10 <= ops <= 40
    graph = frame.locator("#gf-panes .gf-pane:first-child .gf-graph")
    assert graph.get_attribute("data-lod") == "full", graph.get_attribute("data-zoom")
    # starved ops are dimmed, their labels still readable on their fill (over the page)
    starved = frame.locator('#gf-panes .gf-pane:first-child .gf-op[data-state="none"]').first
    text, fill, opacity = starved.evaluate(
        "n => [getComputedStyle(n.querySelector('text')).fill, getComputedStyle(n.querySelector('.gf-shape')).fill, "
        "Number(getComputedStyle(n).opacity)]")
    assert opacity < 1
    assert contrast(blend(text, opacity), blend(fill, opacity)) >= 4.5, (text, fill, opacity)
    cut_label = frame.locator("#gf-panes .gf-pane:first-child .gf-node[data-cut] text").first
    assert cut_label.is_visible()
    for _ in range(12):
        frame.locator("#gf-panes .gf-pane:first-child button[title^='zoom out']").click()
    assert graph.get_attribute("data-lod") == "none"
    assert cut_label.is_visible()
    assert not frame.locator("#gf-panes .gf-pane:first-child .gf-node:not([data-cut]) text").first.is_visible()


def test_the_export_of_two_runs_opens_with_labels_and_the_heatmap(page, browser, logdir, tmp_path):
    out = str(tmp_path / "two.html")
    done = cli("export", logdir, "--run", "cut_a", "--run", "cut_b", "-o", out)
    assert done.returncode == 0, done.stderr
    page.set_viewport_size(LAPTOP)
    page.goto(f"file://{out}")
    page.locator("#gf-root[data-status=ready]").wait_for()
    for pane in range(page.locator("#gf-panes .gf-graph").count()):
        assert page.locator("#gf-panes .gf-graph").nth(pane).get_attribute("data-lod") == "full"
    page.locator("#gf-view-layers").click()
    page.locator(HEATMAP_READY).first.wait_for()
    # the export opens comparing its two runs: a heatmap for each, from the file's own series
    compared = page.locator("#gf-compare").input_value()
    runs = ["cut_a", compared] if compared else ["cut_a"]
    assert page.locator(".gf-hm-run").evaluate_all("gs => gs.map(g => g.dataset.run)") == runs
    for run in runs:
        shown = page.locator(f'.gf-hm-run[data-run="{run}"] .gf-hm-row').evaluate_all(
            "rs => rs.map(r => r.dataset.layer)")
        assert shown == [layer["name"] for layer in cli_layers(logdir, run)["layers"]]


def blend(css: str, opacity: float) -> str:
    """An rgb() colour drawn at `opacity` over a white page."""
    channels = [float(x) for x in css[css.index("(") + 1:css.index(")")].split(",")[:3]]
    return "rgb({})".format(",".join(str(c * opacity + 255 * (1 - opacity)) for c in channels))


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two CSS rgb() colours."""
    def luminance(css: str) -> float:
        r, g, bl = (int(float(x)) / 255 for x in css[css.index("(") + 1:css.index(")")].split(",")[:3])
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, bl)]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)
