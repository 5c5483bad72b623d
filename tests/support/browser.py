"""Browser-test helpers: Debian's Chromium under Playwright, the demo logdir, the tab's iframe.

Never downloads a browser: Playwright drives /usr/bin/chromium. The demo logdir is written once
per pytest session by the real `demo/train.py --quick`.
"""
from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARTIFACTS = os.path.join(ROOT, "artifacts")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
READY = "#gf-root[data-status=ready]"


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@functools.cache
def demo_logdir() -> str:
    """LOGDIR with runs `broken` and `fixed`, written by the real demo (about 20 s)."""
    root = tempfile.mkdtemp(prefix="gradflow-demo-")
    atexit.register(shutil.rmtree, root, True)
    logdir = os.path.join(root, "logs")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    subprocess.run(
        [sys.executable, os.path.join(ROOT, "demo", "train.py"), "--logdir", logdir, "--quick"],
        check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600,
    )
    return logdir


@functools.cache
def large_logdir() -> str:
    """LOGDIR with runs `resnet50` and `transformer64` (64 blocks, a numpy_function cut in block
    32), written once per session by tests/scripts/write_large_logdirs.py (about 2-3 minutes), or
    the one that $GRADFLOW_LARGE_LOGDIR names (written by that script before)."""
    if os.environ.get("GRADFLOW_LARGE_LOGDIR"):
        return os.environ["GRADFLOW_LARGE_LOGDIR"]
    root = tempfile.mkdtemp(prefix="gradflow-large-")
    atexit.register(shutil.rmtree, root, True)
    logdir = os.path.join(root, "logs")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    subprocess.run(
        [sys.executable, os.path.join(ROOT, "tests", "scripts", "write_large_logdirs.py"), logdir, "--steps", "2"],
        check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=1200,
    )
    return logdir


def cli(*args: str) -> subprocess.CompletedProcess:
    """`tb-gradflow ARGS` in a subprocess on this checkout (its output captured as text)."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "tb_gradflow", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300, check=False)


def write_with_script(script: str, logdir: str) -> str:
    """Runs tests/scripts/SCRIPT LOGDIR (a real training run that logs into LOGDIR); returns it."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    subprocess.run(
        [sys.executable, os.path.join(ROOT, "tests", "scripts", script), logdir],
        check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600,
    )
    return logdir


def tab_frame(page: Any, timeout: float = 30000) -> Any:
    """The tab's iframe (TensorBoard's plugin_entry.html), once the tab has rendered."""
    page.frame_locator("iframe").locator(READY).wait_for(timeout=timeout)
    for frame in page.frames:
        if "plugin_entry.html" in frame.url:
            return frame
    raise AssertionError("no plugin iframe")


def open_tab(page: Any, base_url: str, hash_: str = "gradflow") -> Any:
    page.goto(f"{base_url}/#{hash_}")
    return tab_frame(page)


def wait_render(frame: Any, after: int, timeout: float = 15000) -> int:
    """Waits until the tab finished a render later than number `after`; returns its number."""
    frame.wait_for_function(
        "n => { const r = document.querySelector('#gf-root'); return r && r.dataset.status === 'ready' && "
        "Number(r.dataset.renderSeq) > n; }",
        arg=after,
        timeout=timeout,
    )
    return render_seq(frame)


def render_seq(frame: Any) -> int:
    return int(frame.evaluate("Number(document.querySelector('#gf-root').dataset.renderSeq || 0)"))


_EDGE_CROSSINGS = r"""
() => {
  const svg = document.querySelector('#gf-panes .gf-pane:first-child .gf-world');
  const nodes = [...svg.querySelectorAll('.gf-node')].map(n => {
    const t = n.getAttribute('transform').match(/translate\(([-\d.]+),([-\d.]+)\)/);
    const [w, h] = n.dataset.size.split('x').map(Number);
    return { id: n.dataset.nodeId, x: +t[1], y: +t[2], w, h };
  });
  const edges = [...svg.querySelectorAll('.gf-edge')]
    .map(e => e.getAttribute('d').split(/[ML]/).filter(s => s.trim()).map(p => p.split(',').map(Number)));
  const hit = (a, b, r) => {
    // Liang-Barsky clip of segment a-b against rect r shrunk by 3
    const x0 = r.x + 3, y0 = r.y + 3, x1 = r.x + r.w - 3, y1 = r.y + r.h - 3;
    let t0 = 0, t1 = 1; const dx = b[0] - a[0], dy = b[1] - a[1];
    for (const [p, q] of [[-dx, a[0] - x0], [dx, x1 - a[0]], [-dy, a[1] - y0], [dy, y1 - a[1]]]) {
      if (p === 0) { if (q < 0) return false; continue; }
      const t = q / p;
      if (p < 0) { if (t > t1) return false; if (t > t0) t0 = t; }
      else { if (t < t0) return false; if (t < t1) t1 = t; }
    }
    return t0 < t1;
  };
  let crossings = 0; const bad = [];
  for (const pts of edges) {
    const first = pts[0], last = pts[pts.length - 1];
    for (const r of nodes) {
      const inside = (p) => p[0] >= r.x - 1 && p[0] <= r.x + r.w + 1 && p[1] >= r.y - 1 && p[1] <= r.y + r.h + 1;
      if (inside(first) || inside(last)) continue;
      for (let i = 1; i < pts.length; i++) if (hit(pts[i - 1], pts[i], r)) { crossings++; bad.push(r.id); break; }
    }
  }
  return { edges: edges.length, nodes: nodes.length, crossings, bad: bad.slice(0, 10) };
}
"""


def edge_crossings(frame: Any) -> dict:
    """How many drawn edges pass through a drawn node other than their own two ends (in the
    first pane): {"edges", "nodes", "crossings", "bad": [node ids]}."""
    return frame.evaluate(_EDGE_CROSSINGS)


def doc_screenshot(page: Any, name: str) -> str:
    """A screenshot for docs/: into artifacts/ always, and into docs/ too when
    $GRADFLOW_DOCS_SCREENSHOTS is set (so that an ordinary test run leaves the tree clean)."""
    path = screenshot(page, name)
    if os.environ.get("GRADFLOW_DOCS_SCREENSHOTS"):
        shutil.copyfile(path, os.path.join(ROOT, "docs", name))
    return path


def screenshot(page: Any, name: str) -> str:
    os.makedirs(ARTIFACTS, exist_ok=True)
    path = os.path.join(ARTIFACTS, name)
    page.screenshot(path=path)
    return path


# ---- pytest fixtures (import them into a test module to use them) ----------------------------

import pytest  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A fresh page (own context) per test. `page.errors` collects uncaught page errors and
    `page.dialogs` every alert/confirm/prompt (dismissed): a test asserts on them."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.errors = []
    page.dialogs = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    yield page
    context.close()


@pytest.fixture(autouse=True)
def no_errors_from_the_tab(page):
    """Imported into a test module, fails each of its tests on an uncaught error from the tab."""
    yield
    assert not [e for e in page.errors if "gradflow" in e or "index.js" in e], page.errors


@pytest.fixture(scope="module")
def base_url():
    """A real TensorBoard (Python loader) on the demo logdir, per test module."""
    from support.tensorboard_proc import running_tensorboard

    with running_tensorboard(demo_logdir(), load_fast="false") as url:
        yield url


def route(base_url: str, name: str, **params) -> dict:
    """The plugin's JSON route `name` over HTTP; asserts a 200."""
    from support.tensorboard_proc import fetch_json

    status, body = fetch_json(f"{base_url}/data/plugin/gradflow/{name}?{urllib.parse.urlencode(params)}")
    assert status == 200, body
    return body


def graph(base_url: str, run: str = "broken", **params) -> dict:
    return route(base_url, "graph", run=run, tag="gradflow", **params)


def diagnosis(base_url: str, run: str = "broken", **params) -> dict:
    return route(base_url, "diagnosis", run=run, tag="gradflow", **params)
