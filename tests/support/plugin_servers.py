"""The plugin tests' shared logdir and TensorBoard processes, made once per pytest session.

Writing the logdir takes ~15 s and each TensorBoard ~5 s to start, so test modules share them
through these memoized functions (fixtures in a support module would be per-module). Everything
is removed or stopped when the test process exits.
"""
from __future__ import annotations

import atexit
import functools
import shutil
import tempfile

from support.plugin_logdirs import build_plugin_logdir
from support.tensorboard_proc import TensorBoardProcess

LOADERS = ("false", "true")


@functools.cache
def plugin_logdir() -> tuple[str, dict]:
    """(logdir, expected {run: {tag: steps}}) of the shared plugin-test logdir."""
    root = tempfile.mkdtemp(prefix="gradflow-plugin-")
    atexit.register(shutil.rmtree, root, True)
    logdir = f"{root}/logs"
    return logdir, build_plugin_logdir(logdir)


@functools.cache
def plugin_tensorboard(load_fast: str) -> TensorBoardProcess:
    """A TensorBoard on the shared logdir, once every good run is fully loaded."""
    logdir, expected = plugin_logdir()
    tb = TensorBoardProcess(logdir, load_fast=load_fast).start()
    atexit.register(tb.close)
    tb.wait_for_runs({run: {tag: len(steps) for tag, steps in tags.items()} for run, tags in expected.items() if tags})
    return tb
