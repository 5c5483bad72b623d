"""Load test: 16 concurrent clients against a real TensorBoard while a live writer adds steps.

A logdir with a finished run (10,000 crafted steps of a 1,400-op graph) and a live run that a
writer thread extends by 20 steps a second (one flushed event file, as training writes). Sixteen
client threads request `runs`, `graph` (random step), `history` (random op), `diagnosis` and
`graph_groups` in a loop, with made-up experiment ids on a quarter of their requests. Printed per
loader: throughput, p50/p99 latency, the largest resident memory seen (TensorBoard and its data
server), errors (any status but 200 counts: every request names a logged step), and whether every written step was
served in the end (the live run's history lists each step once, none lost).

Run: .venv/bin/python bench/load_test.py [--seconds 60] [--clients 16] [--loaders false,true]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from support import crafted_logdir as crafted  # noqa: E402
from support.process_memory import tensorboard_rss_bytes  # noqa: E402
from support.tensorboard_proc import TensorBoardProcess, fetch  # noqa: E402
from tb_gradflow.format import metadata  # noqa: E402

TAG = "gradflow"
OPS = 1_400
STATIC_STEPS = 10_000


class LiveWriter(threading.Thread):
    """Appends one step every `interval` seconds to a fresh event file, flushing each."""

    def __init__(self, run_dir: str, interval: float = 0.05):
        super().__init__(daemon=True)
        self.run_dir, self.interval = run_dir, interval
        self.graph = crafted.chain_graph("live-1", OPS, 50)
        self.written = 0
        self.stop = threading.Event()

    def run(self) -> None:
        import tensorflow as tf

        os.makedirs(self.run_dir, exist_ok=True)
        path = os.path.join(self.run_dir, f"events.out.tfevents.{time.time():.0f}.live")
        step_md = metadata.step_metadata(TAG, "live")
        with tf.io.TFRecordWriter(path) as writer:
            writer.write(crafted.file_version_event().SerializeToString())
            writer.write(crafted.tensor_event(metadata.graph_tag(TAG, self.graph.graph_id), 0,
                                              crafted.string_tensor([self.graph.SerializeToString()], [1]),
                                              metadata.graph_metadata(TAG, self.graph.graph_id)).SerializeToString())
            variants = crafted.step_payloads(self.graph)
            while not self.stop.is_set():
                step = self.written
                event = crafted.tensor_event(TAG, step, crafted.string_tensor([variants[step % 16]]),
                                             step_md if step == 0 else None)
                writer.write(event.SerializeToString())
                writer.flush()
                self.written += 1
                time.sleep(self.interval)


def client(tb: TensorBoardProcess, seed: int, deadline: float, latencies: list, errors: list) -> None:
    rng = random.Random(seed)
    ops = [f"block_{i // 100}/layer_{i // 10 % 10}/op_{i}" for i in range(OPS)]
    while time.monotonic() < deadline:
        run = rng.choice(["static", "live"])
        route, params = rng.choice([
            ("runs", {}),
            ("graph", {"run": "static", "tag": TAG, "step": str(rng.randrange(STATIC_STEPS))}),  # logged
            ("graph", {"run": run, "tag": TAG}),
            ("history", {"run": run, "tag": TAG, "op": rng.choice(ops)}),
            ("diagnosis", {"run": run, "tag": TAG}),
            ("graph_groups", {"run": run, "tag": TAG, "group": rng.choice(["", "block_3", "block_7/layer_2"])}),
        ])
        base = tb.url + (f"/experiment/x{rng.randrange(1000)}" if rng.random() < 0.25 else "")
        url = f"{base}/data/plugin/gradflow/{route}?{urllib.parse.urlencode(params)}"
        start = time.perf_counter()
        status, _, body = fetch(url, headers={"Accept-Encoding": "gzip"}, timeout=120)
        latencies.append((time.perf_counter() - start) * 1000)
        if status != 200:
            errors.append(f"{status} {route} {params}: {body[:200]!r}")


def all_steps_served(tb: TensorBoardProcess, written: int, timeout: float = 120) -> bool:
    """Waits until the live run lists every written step; then its history must hold each once."""
    tb.wait_for_runs({"live": {TAG: written}}, timeout=timeout)
    query = urllib.parse.urlencode({"run": "live", "tag": TAG, "op": "block_0/layer_0/op_0"})
    _, _, body = fetch(tb.plugin_url(f"history?{query}"))
    return json.loads(body)["steps"] == list(range(written))


def bench(load_fast: str, logdir: str, seconds: float, clients: int) -> None:
    print(f"--load_fast={load_fast}: {clients} clients for {seconds:.0f} s, a live writer at 20 steps/s")
    writer = LiveWriter(os.path.join(logdir, "live"))
    with TensorBoardProcess(logdir, load_fast=load_fast, timeout=600) as tb:
        tb.wait_for_runs({"static": {TAG: STATIC_STEPS}}, timeout=600)
        writer.start()
        tb.wait_for_runs({"live": {TAG: 1}}, timeout=120)
        latencies: list[float] = []
        errors: list[str] = []
        memory: list[int] = []
        deadline = time.monotonic() + seconds
        threads = [threading.Thread(target=client, args=(tb, k, deadline, latencies, errors)) for k in range(clients)]
        start = time.monotonic()
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            memory.append(tensorboard_rss_bytes(tb))
            time.sleep(1)
        elapsed = time.monotonic() - start
        writer.stop.set()
        writer.join()
        complete = all_steps_served(tb, writer.written)
    ordered = sorted(latencies)
    print(f"  requests {len(latencies)}, throughput {len(latencies) / elapsed:.1f}/s, "
          f"p50 {statistics.median(ordered):.0f} ms, p99 {ordered[int(0.99 * (len(ordered) - 1))]:.0f} ms")
    print(f"  resident memory: max {max(memory) / 2**20:.0f} MB, last {memory[-1] / 2**20:.0f} MB")
    print(f"  errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
    print(f"  live steps written {writer.written}, all served once, none lost: {complete}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--loaders", default="false,true")
    args = parser.parse_args()
    for load_fast in args.loaders.split(","):
        with tempfile.TemporaryDirectory(prefix="gradflow-load-") as tmp:
            crafted.write_fast_run(os.path.join(tmp, "static"), crafted.chain_graph("static-1", OPS, 50),
                                   range(STATIC_STEPS))
            bench(load_fast, tmp, args.seconds, args.clients)


if __name__ == "__main__":
    main()
