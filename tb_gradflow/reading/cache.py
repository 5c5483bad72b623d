"""Decoded series kept between requests, reread only when TensorBoard has loaded new data.

A route must not decode 10,000 steps at every request, and must not serve stale steps after a
reload either. The listing that every request makes anyway says what the data provider holds
(its last step and wall time, and the graph tags); an entry is reused while that is unchanged.
"""
from __future__ import annotations

import dataclasses
import threading
from typing import Any, Hashable

from tb_gradflow.reading.reader import GradflowReader, TagInfo, TagSeries

Key = tuple[str, str, str]  # experiment id, run, tag


def freshness(info: TagInfo) -> tuple:
    """What changes in a listing when a loader has read new steps or a new graph version."""
    return (info.max_step, info.max_wall_time, tuple(sorted(info.graph_tags.items())))


@dataclasses.dataclass
class CachedSeries:
    """One read of a run and tag, with values derived from it that live exactly as long."""

    series: TagSeries | None  # None: nothing readable (the reader has warned)
    freshness: tuple
    _derived: dict[Hashable, Any] = dataclasses.field(default_factory=dict)

    def derived(self, key: Hashable, compute: Any) -> Any:
        """`compute()` once per key: JSON parts that depend only on this read of the series.

        Two threads may both compute a missing value; both results are equal, either one wins.
        """
        try:
            return self._derived[key]
        except KeyError:
            value = compute()
            self._derived[key] = value
            return value


class SeriesCache:
    """Thread-safe map from (experiment, run, tag) to its latest CachedSeries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[Key, CachedSeries] = {}
        self._loading: dict[Key, threading.Lock] = {}

    def get(self, reader: GradflowReader, experiment_id: str, run: str, tag: str, info: TagInfo, ctx: Any) -> CachedSeries:
        """The series as the listing `info` describes it; one reader call per change, even when
        several requests for the same series arrive together. A reread starts from the last
        read, so that only new steps are decoded."""
        key = (experiment_id, run, tag)
        wanted = freshness(info)
        entry = self._entries.get(key)
        if entry is not None and entry.freshness == wanted:
            return entry
        with self._lock:
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            entry = self._entries.get(key)
            if entry is not None and entry.freshness == wanted:
                return entry
            previous = entry.series if entry is not None else None
            entry = CachedSeries(reader.read(run, tag, info, ctx, previous=previous), wanted)
            with self._lock:
                self._entries[key] = entry
            return entry

    def retain(self, experiment_id: str, listing: dict[str, dict[str, TagInfo]]) -> None:
        """Forgets the series of this experiment that the full listing no longer has."""
        with self._lock:
            for key in [k for k in self._entries if k[0] == experiment_id]:
                if key[2] not in listing.get(key[1], {}):
                    del self._entries[key]
                    self._loading.pop(key, None)
