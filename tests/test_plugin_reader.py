"""The reader's incremental reread: after new steps (and a new graph version) arrive, a read that
starts from the previous one gives exactly what a fresh read gives."""
from __future__ import annotations

import numpy as np

from support.plugin_logdirs import TAG, RunWriter
from tb_gradflow.format.records import decode_step
from tb_gradflow.reading import reader as reader_module
from tb_gradflow.reading.local_logdir import local_provider
from tb_gradflow.reading.reader import GradflowReader, TagSeries

COLUMNS = ("steps", "op_states", "op_norms", "variable_states", "variable_norms", "losses", "wall_times")


def read(logdir: str, previous: TagSeries | None = None) -> TagSeries:
    reader = GradflowReader(local_provider(logdir), warn=lambda message: None)
    series = reader.read("run", TAG, reader.list()["run"][TAG], previous=previous)
    assert series is not None
    return series


def assert_same(a: TagSeries, b: TagSeries) -> None:
    assert a.steps == b.steps and a.where == b.where and list(a.versions) == list(b.versions)
    for gid, values in a.versions.items():
        assert values.graph == b.versions[gid].graph
        for column in COLUMNS:
            assert np.array_equal(getattr(values, column), getattr(b.versions[gid], column), equal_nan=True), column


def test_reread_from_previous_equals_a_fresh_read(tmp_path, monkeypatch):
    writer = RunWriter(str(tmp_path / "run"))
    writer.log(range(0, 5), 8)
    first = read(str(tmp_path))
    writer.log(range(5, 8), 4)  # a second graph version
    writer.log(range(8, 10), 8)  # and back to the first one
    fresh = read(str(tmp_path))
    decoded: list[bytes] = []
    monkeypatch.setattr(reader_module, "decode_step", lambda data: decoded.append(data) or decode_step(data))
    incremental = read(str(tmp_path), previous=first)
    writer.close()
    assert len(fresh.versions) == 2 and fresh.steps == list(range(10))
    assert_same(incremental, fresh)
    assert len(decoded) == 5  # only the steps that the previous read did not hold
