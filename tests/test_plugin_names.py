"""Run and tag names the fast loader cannot read (a double quote, a backslash, a tab): the Python
loader serves them; under the fast loader the tab and `tb-gradflow check` say which runs are
missing, why, and what to do (--load_fast=false, or rename)."""
from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile

import pytest

from support import crafted_logdir as crafted
from support.browser import browser, open_tab, page  # noqa: F401
from support.plugin_servers import LOADERS
from support.tensorboard_proc import TensorBoardProcess, fetch_json

TAG = "gradflow"
BAD_RUNS = ['lr="0.1"', "a\\b", "tab\there"]
GOOD_RUNS = ["lr=0.1", "plain"]
BAD_TAG = 'loss"q'


@functools.cache
def logdir() -> str:
    root = tempfile.mkdtemp(prefix="gradflow-names-")
    for run in BAD_RUNS + GOOD_RUNS:
        crafted.write_fast_run(os.path.join(root, run), crafted.chain_graph("g-1", 20, 2), range(5))
    crafted.write_fast_run(os.path.join(root, "tagged"), crafted.chain_graph("g-1", 20, 2), range(5), name=BAD_TAG)
    return root


@functools.cache
def tensorboard(load_fast: str) -> TensorBoardProcess:
    import atexit

    tb = TensorBoardProcess(logdir(), load_fast=load_fast).start()
    atexit.register(tb.close)
    tb.wait_for_runs({run: {TAG: 5} for run in GOOD_RUNS}, timeout=90)
    return tb


def missing(tb: TensorBoardProcess) -> dict[str, str]:
    def ready() -> dict[str, str] | None:
        notices = fetch_json(tb.plugin_url("notices"))[1]["notices"]
        found = {n["run"]: n["text"] for n in notices if n["kind"] == "unreadable_name"}
        return found if len(found) == len(BAD_RUNS) + 1 else None

    return tb.wait_until(ready, what="notices of every unreadable run", timeout=60)


@pytest.mark.parametrize("load_fast", LOADERS, ids=[f"load_fast={v}" for v in LOADERS])
def test_the_tab_names_runs_the_fast_loader_cannot_read(load_fast):
    tb = tensorboard(load_fast)
    if load_fast == "false":
        runs = tb.wait_for_runs({**{run: {TAG: 5} for run in BAD_RUNS}, "tagged": {BAD_TAG: 5}}, timeout=90)
        assert set(runs) == {*BAD_RUNS, *GOOD_RUNS, "tagged"}
        assert fetch_json(tb.plugin_url("notices"))[1] == {"notices": []}
        return
    found = missing(tb)
    assert set(found) == {*BAD_RUNS, "tagged"}
    assert "a double quote" in found['lr="0.1"'] and "a backslash" in found["a\\b"] and "a tab" in found["tab\there"]
    assert "tag name" in found["tagged"] and BAD_TAG in found["tagged"]
    for text in found.values():
        assert "--load_fast=false" in text and "rename" in text
    assert set(fetch_json(tb.plugin_url("runs"))[1]) == set(GOOD_RUNS)


def test_the_notice_is_shown_in_the_tab(page):  # noqa: F811
    tb = tensorboard("true")
    missing(tb)
    frame = open_tab(page, tb.url)
    notices = frame.locator("#gf-notices [data-notice=unreadable_name]")
    notices.first.wait_for(timeout=15000)
    texts = notices.all_inner_texts()
    assert len(texts) == len(BAD_RUNS) + 1
    assert any('lr="0.1"' in t and "--load_fast=false" in t for t in texts), texts


def test_check_names_them_too():
    """Also: a running TensorBoard holds every event file open for reading; that is not a writer."""
    tensorboard("true")
    out = subprocess.run([sys.executable, "-m", "tb_gradflow.cli", "check", logdir(), "--idle-seconds", "0"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    named = [line for line in out.stdout.splitlines() if line.startswith("names")]
    assert len(named) == len(BAD_RUNS) + 1, out.stdout
    for run in BAD_RUNS + ["tagged"]:
        assert any(f"names    {run}:" in line and "--load_fast=false" in line for line in named), (run, named)
    assert not any(run in line for line in named for run in GOOD_RUNS)
    assert "live " not in out.stdout and "ok       plain/" in out.stdout
