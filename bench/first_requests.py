"""Concurrent first requests on a fresh TensorBoard: eight first `diagnosis` requests at once
against one alone, on a crafted graph of OPS ops, per loader. With single flight per key the
diagnosis is computed once and the worst of eight waits about as long as one alone; before
(issue 21), each computed it: 3.1 s for the worst of eight against 0.6 s alone at 50,000 ops.

Usage: python bench/first_requests.py [--ops 50000] [--clients 8] [--loaders false,true]
"""
from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from support import crafted_logdir as crafted  # noqa: E402
from support.process_memory import tensorboard_rss_bytes  # noqa: E402
from support.tensorboard_proc import TensorBoardProcess, fetch  # noqa: E402

TAG = "gradflow"


def first_requests(logdir: str, load_fast: str, clients: int) -> tuple[float, int]:
    """(slowest of `clients` concurrent first diagnosis requests in s, resident MB after)."""
    with TensorBoardProcess(logdir, load_fast=load_fast) as tb:
        tb.wait_for_runs({"big": {TAG: 3}}, timeout=600)
        url = tb.plugin_url(f"diagnosis?run=big&tag={TAG}&step=1")
        barrier = threading.Barrier(clients)

        def one(_: int) -> float:
            barrier.wait()
            start = time.perf_counter()
            status, _, _ = fetch(url, timeout=600)
            assert status == 200, status
            return time.perf_counter() - start

        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            worst = max(pool.map(one, range(clients)))
        return worst, tensorboard_rss_bytes(tb) >> 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=50_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--loaders", default="false,true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        crafted.write_fast_run(os.path.join(root, "big"), crafted.chain_graph("big-1", args.ops, 50,
                                                                              cuts=(args.ops // 2,)), range(3))
        for load_fast in args.loaders.split(","):
            alone, alone_mb = first_requests(root, load_fast, 1)
            worst, worst_mb = first_requests(root, load_fast, args.clients)
            print(f"load_fast={load_fast}: {args.ops:,} ops: first diagnosis alone {alone:.2f} s ({alone_mb} MB); "
                  f"slowest of {args.clients} concurrent first requests {worst:.2f} s ({worst_mb} MB); "
                  f"ratio {worst / alone:.2f}")


if __name__ == "__main__":
    main()
