"""How long `tb-gradflow report` takes from the shell, against reading through TensorBoard's
multiplexer (which imports TensorFlow when it is installed, as the CLI did before).

Builds a logdir of RUNS runs x STEPS steps of a small crafted graph (cut, starved variables,
harmless blockers) without TensorFlow, then times fresh processes: `python -m tb_gradflow report`
and the same reading through `tb_gradflow.reading.local_logdir` (TensorBoard's loader). Prints
medians of REPEATS and their ratio.

Usage: python bench/cli_speed.py [--runs 4] [--steps 200] [--repeats 7]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from support.crafted_logdir import CraftedOp, CraftedVariable, crafted_graph  # noqa: E402
from support.event_writer import write_steps  # noqa: E402
from tb_gradflow import vocabulary as V  # noqa: E402

_OLD_PATH = """
import sys
from tb_gradflow.reading.local_logdir import local_provider
from tb_gradflow.reading.reader import GradflowReader
reader = GradflowReader(local_provider(sys.argv[1]))
listing = reader.list()
for run in sorted(listing):
    for tag in sorted(listing[run]):
        print(reader.read(run, tag, listing[run][tag]).report())
"""


def build_logdir(root: str, runs: int, steps: int) -> None:
    ops = [CraftedOp("input", "Placeholder", V.FLOWING)]
    variables = [CraftedVariable(f"block_{i:02d}/{w}",
                                 V.NONE if i < 4 else V.FLOWING) for i in range(8) for w in ("kernel", "bias")]
    for i in range(8):
        ops.append(CraftedOp(f"block_{i:02d}/dense/MatMul", "MatMul", V.FLOWING, inputs=[len(ops) - 1],
                             variable_inputs=[2 * i, 2 * i + 1]))
        if i == 3:
            ops.append(CraftedOp("lookup/PyFunc", "PyFunc", V.FLOWING, inputs=[len(ops) - 1], cause=V.NUMPY_FUNCTION,
                                 starved=range(8)))
    ops.append(CraftedOp("loss", "Mean", V.FLOWING, inputs=[len(ops) - 1]))
    graph = crafted_graph("bench-1", ops, variables)
    op_codes = np.array([V.STATE_CODE[o.state] for o in ops], np.uint8)
    var_codes = np.array([V.STATE_CODE[v.state] for v in variables], np.uint8)
    for r in range(runs):
        write_steps(os.path.join(root, f"run_{r}"), graph, range(steps), op_codes, var_codes, seed=r)


def timed(cmd: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as logdir:
        build_logdir(logdir, args.runs, args.steps)
        bare = timed([sys.executable, "-c", "pass"], args.repeats)
        cli = timed([sys.executable, "-m", "tb_gradflow", "report", logdir], args.repeats)
        old = timed([sys.executable, "-c", _OLD_PATH, logdir], args.repeats)
    print(f"logdir: {args.runs} runs x {args.steps} steps; medians of {args.repeats} fresh processes")
    print(f"python start-up alone:                {bare * 1000:7.0f} ms")
    print(f"tb-gradflow report:                   {cli * 1000:7.0f} ms  (target: well under 1,000 ms)")
    print(f"through TensorBoard's multiplexer:    {old * 1000:7.0f} ms")
    print(f"ratio multiplexer / tb-gradflow:      {old / cli:7.1f}")


if __name__ == "__main__":
    main()
