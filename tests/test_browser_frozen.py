"""Issue 16 in the tab on a 1440x900 laptop screen, with a real TensorBoard and Chromium.

A transfer-learning run (tests/scripts/transfer_learning.py: a frozen 6-variable base under a
trainable head, `model.fit` with GradFlowCallback): the banner carries a collapsed line
"Frozen (not trained): 6 variables" whose names, opened, are the ones `tb-gradflow report --json`
lists as frozen, set as text; the Layers view marks the frozen layers after the trained one; the
HTML export shows the same line.
"""
from __future__ import annotations

import json

import pytest

pytest.importorskip("playwright")
from support.browser import browser, cli, no_errors_from_the_tab, open_tab, page, write_with_script  # noqa: E402,F401
from support.tensorboard_proc import running_tensorboard  # noqa: E402

LAPTOP = {"width": 1440, "height": 900}
FROZEN = "[data-field=frozen]"


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    return write_with_script("transfer_learning.py", str(tmp_path_factory.mktemp("frozen")))


@pytest.fixture(scope="module")
def base_url(logdir):
    with running_tensorboard(logdir, load_fast="false") as url:
        yield url


def served_frozen(logdir: str) -> list[str]:
    out = cli("report", logdir, "--json")
    assert out.returncode == 0, out.stdout + out.stderr  # a correct model passes CI
    return json.loads(out.stdout)["runs"]["train"]["tags"]["gradflow"]["frozen_variables"]


def check_frozen_line(frame, frozen: list[str]) -> None:
    """The collapsed line's count, then its names (opened) as text, grouped by layer."""
    line = frame.locator(f"#gf-banner {FROZEN}")
    line.wait_for()
    assert line.locator("summary").inner_text() == f"Frozen (not trained): {len(frozen)} variables"
    assert line.get_attribute("open") is None  # collapsed until asked
    line.locator("summary").click()
    groups = line.locator(".gf-name-group").evaluate_all(
        "gs => gs.map(g => [g.dataset.layer, g.lastChild.textContent.trim()])")
    shown = [f"{layer}/{name}" for layer, names in groups for name in names.split(", ")]
    assert sorted(shown) == sorted(frozen)
    assert line.locator(".gf-name-groups *:not(div):not(span)").count() == 0  # text only


def test_the_tab_shows_the_frozen_base_collapsed_with_its_names(page, base_url, logdir):
    frozen = served_frozen(logdir)
    assert len(frozen) == 6 and all(name.startswith("base/") for name in frozen)
    page.set_viewport_size(LAPTOP)
    frame = open_tab(page, base_url, "gradflow&p.gradflow.run=train")
    assert frame.locator("#gf-banner").get_attribute("data-tone") == "ok"
    check_frozen_line(frame, frozen)
    assert frame.locator(f"#gf-banner {FROZEN}").bounding_box()["y"] < LAPTOP["height"]


def test_the_layers_view_marks_the_frozen_layers_after_the_trained_ones(page, base_url, logdir):
    frozen = served_frozen(logdir)
    page.set_viewport_size(LAPTOP)
    frame = open_tab(page, base_url, "gradflow&p.gradflow.run=train&p.gradflow.view=layers")
    rows = frame.locator(".gf-layers-table .gf-layer")
    rows.first.wait_for()
    shown = rows.evaluate_all("rs => rs.map(r => [r.dataset.layer, r.dataset.frozen === 'true'])")
    frozen_layers = list(dict.fromkeys(name.rsplit("/", 1)[0] for name in frozen))
    assert shown == [["head", False]] + [[layer, True] for layer in frozen_layers]
    assert frame.locator(".gf-layer[data-frozen] .gf-layer-frozen").first.inner_text() == "frozen: not trained"


def test_the_export_shows_the_frozen_line_too(page, logdir, tmp_path):
    out = str(tmp_path / "transfer.html")
    done = cli("export", logdir, "--run", "train", "-o", out)
    assert done.returncode == 0, done.stderr
    page.set_viewport_size(LAPTOP)
    page.goto(f"file://{out}")
    page.locator("#gf-root[data-status=ready]").wait_for()
    check_frozen_line(page, served_frozen(logdir))
