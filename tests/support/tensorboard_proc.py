"""Starts a real `tensorboard` process on a free port, for tests that talk to it over HTTP.

Usage:
    with running_tensorboard(logdir, load_fast="false") as base_url:
        urllib.request.urlopen(base_url + "/data/plugin/gradflow/runs")

or, to read the process's log (warnings) too:
    with TensorBoardProcess(logdir, load_fast="true") as tb:
        tb.url, tb.log()

The process is started in its own session and its whole process group (TensorBoard and, under
`--load_fast=true`, its Rust data server) is killed on exit. It listens on 127.0.0.1 only.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from typing import Any

PLUGIN = "gradflow"
_URL_PATTERN = re.compile(r"TensorBoard \S+ at (http://[^\s/]+)")


class TensorBoardError(RuntimeError):
    """TensorBoard did not start, or died; the message carries its log."""


class TensorBoardProcess:
    """One `tensorboard` subprocess; a context manager whose value is the process object."""

    def __init__(
        self,
        logdir: str | None,
        load_fast: str = "false",
        extra_args: Sequence[str] = (),
        path_prefix: str = "",
        reload_interval: float = 1,
        timeout: float = 120,
    ):
        self.logdir = logdir
        self.load_fast = load_fast
        self.extra_args = list(extra_args)
        self.path_prefix = path_prefix.rstrip("/")
        self.reload_interval = reload_interval
        self.timeout = timeout
        self.url = ""
        self._proc: subprocess.Popen | None = None
        self._log_file = tempfile.NamedTemporaryFile(prefix="tensorboard-", suffix=".log", delete=False)

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "tensorboard.main", "--host", "127.0.0.1", "--port", "0"]
        if self.logdir is not None:
            cmd += ["--logdir", self.logdir]
        cmd += ["--load_fast", self.load_fast, "--reload_interval", str(self.reload_interval)]
        if self.path_prefix:
            cmd += ["--path_prefix", self.path_prefix]
        return cmd + self.extra_args

    def start(self) -> TensorBoardProcess:
        """Starts TensorBoard and waits until the plugin answers; stops it again on failure."""
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
        self._proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.PIPE,  # the Rust data server dies when this closes
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            self.wait_until(self._find_url, what="TensorBoard to print its URL")
            self.wait_until(self.plugin_active, what="the gradflow plugin to answer")
        except BaseException:
            self.stop()
            raise
        return self

    def _find_url(self) -> bool:
        match = _URL_PATTERN.search(self.log())
        if match:
            self.url = match.group(1) + self.path_prefix
        return bool(match)

    def plugin_active(self) -> bool:
        """True once TensorBoard lists the plugin and its `runs` route answers."""
        status, listing = fetch_json(self.url + "/data/plugins_listing")
        if status != 200 or PLUGIN not in listing:
            return False
        status, _ = fetch_json(self.plugin_url("runs"))
        return status == 200

    def plugin_url(self, route: str) -> str:
        return f"{self.url}/data/plugin/{PLUGIN}/{route}"

    def wait_until(self, predicate: Callable[[], Any], what: str = "a condition", timeout: float | None = None) -> Any:
        """Polls `predicate` until it returns something truthy; raises with the log on timeout."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            self._check_alive()
            try:
                value = predicate()
            except (OSError, ValueError):
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise TensorBoardError(f"timed out waiting for {what}:\n{self.log()[-5000:]}")
            time.sleep(0.25)

    def wait_for_runs(self, expected: dict[str, dict[str, int]], timeout: float | None = None) -> dict:
        """Waits until `runs` lists at least `expected` = {run: {tag: count}}; returns the listing."""

        def ready() -> dict | None:
            status, runs = fetch_json(self.plugin_url("runs"))
            if status != 200:
                return None
            for run, tags in expected.items():
                for tag, count in tags.items():
                    if runs.get(run, {}).get(tag, {}).get("count", -1) < count:
                        return None
            return runs

        return self.wait_until(ready, what=f"runs {expected}", timeout=timeout)

    def log(self) -> str:
        with open(self._log_file.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def _check_alive(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            raise TensorBoardError(f"TensorBoard exited with {self._proc.returncode}:\n{self.log()}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stdin:
            proc.stdin.close()

    def close(self) -> None:
        """Stops the process and removes its log."""
        self.stop()
        with contextlib.suppress(OSError):
            os.unlink(self._log_file.name)

    def __enter__(self) -> TensorBoardProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()


@contextlib.contextmanager
def running_tensorboard(
    logdir: str | None,
    load_fast: str = "false",
    extra_args: Sequence[str] = (),
    path_prefix: str = "",
    reload_interval: float = 1,
) -> Iterator[str]:
    """Yields the base URL (with any path prefix, no trailing slash) of a TensorBoard that serves
    `logdir` once its gradflow plugin answers; kills it afterwards."""
    with TensorBoardProcess(logdir, load_fast, extra_args, path_prefix, reload_interval) as tb:
        yield tb.url


def fetch(url: str, headers: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, dict[str, str], bytes]:
    """GET `url`: (status, headers, body), with HTTP errors returned rather than raised."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def fetch_json(url: str, timeout: float = 60) -> tuple[int, Any]:
    """GET `url` and decode a JSON body: (status, value); value is None if the body is not JSON."""
    status, _, body = fetch(url, timeout=timeout)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None


@contextlib.contextmanager
def running_data_server(logdir: str, samples_per_plugin: str = "gradflow=all", reload: str = "1",
                        timeout: float = 60) -> Iterator[str]:
    """Yields the `HOST:PORT` of a `tensorboard-data-server` (the Rust loader) serving `logdir`,
    for `tensorboard --grpc_data_provider=HOST:PORT`: a data provider TensorBoard reaches over
    gRPC, as a remote one. Sampling is the server's flag here, not TensorBoard's."""
    import tensorboard_data_server

    with tempfile.TemporaryDirectory(prefix="data-server-") as tmp:
        port_file = os.path.join(tmp, "port")
        log_path = os.path.join(tmp, "log")
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [
                    tensorboard_data_server.server_binary(), f"--logdir={logdir}", "--host=127.0.0.1",
                    "--port=0", f"--port-file={port_file}", f"--reload={reload}",
                    f"--samples-per-plugin={samples_per_plugin}", "--die-after-stdin",
                ],
                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        try:
            deadline = time.monotonic() + timeout
            while not (os.path.exists(port_file) and open(port_file).read().endswith("\n")):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise TensorBoardError(f"data server did not start:\n{open(log_path).read()}")
                time.sleep(0.1)
            yield f"127.0.0.1:{int(open(port_file).read())}"
        finally:
            proc.stdin.close()  # --die-after-stdin
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
