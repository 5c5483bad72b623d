"""Decoded series kept between requests, within a memory budget, reread only when TensorBoard has
loaded new data.

A route must not decode 10,000 steps at every request, and must not serve stale steps after a
reload either. The listing that every request makes anyway says what the data provider holds
(its last step and wall time, and the graph tags); an entry is reused while that is unchanged.

TensorBoard is often left running for weeks on a shared machine, and any client can make up
experiment ids in the URL: entries are keyed by what the data provider reads (a `scope` that the
plugin derives from the provider, not from the URL when the provider ignores the id), and all of
them together stay within a byte budget, least recently used first out.
"""
from __future__ import annotations

import collections
import dataclasses
import logging
import sys
import threading
import time
import zlib
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from tb_gradflow.reading.reader import GradflowReader, TagInfo, TagSeries
from tb_gradflow.reading.single_flight import SingleFlight

logger = logging.getLogger("tb_gradflow")

Key = tuple[str, str, str]  # data scope, run, tag

# What all entries may hold together: a ResNet50 run of 10,000 steps takes about 75 MB.
DEFAULT_BUDGET_BYTES = 1 << 30
_LOCK_STRIPES = 64
# What the values derived from one series may hold together (JSON parts, diagnoses per step,
# layouts per group): clients choose their keys.
DERIVED_LIMIT_BYTES = 128 << 20


_MISSING = object()


def freshness(info: TagInfo) -> tuple:
    """What changes in a listing when a loader has read new steps or a new graph version."""
    return (info.max_step, info.max_wall_time, tuple(sorted(info.graph_tags.items())))


def approximate_size(value: Any, _depth: int = 0) -> int:
    """Bytes a cached value holds, roughly (within a factor of two): enough to keep a budget."""
    if isinstance(value, (str, bytes)):
        return len(value) + 50
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return value.nbytes + sum(approximate_size(v, _depth + 1) for v in value.ravel().tolist())
        return value.nbytes + 100
    if hasattr(value, "ByteSize"):  # a protobuf message: its Python form is a few times larger
        return 4 * value.ByteSize() + 100
    if _depth > 3:
        return sys.getsizeof(value)
    if isinstance(value, dict):
        return sum(64 + approximate_size(k, _depth + 1) + approximate_size(v, _depth + 1) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        if value and all(type(v) is int for v in value[:8]):  # step lists: boxed ints
            return 40 * len(value)
        return sum(16 + approximate_size(v, _depth + 1) for v in value)
    if dataclasses.is_dataclass(value):
        return sum(approximate_size(getattr(value, f.name), _depth + 1) for f in dataclasses.fields(value))
    return sys.getsizeof(value)


def series_size(series: TagSeries | None) -> int:
    """Bytes of one read series: its matrices, graphs and step index."""
    if not isinstance(series, TagSeries):  # None: a remembered failure
        return approximate_size(series)
    total = 150 * len(series.steps)  # `steps` and `where`: boxed ints, tuples, dict slots
    for values in series.versions.values():
        total += approximate_size(values.graph) + 120 * len(values.graph.ops)  # + name indices
        for column in (values.steps, values.op_states, values.op_norms, values.variable_states,
                       values.variable_norms, values.losses, values.wall_times,
                       values.op_presence, values.variable_presence):
            total += 0 if column is None else column.nbytes
    return total


@dataclasses.dataclass
class CachedSeries:
    """One read of a run and tag, with values derived from it that live exactly as long."""

    series: TagSeries | None  # None: nothing readable (the reader has warned); not retried
    freshness: tuple
    nbytes: int = 0
    derived_limit: int = DERIVED_LIMIT_BYTES
    _derived: collections.OrderedDict = dataclasses.field(default_factory=collections.OrderedDict)
    _derived_sizes: dict[Hashable, int] = dataclasses.field(default_factory=dict)
    _on_grow: Any = None
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    _flights: SingleFlight = dataclasses.field(default_factory=SingleFlight)

    def derived(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """`compute()` once per key: JSON parts that depend only on this read of the series.

        Kept least recently used first out within `derived_limit` bytes, since clients choose the
        keys (a step's diagnosis, a group of the graph, a layer's series). Concurrent first
        requests for one key compute it once (single flight); the others wait for that value.
        Any expensive value a route caches goes through here, so that this holds for it too.
        """
        found = self._cached(key)
        if found is not _MISSING:
            return found
        return self._flights.do(key, lambda: self._compute(key, compute))

    def _cached(self, key: Hashable) -> Any:
        with self._lock:
            if key in self._derived:
                self._derived.move_to_end(key)
                return self._derived[key]
        return _MISSING

    def _compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        found = self._cached(key)  # a flight that landed just before this one took off
        if found is not _MISSING:
            return found
        value = compute()
        size = approximate_size(value)
        with self._lock:
            if key in self._derived:
                return self._derived[key]
            self._derived[key] = value
            self._derived_sizes[key] = size
            grown = size
            while sum(self._derived_sizes.values()) > self.derived_limit and len(self._derived) > 1:
                old, _ = self._derived.popitem(last=False)
                grown -= self._derived_sizes.pop(old)
            self.nbytes += grown
            on_grow = self._on_grow
        if on_grow is not None:
            on_grow(grown)
        return value


class SeriesCache:
    """Thread-safe LRU map from (scope, run, tag) to its latest CachedSeries, within a budget.

    The entry being served is never evicted by its own insertion: a series larger than the whole
    budget is kept alone rather than reread at every request.
    """

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self.budget_bytes = budget_bytes
        self._lock = threading.Lock()
        self._entries: collections.OrderedDict[Key, CachedSeries] = collections.OrderedDict()
        self._bytes = 0
        # Striped locks, so that concurrent requests for one series read it once, and the
        # number of locks does not grow with the number of keys clients make up.
        self._loading = [threading.Lock() for _ in range(_LOCK_STRIPES)]

    @property
    def nbytes(self) -> int:
        """Bytes held, so that the cache stays under its budget."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, reader: GradflowReader, scope: str, run: str, tag: str, info: TagInfo, ctx: Any) -> CachedSeries:
        """The series as the listing `info` describes it; one reader call per change, even when
        several requests for the same series arrive together. A reread starts from the last
        read, so that only new steps are decoded. Any failure to read (a MemoryError from a
        hostile tensor included) is remembered as "nothing readable" until the listing changes."""
        key = (scope, run, tag)
        wanted = freshness(info)
        entry = self._touch(key, wanted)
        if entry is not None:
            return entry
        with self._loading[zlib.crc32(repr(key).encode()) % _LOCK_STRIPES]:
            entry = self._touch(key, wanted)
            if entry is not None:
                return entry
            old = self._entries.get(key)
            previous = old.series if old is not None else None
            try:
                series = reader.read(run, tag, info, ctx, previous=previous)
            except Exception as e:  # pylint: disable=broad-except  # MemoryError is one
                logger.warning("tb_gradflow: run %r, tag %r: skipped: %s: %s", run, tag, type(e).__name__, e)
                series = None
            entry = CachedSeries(series, wanted, series_size(series))
            self._insert(key, entry)
            return entry

    def _touch(self, key: Key, wanted: tuple) -> CachedSeries | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.freshness != wanted:
                return None
            self._entries.move_to_end(key)
            return entry

    def _insert(self, key: Key, entry: CachedSeries) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                old._on_grow = None
                self._bytes -= old.nbytes
            self._entries[key] = entry
            self._bytes += entry.nbytes
            entry._on_grow = self._grown
            self._evict(keep=key)

    def _grown(self, nbytes: int) -> None:
        with self._lock:
            self._bytes += nbytes
            self._evict(keep=next(reversed(self._entries), None))

    def _evict(self, keep: Key | None) -> None:
        """Drops least recently used entries until within budget (lock held)."""
        while self._bytes > self.budget_bytes and len(self._entries) > 1:
            key = next(iter(self._entries))
            if key == keep:
                self._entries.move_to_end(key)
                key = next(iter(self._entries))
            gone = self._entries.pop(key)
            gone._on_grow = None
            self._bytes -= gone.nbytes

    def retain(self, scope: str, listing: dict[str, dict[str, TagInfo]]) -> None:
        """Forgets the series of this scope that the full listing no longer has."""
        with self._lock:
            for key in [k for k in self._entries if k[0] == scope]:
                if key[2] not in listing.get(key[1], {}):
                    gone = self._entries.pop(key)
                    gone._on_grow = None
                    self._bytes -= gone.nbytes


class ListingCache:
    """The full listing of a provider that ignores experiment ids, reused for `ttl` seconds.

    Every route lists before it reads; over the Rust data server a listing of a long run takes
    ~40 ms, most of a `graph` request. New steps then show up to `ttl` later, well within
    TensorBoard's own reload interval. Only the experiment-blind scope "" is cached, so that no
    listing made with one request's context is served to another experiment.
    """

    def __init__(self, ttl: float = 0.5) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._listing: dict[str, dict[str, TagInfo]] | None = None
        self._at = 0.0
        self._flights: SingleFlight = SingleFlight()

    def get(self, reader: GradflowReader, scope: str, ctx: Any) -> dict[str, dict[str, TagInfo]]:
        """The listing, made once for all requests that arrive while it is made (single flight)."""
        if scope != "":
            return reader.list(ctx)
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        return self._flights.do(scope, lambda: self._list(reader, ctx))

    def _fresh(self) -> dict[str, dict[str, TagInfo]] | None:
        with self._lock:
            if self._listing is not None and time.monotonic() - self._at < self.ttl:
                return self._listing
        return None

    def _list(self, reader: GradflowReader, ctx: Any) -> dict[str, dict[str, TagInfo]]:
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        now = time.monotonic()
        listing = reader.list(ctx)
        with self._lock:
            self._listing, self._at = listing, now
        return listing
