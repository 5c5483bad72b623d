"""A writer process that appends prepared event-file records to one file, as told on stdin, and
holds the file open between commands, as a training job's summary writer does.

Usage: python tests/scripts/scripted_writer.py OUT RECORDS
RECORDS holds framed records back to back. Commands, one a line; after each the file is flushed
and "done" printed:
    write I J   records I to J-1, whole
    torn I      the first 40 bytes of record I only (a write cut short by a full disk)
    half I      the first half of record I (a write in progress)
    rest I      the rest of record I after `half I`
    close       close the file and exit
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support.crafted_logdir import split_records  # noqa: E402


def main() -> None:
    out_path, records_path = sys.argv[1:3]
    with open(records_path, "rb") as f:
        records = split_records(f.read())
    out = open(out_path, "ab")
    for line in sys.stdin:
        command, *numbers = line.split()
        index = [int(n) for n in numbers]
        if command == "write":
            out.write(b"".join(records[index[0] : index[1]]))
        elif command == "torn":
            out.write(records[index[0]][:40])
        elif command == "half":
            out.write(records[index[0]][: len(records[index[0]]) // 2])
        elif command == "rest":
            out.write(records[index[0]][len(records[index[0]]) // 2 :])
        elif command == "close":
            out.close()
            print("done", flush=True)
            return
        out.flush()
        print("done", flush=True)


if __name__ == "__main__":
    main()
