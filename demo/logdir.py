"""The demo's logdir: it replaces its own two runs and refuses a folder holding anything else,
so a user's files are never deleted. Free of TensorFlow, so that `run.sh` checks LOGDIR at once.

Usage: python logdir.py LOGDIR   (exit status 1 with a message when LOGDIR is refused)
"""

from __future__ import annotations

import os
import shutil
import sys

RUNS = ("broken", "fixed")
_EVENT_FILE = "events.out.tfevents."


def _foreign(logdir: str) -> list[str]:
    """What in `logdir` the demo did not write: anything but its runs holding event files only."""
    found = []
    for entry in sorted(os.listdir(logdir)):
        path = os.path.join(logdir, entry)
        if entry not in RUNS or not os.path.isdir(path) or os.path.islink(path):
            found.append(entry)
            continue
        found += [
            os.path.join(entry, f)
            for f in sorted(os.listdir(path))
            if not (f.startswith(_EVENT_FILE) and os.path.isfile(os.path.join(path, f)))
        ]
    return found


def prepare_logdir(logdir: str) -> None:
    """Makes `logdir` ready for a fresh pair of runs, deleting only runs an earlier demo wrote.

    Raises:
      SystemExit: `logdir` is a file, or holds something the demo did not write (named).
    """
    if os.path.exists(logdir) and not os.path.isdir(logdir):
        raise SystemExit(f"demo: LOGDIR {logdir!r} is a file; give a new or empty folder")
    if os.path.isdir(logdir):
        foreign = _foreign(logdir)
        if foreign:
            shown = ", ".join(foreign[:5]) + (
                f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
            )
            raise SystemExit(
                f"demo: LOGDIR {logdir!r} holds files the demo did not write ({shown}); "
                "nothing was deleted. Give a new or empty folder."
            )
        for run in RUNS:
            shutil.rmtree(os.path.join(logdir, run), ignore_errors=True)
    os.makedirs(logdir, exist_ok=True)


if __name__ == "__main__":
    prepare_logdir(sys.argv[1])
