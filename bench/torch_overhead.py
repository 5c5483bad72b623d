"""Cost of `tb_gradflow.torch.gradflow(..., optimizer=)` against one plain PyTorch training step.

For a small MLP and a small CNN (CPU, one thread), measures the median of:
- plain: `zero_grad()`, the loss, `backward()`, `step()`;
- logged: `gradflow(logdir, ..., optimizer=)`, which is that same training step, recorded, with
  the report built and the step written; target <= 1.5x plain;
- capture: `analyze()` alone (a forward recorded with TorchFunctionMode, one autograd.grad pass);
- anomaly: the plain step under `torch.autograd.detect_anomaly()`, the other way to learn the
  user's line of each op, for comparison.
Each ratio is of medians of wall time; `cpu` is the logged ratio in the thread's CPU time, which
other processes on a loaded machine move less.
Run: .venv/bin/python bench/overhead.py --torch [--repeats N] [--min-seconds S]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import tb_gradflow.torch as gt


def _mlp() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    model = nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)
    )
    return model, (torch.randn(128, 784), torch.randint(0, 10, (128,)))


def _cnn() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 8 * 8, 10),
    )
    return model, (torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,)))


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this thread): the second is what the call itself costs,
    less moved by other processes on a loaded machine (one torch thread: its kernels run here)."""
    start, cpu = time.perf_counter(), time.thread_time()
    fn()
    return time.perf_counter() - start, time.thread_time() - cpu


def measure(
    name: str, build: Callable[[], tuple[nn.Module, tuple]], repeats: int, min_seconds: float
) -> dict:
    torch.manual_seed(0)
    model, (x, y) = build()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    logdir = tempfile.mkdtemp(prefix=f"gradflow-bench-torch-{name}-")

    def loss_fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(x), y)

    def plain() -> None:
        opt.zero_grad()
        loss_fn(x, y).backward()
        opt.step()

    def anomaly() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # detect_anomaly warns on every entry
            with torch.autograd.detect_anomaly():
                plain()

    step = iter(range(10**9))
    calls = {
        "plain": plain,
        "logged": lambda: gt.gradflow(
            logdir, "gradflow", loss_fn, x, y, step=next(step), optimizer=opt, strict=True
        ),
        "capture": lambda: gt.analyze(loss_fn, x, y),
        "anomaly": anomaly,
    }
    for fn in calls.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {k: [] for k in calls}
    cpu: dict[str, list[float]] = {k: [] for k in calls}
    started = time.perf_counter()
    while len(times["plain"]) < repeats or time.perf_counter() - started < min_seconds:
        for key, fn in calls.items():  # interleaved, so that drift hits all alike
            wall, used = _timed(fn)
            times[key].append(wall)
            cpu[key].append(used)
    report = gt.analyze(loss_fn, x, y)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "model": name,
        "ops": len(report.ops),
        "repeats": len(times["plain"]),
        **med,
        **{f"{k}_ratio": med[k] / med["plain"] for k in ("logged", "capture", "anomaly")},
        "logged_cpu_ratio": statistics.median(cpu["logged"]) / statistics.median(cpu["plain"]),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch", action="store_true")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--min-seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(
        f"{'model':6} {'ops':>4} {'n':>4} {'plain ms':>9} {'logged ms':>10} {'ratio':>6} "
        f"{'cpu':>5} {'capture':>8} {'anomaly':>8}"
    )
    for name, build in (("mlp", _mlp), ("cnn", _cnn)):
        r = measure(name, build, args.repeats, args.min_seconds)
        print(
            f"{r['model']:6} {r['ops']:4d} {r['repeats']:4d} {1000 * r['plain']:9.2f} "
            f"{1000 * r['logged']:10.2f} "
            f"{r['logged_ratio']:6.2f} {r['logged_cpu_ratio']:5.2f} {r['capture_ratio']:8.2f} "
            f"{r['anomaly_ratio']:8.2f}",
            flush=True,
        )
    print(
        "target: logged ratio <= 1.5 (cpu: the same ratio in this thread's CPU time; capture "
        "and anomaly: ratios of analyze() and of a detect_anomaly step)"
    )
