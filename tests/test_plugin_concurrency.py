"""Concurrent first requests on a fresh TensorBoard compute each expensive value once (single
flight per key), on both loaders; and the single-flight mechanism itself."""
from __future__ import annotations

import collections
import concurrent.futures
import os
import sys
import threading
import time

import pytest

from support import crafted_logdir as crafted
from support.plugin_servers import LOADERS
from support.tensorboard_proc import TensorBoardProcess, fetch_json
from tb_gradflow.reading.single_flight import SingleFlight

TAG = "gradflow"
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts", "counting_tensorboard.py")
CLIENTS = 8


class CountingTensorBoard(TensorBoardProcess):
    """A real TensorBoard process started through tests/scripts/counting_tensorboard.py."""

    def __init__(self, logdir: str, load_fast: str, count_file: str):
        super().__init__(logdir, load_fast=load_fast)
        self.count_file = count_file

    def command(self) -> list[str]:
        return [sys.executable, SCRIPT, self.count_file, *super().command()[3:]]

    def counts(self) -> collections.Counter:
        with open(self.count_file) as f:
            return collections.Counter(f.read().split())


@pytest.mark.parametrize("load_fast", LOADERS, ids=[f"load_fast={v}" for v in LOADERS])
def test_eight_concurrent_first_requests_compute_once(tmp_path, load_fast):
    logdir = tmp_path / "logs"
    crafted.write_fast_run(str(logdir / "run"), crafted.chain_graph("run-1", 3000, 30, cuts=(1500,)), range(20))
    count_file = str(tmp_path / "counts")
    open(count_file, "w").close()
    with CountingTensorBoard(str(logdir), load_fast, count_file) as tb:
        tb.wait_for_runs({"run": {TAG: 20}}, timeout=90)
        base = f"run=run&tag={TAG}&step=7"
        routes = {"diagnosis": f"diagnosis?{base}", "graph": f"graph?{base}",
                  "graph_groups": f"graph_groups?{base}&group=block_3", "layers": f"layers?run=run&tag={TAG}"}
        for name, route in routes.items():
            barrier = threading.Barrier(CLIENTS)

            def first_request(_: int, route: str = route, barrier: threading.Barrier = barrier) -> tuple:
                barrier.wait()
                return fetch_json(tb.plugin_url(route))

            with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
                answers = list(pool.map(first_request, range(CLIENTS)))
            assert {status for status, _ in answers} == {200}, (name, answers[0])
            assert all(body == answers[0][1] for _, body in answers), name
            assert tb.counts()[name] == 1, (name, tb.counts())
        # Later requests reuse the values.
        assert fetch_json(tb.plugin_url(routes["diagnosis"]))[0] == 200
        assert tb.counts()["diagnosis"] == 1


def test_single_flight_computes_once_and_shares_errors():
    flights: SingleFlight[int] = SingleFlight()
    calls = []

    def slow() -> int:
        calls.append(1)
        time.sleep(0.3)
        return 42

    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        values = list(pool.map(lambda _: flights.do("k", slow), range(CLIENTS)))
    assert values == [42] * CLIENTS and len(calls) == 1 and flights.in_flight() == 0

    def failing() -> int:
        calls.append(1)
        time.sleep(0.3)
        raise ValueError("bad input")

    calls.clear()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(flights.do, "k", failing) for _ in range(4)]
        errors = [f.exception() for f in futures]
    assert all(isinstance(e, ValueError) for e in errors) and len(calls) == 1
    assert flights.do("k", lambda: 7) == 7  # a failure is not remembered
