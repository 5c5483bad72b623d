"""Gradflow data straight from a local logdir's event files, without TensorFlow.

TensorBoard's own reader imports TensorFlow when it is installed (seconds of start-up and C++
log lines); the CLI and the HTML export only need our own tags. This module reads the TFRecord
framing (length, masked CRC-32C of the length, payload, masked CRC-32C of the payload), keeps
the summary values whose plugin is "gradflow", and answers the few data-provider calls that
`GradflowReader` makes. A damaged file is read up to the damage, with a warning.
"""
from __future__ import annotations

import dataclasses
import mmap
import os
import struct
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2

from tb_gradflow.format import metadata
from tb_gradflow.format.crc32c import crc32c_many, mask, masked_crc32c

Warn = Callable[[str], None]


class LogdirError(Exception):
    """The logdir does not exist or is not a directory."""


class RecordError(ValueError):
    """A TFRecord whose framing or checksum is wrong: the rest of the file is not trusted."""


# Payloads are checksummed together in batches of about this many bytes.
_BATCH_BYTES = 8 << 20
_PLUGIN = metadata.PLUGIN_NAME.encode()

Wanted = Callable[[mmap.mmap, int, int], bool]


def read_records(path: str, wanted: Wanted | None = None) -> Iterator[bytes]:
    """The payloads of a TFRecord file, in order; raises RecordError at the first damage.

    With `wanted(buffer, start, end)`, only the payloads it accepts are checksummed and yielded
    (every header is checked). A record cut short at the end is a file still being written:
    reading stops there quietly. The file is memory-mapped, never read whole.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            batch: list[bytes] = []
            stored: list[int] = []
            pending = 0
            damage = None
            pos = 0
            while size - pos >= 12:
                header = buf[pos : pos + 8]
                (length,) = struct.unpack("<Q", header)
                (header_crc,) = struct.unpack("<I", buf[pos + 8 : pos + 12])
                if masked_crc32c(header) != header_crc:
                    damage = f"bad record header at byte {pos}"
                    break
                start, stop = pos + 12, pos + 12 + length
                if size - pos < 16 + length:
                    break
                if wanted is None or wanted(buf, start, stop):
                    batch.append(buf[start:stop])
                    stored.append(struct.unpack("<I", buf[stop : stop + 4])[0])
                    pending += length
                    if pending >= _BATCH_BYTES:
                        yield from _checked(batch, stored)
                        batch, stored, pending = [], [], 0
                pos = stop + 4
            yield from _checked(batch, stored)
    if damage:
        raise RecordError(damage)


def _checked(payloads: list[bytes], stored: list[int]) -> Iterator[bytes]:
    for payload, crc, expected in zip(payloads, crc32c_many(payloads), stored, strict=False):
        if mask(crc) != expected:
            raise RecordError("bad record checksum")
        yield payload


class GradflowRecords:
    """`wanted` for read_records: the records that can hold gradflow data. A Keras logdir also
    holds large images and histograms, which are neither checksummed nor decoded. A tag's first
    value names the plugin; later values only carry the tag, so tags are learnt on the way."""

    def __init__(self) -> None:
        self.tags: list[bytes] = []

    def __call__(self, buf: mmap.mmap, start: int, end: int) -> bool:
        """Whether the record holds gradflow data: a cheap scan that skips all other plugins' records."""
        if buf.find(_PLUGIN, start, end) != -1:
            self._learn(buf[start:end])
            return True
        return any(buf.find(tag, start, end) != -1 for tag in self.tags)

    def _learn(self, payload: bytes) -> None:
        try:
            event = event_pb2.Event.FromString(payload)
        except Exception:  # damaged: its checksum will say so
            return
        for value in event.summary.value:
            tag = value.tag.encode()
            if value.metadata.plugin_data.plugin_name == metadata.PLUGIN_NAME and tag not in self.tags:
                self.tags.append(tag)


@dataclasses.dataclass
class _Datum:
    step: int
    wall_time: float
    value: bytes  # the scalar string (steps) or first string (graph blob sequences)


@dataclasses.dataclass
class _Series:
    plugin_content: bytes
    description: str
    data_class: int
    data: list[_Datum] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class TimeSeries:
    """What a provider's listing says of one tag (the fields GradflowReader reads)."""

    max_step: int
    max_wall_time: float
    plugin_content: bytes
    description: str
    # Blobs per datum in a blob sequence: this reader keeps one (the first) per step.
    max_length: int = 1


@dataclasses.dataclass(frozen=True)
class TensorDatum:
    """A tensor at one step, shaped as TensorBoard's data provider returns it."""
    step: int
    wall_time: float
    numpy: np.ndarray


@dataclasses.dataclass(frozen=True)
class BlobReference:
    """A blob's key, shaped as TensorBoard's data provider returns it."""
    blob_key: str


@dataclasses.dataclass(frozen=True)
class BlobSequenceDatum:
    """A blob sequence at one step, shaped as TensorBoard's data provider returns it."""
    step: int
    wall_time: float
    values: tuple[BlobReference, ...]


# TensorBoard reads every file whose name contains this.
EVENT_FILE_MARK = "tfevents"


def find_runs(logdir: str) -> dict[str, list[str]]:
    """{run: event files, oldest first}, runs named as TensorBoard names them ("." for the root)."""
    runs: dict[str, list[str]] = {}
    for directory, dirs, files in os.walk(logdir):
        dirs.sort()
        events = sorted(f for f in files if EVENT_FILE_MARK in f)
        if events:
            run = os.path.relpath(directory, logdir).replace(os.sep, "/")
            runs[run] = [os.path.join(directory, f) for f in events]
    return runs


def _first_string(tensor: Any) -> bytes | None:
    return tensor.string_val[0] if len(tensor.string_val) >= 1 else None


def read_run(files: list[str], warn: Warn, run: str) -> dict[str, _Series]:
    """Every gradflow tag of one run. Summary metadata comes with a tag's first value in a file."""
    series: dict[str, _Series] = {}
    wanted = GradflowRecords()
    for path in files:
        try:
            for payload in read_records(path, wanted):
                event = event_pb2.Event.FromString(payload)
                if not event.HasField("summary"):
                    continue
                for value in event.summary.value:
                    entry = series.get(value.tag)
                    if entry is None and value.metadata.plugin_data.plugin_name == metadata.PLUGIN_NAME:
                        entry = series[value.tag] = _Series(
                            value.metadata.plugin_data.content,
                            value.metadata.summary_description,
                            value.metadata.data_class,
                        )
                    if entry is None or not value.HasField("tensor"):
                        continue
                    blob = _first_string(value.tensor)
                    if blob is not None:
                        entry.data.append(_Datum(event.step, event.wall_time, blob))
        except Exception as e:  # OSError, RecordError, protobuf's DecodeError or its C++ errors
            warn(f"run {run!r}: event file {os.path.basename(path)!r} read up to damage: {type(e).__name__}: {e}")
    return series


class EventFileProvider:
    """The part of TensorBoard's data-provider interface that GradflowReader uses, over a logdir
    read once. Every step is kept (no sampling)."""

    def __init__(self, logdir: str, warn: Warn):
        if not os.path.exists(logdir):
            raise LogdirError(f"logdir {logdir!r} does not exist")
        if not os.path.isdir(logdir):
            raise LogdirError(f"logdir {logdir!r} is not a directory")
        self.runs: dict[str, dict[str, _Series]] = {
            run: read_run(files, warn, run) for run, files in find_runs(logdir).items()
        }

    def _listing(self, data_class: int, run_tag_filter: Any) -> dict[str, dict[str, TimeSeries]]:
        out: dict[str, dict[str, TimeSeries]] = {}
        for run, tags in self.runs.items():
            for tag, s in tags.items():
                if s.data_class != data_class or not s.data or not _selected(run_tag_filter, run, tag):
                    continue
                out.setdefault(run, {})[tag] = TimeSeries(
                    max(d.step for d in s.data), max(d.wall_time for d in s.data), s.plugin_content, s.description
                )
        return out

    def list_tensors(
        self, ctx: Any = None, *, run_tag_filter: Any = None, **_: Any
    ) -> dict[str, dict[str, TimeSeries]]:
        """Tensor series per run and tag, as TensorBoard's data provider lists them."""
        return self._listing(summary_pb2.DATA_CLASS_TENSOR, run_tag_filter)

    def list_blob_sequences(
        self, ctx: Any = None, *, run_tag_filter: Any = None, **_: Any
    ) -> dict[str, dict[str, TimeSeries]]:
        """Blob sequence series per run and tag, as TensorBoard's data provider lists them."""
        return self._listing(summary_pb2.DATA_CLASS_BLOB_SEQUENCE, run_tag_filter)

    def read_tensors(
        self, ctx: Any = None, *, run_tag_filter: Any = None, **_: Any
    ) -> dict[str, dict[str, list[TensorDatum]]]:
        """Every stored step of the selected tensor series, for readers written against TensorBoard."""
        out: dict[str, dict[str, list[TensorDatum]]] = {}
        for run, tag, s in self._selected(summary_pb2.DATA_CLASS_TENSOR, run_tag_filter):
            out.setdefault(run, {})[tag] = [
                TensorDatum(d.step, d.wall_time, np.array(d.value, dtype=object)) for d in s.data
            ]
        return out

    def read_blob_sequences(
        self, ctx: Any = None, *, run_tag_filter: Any = None, **_: Any
    ) -> dict[str, dict[str, list[BlobSequenceDatum]]]:
        """Every stored step of the selected blob sequences, for readers written against TensorBoard."""
        out: dict[str, dict[str, list[BlobSequenceDatum]]] = {}
        for run, tag, s in self._selected(summary_pb2.DATA_CLASS_BLOB_SEQUENCE, run_tag_filter):
            out.setdefault(run, {})[tag] = [
                BlobSequenceDatum(d.step, d.wall_time, (BlobReference(f"{run}\0{tag}\0{i}"),))
                for i, d in enumerate(s.data)
            ]
        return out

    def read_blob(self, ctx: Any = None, *, blob_key: str) -> bytes:
        """One blob by the key `read_blob_sequences` gave out."""
        run, tag, index = blob_key.split("\0")
        return self.runs[run][tag].data[int(index)].value

    def _selected(self, data_class: int, run_tag_filter: Any) -> Iterator[tuple[str, str, _Series]]:
        for run, tags in self.runs.items():
            for tag, s in tags.items():
                if s.data_class == data_class and _selected(run_tag_filter, run, tag):
                    yield run, tag, s


def _selected(run_tag_filter: Any, run: str, tag: str) -> bool:
    if run_tag_filter is None:
        return True
    runs, tags = run_tag_filter.runs, run_tag_filter.tags
    return (runs is None or run in runs) and (tags is None or tag in tags)


def local_run_files(logdir: str | None, run: str) -> list[str]:
    """The event files of `run` (named as `find_runs` names it) under a local `logdir`, oldest
    first; [] when there is no such local directory (a remote logdir, a `--logdir_spec` name)."""
    if not logdir or "://" in logdir or run.startswith("/") or ".." in run.split("/"):
        return []
    directory = logdir if run == "." else os.path.join(logdir, *run.split("/"))
    try:
        names = sorted(f for f in os.listdir(directory) if EVENT_FILE_MARK in f)
    except OSError:
        return []
    return [os.path.join(directory, f) for f in names if os.path.isfile(os.path.join(directory, f))]


def tag_tensors(files: list[str], tag: str, warn: Warn, run: str) -> Iterator[TensorDatum]:
    """Every value of `tag` in `files`, one record at a time, as the provider's TensorDatum: a
    run too large for one read of the data provider is read this way, in bounded memory."""
    wanted = GradflowRecords()
    for path in files:
        try:
            for payload in read_records(path, wanted):
                event = event_pb2.Event.FromString(payload)
                for value in event.summary.value:
                    if value.tag != tag or not value.HasField("tensor"):
                        continue
                    blob = _first_string(value.tensor)
                    if blob is not None:
                        yield TensorDatum(event.step, event.wall_time, np.array(blob, dtype=object))
        except Exception as e:  # OSError, RecordError, protobuf's DecodeError or its C++ errors
            warn(f"run {run!r}: event file {os.path.basename(path)!r} read up to damage: {type(e).__name__}: {e}")
