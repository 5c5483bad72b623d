"""`tb-gradflow export` and `Report.to_html`: one HTML file that opens from file:// in Chromium,
reaches no network, answers exactly what the plugin's routes answer, and shows hostile names as
text. Logdirs are written without TensorFlow (tests/support/event_writer.py), except for the
`analyze` report.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("playwright")
from support.browser import READY, browser, page  # noqa: E402,F401
from support.crafted_logdir import CraftedOp, CraftedVariable, crafted_graph  # noqa: E402
from support.event_writer import write_steps  # noqa: E402
from tb_gradflow import cli  # noqa: E402
from tb_gradflow import vocabulary as V  # noqa: E402
from tb_gradflow.plugin.views import diagnosis_view, graph_json, history_json  # noqa: E402
from tb_gradflow.reading.cache import CachedSeries  # noqa: E402

HOSTILE_OP = "<img src=x onerror=\"window.__pwned=1;alert(1)\">"
HOSTILE_VAR = "<script>window.__pwned=2</script>/kernel"
HOSTILE_RUN = "<svg onload=window.__pwned=3>"
HOSTILE_TAG = "</script><script>window.__pwned=4</script>"


def _codes(items) -> np.ndarray:
    return np.array([V.STATE_CODE[x.state] for x in items], np.uint8)


def _write(run_dir: str, graph_id: str, ops, variables, steps, name: str = "gradflow", seed: int = 0) -> None:
    write_steps(run_dir, crafted_graph(graph_id, ops, variables), steps, _codes(ops), _codes(variables), name=name,
                seed=seed)


OPS_V1 = [
    CraftedOp("x", "Placeholder", V.FLOWING),
    CraftedOp("enc/MatMul", "MatMul", V.FLOWING, inputs=[0], variable_inputs=[0]),
    CraftedOp("lookup/PyFunc", "PyFunc", V.FLOWING, inputs=[1], cause=V.NUMPY_FUNCTION, starved=[0]),
    CraftedOp("dec/Sign", "Sign", V.ZERO, inputs=[2], variable_inputs=[1]),
    CraftedOp("dec/Log", "Log", V.NONFINITE, inputs=[3], variable_inputs=[2]),
    CraftedOp("loss", "Mean", V.FLOWING, inputs=[4]),
]
VARS_V1 = [CraftedVariable("enc/kernel", V.NONE), CraftedVariable("dec/kernel", V.ZERO), CraftedVariable("head/kernel",
        V.NONFINITE)]
# A retrace: one op more, the cut gone.
OPS_V2 = [
    CraftedOp("x", "Placeholder", V.FLOWING),
    CraftedOp("enc/MatMul", "MatMul", V.FLOWING, inputs=[0], variable_inputs=[0]),
    CraftedOp("lookup/GatherV2", "GatherV2", V.FLOWING, inputs=[1]),
    CraftedOp("dec/MatMul", "MatMul", V.FLOWING, inputs=[2], variable_inputs=[1]),
    CraftedOp("extra/Relu", "Relu", V.FLOWING, inputs=[3], variable_inputs=[2]),
    CraftedOp("loss", "Mean", V.FLOWING, inputs=[4]),
]
VARS_V2 = [CraftedVariable("enc/kernel", V.FLOWING), CraftedVariable("dec/kernel", V.FLOWING),
           CraftedVariable("head/kernel", V.FLOWING)]


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("export"))
    _write(f"{root}/broken", "v1", OPS_V1, VARS_V1, range(0, 10))
    _write(f"{root}/versions", "v1", OPS_V1, VARS_V1, range(0, 5), seed=1)
    _write(f"{root}/versions", "v2", OPS_V2, VARS_V2, range(5, 12), seed=2)
    _write(f"{root}/fixed", "v2", OPS_V2, VARS_V2, range(0, 10), seed=3)
    return root


def _export(tmp_path, logdir: str, *args: str) -> str:
    out = str(tmp_path / "gradflow.html")
    assert cli.main(["export", logdir, "-o", out, *args]) == 0
    return out


def _open(page, path: str) -> None:
    page.requests = []
    page.on("request", lambda r: page.requests.append(r.url))
    page.goto(f"file://{path}")
    page.wait_for_selector(READY, timeout=30000)


def _no_network(page) -> None:
    outside = [u for u in page.requests if not (u.startswith("file://") or u.startswith("blob:"))]
    assert outside == []
    assert any(u.startswith("blob:") for u in page.requests)  # the layout worker, from inlined source


def test_export_opens_from_file_with_its_graph_and_compare_pane(tmp_path, logdir, page):
    path = _export(tmp_path, logdir, "--run", "broken", "--run", "fixed")
    text = open(path, encoding="utf-8").read()
    assert "http://" not in text.split("<script", 1)[0] and "src=\"http" not in text
    _open(page, path)
    _no_network(page)
    assert page.errors == []
    banner = page.inner_text("#gf-banner")
    assert "lookup/PyFunc" in banner or "PyFunc" in banner
    assert page.locator("[data-cut]").count() >= 1
    assert page.input_value("#gf-compare") == "fixed"  # two runs chosen: compared side by side
    assert page.locator("#gf-panes > *").count() == 2
    # History and layers come from the inlined data too.
    page.locator("[data-op-name='enc/MatMul']").first.click()
    page.wait_for_selector("#gf-details:not([hidden])")
    page.wait_for_function("() => /10 logged steps/.test(document.querySelector('[data-field=history]')?.textContent "
                           "|| '')")
    assert page.locator("[data-field=history] .gf-error").count() == 0
    page.click("#gf-view-layers")
    page.wait_for_selector("#gf-layers:not([hidden])")
    assert "enc" in page.inner_text("#gf-layers")
    _no_network(page)


def test_step_option_sets_the_step_the_file_opens_at(tmp_path, logdir, page):
    _open(page, _export(tmp_path, logdir, "--run", "broken", "--step", "3"))
    assert page.inner_text("#gf-step-label").startswith("3")


def test_max_steps_keeps_exact_values_of_evenly_spaced_steps(tmp_path, logdir, page):
    _open(page, _export(tmp_path, logdir, "--run", "versions", "--max-steps", "4", "--step", "6"))
    assert "5 logged" in page.inner_text("#gf-step-label")  # 4 evenly spaced, and the --step
    series = cli.load(logdir, ["versions"]).series[("versions", "gradflow")]
    cached = CachedSeries(series, ())
    kept = page.evaluate("() => window.gradflowSource.get('diagnosis', {run: 'versions', tag: 'gradflow'})")["steps"]
    assert kept == [0, 4, 6, 7, 11]
    for step in kept:
        mine = page.evaluate("s => window.gradflowSource.get('graph', {run: 'versions', tag: 'gradflow', step: s})",
                             step)
        full = json.loads(graph_json("versions", "gradflow", cached, step))
        assert {k: v for k, v in mine.items() if k != "count"} == {k: v for k, v in full.items() if k != "count"}
    with pytest.raises(SystemExit) as usage:
        cli.main(["export", logdir, "--max-steps", "0"])
    assert usage.value.code == 2


def test_inlined_answers_equal_the_plugin_routes(tmp_path, logdir, page):
    """Every step of a series with two graph versions, and op and variable histories across them."""
    _open(page, _export(tmp_path, logdir, "--run", "versions"))
    series = cli.load(logdir, ["versions"]).series[("versions", "gradflow")]
    cached = CachedSeries(series, ())
    ask = "([route, params]) => window.gradflowSource.get(route, params)"
    for step in series.steps:
        mine = page.evaluate(ask, ["graph", {"run": "versions", "tag": "gradflow", "step": step}])
        served = json.loads(graph_json("versions", "gradflow", cached, step))
        for part in ("ops", "variables"):
            assert mine[part] == served[part], (step, part, {k: (mine[part].get(k), v) for k,
                                                             v in served[part].items() if mine[part].get(k) != v})
        assert mine == served, step
    mine = page.evaluate(ask, ["diagnosis", {"run": "versions", "tag": "gradflow"}])
    assert mine == json.loads(diagnosis_view(cached, None))
    for kind, name in (("op", "enc/MatMul"), ("op", "lookup/PyFunc"), ("op", "extra/Relu"), ("variable",
            "head/kernel")):
        mine = page.evaluate(ask, ["history", {"run": "versions", "tag": "gradflow", kind: name}])
        assert mine == json.loads(history_json("versions", "gradflow", cached, kind, name)), name
    missing = page.evaluate("() => window.gradflowSource.get('graph', {run: 'versions', tag: 'gradflow', step: "
                            "99}).catch(e => e.status)")
    assert missing == 404


def test_hostile_names_render_as_text(tmp_path, page):
    root = tmp_path / "<b onclick=x>logs"
    ops = [
        CraftedOp("x", "Placeholder", V.FLOWING),
        CraftedOp("scope/MatMul", "MatMul", V.FLOWING, inputs=[0], variable_inputs=[0]),
        CraftedOp(HOSTILE_OP, "PyFunc", V.FLOWING, inputs=[1], cause=V.NUMPY_FUNCTION, starved=[0],
                  source="<b>evil.py</b>:1"),
        CraftedOp("loss", "Mean", V.FLOWING, inputs=[2]),
    ]
    _write(str(root / HOSTILE_RUN), "h1", ops, [CraftedVariable(HOSTILE_VAR, V.NONE)], range(3), name=HOSTILE_TAG)
    path = str(tmp_path / "hostile.html")
    assert cli.main(["export", str(root), "-o", path]) == 0
    _open(page, path)
    assert page.evaluate("window.__pwned") is None and page.dialogs == [] and page.errors == []
    assert page.locator("img, svg[onload], script:not([id]):not([type])").count() <= 1  # only our own script
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    assert HOSTILE_OP in page.inner_text("#gf-banner")
    assert page.evaluate("document.title").startswith("<b onclick=x>logs")
    assert HOSTILE_RUN in page.inner_text("#gf-run") and HOSTILE_TAG in page.inner_text("#gf-tag")
    _no_network(page)


def test_export_errors(tmp_path, capsys):
    assert cli.main(["export", str(tmp_path / "missing"), "-o", str(tmp_path / "x.html")]) == cli.EXIT_NO_DATA
    assert not (tmp_path / "x.html").exists()
    assert "does not exist" in capsys.readouterr().err


@pytest.fixture(scope="module")
def analyzed():
    import tensorflow as tf

    import tb_gradflow

    w = tf.Variable(tf.ones([3, 2]), name="w")
    head = tf.Variable(tf.ones([2]), name="head")

    def loss_fn(x):
        h = tf.ensure_shape(tf.numpy_function(lambda a: a * 1.0, [tf.matmul(x, w)], tf.float32), [None, 2])
        return tf.reduce_sum(h * head)

    return tb_gradflow.analyze(loss_fn, tf.ones([2, 3]))


def test_report_save_html_opens_with_the_diagnosis(tmp_path, analyzed, page):
    path = str(tmp_path / "report.html")
    analyzed.save_html(path)
    assert open(path, encoding="utf-8").read() == analyzed.to_html()
    _open(page, path)
    _no_network(page)
    assert "PyFunc" in page.inner_text("#gf-banner")
    cut = page.locator("[data-cut]").first
    assert cut.get_attribute("data-op-name") == analyzed.cut_points[0].op_name


def test_report_pretty_is_the_text_report(analyzed):
    from IPython.lib.pretty import pretty

    assert pretty(analyzed) == str(analyzed) and "starves: w" in pretty(analyzed)


def test_report_html_for_a_notebook_is_diagnosis_then_graph(tmp_path, analyzed, page):
    html = analyzed._repr_html_()
    assert html.index("gradflow-diagnosis") < html.index("<iframe")
    path = tmp_path / "cell.html"
    path.write_text(f"<html><body>{html}</body></html>", encoding="utf-8")
    page.goto(f"file://{path}")
    assert "1 cut point starves 1 trainable variable: w" in page.inner_text(".gradflow-diagnosis")
    frame = page.frame_locator("iframe.gradflow-graph")
    frame.locator(READY).wait_for(timeout=30000)
    assert frame.locator("[data-cut]").count() >= 1
    assert page.errors == []


def test_notebook_diagnosis_escapes_hostile_names():
    from tb_gradflow.export.report_html import diagnosis_html
    from tb_gradflow.report import CutPoint, Report, VariableRecord

    cut = CutPoint(HOSTILE_OP, "<b>PyFunc</b>", V.NUMPY_FUNCTION, "<i>evil.py</i>:1", (HOSTILE_VAR,), detail="<u>d</u>")
    report = Report({HOSTILE_VAR: VariableRecord(HOSTILE_VAR, V.NONE, None)}, (), (cut,), step=1)
    html = diagnosis_html(report)
    for tag in ("<img", "<script", "<b>PyFunc", "<i>evil", "<u>d"):
        assert tag not in html
    assert "&lt;img src=x onerror=" in html and "&lt;script&gt;window.__pwned=2" in html


def test_a_report_made_by_hand_still_exports(tmp_path, page):
    """A Report not built from a traced graph (made by hand, unpickled) is drawn from its own
    ops and inputs: no call structure or shapes, the same states and cut."""
    from tb_gradflow.report import CutPoint, OpRecord, Report, VariableRecord

    ops = (
        OpRecord("x", "Placeholder", V.NONE, None, ""),
        OpRecord("enc/MatMul", "MatMul", V.NONE, None, "m.py:3", inputs=("x",)),
        OpRecord("lookup/PyFunc", "PyFunc", V.FLOWING, 2.0, "m.py:4", inputs=("enc/MatMul",), cause=V.NUMPY_FUNCTION),
        OpRecord("loss", "Mean", V.FLOWING, 1.0, "m.py:5", inputs=("lookup/PyFunc",)),
    )
    cut = CutPoint("lookup/PyFunc", "PyFunc", V.NUMPY_FUNCTION, "m.py:4", ("enc/kernel",))
    report = Report({"enc/kernel": VariableRecord("enc/kernel", V.NONE, None, "3x2")}, ops, (cut,), step=7)
    path = str(tmp_path / "hand.html")
    report.save_html(path)
    _open(page, path)
    assert page.locator("[data-cut]").first.get_attribute("data-op-name") == "lookup/PyFunc"
    assert page.evaluate("() => window.gradflowSource.get('graph', {run: 'analyze', tag: 'gradflow'})"
                         ".then(g => [g.step, g.ops.state, g.starved_variables])") == [
        7, [V.NONE, V.NONE, V.FLOWING, V.FLOWING], ["enc/kernel"]]


def test_only_the_page_s_own_script_may_run(tmp_path, logdir, page):
    """The CSP names the one inline script by its hash: no 'unsafe-inline' for scripts, and a
    script injected into the file is refused, while the page and its blob: worker still run."""
    path = _export(tmp_path, logdir, "--run", "broken")
    text = open(path, encoding="utf-8").read()
    csp = text.split('http-equiv="Content-Security-Policy" content="', 1)[1].split('"', 1)[0]
    assert "script-src 'sha256-" in csp and "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";")[0]
    _open(page, path)
    _no_network(page)  # the layout worker started from its blob: URL
    assert page.locator("[data-cut]").count() >= 1 and page.errors == []
    injected = tmp_path / "injected.html"
    injected.write_text(text.replace("<body>\n", "<body>\n<script>window.injected = 1</script>\n", 1), encoding="utf-8")
    _open(page, str(injected))
    assert page.evaluate("() => window.injected") is None
    assert page.locator("[data-cut]").count() >= 1
