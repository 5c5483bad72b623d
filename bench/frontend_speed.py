"""Speed of the Gradient Flow tab in headless Chromium, on a real TensorBoard.

Measures, against the targets of issue 4:
- first complete paint of the tab on a ResNet50 training graph (~1,400 ops): target <= 1.5 s,
  from the moment TensorBoard opens the tab's iframe (its navigation start) to the first frame
  painted after the graph is laid out and drawn;
- re-render after expanding a group: target <= 200 ms, from the click to the next painted frame;
- a synthetic 20,000-op graph: first paint, group expand, and how long a pan and a zoom take
  (it must stay usable: groups start collapsed, only what is on screen is drawn, layout runs in a
  worker).

Usage: .venv/bin/python bench/frontend_speed.py [--workdir DIR] [--repeats N]
The logdirs are written once into --workdir (default: a temporary directory) and reused.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from support.browser import launch, tab_frame  # noqa: E402
from support.crafted_logdir import CraftedOp, CraftedVariable, write_run  # noqa: E402
from support.tensorboard_proc import TensorBoardProcess  # noqa: E402

FIRST_PAINT_TARGET_S = 1.5
EXPAND_TARGET_MS = 200.0


def write_resnet50(run_dir: str) -> None:
    """One gradflow summary of a Keras ResNet50 training loss (random weights and data)."""
    import keras
    import numpy as np
    import tensorflow as tf

    import tb_gradflow

    model = keras.applications.ResNet50(weights=None)
    loss_object = keras.losses.SparseCategoricalCrossentropy()
    images = tf.constant(np.random.default_rng(0).random((2, 224, 224, 3), dtype=np.float32))
    labels = tf.constant([1, 2])

    def loss_fn(x, y):
        return loss_object(y, model(x, training=True))

    writer = tf.summary.create_file_writer(run_dir)
    with writer.as_default():
        tb_gradflow.summary.gradflow("gradflow", loss_fn, images, labels, step=0, strict=True)
    writer.close()


def synthetic_ops(n_blocks: int = 20, layers_per_block: int = 10, ops_per_layer: int = 100) -> tuple[list, list]:
    """A deep network of n_blocks * layers_per_block * ops_per_layer ops in nested name scopes,
    with a skip connection per layer and a numpy_function cut half way, like a real model."""
    ops: list[CraftedOp] = [CraftedOp("input", "Placeholder", "none", norm=None)]
    variables: list[CraftedVariable] = []
    cut_block = n_blocks // 2
    prev = 0
    for b in range(n_blocks):
        starved = b < cut_block
        for layer in range(layers_per_block):
            scope = f"model/block{b}/layer{layer}"
            variables.append(CraftedVariable(f"{scope}/kernel", "none" if starved else "flowing", None if starved else 0.01 * (1 + layer)))
            layer_in = prev
            for k in range(ops_per_layer):
                inputs = [prev]
                reads: list[int] = []
                if k == 0:
                    reads = [len(variables) - 1]
                if k == ops_per_layer - 1 and layer_in != prev:
                    inputs.append(layer_in)  # the residual connection
                ops.append(CraftedOp(
                    f"{scope}/op{k}", "AddV2" if k == ops_per_layer - 1 else "Mul", "none" if starved else "flowing",
                    inputs=inputs, variable_inputs=reads, norm=None if starved else 0.001 * (1 + k),
                ))
                prev = len(ops) - 1
        if b == cut_block - 1:
            starved_vars = list(range(len(variables)))
            ops.append(CraftedOp("model/cut/PyFunc", "PyFunc", "flowing", inputs=[prev], cause="numpy_function", starved=starved_vars, source="synthetic.py:1"))
            prev = len(ops) - 1
    ops.append(CraftedOp("loss", "Mean", "flowing", inputs=[prev]))
    return ops, variables


def ensure_logdir(workdir: str) -> str:
    logdir = os.path.join(workdir, "logs")
    resnet = os.path.join(logdir, "resnet50")
    if not os.path.isdir(resnet):
        print("writing the ResNet50 run (traces the model; about a minute)...", flush=True)
        write_resnet50(resnet)
    synthetic = os.path.join(logdir, "synthetic20k")
    if not os.path.isdir(synthetic):
        print("writing the synthetic 20,000-op run...", flush=True)
        ops, variables = synthetic_ops()
        write_run(synthetic, ops, variables, steps=[0, 1], graph_id="synthetic-20k")
    return logdir


FIND_COLLAPSED = """
() => {
  const view = document.querySelector('#gf-panes .gf-svg').getBoundingClientRect();
  const groups = [...document.querySelectorAll('.gf-group[data-expanded=false]')].filter(g => {
    const r = g.getBoundingClientRect();
    return r.left >= view.left && r.right <= view.right && r.top >= view.top && r.bottom <= view.bottom;
  });
  return groups.slice(0, 8).map(g => g.getAttribute('data-group'));
}
"""

TIME_EXPAND = """
async (id) => {
  const root = document.querySelector('#gf-root');
  const node = [...document.querySelectorAll('.gf-group')].find(g => g.getAttribute('data-group') === id);
  if (!node) return null;
  const seq = Number(root.dataset.renderSeq);
  const t0 = performance.now();
  node.dispatchEvent(new MouseEvent('click', {bubbles: true}));
  while (Number(root.dataset.renderSeq) === seq) await new Promise(r => setTimeout(r, 1));
  await new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
  return [performance.now() - t0, Number(root.dataset.layoutMs)];
}
"""

TIME_PAN_ZOOM = """
async () => {
  const svg = document.querySelector('#gf-panes .gf-svg');
  const r = svg.getBoundingClientRect();
  const frame = () => new Promise(res => requestAnimationFrame(() => setTimeout(res, 0)));
  const times = [];
  for (let i = 0; i < 10; i++) {
    const t0 = performance.now();
    svg.dispatchEvent(new KeyboardEvent('keydown', {key: i % 2 ? 'ArrowLeft' : 'ArrowDown', bubbles: true}));
    await frame();
    times.push(performance.now() - t0);
  }
  for (let i = 0; i < 6; i++) {
    const t0 = performance.now();
    svg.dispatchEvent(new WheelEvent('wheel', {deltaY: i < 3 ? 300 : -300, clientX: r.left + r.width / 2, clientY: r.top + r.height / 2, bubbles: true, cancelable: true}));
    await frame();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return {median: times[Math.floor(times.length / 2)], max: times[times.length - 1]};
}
"""


def open_run(browser, base_url: str, run: str) -> tuple[float, float, int, object]:
    """Opens the tab on `run` in a fresh page: (first paint s, wall s, drawn nodes, page)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    started = time.perf_counter()
    page.goto(f"{base_url}/#gradflow&p.gradflow.run={run}")
    frame = tab_frame(page, timeout=120000)
    wall = time.perf_counter() - started
    first_paint = float(frame.evaluate("Number(document.querySelector('#gf-root').dataset.firstPaintMs)")) / 1000
    drawn = int(frame.evaluate("document.querySelectorAll('[data-op-name], .gf-group').length"))
    return first_paint, wall, drawn, page


def expand_times(page, count: int = 5) -> list[tuple[float, float]]:
    """(click to painted frame, of which layout in the worker) in ms, per expanded group."""
    frame = tab_frame(page)
    out = []
    for group in frame.evaluate(FIND_COLLAPSED)[:count]:
        ms = frame.evaluate(TIME_EXPAND, group)
        if ms is not None:
            out.append((ms[0], ms[1]))
    return out


def measure(browser, base_url: str, run: str, repeats: int) -> dict:
    paints, walls, expands = [], [], []
    drawn = 0
    pan = None
    for k in range(repeats):
        first_paint, wall, drawn, page = open_run(browser, base_url, run)
        paints.append(first_paint)
        walls.append(wall)
        expands += expand_times(page)
        if k == 0:
            pan = tab_frame(page).evaluate(TIME_PAN_ZOOM)
        page.context.close()
    return {
        "first_paint_s": statistics.median(paints),
        "first_paint_max_s": max(paints),
        "wall_s": statistics.median(walls),
        "expand_ms": statistics.median(e[0] for e in expands) if expands else float("nan"),
        "expand_max_ms": max(e[0] for e in expands) if expands else float("nan"),
        "expand_layout_ms": statistics.median(e[1] for e in expands) if expands else float("nan"),
        "expands": len(expands),
        "drawn": drawn,
        "pan_zoom_ms": pan,
    }


def count_ops(base_url: str, run: str) -> int:
    with urllib.request.urlopen(f"{base_url}/data/plugin/gradflow/graph?run={run}&tag=gradflow") as r:
        return len(json.load(r)["ops"]["name"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=None, help="where to keep the logdirs between runs")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="gradflow-bench-")
    try:
        logdir = ensure_logdir(workdir)
        from playwright.sync_api import sync_playwright

        with TensorBoardProcess(logdir, load_fast="false") as tb:
            tb.wait_for_runs({"resnet50": {"gradflow": 1}, "synthetic20k": {"gradflow": 2}})
            with sync_playwright() as p:
                browser = launch(p)
                # warm up: TensorBoard's own first load and the plugin's first read of each run
                for run in ("resnet50", "synthetic20k"):
                    open_run(browser, tb.url, run)[3].context.close()
                resnet = measure(browser, tb.url, "resnet50", args.repeats)
                synthetic = measure(browser, tb.url, "synthetic20k", args.repeats)
                browser.close()
            n_ops = {run: count_ops(tb.url, run) for run in ("resnet50", "synthetic20k")}
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(f"ResNet50 training graph ({n_ops.get('resnet50', '?')} ops), headless Chromium, median of {args.repeats}:")
    print(f"  first complete paint   {resnet['first_paint_s'] * 1000:7.0f} ms  (max {resnet['first_paint_max_s'] * 1000:.0f} ms; "
          f"target {FIRST_PAINT_TARGET_S * 1000:.0f} ms, ratio {resnet['first_paint_s'] / FIRST_PAINT_TARGET_S:.2f})")
    print(f"  group expand re-render {resnet['expand_ms']:7.0f} ms  (max {resnet['expand_max_ms']:.0f} ms over {resnet['expands']}; "
          f"target {EXPAND_TARGET_MS:.0f} ms, ratio {resnet['expand_ms'] / EXPAND_TARGET_MS:.2f}; layout {resnet['expand_layout_ms']:.0f} ms)")
    print(f"  nodes drawn at first paint: {resnet['drawn']}; page load to tab ready {resnet['wall_s'] * 1000:.0f} ms")
    print(f"Synthetic graph ({n_ops.get('synthetic20k', '?')} ops):")
    print(f"  first complete paint   {synthetic['first_paint_s'] * 1000:7.0f} ms  (ratio to the ResNet50 target {synthetic['first_paint_s'] / FIRST_PAINT_TARGET_S:.2f})")
    print(f"  group expand re-render {synthetic['expand_ms']:7.0f} ms  (max {synthetic['expand_max_ms']:.0f} ms; ratio {synthetic['expand_ms'] / EXPAND_TARGET_MS:.2f}; layout {synthetic['expand_layout_ms']:.0f} ms)")
    pz = synthetic["pan_zoom_ms"] or {"median": float("nan"), "max": float("nan")}
    print(f"  pan / zoom step to painted frame: median {pz['median']:.0f} ms, max {pz['max']:.0f} ms; nodes drawn {synthetic['drawn']}")


if __name__ == "__main__":
    main()
