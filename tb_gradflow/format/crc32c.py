"""CRC-32C (Castagnoli), the checksum of TFRecord framing, fast enough without a C extension.

TensorBoard's pure-Python stub checks records at about 8 MB/s; reading a logdir must take well
under a second. CRC is linear over GF(2), so the payload is cut into equal chunks whose CRCs
numpy computes side by side (one table lookup per byte position, for all chunks at once), and the
chunk CRCs are then folded together with a precomputed "append L zero bytes" operator. The
records of a whole file go through one such pass.
"""
from __future__ import annotations

import functools

import numpy as np

_POLY = 0x82F63B78  # reflected Castagnoli polynomial
_CHUNK = 256  # bytes per chunk in the vectorised path
_SMALL = 1024  # below this, the plain loop is as fast


def _make_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _make_table()
_NP_TABLE = np.array(_TABLE, dtype=np.uint32)


def _update(reg: int, data: bytes) -> int:
    table = _TABLE
    for b in data:
        reg = table[(reg ^ b) & 0xFF] ^ (reg >> 8)
    return reg


@functools.cache
def _zeros_operator() -> tuple[tuple[int, ...], ...]:
    """Four 256-entry tables: the register after `_CHUNK` zero bytes, per byte of the register."""
    columns = [_update(1 << bit, bytes(_CHUNK)) for bit in range(32)]
    tables = []
    for byte in range(4):
        table = []
        for value in range(256):
            out = 0
            for i in range(8):
                if value >> i & 1:
                    out ^= columns[8 * byte + i]
            table.append(out)
        tables.append(tuple(table))
    return tuple(tables)


def crc32c(data: bytes) -> int:
    """The standard CRC-32C of `data` (initial value and final XOR 0xFFFFFFFF)."""
    if len(data) < _SMALL:
        return _update(0xFFFFFFFF, data) ^ 0xFFFFFFFF
    return crc32c_many([data])[0]


def crc32c_many(payloads: list[bytes], small: int = _SMALL) -> list[int]:
    """The CRC-32C of each payload, those of `small` bytes or more computed together in one
    numpy pass (many payloads of a few hundred bytes are faster there too)."""
    out = [0] * len(payloads)
    large = []
    for i, data in enumerate(payloads):
        if len(data) < max(small, 4):
            out[i] = _update(0xFFFFFFFF, data) ^ 0xFFFFFFFF
        else:
            large.append(i)
    if not large:
        return out
    # Starting from 0xFFFFFFFF is the same as starting from 0 with the first four bytes inverted;
    # leading zero bytes leave a zero register unchanged, so each payload is padded in front to
    # whole chunks, and all chunks of all payloads go through the table side by side.
    parts, counts = [], []
    for i in large:
        data = payloads[i]
        pad = -len(data) % _CHUNK
        parts += [bytes(pad), bytes(b ^ 0xFF for b in data[:4]), data[4:]]
        counts.append((len(data) + pad) // _CHUNK)
    # Byte position j of every chunk, contiguous: one row per position.
    columns = np.ascontiguousarray(np.frombuffer(b"".join(parts), dtype=np.uint8).reshape(-1, _CHUNK).T)
    regs = np.zeros(columns.shape[1], dtype=np.uint32)
    for column in columns:
        regs = _NP_TABLE[regs.astype(np.uint8) ^ column] ^ (regs >> 8)
    t0, t1, t2, t3 = _zeros_operator()
    flat = iter(regs.tolist())
    for i, count in zip(large, counts, strict=False):
        reg = 0
        for _ in range(count):
            reg = t0[reg & 0xFF] ^ t1[reg >> 8 & 0xFF] ^ t2[reg >> 16 & 0xFF] ^ t3[reg >> 24] ^ next(flat)
        out[i] = reg ^ 0xFFFFFFFF
    return out


def mask(crc: int) -> int:
    """The masked form TFRecord files store."""
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def masked_crc32c_windows(data: np.ndarray, width: int, count: int) -> np.ndarray:
    """The masked CRC-32C of `data[i : i + width]` for every i below `count`, as uint32: one
    table lookup per byte position for all windows at once (resynchronizing on a damaged event
    file tries every offset as a record header)."""
    reg = np.full(count, 0xFFFFFFFF, np.uint32)
    for k in range(width):
        reg = _NP_TABLE[reg.astype(np.uint8) ^ data[k : k + count]] ^ (reg >> 8)
    crc = reg ^ np.uint32(0xFFFFFFFF)
    return ((crc >> np.uint32(15)) | (crc << np.uint32(17))) + np.uint32(0xA282EAD8)


def masked_crc32c(data: bytes) -> int:
    """The checksum TFRecord stores, to tell a corrupt record from a good one."""
    return mask(crc32c(data))
