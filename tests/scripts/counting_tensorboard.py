"""A real TensorBoard whose plugin counts its expensive computations, for the single-flight test.

Usage: python tests/scripts/counting_tensorboard.py COUNT_FILE [tensorboard flags...]
Each time the plugin computes a diagnosis, a graph version's JSON parts or a group's layout, a
line naming it is appended to COUNT_FILE. The computation itself is the plugin's own, unchanged;
it is held for 0.5 s first, so that concurrent first requests surely overlap on a shared machine.
"""
from __future__ import annotations

import functools
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from tb_gradflow.plugin import groups, views

_LOCK = threading.Lock()


def counted(name: str, count_file: str, function: Callable) -> Callable:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _LOCK, open(count_file, "a") as f:
            f.write(name + "\n")
        time.sleep(0.5)
        return function(*args, **kwargs)

    return wrapper


def main() -> None:
    count_file = sys.argv.pop(1)
    views.R.diagnosis_body = counted("diagnosis", count_file, views.R.diagnosis_body)
    views.layer_series = counted("layers", count_file, views.layer_series)
    views._version_parts = counted("graph", count_file, views._version_parts)  # pylint: disable=protected-access
    groups.group_layout = counted("graph_groups", count_file, groups.group_layout)
    from tensorboard import main as tb_main

    tb_main.run_main()


if __name__ == "__main__":
    main()
