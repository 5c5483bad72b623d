"""Presence in the Step: codes, the bitmap of values a state does not imply, unknown for steps
written without it, and corrupt presence refused like any other malformed step."""
from __future__ import annotations

import numpy as np
import pytest

from support.presence_logdir import relu_graph
from tb_gradflow.format import presence as P
from tb_gradflow.format.metadata import FormatError
from tb_gradflow.format.records import build_report, check_aligned, decode_step, encode_step, encode_step_arrays

NONE, FLOWING, ZERO, NONFINITE = 0, 1, 2, 3


def test_codes_round_trip_within_one_step_and_keep_0_and_1_exact():
    p = np.concatenate([np.linspace(0, 1, 10001), [1e-9, 1 - 1e-9, np.nan]])
    back = P.from_codes(P.to_codes(p))
    assert np.abs(back[:-1] - p[:-1]).max() <= P.PRECISION
    assert back[0] == 0.0 and back[10000] == 1.0
    assert 0 < back[-3] and back[-2] < 1  # partial never rounds onto "none" or "all"
    assert np.isnan(back[-1])


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 1405])
def test_only_values_the_state_does_not_imply_are_stored(n):
    rng = np.random.default_rng(n)
    states = rng.integers(0, 4, n).astype(np.uint8)
    presence = P.default_presence(states).astype(np.float64)
    partial = rng.random(n) < 0.3
    presence[partial & (states == FLOWING)] = rng.random(n)[partial & (states == FLOWING)]
    presence[states == NONFINITE] = 0.5
    bitmap, codes = P.encode(states, presence)
    assert len(bitmap) == -(-n // 8)
    assert len(codes) == int((partial & (states == FLOWING)).sum() + (states == NONFINITE).sum())
    P.check(bitmap, codes, n)
    back = P.decode(states, np.frombuffer(bitmap, np.uint8), np.frombuffer(codes, np.uint8))
    assert np.allclose(back, presence, atol=P.PRECISION, equal_nan=True)


def test_unknown_where_the_state_would_imply_a_value_is_stored():
    states = np.array([FLOWING, ZERO, NONE], np.uint8)
    bitmap, codes = P.encode(states, np.array([np.nan, np.nan, np.nan]))
    back = P.decode(states, np.frombuffer(bitmap, np.uint8), np.frombuffer(codes, np.uint8))
    assert np.isnan(back).all()


def test_report_reads_presence_and_unknown_without_it():
    with_presence = encode_step("g", ["flowing", "flowing"], [1.0, 1.0], ["flowing"], [2.0], 0.1,
                                op_presence=[0.08, 1.0], variable_presence=[1 / 3])
    report = build_report(relu_graph("Relu"), decode_step(with_presence.SerializeToString()))
    relu = report.ops[0]
    assert relu.presence == pytest.approx(0.08, abs=P.PRECISION) and relu.presence_of == "input"
    assert report.ops[1].presence == 1.0 and report.ops[1].presence_of == "output"
    assert report.variables["w"].presence == pytest.approx(1 / 3, abs=P.PRECISION)
    assert report.to_dict()["ops"][0]["presence"] == relu.presence

    without = encode_step("g", ["flowing", "zero"], [1.0, 0.0], ["zero"], [0.0], 0.1)
    assert not without.has_presence
    old = build_report(relu_graph("Relu"), decode_step(without.SerializeToString()))
    assert [op.presence for op in old.ops] == [None, None]  # unknown, not 0
    assert old.variables["w"].presence is None


@pytest.mark.parametrize("field, value", [
    ("op_presence_stored", b"\x01\x00"),   # bitmap too long
    ("op_presence_stored", b"\x04"),       # a bit past the last op
    ("op_presence_codes", b"\x05\x05"),    # more codes than set bits
    ("variable_presence_stored", b""),     # missing bitmap
])
def test_corrupt_presence_is_a_format_error(field, value):
    step = encode_step_arrays("g", np.array([FLOWING, FLOWING], np.uint8), np.array([1.0, 1.0]),
                              np.array([FLOWING], np.uint8), np.array([1.0]), 0.0,
                              op_presence=np.array([0.5, 1.0]), variable_presence=np.array([1.0]))
    check_aligned(relu_graph("Relu"), step)
    setattr(step, field, value)
    with pytest.raises(FormatError):
        check_aligned(relu_graph("Relu"), step)
