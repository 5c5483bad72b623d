"""How fast the plugin's routes answer, over a real TensorBoard, under both loaders.

Builds in a temporary directory:
- a logdir with one run of 10,000 logged steps of the Keras ResNet50 loss path (~1,400 ops):
  the model is traced once with the real `tb_gradflow.summary.gradflow`, and the other steps
  re-encode that step's protos with varied norms (running ResNet 10,000 times is out of reach);
- a logdir of 100 such runs (20 steps each), as a sweep would write;
- a long run: 100,000 crafted steps of a 1,400-op graph (written directly, not by training),
  which one unbounded read of the Rust data server could not return;
- a huge graph: 230,000 crafted ops in scopes block/layer (3 steps), where `graph_groups` must
  answer the top level within a few seconds and `diagnosis` be cached.
Then starts `tensorboard` on each, waits until every step is loaded, and prints the first-load
time and the medians (and 90th percentiles) of `graph`, `history` and `runs`, with their ratio to
the targets of issue 3 (graph 50 ms, history 200 ms, runs of 100 runs 200 ms) and of issue 17
(`layers`, the heatmap's route, 200 ms). Responses are requested gzip-compressed, as a browser does.

Usage: python bench/plugin_speed.py [--repeats 30] [--steps 10000] [--loaders false,true]
                                    [--long-steps 100000] [--parts resnet,long,huge]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import urllib.parse

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from support import crafted_logdir as crafted  # noqa: E402
from support.plugin_logdirs import write_protos  # noqa: E402  (tests/support: one writer)
from support.process_memory import tensorboard_rss_bytes  # noqa: E402
from support.tensorboard_proc import TensorBoardProcess, fetch  # noqa: E402

TAG = "gradflow"
TARGETS_MS = {"graph": 50.0, "history": 200.0, "runs (100 runs)": 200.0, "layers (new width)": 200.0}


def trace_resnet(run_dir: str):
    """One real summary of ResNet50's loss path; returns its graph and step protos, read back."""
    import keras
    import tensorflow as tf

    from tb_gradflow import summary
    from tb_gradflow.capture.probe import ProbeResult
    from tb_gradflow.reading.local_logdir import local_provider
    from tb_gradflow.reading.reader import GradflowReader

    model = keras.applications.ResNet50(weights=None)
    loss = keras.losses.CategoricalCrossentropy()
    x = tf.random.normal([2, 224, 224, 3])
    y = tf.one_hot([1, 2], 1000)
    writer = tf.summary.create_file_writer(run_dir)
    start = time.perf_counter()
    with writer.as_default():
        summary.gradflow(TAG, lambda x, y: loss(y, model(x, training=True)), x, y, step=0, strict=True)
    writer.close()
    print(f"ResNet50 traced and logged once in {time.perf_counter() - start:.1f} s")
    reader = GradflowReader(local_provider(os.path.dirname(run_dir)))
    run = os.path.basename(run_dir)
    series = reader.read(run, TAG, reader.list()[run][TAG])
    values = next(iter(series.versions.values()))
    from tb_gradflow.format import presence as P
    from tb_gradflow.format.records import encode_step_arrays

    step = encode_step_arrays(
        values.graph.graph_id, values.op_states[0], values.op_norms[0], values.variable_states[0],
        values.variable_norms[0], float(values.losses[0]),
        P.from_codes(values.presence_codes("op", 0)), P.from_codes(values.presence_codes("variable", 0)),
    )
    return ProbeResult(values.graph, step)


def measure(urls: list[str], warmup: int = 3) -> list[float]:
    """Times each URL after a few untimed requests (connection set-up, lazily built indices)."""
    for url in urls[:warmup]:
        timed(url)
    return [timed(url) for url in urls]


def timed(url: str) -> float:
    start = time.perf_counter()
    status, _, _ = fetch(url, headers={"Accept-Encoding": "gzip"})
    elapsed = (time.perf_counter() - start) * 1000
    if status != 200:
        raise RuntimeError(f"{url}: HTTP {status}")
    return elapsed


def summarize(name: str, samples: list[float]) -> str:
    median = statistics.median(samples)
    p90 = sorted(samples)[int(0.9 * (len(samples) - 1))]
    target = TARGETS_MS.get(name)
    ratio = f", {median / target:.2f} x target {target:.0f} ms" if target else ""
    return f"  {name:<18} median {median:8.1f} ms   p90 {p90:8.1f} ms{ratio}"


def layers_results(tb: TensorBoardProcess, run: str, repeats: int) -> dict[str, list[float]]:
    """The `layers` route (issue 17's heatmap, target 200 ms on 10,000 steps): at a new column
    count each time (each computed afresh over every step: a new width), and at one (cached)."""
    url = tb.plugin_url(f"layers?run={run}&tag={TAG}&columns=")
    return {
        "layers (new width)": [timed(url + str(300 + i)) for i in range(repeats)],
        "layers (cached)": measure([url + "300"] * repeats),
    }


def first_response_with_step(url: str, step: int, timeout: float = 120) -> float:
    """Polls `url` (a graph route) until it serves `step`; the time of that first request, which
    includes rereading the series after TensorBoard loaded the new step."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        start = time.perf_counter()
        _, _, body = fetch(url)
        elapsed = (time.perf_counter() - start) * 1000
        if json.loads(body).get("step") == step:
            return elapsed
        time.sleep(0.2)
    raise RuntimeError(f"step {step} never served")


def bench_loader(load_fast: str, big: str, sweep: str, protos, steps: int, repeats: int) -> None:
    print(f"--load_fast={load_fast}")
    rng = random.Random(0)
    op_names = [op.name for op in protos.graph.ops]
    start = time.perf_counter()
    with TensorBoardProcess(big, load_fast=load_fast, timeout=600) as tb:
        runs = tb.wait_for_runs({"resnet": {TAG: steps}}, timeout=600)
        print(f"  all {steps} steps served {time.perf_counter() - start:.1f} s after launch")
        new_step = runs["resnet"][TAG]["steps"][1] + 1
        graph = tb.plugin_url(f"graph?run=resnet&tag={TAG}")
        history = tb.plugin_url(f"history?run=resnet&tag={TAG}&op=")
        results = {
            "graph": measure([f"{graph}&step={rng.randrange(steps)}" for _ in range(repeats)]),
            "graph (last step)": measure([graph] * repeats),
            "history": measure([history + urllib.parse.quote(rng.choice(op_names), safe="") for _ in range(repeats)]),
            "diagnosis": measure([tb.plugin_url(f"diagnosis?run=resnet&tag={TAG}")] * repeats),
            **layers_results(tb, "resnet", repeats),
        }
        for name, samples in results.items():
            print(summarize(name, samples))
        write_protos(os.path.join(big, "resnet"), protos, [new_step])
        reread = first_response_with_step(graph, new_step)
        print(f"  graph, first request after a new step: {reread:.1f} ms (rereads {new_step + 1} steps)")
    start = time.perf_counter()
    with TensorBoardProcess(sweep, load_fast=load_fast, timeout=600) as tb:
        tb.wait_for_runs({f"run{i:03d}": {TAG: 20} for i in range(100)}, timeout=600)
        print(f"  100 runs served {time.perf_counter() - start:.1f} s after launch")
        print(summarize("runs (100 runs)", measure([tb.plugin_url("runs")] * repeats)))


def bench_long_run(load_fast: str, logdir: str, steps: int, ops: int, repeats: int) -> None:
    """Load time, route latencies and resident memory for one long run."""
    print(f"--load_fast={load_fast}: one run of {steps:,} steps of a {ops:,}-op graph")
    rng = random.Random(1)
    start = time.perf_counter()
    with TensorBoardProcess(logdir, load_fast=load_fast, timeout=900) as tb:
        tb.wait_for_runs({"long": {TAG: steps}}, timeout=900)
        print(f"  all {steps:,} steps served {time.perf_counter() - start:.1f} s after launch")
        graph = tb.plugin_url(f"graph?run=long&tag={TAG}")
        history = tb.plugin_url(f"history?run=long&tag={TAG}&op=")
        names = [f"block_{i // 100}/layer_{i // 10 % 10}/op_{i}" for i in range(ops)]
        results = {
            "graph": measure([f"{graph}&step={rng.randrange(steps)}" for _ in range(repeats)]),
            "history": measure([history + urllib.parse.quote(rng.choice(names), safe="") for _ in range(repeats)]),
            "runs (1 run)": measure([tb.plugin_url("runs")] * repeats),
            **layers_results(tb, "long", repeats),
        }
        for name, samples in results.items():
            print(summarize(name, samples))
        print(f"  resident memory (TensorBoard and data server): {tensorboard_rss_bytes(tb) / 2**20:.0f} MB")


def first_and_median(url: str, repeats: int) -> tuple[float, float, int]:
    """(first request ms, median of the next `repeats` ms, gzip-compressed bytes)."""
    start = time.perf_counter()
    status, _, body = fetch(url, headers={"Accept-Encoding": "gzip"}, timeout=600)
    first = (time.perf_counter() - start) * 1000
    if status != 200:
        raise RuntimeError(f"{url}: HTTP {status}")
    return first, statistics.median(timed(url) for _ in range(repeats)), len(body)


def write_huge_run(run_dir: str, n_ops: int = 230_000):
    """A crafted `n_ops`-op graph (2,300 scopes of 100 ops, two cut points) with 3 steps in
    `run_dir`; also what bench/frontend_speed.py opens in the tab. Returns the graph."""
    graph = crafted.chain_graph("huge-1", n_ops, 2_000, cuts=(1234, 150_000))
    for i, op in enumerate(graph.ops):  # what real ops carry: shapes, dtypes, source lines
        op.output_shapes[:] = ["8x56x56x256", "256"]
        op.output_dtypes[:] = ["float32", "float32"]
        op.source = f"/home/user/project/models/backbone/stage_{i // 10_000}/blocks.py:{100 + i % 900}"
    crafted.write_fast_run(run_dir, graph, range(3))
    return graph


def bench_huge_graph(load_fast: str, logdir: str, ops: int, repeats: int) -> None:
    print(f"--load_fast={load_fast}: one graph of {ops:,} ops")
    start = time.perf_counter()
    with TensorBoardProcess(logdir, load_fast=load_fast, timeout=900) as tb:
        tb.wait_until(lambda: fetch(tb.plugin_url("runs"))[2] != b"{}", what="the huge run", timeout=900)
        print(f"  runs lists it {time.perf_counter() - start:.1f} s after launch (its first read included)")
        query = f"run=huge&tag={TAG}"
        for name, url in [
            ("graph_groups (top)", tb.plugin_url(f"graph_groups?{query}")),
            ("graph_groups (block_1000)", tb.plugin_url(f"graph_groups?{query}&group=block_1000")),
            ("diagnosis", tb.plugin_url(f"diagnosis?{query}")),
            ("graph (every op)", tb.plugin_url(f"graph?{query}")),
        ]:
            first, median, size = first_and_median(url, repeats if "every" not in name else 3)
            print(f"  {name:<26} first {first:8.0f} ms   then median {median:8.1f} ms   {size / 2**20:6.2f} MB gzip")
        print(f"  resident memory (TensorBoard and data server): {tensorboard_rss_bytes(tb) / 2**20:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--loaders", default="false,true")
    parser.add_argument("--long-steps", type=int, default=100_000)
    parser.add_argument("--parts", default="resnet,long")
    args = parser.parse_args()
    parts = args.parts.split(",")
    if "long" in parts:
        with tempfile.TemporaryDirectory(prefix="gradflow-bench-long-") as tmp:
            start = time.perf_counter()
            crafted.write_fast_run(os.path.join(tmp, "long"), crafted.chain_graph("long-1", 1_400, 50),
                                   range(args.long_steps))
            print(f"wrote {args.long_steps:,} crafted steps in {time.perf_counter() - start:.1f} s")
            for load_fast in args.loaders.split(","):
                bench_long_run(load_fast, tmp, args.long_steps, 1_400, args.repeats)
    if "huge" in parts:
        with tempfile.TemporaryDirectory(prefix="gradflow-bench-huge-") as tmp:
            graph = write_huge_run(os.path.join(tmp, "huge"))
            print(f"huge graph: {len(graph.ops):,} ops, {graph.ByteSize() / 2**20:.1f} MB serialized")
            for load_fast in args.loaders.split(","):
                bench_huge_graph(load_fast, tmp, len(graph.ops), args.repeats)
    if "resnet" not in parts:
        return
    with tempfile.TemporaryDirectory(prefix="gradflow-bench-") as tmp:
        big, sweep = os.path.join(tmp, "big"), os.path.join(tmp, "sweep")
        protos = trace_resnet(os.path.join(big, "resnet"))
        print(f"graph: {len(protos.graph.ops)} ops, {len(protos.graph.variables)} variables; step: "
              f"{protos.step.ByteSize()} bytes")
        start = time.perf_counter()
        write_protos(os.path.join(big, "resnet"), protos, range(1, args.steps))
        for i in range(100):
            write_protos(os.path.join(sweep, f"run{i:03d}"), protos, range(20))
        print(f"wrote {args.steps - 1} + 100 x 20 re-encoded steps in {time.perf_counter() - start:.1f} s")
        for load_fast in args.loaders.split(","):
            bench_loader(load_fast, big, sweep, protos, args.steps, args.repeats)


if __name__ == "__main__":
    main()
