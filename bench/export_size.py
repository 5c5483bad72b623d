"""How big an exported HTML file is, and how long it takes to write and to open.

Logdirs, built in a temporary directory:
- the demo (demo/train.py: two runs of the colour VAE), as it ships (300 steps, every 10th
  logged) and with every one of 1,000 steps logged;
- Keras ResNet50 (1,405 ops, 214 variables) with 1,000 logged steps: traced once with the real
  `tb_gradflow.summary.gradflow`, then 999 more steps with its real states and made-up norms
  that drift like training's (tests/support/event_writer.py), since running ResNet50 1,000 times
  is out of reach here.
For each: `tb-gradflow export` of all runs, the file's size split into data and code, and the
time until the page is ready in headless Chromium from file://.

Usage: python bench/export_size.py [--skip-demo] [--skip-resnet]
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, HERE)


def demo_logdir(root: str, steps: int, log_every: int) -> str:
    logdir = os.path.join(root, f"demo-{steps}-{log_every}")
    subprocess.run([sys.executable, os.path.join(ROOT, "demo", "train.py"), "--logdir", logdir,
                    "--steps", str(steps), "--log-every", str(log_every)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    return logdir


def resnet_logdir(root: str, steps: int) -> str:
    from plugin_speed import trace_resnet

    from support.event_writer import write_steps
    from tb_gradflow.format.records import step_arrays

    logdir = os.path.join(root, "resnet")
    traced = trace_resnet(os.path.join(logdir, "traced"))
    # the traced step's real states (format version 2 packs them: step_arrays reads either)
    op_codes, _, var_codes, _ = step_arrays(traced.step, len(traced.graph.ops), len(traced.graph.variables))
    write_steps(os.path.join(logdir, "train"), traced.graph, range(steps), op_codes, var_codes)
    return logdir


def export(logdir: str, out: str, *extra: str) -> tuple[float, int, int]:
    """Seconds to export, total bytes, bytes of the inlined data."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tb_gradflow", "export", logdir, "-o", out, *extra], check=True,
                   stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    text = open(out, encoding="utf-8").read()
    data = re.search(r'id="gradflow-data">([^<]*)<', text).group(1)
    return seconds, len(text.encode()), len(data)


def ready_ms(path: str) -> float:
    from playwright.sync_api import sync_playwright

    from support.browser import READY, launch

    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        start = time.perf_counter()
        page.goto(f"file://{path}")
        page.wait_for_selector(READY, timeout=120000)
        elapsed = (time.perf_counter() - start) * 1000
        browser.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-resnet", action="store_true")
    parser.add_argument("--resnet-steps", type=int, default=1000)
    args = parser.parse_args()
    cases = []
    with tempfile.TemporaryDirectory() as root:
        if not args.skip_demo:
            cases.append(("demo, 31 logged steps per run, 2 runs", demo_logdir(root, 300, 10)))
            cases.append(("demo, 1,000 logged steps per run, 2 runs", demo_logdir(root, 1000, 1)))
            cases.append(("the same, --max-steps 100", cases[-1][1], "--max-steps", "100"))
        if not args.skip_resnet:
            resnet = resnet_logdir(root, args.resnet_steps)
            cases.append((f"ResNet50, {args.resnet_steps:,} logged steps (+1 traced run)", resnet))
            cases.append(("the same, --max-steps 100", resnet, "--max-steps", "100"))
        print("| logdir | file | of which data | export | ready in Chromium |")
        print("|---|---|---|---|---|")
        for name, logdir, *extra in cases:
            out = os.path.join(root, "out.html")
            seconds, total, data = export(logdir, out, *extra)
            print(f"| {name} | {total / 1024:,.0f} KiB | {data / 1024:,.0f} KiB | {seconds:.1f} s | "
                  f"{ready_ms(out):,.0f} ms |", flush=True)


if __name__ == "__main__":
    main()
