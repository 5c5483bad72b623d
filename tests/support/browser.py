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
        "n => { const r = document.querySelector('#gf-root'); return r && r.dataset.status === 'ready' && Number(r.dataset.renderSeq) > n; }",
        arg=after,
        timeout=timeout,
    )
    return render_seq(frame)


def render_seq(frame: Any) -> int:
    return int(frame.evaluate("Number(document.querySelector('#gf-root').dataset.renderSeq || 0)"))


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
