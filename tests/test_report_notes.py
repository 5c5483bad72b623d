"""Every note `str(report)` tells is told by `Report.to_html()` and by both halves of the notebook
cell (`_repr_html_`): the plain diagnosis and the interactive page in its iframe. Checked in
Chromium over real `analyze` reports whose notes come from different parts of the story: a cut,
a dead ReLU (presence), an embedding's untouched rows (sparse presence) and a NaN gradient.
"""

from __future__ import annotations

import html

import pytest

pytest.importorskip("playwright")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import tb_gradflow  # noqa: E402
from support.browser import READY, browser, page  # noqa: E402,F401
from support.models import dead_relu_model  # noqa: E402
from tb_gradflow import vocabulary as V  # noqa: E402
from tb_gradflow.story import story  # noqa: E402


def _cut():
    w = tf.Variable(tf.ones([3, 2]), name="w")
    head = tf.Variable(tf.ones([2]), name="head")

    def loss_fn(x):
        h = tf.ensure_shape(
            tf.numpy_function(lambda a: a * 1.0, [tf.matmul(x, w)], tf.float32), [None, 2]
        )
        return tf.reduce_sum(h * head)

    return tb_gradflow.analyze(loss_fn, tf.ones([2, 3]))


def _dead_relu():
    return tb_gradflow.analyze(*dead_relu_model(live_units=1))


def _sparse_embedding():
    keras.utils.set_random_seed(0)
    embed = keras.layers.Embedding(1000, 4, name="embed")
    head = keras.layers.Dense(1, name="head")
    ids = tf.constant([[1, 2, 3]])
    head(embed(ids))
    return tb_gradflow.analyze(lambda ids: tf.reduce_sum(head(embed(ids))), ids)


def _nan():
    w = tf.Variable(tf.zeros([3]), name="w")
    return tb_gradflow.analyze(lambda x: tf.reduce_sum(tf.sqrt(w) * x), tf.ones([3]))


# Each report and the kinds of note its story must hold (so that the check below is not vacuous).
REPORTS = {
    "cut": (_cut, set()),
    "dead_relu": (_dead_relu, {V.DEAD_UNITS}),
    "sparse_embedding": (_sparse_embedding, {V.FEW_ROWS}),
    "nan": (_nan, {V.NONFINITE}),
}


@pytest.fixture(scope="module", params=sorted(REPORTS))
def case(request):
    make, kinds = REPORTS[request.param]
    report = make()
    told = story(report)
    assert kinds <= {n["kind"] for n in told["notes"]}
    if request.param == "cut":
        assert told["cuts"]
    return report, told


def _said_in(text: str, told: dict, report) -> None:
    """The headline and each note of `told` (the sentences `str(report)` prints) are in `text`."""
    printed = str(report)
    for sentence in [told["headline"], *told["notes"]]:
        assert sentence["text"] in printed
        assert sentence["text"] in text, sentence["text"]


def test_export_and_notebook_tell_every_note(case, page, tmp_path):
    report, told = case
    path = tmp_path / "report.html"
    report.save_html(str(path))
    page.goto(f"file://{path}")
    page.wait_for_selector(READY, timeout=30000)
    banner = page.locator("#gf-banner")
    assert banner.get_attribute("data-tone") == told["tone"]
    _said_in(banner.inner_text(), told, report)

    cell = report._repr_html_()
    plain = cell[: cell.index("<iframe")]
    _said_in(html.unescape(plain), told, report)
    path = tmp_path / "cell.html"
    path.write_text(f"<html><body>{cell}</body></html>", encoding="utf-8")
    page.goto(f"file://{path}")
    frame = page.frame_locator("iframe.gradflow-graph")
    frame.locator(READY).wait_for(timeout=30000)
    assert frame.locator("#gf-banner").get_attribute("data-tone") == told["tone"]
    _said_in(frame.locator("#gf-banner").inner_text(), told, report)
