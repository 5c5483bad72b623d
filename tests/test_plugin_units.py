"""Pure logic of the plugin: parameter parsing, the static path guard, the loader's sampling
default, graph index validation and the series cache's invalidation."""
from __future__ import annotations

import argparse
import os

import pytest

from tb_gradflow.format.metadata import FormatError
from tb_gradflow.plugin import params
from tb_gradflow.plugin.plugin import GradflowLoader
from tb_gradflow.plugin.static_files import resolve
from tb_gradflow.proto import gradflow_pb2
from tb_gradflow.reading.cache import SeriesCache
from tb_gradflow.reading.reader import TagInfo, check_graph


@pytest.mark.parametrize("value,expected", [("0", 0), ("42", 42), ("-3", -3), (str(2**63 - 1), 2**63 - 1)])
def test_step_parses_int64(value, expected):
    assert params.step({"step": [value]}) == expected


@pytest.mark.parametrize("value", ["", " 1", "1 ", "+1", "1.0", "1e3", "0x1", "1_0", "\u0663", "\uff11", str(2**63),
                                   "9" * 25])
def test_step_rejects_anything_else(value):
    with pytest.raises(params.RequestError) as e:
        params.step({"step": [value]})
    assert e.value.code == 400


def test_step_defaults_to_none_and_rejects_repeats():
    assert params.step({}) is None
    with pytest.raises(params.RequestError):
        params.step({"step": ["1", "2"]})


def test_required_parameters():
    assert params.required({"run": ["a/b"]}, "run") == "a/b"
    for args in ({}, {"run": [""]}, {"run": ["a", "b"]}):
        with pytest.raises(params.RequestError) as e:
            params.required(args, "run")
        assert e.value.code == 400


def test_history_subject_needs_exactly_one():
    assert params.history_subject({"op": ["x"]}) == ("op", "x")
    assert params.history_subject({"variable": ["v"]}) == ("variable", "v")
    for args in ({}, {"op": ["x"], "variable": ["v"]}):
        with pytest.raises(params.RequestError):
            params.history_subject(args)


@pytest.fixture()
def static_root(tmp_path):
    root = tmp_path / "static"
    (root / "sub").mkdir(parents=True)
    (root / "index.js").write_text("export function render() {}")
    (root / "sub" / "worker.js").write_text("1")
    (root / "notes.txt").write_text("not a served type")
    (tmp_path / "secret.js").write_text("secret")
    os.symlink(tmp_path / "secret.js", root / "escape.js")
    os.symlink(root / "index.js", root / "alias.js")
    return root


def test_static_guard_serves_package_files_only(static_root):
    assert resolve("index.js", str(static_root)) == (str(static_root / "index.js"), "text/javascript")
    assert resolve("sub/worker.js", str(static_root))[0] == str(static_root / "sub" / "worker.js")
    assert resolve("alias.js", str(static_root))[0] == str(static_root / "index.js")
    for path in [
        "../secret.js", "sub/../../secret.js", "/etc/passwd", "escape.js", "notes.txt", "sub",
        ".hidden.js", "./index.js", "sub//worker.js", "sub\\..\\..\\secret.js", "index.js\x00.png",
        "", "missing.js", "%2e%2e/secret.js",
    ]:
        assert resolve(path, str(static_root)) is None, path


def test_loader_keeps_all_steps_unless_the_user_chose():
    flags = argparse.Namespace(samples_per_plugin={"images": 3})
    GradflowLoader().fix_flags(flags)
    assert flags.samples_per_plugin == {"images": 3, "gradflow": 0}
    flags = argparse.Namespace(samples_per_plugin={"gradflow": 7})
    GradflowLoader().fix_flags(flags)
    assert flags.samples_per_plugin == {"gradflow": 7}


def _graph() -> gradflow_pb2.Graph:
    graph = gradflow_pb2.Graph(graph_id="g", loss_op=1)
    graph.variables.add(name="v")
    graph.ops.add(name="a", variable_inputs=[0], parent=-1)
    graph.ops.add(name="b", inputs=[0], parent=-1, cause=1, starved_variables=[0])
    return graph


@pytest.mark.parametrize(
    "damage",
    [
        lambda g: g.ops[1].inputs.append(2),
        lambda g: g.ops[1].inputs.append(-1),
        lambda g: g.ops[0].variable_inputs.append(1),
        lambda g: g.ops[1].starved_variables.append(5),
        lambda g: setattr(g.ops[0], "parent", 2),
        lambda g: setattr(g.ops[1], "cause", 17),
        lambda g: setattr(g, "loss_op", 9),
    ],
)
def test_check_graph_rejects_indices_out_of_range(damage):
    check_graph(_graph())
    graph = _graph()
    damage(graph)
    with pytest.raises(FormatError):
        check_graph(graph)


class CountingReader:
    """Stands in for GradflowReader: records reads, returns a marker per read."""

    def __init__(self) -> None:
        self.reads = 0

    def read(self, run, tag, info, ctx, previous=None):
        self.reads += 1
        return (run, tag, self.reads)


def _info(max_step: int, graphs: dict[str, str] | None = None) -> TagInfo:
    return TagInfo(description="", max_step=max_step, max_wall_time=1.0, graph_tags=graphs or {"g": "t/_graph/g"})


def test_cache_rereads_only_when_the_listing_changes():
    cache, reader = SeriesCache(), CountingReader()
    first = cache.get(reader, "", "run", "t", _info(5), None)
    assert cache.get(reader, "", "run", "t", _info(5), None) is first
    assert first.derived("x", lambda: 1) == 1 and first.derived("x", lambda: 2) == 1
    second = cache.get(reader, "", "run", "t", _info(6), None)
    assert second.series == ("run", "t", 2) and second.derived("x", lambda: 2) == 2
    third = cache.get(reader, "", "run", "t", _info(6, {"g": "t/_graph/g", "h": "t/_graph/h"}), None)
    assert third.series == ("run", "t", 3)
    assert cache.get(reader, "other", "run", "t", _info(6, {"g": "t/_graph/g", "h": "t/_graph/h"}),
                     None).series == ("run", "t", 4)
    cache.retain("", {})
    assert cache.get(reader, "", "run", "t", _info(6), None).series == ("run", "t", 5)
    assert cache.get(reader, "other", "run", "t", _info(6, {"g": "t/_graph/g", "h": "t/_graph/h"}),
                     None).series == ("run", "t", 4)


def test_derived_values_stay_within_their_limit():
    cache, reader = SeriesCache(budget_bytes=1 << 30), CountingReader()
    entry = cache.get(reader, "", "run", "t", _info(5), None)
    entry.derived_limit = 10_000
    base = entry.nbytes
    for step in range(100):
        assert entry.derived(("diagnosis", step), lambda: "x" * 1000) == "x" * 1000
    assert entry.nbytes - base <= 10_000 and cache.nbytes == entry.nbytes
    assert ("diagnosis", 99) in entry._derived and ("diagnosis", 0) not in entry._derived


def test_cache_budget_from_the_environment(monkeypatch, caplog):
    from tb_gradflow.plugin.plugin import CACHE_ENV, cache_budget_bytes
    from tb_gradflow.reading.cache import DEFAULT_BUDGET_BYTES

    monkeypatch.setenv(CACHE_ENV, "64")
    assert cache_budget_bytes() == 64 << 20
    for bad in ("0", "-5", "1e3", "lots"):
        monkeypatch.setenv(CACHE_ENV, bad)
        assert cache_budget_bytes() == DEFAULT_BUDGET_BYTES
    assert CACHE_ENV in caplog.text


def test_listing_is_reused_briefly_and_only_where_experiment_ids_do_not_matter():
    import time

    from tb_gradflow.reading.cache import ListingCache

    class Lister:
        calls = 0

        def list(self, ctx=None):
            Lister.calls += 1
            return {"run": {"t": _info(Lister.calls)}}

    listings, reader = ListingCache(ttl=0.3), Lister()
    first = listings.get(reader, "", None)
    assert listings.get(reader, "", None) is first and Lister.calls == 1
    assert listings.get(reader, "e1", None) is not first and Lister.calls == 2
    time.sleep(0.35)
    assert listings.get(reader, "", None)["run"]["t"].max_step == 3
