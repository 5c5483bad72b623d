"""The Gradient Flow tab on a PyTorch run, and a logdir mixing a TensorFlow run and a torch run
compared side by side: a real TensorBoard, Debian's Chromium, nothing mocked.
"""

from __future__ import annotations

import os

import pytest

pytest.importorskip("playwright")
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import tb_gradflow  # noqa: E402
import tb_gradflow.torch as gt  # noqa: E402
from support.browser import (  # noqa: E402,F401
    browser,
    no_errors_from_the_tab,
    open_tab,
    page,
    render_seq,
    route,
    screenshot,
    wait_render,
)
from support.route_schema import errors, load_schema  # noqa: E402
from support.tensorboard_proc import running_tensorboard  # noqa: E402


class _AutoEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
        self.decoder = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 6))

    def forward(self, x):
        return self.decoder(self.encoder(x).detach())  # the cut: the encoder never trains


def _torch_run(logdir: str) -> None:
    torch.manual_seed(0)
    model = _AutoEncoder()
    model.decoder[0].bias.requires_grad_(False)  # frozen: listed apart, never starved
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    x = torch.randn(16, 6)

    def loss_fn(x):
        return F.mse_loss(model(x), x)

    for step in range(3):
        gt.gradflow(
            os.path.join(logdir, "torch_ae"),
            "gradflow",
            loss_fn,
            x,
            step=step,
            optimizer=opt,
            strict=True,
        )


def _tf_run(logdir: str) -> None:
    w = tf.Variable(tf.ones([6, 3]), name="w")
    v = tf.Variable(tf.ones([3, 6]), name="v")

    def loss_fn(x):
        return tf.reduce_mean((tf.matmul(tf.matmul(x, w), v) - x) ** 2)

    writer = tf.summary.create_file_writer(os.path.join(logdir, "tf_ae"))
    with writer.as_default():
        for step in range(3):
            tb_gradflow.summary.gradflow(
                "gradflow", loss_fn, tf.ones([4, 6]), step=step, strict=True
            )
    writer.flush()


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    logdir = str(tmp_path_factory.mktemp("mixed"))
    _torch_run(logdir)
    _tf_run(logdir)
    with running_tensorboard(logdir, load_fast="false") as url:
        yield url


def test_tab_on_a_torch_run_names_the_detach_and_groups_by_module(page, base_url):
    d = route(base_url, "diagnosis", run="torch_ae", tag="gradflow")
    schema = load_schema()
    assert errors(d, schema["routes"]["diagnosis"], schema) == []
    graph = route(base_url, "graph", run="torch_ae", tag="gradflow")
    assert errors(graph, schema["routes"]["graph"], schema) == []
    notes = {n["kind"]: n for n in d["story"]["notes"]}
    assert notes["frozen"]["names"] == ["decoder.0.bias"]
    [cut] = d["cut_points"]
    assert cut["cause"] == "detach" and cut["op_name"] == "model/detach"
    assert set(cut["starved_variables"]) == {
        "encoder.0.weight",
        "encoder.0.bias",
        "encoder.2.weight",
        "encoder.2.bias",
    }
    frame = open_tab(page, base_url, "gradflow&p.gradflow.run=torch_ae")
    banner = frame.locator("#gf-banner")
    assert banner.get_attribute("data-tone") == "cut"
    text = banner.inner_text()
    assert "1 cut point starves 4 trainable variables" in text
    assert f"a detach() or no_grad region at {cut['source']} stops the gradient" in text
    assert "test_browser_torch.py:" in cut["source"]
    assert frame.locator('[data-cut="detach"]').count() >= 1
    seq = render_seq(frame)
    frame.locator("#gf-view-layers").click()
    wait_render(frame, seq)
    layers = frame.locator(".gf-layer").evaluate_all("ls => ls.map(l => l.dataset.layer)")
    assert "encoder.0" in layers and "decoder.2" in layers
    var = frame.locator('.gf-var[data-variable="encoder.0.weight"]')
    assert var.get_attribute("data-state") == "none"
    screenshot(page, "torch-tab.png")


def test_mixed_logdir_compares_a_tf_run_with_a_torch_run(page, base_url):
    runs = route(base_url, "runs")
    assert {"tf_ae", "torch_ae"} <= set(runs if isinstance(runs, list) else runs.get("runs", runs))
    frame = open_tab(page, base_url, "gradflow&p.gradflow.run=torch_ae")
    seq = render_seq(frame)
    frame.locator("#gf-compare").select_option("tf_ae")
    wait_render(frame, seq)
    assert frame.locator("#gf-panes .gf-pane").count() == 2
    banner = frame.locator("#gf-banner").inner_text()
    assert "tf_ae: Gradient reaches every trainable variable" in banner
    assert "p.gradflow.compare=tf_ae" in page.url
    screenshot(page, "torch-vs-tf.png")
