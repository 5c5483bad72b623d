"""`tb-gradflow check LOGDIR [--repair]` on event files that TensorBoard's readers cannot survive,
crafted byte by byte; after `--repair`, a real TensorBoard serves every step under both loaders."""
from __future__ import annotations

import functools
import time
import os
import subprocess
import sys

import pytest

from support import crafted_logdir as crafted
from support.plugin_servers import LOADERS
from support.tensorboard_proc import TensorBoardProcess, fetch_json
from tb_gradflow import logcheck

TAG = "gradflow"
STEPS = 12


@functools.cache
def records(run: str) -> list[bytes]:
    return crafted.step_records(crafted.chain_graph(f"{run}-1", 20, 2), range(STEPS))


@functools.cache
def damaged_runs() -> dict[str, tuple[bytes, str]]:
    """run -> (file bytes, the problem kind check must report); the damage sits after step 5."""
    def around(run: str, damage: bytes) -> bytes:
        good = records(run)
        return b"".join(good[:8]) + damage + b"".join(good[8:])  # file version, graph, steps 0-5

    last = records("torn_end")
    return {
        "absurd": (around("absurd", crafted.absurd_header()), "absurd length"),
        "not_event": (around("not_event", crafted.framed(b"\xff\xff\xff\xff not an Event")), "not an event"),
        "torn_middle": (around("torn_middle", records("torn_middle")[8][:40]), "torn"),
        "torn_end": (b"".join(last) + last[-1][:30], "torn"),
    }


@pytest.fixture()
def logdir(tmp_path) -> str:
    root = tmp_path / "logs"
    crafted.write_fast_run(str(root / "sound"), crafted.chain_graph("sound-1", 20, 2), range(STEPS))
    for run, (data, _) in damaged_runs().items():
        os.makedirs(root / run)
        (root / run / f"events.out.tfevents.1.{run}").write_bytes(data)
    return str(root)


def check(logdir: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tb_gradflow.cli", "check", logdir, *extra],
                          capture_output=True, text=True, timeout=120)


def test_check_says_what_is_wrong_with_each_file(logdir):
    out = check(logdir)
    assert out.returncode == 1, out.stderr
    blocks = out.stdout.split("\n")
    for run, (_, kind) in damaged_runs().items():
        (line,) = [i for i, b in enumerate(blocks) if b.startswith("DAMAGED") and f"{run}/" in b]
        assert f"{STEPS + 2} valid records" in blocks[line]  # file version, graph and every step
        assert kind in blocks[line + 1], (run, blocks[line : line + 3])
    assert any(b.startswith("ok") and "sound/" in b for b in blocks)
    assert "5 event files, 4 damaged" in out.stdout


def test_problems_point_at_the_damage(logdir):
    for run in ("absurd", "not_event", "torn_middle"):
        before = sum(len(r) for r in records(run)[:8])
        (path,) = logcheck.event_files(os.path.join(logdir, run))
        result = logcheck.check_file(path)
        assert [p.offset for p in result.problems] == [before], (run, result.problems)
        assert result.lost_to_readers == STEPS - 6


def test_repair_keeps_every_valid_record_and_the_original(logdir, tmp_path):
    originals = {run: data for run, (data, _) in damaged_runs().items()}
    out = check(logdir, "--repair")
    assert out.returncode == 0, out.stdout + out.stderr
    for run, data in originals.items():
        names = sorted(os.listdir(os.path.join(logdir, run)))
        assert names == [f"events.out.{logcheck.DAMAGED_MARK}.1.{run}", f"events.out.tfevents.1.{run}"]
        assert open(os.path.join(logdir, run, names[0]), "rb").read() == data
        repaired = open(os.path.join(logdir, run, names[1]), "rb").read()
        assert repaired == b"".join(records(run))
    assert check(logdir).returncode == 0
    for load_fast in LOADERS:
        with TensorBoardProcess(logdir, load_fast=load_fast) as tb:
            tb.wait_for_runs({run: {TAG: STEPS} for run in [*originals, "sound"]}, timeout=90)


def test_a_missing_logdir_is_exit_status_2(tmp_path):
    assert check(str(tmp_path / "nowhere")).returncode == 2


@pytest.mark.parametrize("load_fast", LOADERS, ids=[f"load_fast={v}" for v in LOADERS])
def test_before_repair_a_torn_record_hides_the_steps_after_it(tmp_path, load_fast):
    """What the repair is for: TensorBoard stops at the torn record (the other damages crash or
    stall TensorBoard itself, so they are not started here)."""
    root = tmp_path / "logs"
    crafted.write_fast_run(str(root / "sound"), crafted.chain_graph("sound-1", 20, 2), range(STEPS))
    os.makedirs(root / "torn_middle")
    (root / "torn_middle" / "events.out.tfevents.1.torn").write_bytes(damaged_runs()["torn_middle"][0])
    with TensorBoardProcess(str(root), load_fast=load_fast) as tb:
        runs = tb.wait_for_runs({"sound": {TAG: STEPS}, "torn_middle": {TAG: 1}}, timeout=90)
        time.sleep(3)  # a few more reloads: nothing after the torn record ever arrives
        status, runs = fetch_json(tb.plugin_url("runs"))
    assert status == 200 and runs["torn_middle"][TAG]["count"] == 6, runs
