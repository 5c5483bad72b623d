"""How fast `tb-gradflow check` scans a damaged event file, against the check of `main` before
issue 21 (whole file read into memory, every offset after damage tried in pure Python).

Builds one file of about SIZE MB: a run's records (crafted 400-op graph) with, a tenth of the way
in, a torn record followed by a zero-filled stretch (what a full disk leaves) and random bytes,
and the rest of the records after it. Times `logcheck.check_file` of this tree and of git
revision BASE on it, checks both find the same records, prints MB/s and their ratio.

Usage: python bench/check_speed.py [--size 8] [--base 7905907]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from support import crafted_logdir as crafted  # noqa: E402
from tb_gradflow import logcheck  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def damaged_file(path: str, size_mb: float) -> None:
    records = crafted.step_records(crafted.chain_graph("bench-1", 400, 20), range(40))
    step = records[2:]
    body: list[bytes] = records[:2]
    total = int(size_mb * (1 << 20))
    rng = np.random.default_rng(0)
    k = 0
    while sum(map(len, body)) < total // 10:
        body.append(step[k % len(step)])
        k += 1
    body += [step[0][:40], bytes(total * 4 // 10), rng.integers(0, 256, total // 10, np.uint8).tobytes()]
    while sum(map(len, body)) < total:
        body.append(step[k % len(step)])
        k += 1
    with open(path, "wb") as f:
        f.write(b"".join(body))


def load_base(revision: str, directory: str) -> object:
    source = subprocess.run(["git", "show", f"{revision}:tb_gradflow/logcheck.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = os.path.join(directory, "logcheck_base.py")
    with open(path, "w") as f:
        f.write(source)
    spec = importlib.util.spec_from_file_location("logcheck_base", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["logcheck_base"] = module
    spec.loader.exec_module(module)
    return module


def timed(check_file, path: str) -> tuple[float, object]:
    start = time.perf_counter()
    result = check_file(path)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=float, default=8.0)
    parser.add_argument("--base", default="7905907")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "events.out.tfevents.1.bench")
        damaged_file(path, args.size)
        mb = os.path.getsize(path) / (1 << 20)
        new_s, new = timed(logcheck.check_file, path)
        base_s, base = timed(load_base(args.base, tmp).check_file, path)
        assert new.records == base.records and [p.offset for p in new.problems] == [p.offset for p in base.problems]
        print(f"file: {mb:.1f} MB, {len(new.records)} valid records, problems at {[p.offset for p in new.problems]}")
        print(f"base {args.base}: {base_s:.2f} s ({mb / base_s:.2f} MB/s)")
        print(f"this tree:     {new_s:.2f} s ({mb / new_s:.2f} MB/s)")
        print(f"speed-up: {base_s / new_s:.1f}x")


if __name__ == "__main__":
    main()
