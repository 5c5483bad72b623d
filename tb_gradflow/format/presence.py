"""Presence in a Step: one byte per value that its gradient state does not already imply.

Presence is the fraction of a gradient's elements that are nonzero and finite. Most values follow
from the state (a flowing gradient is usually dense, a zero one has presence 0), so a Step stores
a bitmap of the values that differ from that default and one code byte for each of them. A ResNet50
step, whose ReLUs pass back about half of their gradient, stays within 4 KB that way.

A code is 0 for unknown, else c in 1..255 for the fraction (c - 1) / 254: within 1/254 of the
measured value, with 0 and 1 exact (a fraction strictly between them never rounds onto them).
"""
from __future__ import annotations

import numpy as np

from tb_gradflow import vocabulary as V
from tb_gradflow.format.metadata import FormatError

UNKNOWN_CODE = 0
LEVELS = 254
# The largest difference between a stored presence and the measured fraction.
PRECISION = 1.0 / LEVELS

_FLOWING, _ZERO = V.STATE_CODE[V.FLOWING], V.STATE_CODE[V.ZERO]


def default_presence(state_codes: np.ndarray) -> np.ndarray:
    """What a state implies when no code is stored: flowing 1, zero 0, otherwise unknown (NaN)."""
    codes = np.asarray(state_codes)
    out = np.full(codes.shape, np.nan, np.float32)
    out[codes == _FLOWING] = 1.0
    out[codes == _ZERO] = 0.0
    return out


def to_codes(presence: np.ndarray) -> np.ndarray:
    """Code bytes of fractions (NaN unknown); a fraction strictly inside (0, 1) stays inside."""
    p = np.asarray(presence, np.float64)
    known = np.isfinite(p)
    # np.minimum and np.maximum: np.clip's own checks cost more than the clipping here.
    clipped = np.minimum(np.maximum(np.where(known, p, 0.0), 0.0), 1.0)
    # Levels 1 and LEVELS - 1 at least and at most for fractions inside (0, 1).
    levels = np.minimum(np.maximum(np.rint(clipped * LEVELS), clipped > 0), LEVELS - (clipped < 1))
    return np.where(known, levels + 1, UNKNOWN_CODE).astype(np.uint8)


# The code each state implies, by state code: default_presence once, as codes.
_IMPLIED_CODES = to_codes(default_presence(np.arange(len(V.STATES))))


def from_codes(codes: np.ndarray) -> np.ndarray:
    """Presence fractions back from their stored codes (NaN where unknown)."""
    codes = np.asarray(codes, np.uint8)
    values = (codes.astype(np.float32) - 1.0) / LEVELS
    return np.where(codes == UNKNOWN_CODE, np.float32(np.nan), values).astype(np.float32)


def encode(state_codes: np.ndarray, presence: np.ndarray) -> tuple[bytes, bytes]:
    """(bitmap of stored values, their code bytes in order) for one row of values."""
    return encode_rows([(state_codes, presence)])[0]


def encode_rows(rows: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[bytes, bytes]]:
    """`encode` of several rows (a step's ops and its variables), their codes made at once."""
    codes = to_codes(np.concatenate([np.asarray(p, np.float64) for _, p in rows]))
    stored = codes != _IMPLIED_CODES[np.concatenate([np.asarray(s, np.uint8) for s, _ in rows])]
    out, start = [], 0
    for states, _ in rows:
        end = start + len(states)
        row_stored = stored[start:end]
        out.append((np.packbits(row_stored, bitorder="little").tobytes(), codes[start:end][row_stored].tobytes()))
        start = end
    return out


def stored_mask(bitmaps: np.ndarray, n: int) -> np.ndarray:
    """Booleans [rows, n] of bitmaps [rows, ceil(n/8)] (or one row)."""
    return np.unpackbits(np.asarray(bitmaps, np.uint8), axis=-1, bitorder="little")[..., :n].astype(bool)


def decode_codes(state_codes: np.ndarray, bitmaps: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Code bytes [rows, n] (what a reader keeps: a byte per value) of rows of state codes, their
    bitmaps and all their stored codes in row-major order; `check` must have passed for every row."""
    state_codes = np.asarray(state_codes)
    out = _IMPLIED_CODES[state_codes]
    out[stored_mask(bitmaps, state_codes.shape[-1])] = np.asarray(codes, np.uint8)
    return out


def decode(state_codes: np.ndarray, bitmaps: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Fractions (NaN unknown) of the same; see `decode_codes`."""
    return from_codes(decode_codes(state_codes, bitmaps, codes))


def check(bitmap: bytes, codes: bytes, n: int) -> None:
    """A bitmap of the right length, no bits past `n`, and one code per set bit."""
    if len(bitmap) != -(-n // 8):
        raise FormatError("presence bitmap does not match the graph")
    bits = np.unpackbits(np.frombuffer(bitmap, np.uint8), bitorder="little")
    if bits[n:].any() or int(bits.sum()) != len(codes):
        raise FormatError("presence codes do not match their bitmap")
