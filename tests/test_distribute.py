"""Logging under tf.distribute.MirroredStrategy with two logical CPU devices."""
from __future__ import annotations

import os
import subprocess
import sys

from tb_gradflow.reading.local_logdir import local_provider
from tb_gradflow.reading.reader import GradflowReader


def test_mirrored_strategy_writes_once_per_step(tmp_path):
    script = os.path.join(os.path.dirname(__file__), "scripts", "mirrored_fit.py")
    proc = subprocess.run([sys.executable, script, str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("OK")
    reader = GradflowReader(local_provider(str(tmp_path)))
    listing = reader.list()
    assert set(listing) == {"train", "loop", "replicas"}
    fit = reader.read("train", "gradflow", listing["train"]["gradflow"])
    assert fit.steps == [1, 2, 3, 4]
    # One event per step, not one per replica.
    assert sum(len(v.steps) for v in fit.versions.values()) == 4
    assert fit.report().starved_variables == []
    loop = reader.read("loop", "gradflow", listing["loop"]["gradflow"])
    assert loop.steps == [0, 1, 2]
    assert "scale" in loop.report().variables
    # From replica context inside a tf.function: the chief writes each step once.
    replicas = reader.read("replicas", "gradflow", listing["replicas"]["gradflow"])
    assert replicas.steps == [1, 2]
    assert sum(len(v.steps) for v in replicas.versions.values()) == 2
    assert replicas.report().starved_variables == []
