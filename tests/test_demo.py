"""`demo/run.sh`: never deletes what it did not write, picks a free port, serves on localhost.

The script runs for real with `DEMO_PYTHON` (this interpreter: no virtualenv is built) and
`DEMO_QUICK=1` (a few training steps)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_SH = os.path.join(ROOT, "demo", "run.sh")


def _env(logdir, **extra: str) -> dict[str, str]:
    return dict(
        os.environ,
        LOGDIR=str(logdir),
        DEMO_PYTHON=sys.executable,
        DEMO_QUICK="1",
        PYTHONPATH=ROOT,
        **extra,
    )


def _tree(folder) -> dict[str, bytes]:
    return {
        os.path.relpath(os.path.join(d, f), folder): open(os.path.join(d, f), "rb").read()
        for d, _, files in os.walk(folder)
        for f in files
    }


@pytest.mark.parametrize(
    "foreign", ["notes.txt", "broken/notes.txt", "mine/events.out.tfevents.1.host"]
)
def test_a_folder_with_the_users_files_is_refused_and_kept(tmp_path, foreign):
    logdir = tmp_path / "logs"
    (logdir / foreign).parent.mkdir(parents=True, exist_ok=True)
    (logdir / foreign).write_text("the user's own")
    before = _tree(logdir)
    done = subprocess.run(
        ["bash", RUN_SH],
        env=_env(logdir, DEMO_NO_SERVE="1"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    named = (
        foreign if foreign.startswith("broken/") else foreign.split("/")[0]
    )  # a folder not ours: by name
    assert done.stderr.strip().splitlines() == [
        f"demo: LOGDIR {str(logdir)!r} holds files the demo did not write ({named}); "
        "nothing was deleted. Give a new or empty folder."
    ]
    assert _tree(logdir) == before  # nothing deleted, nothing written


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))  # no packet is sent; this picks the outgoing interface
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def _connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def test_replaces_its_own_runs_then_serves_on_a_free_localhost_port(tmp_path):
    logdir = tmp_path / "logs"
    old = logdir / "broken" / "events.out.tfevents.1.old"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"")
    taken = socket.socket()  # TensorBoard's usual port is taken: the script must move on
    try:
        taken.bind(("127.0.0.1", 6006))
        taken.listen()
    except OSError:
        pass  # another process holds it, which serves as well
    env = {k: v for k, v in _env(logdir).items() if k != "PORT"}
    proc = subprocess.Popen(
        ["bash", RUN_SH],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        url, lines = None, []
        deadline = time.monotonic() + 300
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("TensorBoard: http://localhost:"):
                url = line.split()[1].split("#")[0]
        assert url is not None, "".join(lines)[-3000:]
        port = int(url.rsplit(":", 1)[1].strip("/"))
        assert port != 6006
        assert "==== broken (numpy lookup)" in "".join(lines)
        assert not old.exists() and (logdir / "fixed").is_dir()
        listing = None
        while listing is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}data/plugins_listing", timeout=5) as r:
                    listing = json.loads(r.read())
            except OSError:
                time.sleep(0.5)
        assert listing is not None and "gradflow" in listing
        address = _non_loopback_address()
        if address is not None:
            assert not _connects(address, port), "served beyond localhost"
    finally:
        taken.close()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
