"""Resident memory of a TensorBoard process group (TensorBoard and its Rust data server)."""
from __future__ import annotations

import os


def group_rss_bytes(pgid: int) -> int:
    """Sum of VmRSS over the processes of process group `pgid`, from /proc."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:  # fields after "(comm)": state, ppid, pgrp
                continue
            with open(f"/proc/{entry}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except (OSError, IndexError, ValueError):
            continue
    return total


def tensorboard_rss_bytes(tb) -> int:
    """Resident bytes of a running `TensorBoardProcess`, its data server included."""
    return group_rss_bytes(tb._proc.pid)  # pylint: disable=protected-access  # started in its own session
