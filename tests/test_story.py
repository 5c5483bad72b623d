"""The diagnosis sentences (tb_gradflow.story) and the all-steps facts (tb_gradflow.timeline).

The sentences are pure Python over a Report; the timeline is checked against every step's own
report read from the shared plugin logdir.
"""
from __future__ import annotations

import math

import pytest

from support.plugin_logdirs import TAG
from support.plugin_servers import plugin_logdir
from tb_gradflow import vocabulary as V
from tb_gradflow.reading.local_logdir import local_provider
from tb_gradflow.reading.reader import GradflowReader
from tb_gradflow.report import CutPoint, OpRecord, Report, VariableRecord
from tb_gradflow.story import story, story_lines
from tb_gradflow.timeline import timeline


def _report() -> Report:
    ops = (
        OpRecord("enc/MatMul", "MatMul", "none", None, "m.py:3"),
        OpRecord("PyFunc", "PyFunc", "flowing", 0.5, "m.py:4", inputs=("enc/MatMul",), cause="numpy_function"),
        OpRecord("bn/StopGradient", "StopGradient", "flowing", 0.1, "m.py:5", inputs=("x",), cause="stop_gradient"),
    )
    cuts = (
        CutPoint("bn/StopGradient", "StopGradient", "stop_gradient", "m.py:5", ()),
        CutPoint("PyFunc", "PyFunc", "numpy_function", "m.py:4", ("enc/kernel", "enc/bias")),
    )
    variables = {
        "enc/kernel": VariableRecord("enc/kernel", "none", None),
        "enc/bias": VariableRecord("enc/bias", "none", None),
        "spare": VariableRecord("spare", "none", None),
        "head": VariableRecord("head", "nonfinite", math.inf),
    }
    return Report(variables=variables, ops=ops, cut_points=cuts, step=7)


def test_the_story_names_cuts_hints_and_what_a_cut_blocks():
    told = story(_report())
    assert told["tone"] == "cut"
    assert told["headline"] == {"text": "1 cut point starves 2 trainable variables", "names": ["enc/kernel",
            "enc/bias"]}
    [cut] = told["cuts"]
    assert cut["text"] == "tf.numpy_function at m.py:4 has no gradient"
    assert cut["hint"] == V.HINTS["numpy_function"]
    assert cut["arriving"] == "the gradient from the loss reaches it"
    assert (cut["blocked"], cut["blocked_inputs"]) == ("nothing passes back through it to its inputs", ["enc/MatMul"])
    [harmless] = told["harmless"]
    assert harmless["text"].endswith("blocks the gradient but starves nothing: another path carries it")
    assert told["harmless_summary"] == "1 blocking op starves nothing: another path still carries the gradient"
    notes = {n["kind"]: n for n in told["notes"]}
    assert notes["unused"] == {"kind": "unused", "text": "1 variable is not used by the loss at all",
                               "names": ["spare"]}
    assert notes["nonfinite"]["text"] == "1 variable has a NaN or Inf gradient"


def test_the_cli_text_says_the_story_sentences():
    report = _report()
    told, text = story(report), str(report)
    assert f"{told['headline']['text']}: enc/kernel, enc/bias" in text
    for sentence in (told["cuts"][0]["hint"], told["cuts"][0]["arriving"], told["harmless_summary"],
                     *[n["text"] for n in told["notes"]]):
        assert sentence in text
    assert story_lines(report) == text.splitlines()


def test_a_healthy_step_and_a_warning():
    fine = Report(variables={"w": VariableRecord("w", "flowing", 1.0)}, ops=(), cut_points=())
    assert story(fine)["tone"] == "ok" and story(fine)["headline"]["text"] == ("Gradient reaches every trainable "
                                                                               "variable")
    zero = Report(variables={"w": VariableRecord("w", "zero", 0.0)}, ops=(), cut_points=())
    assert story(zero)["tone"] == "warn"
    assert [n["names"] for n in story(zero)["notes"]] == [["w"]]


@pytest.fixture(scope="module")
def series():
    reader = GradflowReader(local_provider(plugin_logdir()[0]), warn=lambda message: None)
    listing = reader.list()
    return {run: reader.read(run, TAG, listing[run][TAG]) for run in ("cut", "retrace")}


@pytest.mark.parametrize("run", ["cut", "retrace"])
def test_the_timeline_holds_over_every_step(series, run):
    s = series[run]
    reports = [s.report(step) for step in s.steps]
    t = timeline(s)

    def flowing(values):
        return [n for state, n in values if state == "flowing" and n is not None and math.isfinite(n) and n > 0]

    op_norms = flowing((o.state, o.norm) for r in reports for o in r.ops)
    var_norms = flowing((v.state, v.norm) for r in reports for v in r.variables.values())
    assert t["norm_range"]["ops"] == pytest.approx([min(op_norms), max(op_norms)])
    assert t["norm_range"]["variables"] == pytest.approx([min(var_norms), max(var_norms)])
    ids = [r.graph_id for r in reports]
    changes = [step for i, step in enumerate(s.steps) if i == 0 or ids[i] != ids[i - 1]]
    assert [c["step"] for c in t["version_changes"]] == changes
    assert (len(changes) > 1) == (run == "retrace")
    bad = [r.step for r in reports if r.variables_in("nonfinite") or any(o.state == "nonfinite" for o in r.ops)]
    assert t["first_nonfinite_step"] == (bad[0] if bad else None)
