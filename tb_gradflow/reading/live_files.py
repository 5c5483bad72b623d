"""Whether an event file is still being written, so that `check --repair` leaves it alone.

A repair renames the file and writes a new one under its name. A writer that still holds the old
file keeps appending to the renamed one, which no reader reads: every later step is lost. So a
file is taken as live when another process holds it open for writing (Linux: `/proc/*/fd`),
when it grew while it was checked, or when it was written less than `idle_seconds` ago (a
writer on another machine over a network file system; TensorFlow's writer flushes every two
minutes by default).
"""
from __future__ import annotations

import dataclasses
import os
import time

# TensorFlow's summary writer flushes every 120 s by default: a file untouched for longer than
# this is not being written by one with default settings.
DEFAULT_IDLE_SECONDS = 180.0


def open_files() -> dict[str, list[int]]:
    """Which other processes hold which files open for writing, from /proc.

    Returns:
        {real path: process ids}; {} where /proc is missing (not Linux) or unreadable. Readers (a
        running TensorBoard's data server holds every event file open) do not count; processes
        this user may not inspect are not seen.
    """
    held: dict[str, list[int]] = {}
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]
    except OSError:
        return held
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if target.startswith("/") and _for_writing(pid, fd):
                held.setdefault(target, []).append(int(pid))
    return held


def _for_writing(pid: str, fd: str) -> bool:
    """Whether the descriptor was opened write-only or read-write (the `flags` of its fdinfo)."""
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}") as f:
            for line in f:
                if line.startswith("flags:"):
                    return int(line.split()[1], 8) & (os.O_WRONLY | os.O_RDWR) != 0
    except (OSError, ValueError, IndexError):
        pass
    return False


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


@dataclasses.dataclass(frozen=True)
class Liveness:
    """Why a file looks like it is still being written; `reason` None when it does not."""

    reason: str | None

    @property
    def live(self) -> bool:
        """Whether there is a reason."""
        return self.reason is not None


def liveness(path: str, size_checked: int, held: dict[str, list[int]], idle_seconds: float,
             now: float | None = None) -> Liveness:
    """Whether the file at `path` is still being written, and why.

    Live: held open for writing by another process (`held`, from `open_files()`), grown beyond
    `size_checked` bytes, or modified within `idle_seconds` (before `now`, default the time).
    """
    pids = held.get(os.path.realpath(path), [])
    if pids:
        who = ", ".join(f"{pid} ({_command(pid)})" for pid in pids[:3])
        return Liveness(f"held open for writing by process {who}")
    try:
        stat = os.stat(path)
    except OSError as e:
        return Liveness(f"it changed while it was checked ({e.strerror})")
    if stat.st_size != size_checked:
        return Liveness(f"it grew from {size_checked} to {stat.st_size} bytes while it was checked")
    age = (time.time() if now is None else now) - stat.st_mtime
    if age < idle_seconds:
        ago = max(age, 0)
        return Liveness(f"it was last written {ago:.0f} s ago (less than {idle_seconds:g} s)")
    return Liveness(None)
