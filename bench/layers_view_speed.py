"""Speed of the whole Layers view (heatmap and bar list) in headless Chromium at 1440x900.

Issue 17's bar: the Layers view paints in under 500 ms. Measured here from the click on "Layers"
(performance.now in the tab's frame) to the frame that drew the heatmap, and the bar list's rows
in the viewport with it (the heatmap's `data-painted` stamp, set at the start of the next frame);
also when every bar row is attached. On:
- `layers500`: a crafted run of 10,000 logged steps of a 5,000-op chain with 500 layers
  (tests/support/crafted_logdir.py), alone and compared with `layers500b` (its twin), so that both
  heatmaps and the two-bar list are drawn;
- `transformer64`: the 64-block Transformer LM of tests/scripts/write_large_logdirs.py (real
  TensorFlow, 2 logged steps), from $GRADFLOW_LARGE_LOGDIR or --large-logdir if given, else written
  (about 3 minutes).
The first click of each page computes the `layers` route afresh; later pages get it cached. The
ratio printed is the median of the later pages over the 500 ms target.

Usage: .venv/bin/python bench/layers_view_speed.py [--workdir DIR] [--repeats N] [--large-logdir DIR]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from support.browser import launch, tab_frame  # noqa: E402
from support.tensorboard_proc import TensorBoardProcess  # noqa: E402

TARGET_MS = 500.0
STEPS = 10_000

# click -> heatmap(s) painted -> the frame after; then the rows in view and when all rows are in
TIME_LAYERS = """
async () => {
  const wait = () => new Promise((r) => setTimeout(r, 2));
  const start = performance.now();
  document.querySelector('#gf-view-layers').click();
  // one heatmap section, with one grid per run when comparing
  while (!document.querySelector('[data-field=heatmap][data-painted]')) await wait();
  // stamped at the start of the frame after the one that drew the heatmap (and the list's first rows)
  const paint = Number(document.querySelector('[data-field=heatmap]').dataset.painted) - start;
  const inView = [...document.querySelectorAll('.gf-layer')].filter((r) => {
    const b = r.getBoundingClientRect();
    return b.height > 0 && b.top < window.innerHeight;
  }).length;
  const grids = document.querySelectorAll('.gf-hm-run').length;
  const list = document.querySelector('.gf-layers-table');
  const total = Number(list ? list.dataset.rows : 0);
  while (document.querySelectorAll('.gf-layer').length < total) await wait();
  return [paint, performance.now() - start, inView, total || document.querySelectorAll('.gf-layer').length, grids];
}
"""


def view_times(browser, base_url: str, run: str, compare: str | None, repeats: int) -> list[list[float]]:
    """[click to painted view ms, click to every bar row attached ms, bar rows in view, rows] for
    each of `repeats` fresh pages at 1440x900."""
    out = []
    for _ in range(repeats):
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        extra = f"&p.gradflow.compare={compare}" if compare else ""
        page.goto(f"{base_url}/#gradflow&p.gradflow.run={run}{extra}")
        frame = tab_frame(page, timeout=180000)
        out.append(frame.evaluate(TIME_LAYERS))
        context.close()
    return out


def write_crafted(logdir: str) -> None:
    """The two 500-layer runs of STEPS logged steps (a few seconds each), unless already there."""
    from support.crafted_logdir import chain_graph, write_fast_run

    for run in ("layers500", "layers500b"):
        if not os.path.isdir(os.path.join(logdir, run)):
            write_fast_run(os.path.join(logdir, run), chain_graph(f"{run}-1", 5_000, 500), range(STEPS))


def transformer_logdir(given: str | None) -> str:
    """A logdir with `transformer64`: the given one, else written by write_large_logdirs.py."""
    if given:
        return given
    from support.browser import large_logdir

    return large_logdir()


def report(name: str, times: list[list[float]]) -> None:
    paint = [t[0] for t in times]
    later = paint[1:] or paint
    attached = statistics.median([t[1] for t in times[1:] or times])
    median = statistics.median(later)
    print(f"  {name}: {int(times[0][3]):,} layer rows, {int(times[-1][4])} heatmap(s), {int(times[-1][2])} rows in "
          f"view at paint; click to painted view: "
          f"first (route computed) {paint[0]:.0f} ms, then median {median:.0f} ms, max {max(later):.0f} ms "
          f"(ratio {median / TARGET_MS:.2f} of {TARGET_MS:.0f} ms); every bar row attached after {attached:.0f} ms",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=None, help="where to keep the crafted logdir between runs")
    parser.add_argument("--large-logdir", default=os.environ.get("GRADFLOW_LARGE_LOGDIR"),
                        help="a logdir with transformer64 (tests/scripts/write_large_logdirs.py)")
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    workdir = args.workdir or tempfile.mkdtemp(prefix="gradflow-bench-layers-")
    logdir = os.path.join(workdir, "logs")
    try:
        write_crafted(logdir)
        large = transformer_logdir(args.large_logdir)
        link = os.path.join(logdir, "transformer64")
        if not os.path.exists(link):
            os.symlink(os.path.join(large, "transformer64"), link)
        runs = {"layers500": {"gradflow": STEPS}, "layers500b": {"gradflow": STEPS}, "transformer64": {"gradflow": 2}}
        with TensorBoardProcess(logdir, load_fast="false", timeout=900) as tb:
            tb.wait_for_runs(runs, timeout=900)
            with sync_playwright() as p:
                browser = launch(p)
                print(f"Layers view (heatmap and bar list), headless Chromium at 1440x900, {args.repeats} fresh "
                      "pages each:", flush=True)
                for name, run, compare in (("layers500 (10,000 steps)", "layers500", None),
                                           ("layers500 compared with layers500b", "layers500", "layers500b"),
                                           ("transformer64", "transformer64", None)):
                    report(name, view_times(browser, tb.url, run, compare, args.repeats))
                browser.close()
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
