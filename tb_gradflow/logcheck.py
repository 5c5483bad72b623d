"""`tb-gradflow check LOGDIR [--repair]`: event files that TensorBoard's own readers cannot survive.

Some damage stops TensorBoard before any plugin sees data: a record header declaring an absurd
length with a valid checksum (the Python loader crashes, the Rust data server aborts), a record
whose checksums are valid but whose bytes are not an `Event` (the Python loader's reload thread
dies, so no run updates again), and a record torn by a full disk (every reader stops there and
never reads the valid records written after it). This module walks each event file record by
record, says what is wrong where, and with `--repair` writes a copy with every valid record.

A file that is still being written is never repaired: its writer would go on appending to the
renamed original, which no reader reads (reading/live_files.py tells such a file apart), and a
record cut short at its end is a write in progress there, not damage.

An event file is a sequence of records: uint64 length, masked CRC-32C of the length, the data,
masked CRC-32C of the data (little-endian). After a bad record the scan resynchronizes on the
next offset where a whole record has valid checksums; the candidates' header checksums are
computed for a megabyte of offsets at once with numpy. Files are memory-mapped, never read whole.
"""
from __future__ import annotations

import argparse
import dataclasses
import mmap
import os
import struct
import sys
from collections.abc import Iterator

import numpy as np
from tensorboard.compat.proto import event_pb2

from tb_gradflow.format import metadata
from tb_gradflow.format.crc32c import crc32c_many, mask, masked_crc32c_windows
from tb_gradflow.format.crc32c import masked_crc32c as masked_crc
from tb_gradflow.reading import live_files
from tb_gradflow.reading.event_files import EVENT_FILE_MARK, find_runs
from tb_gradflow.reading.fast_loader_names import why_unreadable

_HEADER = 12  # length (8) + its CRC (4)
_FOOTER = 4
# Larger records are not ours nor TensorBoard's: a length beyond this is reported as absurd even
# when the file is big enough to hold it.
MAX_RECORD_BYTES = 1 << 31
DAMAGED_MARK = "damaged-events"
# Offsets whose header checksums are computed together while resynchronizing.
_SCAN_WINDOW = 1 << 20
# Payload bytes of sound records whose checksums are computed together.
_BATCH_BYTES = 8 << 20


class LiveFileError(RuntimeError):
    """A file that is still being written was about to be repaired."""


@dataclasses.dataclass(frozen=True)
class Problem:
    """One place of an event file that a TensorBoard reader stops at or dies on."""

    offset: int
    kind: str  # "absurd_length", "not_an_event", "torn", "corrupt"
    detail: str
    at_end: bool = False  # nothing valid follows: a write in progress when the file is live

    def __str__(self) -> str:
        return f"at byte {self.offset}: {self.kind.replace('_', ' ')}: {self.detail}"


@dataclasses.dataclass
class FileCheck:
    """What `check_file` found in one event file."""

    path: str
    size: int
    records: list[tuple[int, int]]  # (offset of the data, length) of every valid Event record
    problems: list[Problem]
    lost_to_readers: int  # valid records after the first problem, which readers never reach
    gradflow_tags: set[str] = dataclasses.field(default_factory=set)
    live: live_files.Liveness = live_files.Liveness(None)

    @property
    def ok(self) -> bool:
        """Whether the logdir can be read as written, so that the caller can exit non-zero."""
        return not self.problems

    @property
    def damage(self) -> list[Problem]:
        """The problems that are damage: all of them, except, in a live file, a last record
        that is still being written."""
        if self.live.live:
            return [p for p in self.problems if not (p.at_end and p.kind == "torn")]
        return self.problems


def _record_at(buf: mmap.mmap | bytes, size: int, offset: int) -> tuple[int, str | None]:
    """(length, None) for a whole record with valid checksums at `offset`, else (length or -1,
    why not): "short", "header_crc", "absurd", "beyond_end" or "data_crc"."""
    if offset + _HEADER > size:
        return -1, "short"
    header = buf[offset : offset + 8]
    (length,) = struct.unpack("<Q", header)
    (length_crc,) = struct.unpack("<I", buf[offset + 8 : offset + 12])
    if masked_crc(header) != length_crc:
        return length, "header_crc"
    if length > MAX_RECORD_BYTES:
        return length, "absurd"
    end = offset + _HEADER + length + _FOOTER
    if end > size:
        return length, "beyond_end"
    body = buf[offset + _HEADER : offset + _HEADER + length]
    (data_crc,) = struct.unpack("<I", buf[end - _FOOTER : end])
    if masked_crc(body) != data_crc:
        return length, "data_crc"
    return length, None


def _header_candidates(window: np.ndarray, count: int) -> np.ndarray:
    """Positions among the first `count` of `window` (uint8, `count` + 11 bytes at least) where
    the 8 bytes hold a length whose masked CRC-32C is the next 4 bytes: where a record may start."""
    masked = masked_crc32c_windows(window, 8, count)
    stored = np.zeros(count, np.uint32)
    for k in range(4):
        stored |= window[8 + k : 8 + k + count].astype(np.uint32) << np.uint32(8 * k)
    return np.flatnonzero(masked == stored)


def _next_record(buf: mmap.mmap | bytes, size: int, offset: int) -> int:
    """The next offset after `offset` where a whole valid record starts, or `size`."""
    last = size - _HEADER - _FOOTER  # the last offset where a record fits
    start = offset + 1
    while start <= last:
        count = min(_SCAN_WINDOW, last - start + 1)
        window = np.frombuffer(buf, np.uint8, count=count + _HEADER - 1, offset=start)
        for candidate in _header_candidates(window, count).tolist():
            if _record_at(buf, size, start + candidate)[1] is None:
                return start + candidate
        start += count
    return size


def _event(body: bytes) -> event_pb2.Event | None:
    try:
        return event_pb2.Event.FromString(body)
    except Exception:  # pylint: disable=broad-except  # DecodeError, or others from the C backend
        return None


def _gradflow_tags(event: event_pb2.Event) -> Iterator[str]:
    for value in event.summary.value:
        if value.metadata.plugin_data.plugin_name == metadata.PLUGIN_NAME:
            yield value.tag


def check_file(path: str) -> FileCheck:
    """Every valid Event record of the file at `path` and what is wrong with the rest; the
    gradflow tags it holds (a tag's first value names the plugin)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return FileCheck(path, 0, [], [], 0)
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _scan(path, buf, size)


def _sound_records(buf: mmap.mmap, size: int, offset: int) -> list[tuple[int, int]]:
    """(offset, length) of the whole records with valid checksums from `offset` on, up to the
    first that is not or about _BATCH_BYTES of them: their payloads' CRCs computed together."""
    found: list[tuple[int, int]] = []
    total = 0
    while offset + _HEADER + _FOOTER <= size and total < _BATCH_BYTES:
        header = buf[offset : offset + 8]
        (length,) = struct.unpack("<Q", header)
        if (masked_crc(header) != struct.unpack("<I", buf[offset + 8 : offset + 12])[0]
                or length > MAX_RECORD_BYTES or offset + _HEADER + length + _FOOTER > size):
            break
        found.append((offset, length))
        total += length
        offset += _HEADER + length + _FOOTER
    bodies = [buf[o + _HEADER : o + _HEADER + n] for o, n in found]
    for k, ((o, n), crc) in enumerate(zip(found, crc32c_many(bodies, small=64), strict=False)):
        if mask(crc) != struct.unpack("<I", buf[o + _HEADER + n : o + _HEADER + n + _FOOTER])[0]:
            return found[:k]
    return found


def _scan(path: str, buf: mmap.mmap, size: int) -> FileCheck:
    result = FileCheck(path, size, [], [], 0)
    offset = 0
    while offset < size:
        sound = _sound_records(buf, size, offset)
        for start, length in sound:
            _accept(result, buf, start, length)
        if sound:
            offset = sound[-1][0] + _HEADER + sound[-1][1] + _FOOTER
            continue
        length, why = _record_at(buf, size, offset)
        if why is None:  # a record after damage, or one _sound_records would not batch
            _accept(result, buf, offset, length)
            offset += _HEADER + length + _FOOTER
            continue
        resume = _next_record(buf, size, offset)
        result.problems.append(_describe(offset, length, why, resume, size))
        offset = resume
    return result


def _accept(result: FileCheck, buf: mmap.mmap, offset: int, length: int) -> None:
    """Adds the record at `offset` (checksums valid) as an Event, or as a problem if it is not."""
    event = _event(buf[offset + _HEADER : offset + _HEADER + length])
    if event is None:
        text = f"a {length}-byte record with valid checksums does not parse as an Event"
        result.problems.append(Problem(offset, "not_an_event", text))
        return
    result.records.append((offset + _HEADER, length))
    result.lost_to_readers += bool(result.problems)
    result.gradflow_tags.update(_gradflow_tags(event))


def _describe(offset: int, length: int, why: str, resume: int, size: int) -> Problem:
    resumes = " to the end of the file" if resume >= size else f", valid records resume at byte {resume}"
    skipped = f"{resume - offset} bytes skipped" + resumes
    at_end = resume >= size
    if why == "absurd" or (why == "beyond_end" and length > size):
        text = f"the header declares {length} bytes with a valid checksum (the file has {size}); {skipped}"
        return Problem(offset, "absurd_length", text, at_end)
    if why in ("beyond_end", "short") and at_end:
        text = f"the last record is cut short (a full disk or a killed writer); {skipped}"
        return Problem(offset, "torn", text, at_end)
    if why == "data_crc" and not at_end:
        text = f"a {length}-byte record is cut short and later records follow it (a full disk?); {skipped}"
        return Problem(offset, "torn", text)
    return Problem(offset, "corrupt", f"{why.replace('_', ' ')}; {skipped}", at_end)


def event_files(logdir: str) -> Iterator[str]:
    """Every event file TensorBoard would read, run by run (the CLI's reader finds them)."""
    for files in find_runs(logdir).values():
        yield from files


def damaged_name(path: str) -> str:
    """Where `--repair` keeps the original: beside it, under a name TensorBoard does not read."""
    directory, name = os.path.split(path)
    return os.path.join(directory, name.replace(EVENT_FILE_MARK, DAMAGED_MARK))


def repair(check: FileCheck) -> str:
    """Keeps the original as `damaged_name(path)` and writes every valid record under the
    original name (framing rebuilt, records unchanged); returns where the original went.

    Raises:
        FileExistsError: the name for the original is taken.
        LiveFileError: the file grew or was opened by another process meanwhile; it is put back
            unchanged (a writer's handle follows the file, so nothing it writes is lost).
    """
    kept = damaged_name(check.path)
    if os.path.exists(kept):
        raise FileExistsError(f"{kept} exists already; move it away first")
    os.rename(check.path, kept)
    live = live_files.liveness(kept, check.size, live_files.open_files(), idle_seconds=0)
    if live.live:
        os.rename(kept, check.path)
        raise LiveFileError(f"{check.path} is still being written: {live.reason}")
    temporary = check.path + ".repairing"
    with open(kept, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data, open(temporary, "wb") as out:
        for start, length in check.records:
            body = data[start : start + length]
            header = struct.pack("<Q", length)
            out.write(header + struct.pack("<I", masked_crc(header)) + body + struct.pack("<I", masked_crc(body)))
    os.rename(temporary, check.path)
    return kept


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers `check` on the CLI's subcommands."""
    check = sub.add_parser("check", help="find event files that TensorBoard's readers cannot survive",
                           epilog="exit status: 0 every file sound (or repaired), 1 damage found (or a "
                           "damaged file left alone because it is still being written), 3 no such logdir")
    check.add_argument("logdir")
    check.add_argument("--repair", action="store_true",
                       help="rewrite each damaged file with its valid records; keep the original beside it, "
                       "renamed. Files still being written are left alone: repair after training ends")
    check.add_argument("--idle-seconds", type=float, default=live_files.DEFAULT_IDLE_SECONDS,
                       help="a file written less than this long ago is taken as still being written "
                       f"(default {live_files.DEFAULT_IDLE_SECONDS:g}: TensorFlow's writer flushes every 120 s)")
    check.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Exit status: 0 all files sound (or repaired), 1 damage found, 3 no such logdir."""
    if not os.path.isdir(args.logdir):
        print(f"tb-gradflow: logdir {args.logdir!r} is not a directory", file=sys.stderr)
        return 3
    held = live_files.open_files()
    files = damaged = left = 0
    for run_name, paths in find_runs(args.logdir).items():
        tags: set[str] = set()
        for path in paths:
            files += 1
            result = check_file(path)
            result.live = live_files.liveness(path, result.size, held, args.idle_seconds)
            tags |= result.gradflow_tags
            outcome = _report_file(result, args)
            damaged += outcome != "sound"
            left += outcome == "left"
        _report_names(run_name, tags)
    repaired = damaged - left if args.repair else 0
    print(f"{files} event files, {damaged} damaged" + (f", {repaired} repaired" if args.repair else "")
          + (f", {left} left alone while still being written" if left else ""))
    return 0 if damaged == 0 or (args.repair and not left) else 1


def _report_file(result: FileCheck, args: argparse.Namespace) -> str:
    """Prints one file's state; repairs it when asked and safe. Returns "sound", "damaged",
    "repaired" or "left" (damaged and still being written)."""
    shown = os.path.relpath(result.path, args.logdir)
    damage = result.damage
    if not damage:
        if result.live.live:
            print(f"live     {shown}: {len(result.records)} records; still being written ({result.live.reason})")
        else:
            print(f"ok       {shown}: {len(result.records)} records")
        return "sound"
    print(f"DAMAGED  {shown}: {len(result.records)} valid records; TensorBoard would miss "
          f"{result.lost_to_readers} of them, or stop reading the logdir")
    for problem in damage:
        print(f"  {problem}")
    if result.live.live:
        print(f"  still being written ({result.live.reason}): "
              + ("not repaired; " if args.repair else "")
              + "run `tb-gradflow check --repair` after training ends")
        return "left"
    if not args.repair:
        return "damaged"
    try:
        kept = repair(result)
    except LiveFileError as e:
        print(f"  not repaired: {e}; run `tb-gradflow check --repair` after training ends")
        return "left"
    kept_as = os.path.relpath(kept, args.logdir)
    print(f"  repaired: {len(result.records)} records rewritten to {shown}; original kept as {kept_as}")
    return "repaired"


def _report_names(run_name: str, tags: set[str]) -> None:
    """Names the fast loader cannot serve, for a run that holds gradflow data."""
    if not tags:
        return
    names = [tag for tag in sorted(tags) if metadata.GRAPH_TAG_INFIX not in tag]  # summary names
    reasons = {why_unreadable(run_name)} | {why_unreadable(run_name, tag) for tag in names}
    for reason in sorted(r for r in reasons if r):
        print(f"names    {run_name}: {reason}")
