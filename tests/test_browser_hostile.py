"""The tab with hostile names from the logdir, and with steps that arrive while it is open.

Names are untrusted: an op named `<img src=x onerror=alert(1)>` must show as text and run no
script. Written by hand (TensorFlow forbids "<" in op names) with the package's own encoders.
"""
from __future__ import annotations

import shutil
import tempfile
import urllib.parse

import pytest

pytest.importorskip("playwright")
from support.browser import browser, open_tab, page, render_seq, screenshot, wait_render  # noqa: E402,F401
from support.crafted_logdir import CraftedOp, CraftedVariable, write_run  # noqa: E402
from support.tensorboard_proc import TensorBoardProcess  # noqa: E402

HOSTILE_OP = "<img src=x onerror=alert(1)>"
HOSTILE_SCOPE_OP = "scope/<script>alert(2)</script>"
HOSTILE_VAR = "<svg onload=alert(3)>/kernel"
HOSTILE_SOURCE = "<b onmouseover=alert(4)>evil.py</b>:7"

HOSTILE_OPS = [
    CraftedOp("x", "Placeholder", "none", norm=None),
    CraftedOp(HOSTILE_SCOPE_OP, "MatMul", "none", inputs=[0], variable_inputs=[0], norm=None),
    CraftedOp("scope/relu", "Relu", "none", inputs=[1], norm=None),
    CraftedOp(HOSTILE_OP, "PyFunc", "flowing", inputs=[2, 1], cause="numpy_function", starved=[0],
              source=HOSTILE_SOURCE),
    CraftedOp("loss", "Mean", "flowing", inputs=[3]),
]
HOSTILE_VARS = [CraftedVariable(HOSTILE_VAR, "none", norm=None)]

LIVE_OPS = [
    CraftedOp("x", "Placeholder", "none", norm=None),
    CraftedOp("dense/MatMul", "MatMul", "flowing", inputs=[0], variable_inputs=[0]),
    CraftedOp("loss", "Mean", "flowing", inputs=[1]),
]
LIVE_VARS = [CraftedVariable("dense/kernel", "flowing")]

NUMERIC_OPS = [
    CraftedOp("x", "Placeholder", "none", norm=None),
    CraftedOp("a/MatMul", "MatMul", "flowing", inputs=[0], variable_inputs=[0], norm=0.5),
    CraftedOp("b/Sign", "Sign", "zero", inputs=[1], variable_inputs=[1], norm=0.0),
    CraftedOp("c/Log", "Log", "nonfinite", inputs=[1], variable_inputs=[2], norm=float("inf")),
    CraftedOp("loss", "AddV2", "nonfinite", inputs=[2, 3], norm=float("nan")),
]
NUMERIC_VARS = [
    CraftedVariable("a/kernel", "flowing", 0.25),
    CraftedVariable("b/kernel", "zero", 0.0),
    CraftedVariable("c/kernel", "nonfinite", float("nan")),
]


@pytest.fixture(scope="module")
def logdir():
    root = tempfile.mkdtemp(prefix="gradflow-hostile-")
    write_run(f"{root}/hostile", HOSTILE_OPS, HOSTILE_VARS, steps=[0, 1])
    write_run(f"{root}/live", LIVE_OPS, LIVE_VARS, steps=[0, 1, 2], graph_id="live-1")
    write_run(f"{root}/numerics", NUMERIC_OPS, NUMERIC_VARS, steps=[0], graph_id="numerics-1")
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def tensorboard(logdir):
    with TensorBoardProcess(logdir, load_fast="false") as tb:
        tb.wait_for_runs({"hostile": {"gradflow": 2}, "live": {"gradflow": 3}, "numerics": {"gradflow": 1}})
        yield tb


def _find_node(frame, name: str):
    return frame.evaluate_handle(
        "name => [...document.querySelectorAll('[data-op-name]')].find(n => n.getAttribute('data-op-name') === name) "
        "|| null",
        name,
    )


def _no_injected_markup(frame) -> None:
    injected = frame.evaluate(
        "({img: document.querySelectorAll('img').length,"
        " handlers: document.querySelectorAll('[onerror],[onload],[onmouseover]').length,"
        " scripts: [...document.querySelectorAll('script')].filter(s => (s.textContent || "
        "'').includes('alert')).length,"
        " b: document.querySelectorAll('#gf-root b').length})"
    )
    assert injected == {"img": 0, "handlers": 0, "scripts": 0, "b": 0}


def test_hostile_names_are_text_and_run_no_script(page, tensorboard):
    frame = open_tab(page, tensorboard.url, "gradflow&p.gradflow.run=hostile")
    banner = frame.locator("#gf-banner").inner_text()
    assert HOSTILE_OP in banner
    assert HOSTILE_VAR in banner
    assert HOSTILE_SOURCE in banner
    node = _find_node(frame, HOSTILE_OP)
    assert node.evaluate("n => n && n.getAttribute('data-cut')") == "numpy_function"
    assert HOSTILE_OP in node.evaluate("n => n.textContent")
    # open everything that shows names: details, layers view, search results
    seq = render_seq(frame)
    node.evaluate("n => n.dispatchEvent(new MouseEvent('click', {bubbles: true}))")
    seq = wait_render(frame, seq)
    details = frame.locator("#gf-details")
    assert details.locator("[data-field=name]").inner_text() == HOSTILE_OP
    assert details.locator("[data-field=source]").inner_text() == HOSTILE_SOURCE
    assert HOSTILE_SCOPE_OP in details.inner_text()
    frame.locator("#gf-search").fill("<")
    frame.locator("#gf-search-results [data-hit]").first.wait_for()
    hits = frame.locator("#gf-search-results [data-hit]").evaluate_all("bs => bs.map(b => b.dataset.hit)")
    assert set(hits) == {HOSTILE_OP, HOSTILE_SCOPE_OP, HOSTILE_VAR}
    frame.locator("#gf-view-layers").click()
    wait_render(frame, seq)
    assert HOSTILE_VAR.rsplit("/", 1)[0] in frame.locator("#gf-layers").inner_text()
    _no_injected_markup(frame)
    page.wait_for_timeout(300)
    assert page.dialogs == []
    assert urllib.parse.quote(HOSTILE_OP, safe="") in page.url or "p.gradflow.op=" in page.url
    screenshot(page, "hostile-names.png")


def test_hostile_state_in_the_url_is_only_text(page, tensorboard):
    evil = urllib.parse.quote('"><img src=x onerror=alert(5)>', safe="")
    frame = open_tab(page, tensorboard.url,
                     f"gradflow&p.gradflow.run=hostile&p.gradflow.q={evil}&p.gradflow.expanded={evil}")
    assert frame.locator("#gf-search").input_value() == '"><img src=x onerror=alert(5)>'
    _no_injected_markup(frame)
    assert page.dialogs == []


def test_reload_brings_new_steps_and_keeps_the_view(page, tensorboard, logdir):
    frame = open_tab(page, tensorboard.url, "gradflow&p.gradflow.run=live&p.gradflow.op=dense%2FMatMul")
    assert frame.locator("#gf-root").get_attribute("data-step") == "2"
    assert "3 logged" in frame.locator("#gf-step-label").inner_text()
    before = frame.locator("#gf-details [data-field=norm]").inner_text()
    zoom = frame.locator(".gf-graph").first.get_attribute("data-zoom")
    write_run(f"{logdir}/live", LIVE_OPS, LIVE_VARS, steps=[3, 4], graph_id="live-1", with_graph=False)
    tensorboard.wait_for_runs({"live": {"gradflow": 5}})
    seq = render_seq(frame)
    page.locator("app-header-reload button").click()  # TensorBoard's own reload button
    frame.wait_for_function("document.querySelector('#gf-root').dataset.step === '4'", timeout=20000)
    wait_render(frame, seq)
    assert "5 logged" in frame.locator("#gf-step-label").inner_text()
    assert frame.locator("#gf-details [data-field=name]").inner_text() == "dense/MatMul"
    assert frame.locator("#gf-details [data-field=norm]").inner_text() != before
    assert frame.locator(".gf-graph").first.get_attribute("data-zoom") == zoom


def test_zero_and_nonfinite_gradients_are_called_out(page, tensorboard):
    frame = open_tab(page, tensorboard.url, "gradflow&p.gradflow.run=numerics")
    banner = frame.locator("#gf-banner")
    assert banner.get_attribute("data-tone") == "warn"
    text = banner.inner_text()
    assert "Gradient reaches every trainable variable, but not all of it is usable" in text
    # the served sentences (tb_gradflow/story.py), the CLI's words
    assert "1 variable has a NaN or Inf gradient: c/kernel" in text
    assert "1 variable has an all-zero gradient: b/kernel" in text
    assert "NaN or Inf gradients first appear at step 0" in text
    states = frame.evaluate("Object.fromEntries([...document.querySelectorAll('[data-op-name]')].map(n => "
                            "[n.getAttribute('data-op-name'), n.getAttribute('data-state')]))")
    assert states == {"x": "none", "a/MatMul": "flowing", "b/Sign": "zero", "c/Log": "nonfinite", "loss": "nonfinite"}
    fills = frame.evaluate("Object.fromEntries(['b/Sign', 'c/Log'].map(n => [n, "
                           "getComputedStyle([...document.querySelectorAll('[data-op-name]')].find(e => "
                           "e.getAttribute('data-op-name') === n).querySelector('.gf-shape')).fill]))")
    assert fills == {"b/Sign": "rgb(242, 182, 0)", "c/Log": "rgb(123, 31, 162)"}
    assert "Inf" in frame.locator('[data-op-name="c/Log"]').text_content()
    seq = render_seq(frame)
    frame.locator("#gf-view-layers").click()
    wait_render(frame, seq)
    rows = frame.locator(".gf-var").evaluate_all("vs => vs.map(v => [v.dataset.variable, v.dataset.state, "
                                                 "v.querySelector('.gf-bar-value').textContent])")
    assert rows == [["a/kernel", "flowing", "0.25"], ["b/kernel", "zero", "zero"], ["c/kernel", "nonfinite",
            "nonfinite (NaN)"]]
