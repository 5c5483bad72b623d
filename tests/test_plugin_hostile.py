"""Hostile clients and hostile runs over a real TensorBoard, under both loaders: made-up
experiment ids must not grow the server's memory, and one run with absurd declared sizes must
not take the others down nor be retried at every request."""
from __future__ import annotations

import os
import time
import urllib.parse

import pytest
from tensorboard.context import RequestContext

from support import crafted_logdir as crafted
from support.plugin_servers import LOADERS
from support.process_memory import tensorboard_rss_bytes
from support.tensorboard_proc import TensorBoardProcess, fetch_json
from tb_gradflow.format import metadata
from tb_gradflow.reading.cache import SeriesCache
from tb_gradflow.reading.local_logdir import local_provider
from tb_gradflow.reading.reader import GradflowReader, data_scope, declared_overflow

TAG = "gradflow"
MB = 1 << 20


def loaders():
    return pytest.mark.parametrize("load_fast", LOADERS, ids=[f"load_fast={v}" for v in LOADERS])


def graph_url(tb: TensorBoardProcess, experiment: str, **params: str) -> str:
    base = tb.url + (f"/experiment/{experiment}" if experiment else "")
    return f"{base}/data/plugin/gradflow/graph?" + urllib.parse.urlencode(params)


@pytest.fixture(scope="module")
def big_logdir(tmp_path_factory) -> str:
    """One run of a 2,000-op graph with 400 steps: a few MB per decoded copy."""
    root = tmp_path_factory.mktemp("big")
    crafted.write_fast_run(str(root / "big"), crafted.chain_graph("big-1", 2000, 50), range(400))
    return str(root)


@loaders()
def test_made_up_experiment_ids_do_not_grow_memory(big_logdir, load_fast):
    with TensorBoardProcess(big_logdir, load_fast=load_fast) as tb:
        tb.wait_for_runs({"big": {TAG: 400}})
        for _ in range(3):  # warm: the first reads, the JSON parts, the allocator's arenas
            status, body = fetch_json(graph_url(tb, "", run="big", tag=TAG))
            assert status == 200 and len(body["ops"]["name"]) == 2000
        before = tensorboard_rss_bytes(tb)
        for i in range(100):
            status, body = fetch_json(graph_url(tb, f"e{i}", run="big", tag=TAG, step=str(i)))
            assert status == 200 and body["step"] == i, body
            assert body["ops"]["norm"][3] == pytest.approx(crafted.step_norm(i, 3), rel=0.045)  # one byte per op norm
        grown = tensorboard_rss_bytes(tb) - before
    # One decoded copy of the series is ~5 MB: 100 copies would be 500 MB.
    assert grown < 60 * MB, f"resident memory grew by {grown / MB:.0f} MB over 100 experiment ids"


class ExperimentAwareProvider:
    """A real local data provider under a class name that the plugin does not know to ignore
    experiment ids: the cache must then key by experiment id and still stay within budget."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)


def test_cache_stays_within_its_byte_budget_when_ids_matter(big_logdir):
    base = local_provider(big_logdir)
    assert data_scope(base, "e1") == data_scope(base, "e2") == ""
    provider = ExperimentAwareProvider(base)
    budget = 12 * MB
    cache = SeriesCache(budget_bytes=budget)
    sizes = []
    for i in range(20):
        scope = data_scope(provider, f"e{i}")
        assert scope == f"e{i}"
        reader = GradflowReader(provider, scope, warn=lambda message: None)
        info = reader.list()["big"][TAG]
        entry = cache.get(reader, scope, "big", TAG, info, None)
        assert entry.series is not None and entry.series.steps == list(range(400))
        entry.derived("json", lambda: "x" * MB)
        sizes.append(entry.nbytes)
        assert cache.nbytes <= budget, (i, cache.nbytes)
    assert min(sizes) > MB  # each entry counts for what it holds
    assert 1 < len(cache) < 20


def test_declared_overflow_spots_expanding_tensors():
    assert declared_overflow(crafted.string_tensor([b"x"])) is None
    assert declared_overflow(crafted.string_tensor([b"x", b"y"])) is None
    assert "2 values" not in (declared_overflow(crafted.string_tensor([b"x"], [2**40])) or "")
    assert declared_overflow(crafted.string_tensor([b"x"], [2**40])) == f"declares {2**40} elements but holds 1 values"
    assert declared_overflow(crafted.string_tensor([b"x"], [250_000_000])) is not None
    assert declared_overflow(crafted.string_tensor([b"x"], [-1])) is not None


def hostile_step_run(run_dir: str, shape: list[int]) -> None:
    """Five good steps, then one whose tensor declares `shape` around a 985-byte string."""
    graph = crafted.chain_graph("hostile-step", 30, 3)
    crafted.write_fast_run(run_dir, graph, range(5))
    crafted.write_events(run_dir, [crafted.tensor_event(TAG, 5, crafted.string_tensor([b"\x01" * 985], shape),
                                                        metadata.step_metadata(TAG))], suffix="hostile")


def hostile_graph_run(run_dir: str) -> None:
    """Good steps whose graph tag declares a blob sequence of 2**40 blobs."""
    graph = crafted.chain_graph("hostile-graph", 30, 3)
    crafted.write_fast_run(run_dir, graph, range(5), with_graph=False)
    crafted.write_events(run_dir, [crafted.tensor_event(
        metadata.graph_tag(TAG, graph.graph_id), 0, crafted.string_tensor([graph.SerializeToString()], [2**40]),
        metadata.graph_metadata(TAG, graph.graph_id))], suffix="hostile")


@pytest.fixture(scope="module")
def hostile_logdir(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("hostile"))
    crafted.write_fast_run(os.path.join(root, "good"), crafted.chain_graph("good-1", 30, 3), range(20))
    hostile_step_run(os.path.join(root, "step_2_40"), [2**40])
    hostile_step_run(os.path.join(root, "step_250M"), [250_000_000])
    hostile_graph_run(os.path.join(root, "graph_2_40"))
    return root


# What each loader serves of the hostile logdir. The Python loader would expand the declared
# shapes (numpy.repeat), so the plugin checks the raw events first and skips those runs whole;
# the Rust data server sends the values actually present for blob sequences, and its client
# expands step tensors: [2**40] fails at once (MemoryError, caught), [250_000_000] costs one 2 GB
# conversion, after which the hostile step is skipped and the five good ones served.
SERVED = {"false": {"good": 20}, "true": {"good": 20, "step_250M": 5, "graph_2_40": 5}}


@loaders()
def test_absurd_declared_sizes_skip_their_run_once(hostile_logdir, load_fast):
    with TensorBoardProcess(hostile_logdir, load_fast=load_fast) as tb:
        runs = tb.wait_for_runs({"good": {TAG: 20}}, timeout=60)
        time.sleep(2)  # the hostile runs are loaded too by now
        timings, memory = [], []
        for _ in range(5):
            start = time.monotonic()
            status, runs = fetch_json(tb.plugin_url("runs"))
            timings.append(time.monotonic() - start)
            memory.append(tensorboard_rss_bytes(tb))
            assert status == 200, runs
            assert {run: tags[TAG]["count"] for run, tags in runs.items()} == SERVED[load_fast], runs
        for run in ("step_2_40", "step_250M", "graph_2_40"):
            status, body = fetch_json(tb.plugin_url("graph?" + urllib.parse.urlencode({"run": run, "tag": TAG})))
            assert status == (200 if run in SERVED[load_fast] else 404), (run, status, body)
        log = tb.log()
    assert max(timings) < 20, timings
    assert max(timings[1:]) < 1.0, timings  # the failures are remembered, not retried
    assert memory[-1] - memory[1] < 50 * MB, [m // MB for m in memory]
    for run in ("step_2_40", "step_250M"):
        assert f"run '{run}', tag 'gradflow'" in log, log[-3000:]
    if load_fast == "false":
        assert "'graph_2_40', tag 'gradflow/_graph/hostile-graph': graph skipped: blob sequence of length" in log


def test_reads_are_bounded_and_a_run_beyond_the_bound_is_sampled(tmp_path):
    """Over a provider with experiment ids of its own (so no multiplexer shortcut), a budget
    of 40 steps' bytes: 100 steps arrive as a sample of at most that many, with a warning."""
    crafted.write_fast_run(str(tmp_path / "run"), crafted.chain_graph("bounded", 30, 3), range(100))
    provider = ExperimentAwareProvider(local_provider(str(tmp_path)))
    warnings: list[str] = []
    reader = GradflowReader(provider, "e", warn=warnings.append)
    info = reader.list()["run"][TAG]
    step_bytes = len(local_provider(str(tmp_path)).read_tensors(
        RequestContext(), experiment_id="", plugin_name="gradflow", downsample=1)["run"][TAG][0].numpy.item())
    reader.read_budget_bytes = 40 * (step_bytes + 48)
    series = reader.read("run", TAG, info)
    assert 2 < len(series.steps) <= 40 and series.last_step == 99
    assert any("serving a sample" in w for w in warnings), warnings
    reader.read_budget_bytes = 120 * (step_bytes + 64)
    warnings.clear()
    assert reader.read("run", TAG, info).steps == list(range(100)) and not warnings
