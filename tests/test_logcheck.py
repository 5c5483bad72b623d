"""`tb-gradflow check LOGDIR [--repair]` on event files that TensorBoard's readers cannot survive,
crafted byte by byte; after `--repair`, a real TensorBoard serves every step under both loaders."""
from __future__ import annotations

import functools
import os
import subprocess
import sys
import time

import pytest

from support import crafted_logdir as crafted
from support.plugin_servers import LOADERS
from support.tensorboard_proc import TensorBoardProcess, fetch_json
from tb_gradflow import logcheck
from tb_gradflow.reading import live_files

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


def check(logdir: str, *extra: str, idle: str = "0") -> subprocess.CompletedProcess:
    """`tb-gradflow check`; files written by the test a moment ago count as finished unless
    `idle` says otherwise (by default a file written in the last 180 s is taken as live)."""
    return subprocess.run([sys.executable, "-m", "tb_gradflow.cli", "check", logdir, "--idle-seconds", idle, *extra],
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


def test_a_missing_logdir_is_exit_status_3(tmp_path):
    assert check(str(tmp_path / "nowhere")).returncode == 3


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


class ScriptedWriter:
    """tests/scripts/scripted_writer.py appending the records of a run to its event file."""

    SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts", "scripted_writer.py")

    def __init__(self, path: str, framed_records: list[bytes], tmp_path) -> None:
        source = tmp_path / "records.bin"
        source.write_bytes(b"".join(framed_records))
        self.path = path
        self.proc = subprocess.Popen([sys.executable, self.SCRIPT, path, str(source)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def __call__(self, command: str) -> None:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "done"

    def close(self) -> None:
        self("close")
        assert self.proc.wait(timeout=30) == 0


LIVE_STEPS = 60


@functools.cache
def live_records() -> list[bytes]:
    return crafted.step_records(crafted.chain_graph("live-1", 20, 2), range(LIVE_STEPS))


def test_a_disk_full_run_is_not_repaired_while_written_and_loses_nothing_after(tmp_path):
    """The issue's case: a full disk tears steps 10-14, `check --repair` runs at step 30 while the
    writer still holds the file, training goes on to step 59. The repair waits for the end of
    training, and then every valid step is served by both loaders."""
    run_dir = tmp_path / "logs" / "run"
    os.makedirs(run_dir)
    path = str(run_dir / "events.out.tfevents.1.live")
    good = live_records()  # file version, graph, then step k at 2 + k
    writer = ScriptedWriter(path, good, tmp_path)
    try:
        writer("write 0 12")
        for step in range(10, 15):
            writer(f"torn {2 + step}")
        writer("write 17 32")  # steps 15-29
        writer("half 32")  # step 30 on its way
        before = open(path, "rb").read()
        out = check(str(tmp_path / "logs"), "--repair", idle="600")
        assert out.returncode == 1, out.stdout + out.stderr
        assert "still being written (held open for writing by process" in out.stdout, out.stdout
        assert "not repaired" in out.stdout and "after training ends" in out.stdout
        assert "cut short" in out.stdout  # the torn steps: real damage, named
        assert "the last record is cut short" not in out.stdout  # step 30 in progress is not damage
        assert os.listdir(run_dir) == ["events.out.tfevents.1.live"]
        assert open(path, "rb").read() == before
        writer("rest 32")
        writer(f"write 33 {2 + LIVE_STEPS}")
    finally:
        writer.close()
    # Just closed: a recent file is still taken as live unless told it has finished.
    assert "still being written (it was last written" in check(str(tmp_path / "logs"), idle="600").stdout
    out = check(str(tmp_path / "logs"), "--repair")
    assert out.returncode == 0 and "1 repaired" in out.stdout, out.stdout
    kept = [*range(10), *range(15, LIVE_STEPS)]
    assert open(path, "rb").read() == b"".join(good[:12] + good[17:])
    assert check(str(tmp_path / "logs")).returncode == 0
    for load_fast in LOADERS:
        with TensorBoardProcess(str(tmp_path / "logs"), load_fast=load_fast) as tb:
            runs = tb.wait_for_runs({"run": {TAG: len(kept)}}, timeout=90)
            assert runs["run"][TAG]["steps"] == [0, LIVE_STEPS - 1]
            for step in (9, 15, 30, LIVE_STEPS - 1):
                assert fetch_json(tb.plugin_url(f"graph?run=run&tag={TAG}&step={step}"))[0] == 200


def test_a_live_file_cut_at_its_end_is_not_damaged(tmp_path):
    run_dir = tmp_path / "logs" / "run"
    os.makedirs(run_dir)
    writer = ScriptedWriter(str(run_dir / "events.out.tfevents.1.live"), live_records(), tmp_path)
    try:
        writer("write 0 8")
        writer("half 8")
        out = check(str(tmp_path / "logs"))
        assert out.returncode == 0, out.stdout
        assert out.stdout.startswith("live     run/events.out.tfevents.1.live: 8 records; still being written")
        assert "1 event files, 0 damaged" in out.stdout
    finally:
        writer.close()
    assert "DAMAGED" in check(str(tmp_path / "logs")).stdout  # no writer now: a torn last record


def test_liveness_by_age_and_growth(tmp_path):
    path = tmp_path / "events.out.tfevents.1.x"
    path.write_bytes(b"x" * 10)
    assert live_files.liveness(str(path), 10, {}, idle_seconds=60).live  # just written
    assert not live_files.liveness(str(path), 10, {}, idle_seconds=60, now=time.time() + 120).live
    assert "grew" in live_files.liveness(str(path), 5, {}, idle_seconds=0).reason
    assert live_files.liveness(str(path), 10, {os.path.realpath(path): [1]}, idle_seconds=0).live


def test_window_checksums_equal_the_plain_ones():
    import numpy as np

    from tb_gradflow.format.crc32c import masked_crc32c, masked_crc32c_windows

    data = np.random.default_rng(1).integers(0, 256, 300, np.uint8)
    windows = masked_crc32c_windows(data, 8, 290).tolist()
    assert windows == [masked_crc32c(data[i : i + 8].tobytes()) for i in range(290)]


def test_writers_killed_four_times_lose_only_the_record_in_flight(tmp_path):
    """A training job killed with SIGKILL mid-record and restarted four times, each run of it
    with a new event file: every whole step is served by both loaders, and check says that only
    the last record of each killed file is cut short."""
    run_dir = tmp_path / "logs" / "run"
    os.makedirs(run_dir)
    good = live_records()  # file version, graph, then step k at 2 + k
    for k in range(4):  # steps 15k .. 15k + 14 whole, step 15k + 15 cut by the kill
        writer = ScriptedWriter(str(run_dir / f"events.out.tfevents.{k + 1}.killed"),
                                good[:2] + good[2 + 15 * k : 2 + 15 * k + 15] + [good[2 + (15 * k + 15) % LIVE_STEPS]],
                                        tmp_path)
        writer("write 0 17")
        writer("half 17")
        writer.proc.kill()
        writer.proc.wait(timeout=30)
    out = check(str(tmp_path / "logs"))
    assert out.stdout.count("the last record is cut short") == 4 and "miss 0 of them" in out.stdout, out.stdout
    for load_fast in LOADERS:
        with TensorBoardProcess(str(tmp_path / "logs"), load_fast=load_fast) as tb:
            runs = tb.wait_for_runs({"run": {TAG: 60}}, timeout=90)
            assert runs["run"][TAG]["steps"] == [0, 59]
