""".ci/bootstrap installs torch only as the pinned CPU wheel: its guard refuses anything else.

The guard is the bootstrap's own shell function, run with a `pip` that records its arguments.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

BOOTSTRAP = os.path.join(os.path.dirname(__file__), "..", ".ci", "bootstrap")


def _guard_source() -> str:
    with open(BOOTSTRAP, encoding="utf-8") as f:
        text = f.read()
    pin = re.search(r'^torch_pin="([^"]+)"$', text, re.M)
    body = re.search(r"^pip_guarded\(\) \{\n.*?^\}\n", text, re.M | re.S)
    assert pin and body, "bootstrap lost its torch guard"
    return f'torch_pin="{pin[1]}"\n{body[0]}'


@pytest.mark.parametrize(
    "spec,allowed",
    [
        ("torch", False),
        ("torch>=2.1", False),
        ("torch==2.12.0", False),
        ("torch[opt]", False),
        (".[cpu,torch]", False),
        (".[torch]", False),
        ("torch==2.13.0", True),
        (".[cpu,test]", True),
        ("numpy", True),
    ],
)
def test_bootstrap_refuses_unpinned_torch(tmp_path, spec, allowed):
    pip = tmp_path / ".venv" / "bin" / "pip"
    pip.parent.mkdir(parents=True)
    pip.write_text('#!/bin/sh\necho "$@" > "$(dirname "$0")/called"\n')
    pip.chmod(0o755)
    script = f'set -e\nroot={tmp_path}\n{_guard_source()}\npip_guarded install -q "$1"\n'
    done = subprocess.run(
        ["bash", "-c", script, "bootstrap", spec], capture_output=True, text=True, timeout=30
    )
    called = (pip.parent / "called").exists()
    assert (done.returncode == 0, called) == (allowed, allowed), done.stderr
    if not allowed:
        assert "refusing to install an unpinned torch" in done.stderr


def test_bootstrap_installs_torch_only_through_the_guard():
    with open(BOOTSTRAP, encoding="utf-8") as f:
        lines = [
            line
            for line in f
            if "pip" in line and "torch" in line and not line.lstrip().startswith("#")
        ]
    assert lines and all(
        "pip_guarded" in line or "torch_pin" in line or "refusing" in line or "import torch" in line
        for line in lines
    ), lines
