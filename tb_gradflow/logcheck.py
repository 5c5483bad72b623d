"""`tb-gradflow check LOGDIR [--repair]`: event files that TensorBoard's own readers cannot survive.

Some damage stops TensorBoard before any plugin sees data: a record header declaring an absurd
length with a valid checksum (the Python loader crashes, the Rust data server aborts), a record
whose checksums are valid but whose bytes are not an `Event` (the Python loader's reload thread
dies, so no run updates again), and a record torn by a full disk (every reader stops there and
never reads the valid records written after it). This module walks each event file record by
record, says what is wrong where, and with `--repair` writes a copy with every valid record.

An event file is a sequence of records: uint64 length, masked CRC-32C of the length, the data,
masked CRC-32C of the data (little-endian). After a bad record the scan resynchronizes on the
next offset where a whole record has valid checksums.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import struct
import sys
from typing import Iterator

from tensorboard.compat.proto import event_pb2

from tb_gradflow.reading.crc32c import masked_crc32c as masked_crc
from tb_gradflow.reading.event_files import EVENT_FILE_MARK, find_runs

_HEADER = 12  # length (8) + its CRC (4)
_FOOTER = 4
# Larger records are not ours nor TensorBoard's: a length beyond this is reported as absurd even
# when the file is big enough to hold it.
MAX_RECORD_BYTES = 1 << 31
DAMAGED_MARK = "damaged-events"


@dataclasses.dataclass(frozen=True)
class Problem:
    """One place of an event file that a TensorBoard reader stops at or dies on."""

    offset: int
    kind: str  # "absurd_length", "not_an_event", "torn", "corrupt"
    detail: str

    def __str__(self) -> str:
        return f"at byte {self.offset}: {self.kind.replace('_', ' ')}: {self.detail}"


@dataclasses.dataclass
class FileCheck:
    path: str
    size: int
    records: list[tuple[int, int]]  # (offset of the data, length) of every valid Event record
    problems: list[Problem]
    lost_to_readers: int  # valid records after the first problem, which readers never reach

    @property
    def ok(self) -> bool:
        return not self.problems


def _record_at(data: bytes, offset: int) -> tuple[int, str | None]:
    """(length, None) for a whole record with valid checksums at `offset`, else (length or -1,
    why not): "short", "header_crc", "absurd", "beyond_end" or "data_crc"."""
    if offset + _HEADER > len(data):
        return -1, "short"
    header = data[offset : offset + 8]
    (length,) = struct.unpack("<Q", header)
    (length_crc,) = struct.unpack("<I", data[offset + 8 : offset + 12])
    if masked_crc(header) != length_crc:
        return length, "header_crc"
    if length > MAX_RECORD_BYTES:
        return length, "absurd"
    end = offset + _HEADER + length + _FOOTER
    if end > len(data):
        return length, "beyond_end"
    body = data[offset + _HEADER : offset + _HEADER + length]
    (data_crc,) = struct.unpack("<I", data[end - _FOOTER : end])
    if masked_crc(body) != data_crc:
        return length, "data_crc"
    return length, None


def _next_record(data: bytes, offset: int) -> int:
    """The next offset after `offset` where a whole valid record starts, or len(data)."""
    for candidate in range(offset + 1, len(data) - _HEADER - _FOOTER + 1):
        if _record_at(data, candidate)[1] is None:
            return candidate
    return len(data)


def _is_event(body: bytes) -> bool:
    try:
        event_pb2.Event.FromString(body)
    except Exception:  # pylint: disable=broad-except  # DecodeError, or others from the C backend
        return False
    return True


def check_file(path: str) -> FileCheck:
    """Every valid Event record of the file at `path` and what is wrong with the rest."""
    with open(path, "rb") as f:
        data = f.read()
    records: list[tuple[int, int]] = []
    problems: list[Problem] = []
    lost = 0
    offset = 0
    while offset < len(data):
        length, why = _record_at(data, offset)
        if why is None:
            body = data[offset + _HEADER : offset + _HEADER + length]
            if _is_event(body):
                records.append((offset + _HEADER, length))
                lost += bool(problems)
            else:
                problems.append(Problem(offset, "not_an_event", f"a {length}-byte record with valid checksums does not parse as an Event"))
            offset += _HEADER + length + _FOOTER
            continue
        resume = _next_record(data, offset)
        problems.append(_describe(offset, length, why, resume, len(data)))
        offset = resume
    return FileCheck(path, len(data), records, problems, lost)


def _describe(offset: int, length: int, why: str, resume: int, size: int) -> Problem:
    skipped = f"{resume - offset} bytes skipped" + (" to the end of the file" if resume >= size else f", valid records resume at byte {resume}")
    if why == "absurd" or (why == "beyond_end" and length > size):
        return Problem(offset, "absurd_length", f"the header declares {length} bytes with a valid checksum (the file has {size}); {skipped}")
    if why in ("beyond_end", "short") and resume >= size:
        return Problem(offset, "torn", f"the last record is cut short (a full disk or a killed writer); {skipped}")
    if why == "data_crc" and resume < size:
        return Problem(offset, "torn", f"a {length}-byte record is cut short and later records follow it (a full disk?); {skipped}")
    return Problem(offset, "corrupt", f"{why.replace('_', ' ')}; {skipped}")


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
    original name (framing rebuilt, records unchanged); returns where the original went."""
    kept = damaged_name(check.path)
    if os.path.exists(kept):
        raise FileExistsError(f"{kept} exists already; move it away first")
    with open(check.path, "rb") as f:
        data = f.read()
    os.rename(check.path, kept)
    temporary = check.path + ".repairing"
    with open(temporary, "wb") as out:
        for start, length in check.records:
            body = data[start : start + length]
            header = struct.pack("<Q", length)
            out.write(header + struct.pack("<I", masked_crc(header)) + body + struct.pack("<I", masked_crc(body)))
    os.rename(temporary, check.path)
    return kept


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers `check` on the CLI's subcommands."""
    check = sub.add_parser("check", help="find event files that TensorBoard's readers cannot survive",
                           epilog="exit status: 0 every file sound (or repaired), 1 damage found, "
                           "3 no such logdir")
    check.add_argument("logdir")
    check.add_argument("--repair", action="store_true",
                       help="rewrite each damaged file with its valid records; keep the original beside it, renamed")
    check.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Exit status: 0 all files sound (or repaired), 1 damage found, 3 no such logdir."""
    if not os.path.isdir(args.logdir):
        print(f"tb-gradflow: logdir {args.logdir!r} is not a directory", file=sys.stderr)
        return 3
    damaged = 0
    files = 0
    for path in event_files(args.logdir):
        files += 1
        result = check_file(path)
        shown = os.path.relpath(path, args.logdir)
        if result.ok:
            print(f"ok       {shown}: {len(result.records)} records")
            continue
        damaged += 1
        print(f"DAMAGED  {shown}: {len(result.records)} valid records; TensorBoard would miss "
              f"{result.lost_to_readers} of them, or stop reading the logdir")
        for problem in result.problems:
            print(f"  {problem}")
        if args.repair:
            kept = repair(result)
            print(f"  repaired: {len(result.records)} records rewritten to {shown}; original kept as {os.path.relpath(kept, args.logdir)}")
    print(f"{files} event files, {damaged} damaged" + (" and repaired" if args.repair and damaged else ""))
    return 0 if damaged == 0 or args.repair else 1
