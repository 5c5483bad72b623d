"""The TensorFlow-free event file reader: TFRecord framing and CRC-32C checked against
TensorBoard's own pure-Python implementation, damage and truncation."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c as reference

from tb_gradflow.format.crc32c import crc32c, crc32c_many, mask
from tb_gradflow.reading.event_files import RecordError, read_records

SIZES = [0, 1, 3, 4, 5, 255, 256, 1023, 1024, 1025, 4097, 70_001]


def _payloads() -> list[bytes]:
    rng = np.random.default_rng(0)
    return [rng.bytes(n) for n in SIZES]


def _framed(payload: bytes) -> bytes:
    header = struct.pack("<Q", len(payload))
    return header + struct.pack("<I", reference(header)) + payload + struct.pack("<I", reference(payload))


def test_crc32c_matches_the_reference():
    assert crc32c(b"123456789") == 0xE3069283  # the standard check value
    payloads = _payloads()
    assert [mask(c) for c in crc32c_many(payloads)] == [reference(p) for p in payloads]


def test_records_read_back(tmp_path):
    path = tmp_path / "events.out.tfevents.1"
    path.write_bytes(b"".join(_framed(p) for p in _payloads()))
    assert list(read_records(str(path))) == _payloads()


@pytest.mark.parametrize("damaged", [2, 11])  # a small and a large payload
def test_a_flipped_byte_stops_reading_at_that_record(tmp_path, damaged):
    payloads = _payloads()
    data = bytearray(b"".join(_framed(p) for p in payloads))
    offset = sum(16 + len(p) for p in payloads[:damaged]) + 12 + len(payloads[damaged]) // 2
    data[offset] ^= 0x01
    path = tmp_path / "events.out.tfevents.1"
    path.write_bytes(bytes(data))
    got = []
    with pytest.raises(RecordError):
        for payload in read_records(str(path)):
            got.append(payload)
    assert got == payloads[:damaged]


def test_a_record_cut_short_is_a_file_still_being_written(tmp_path):
    payloads = _payloads()
    data = b"".join(_framed(p) for p in payloads)
    path = tmp_path / "events.out.tfevents.1"
    path.write_bytes(data[:-10])
    assert list(read_records(str(path))) == payloads[:-1]


def test_only_gradflow_records_are_checked_and_read(tmp_path):
    """Other plugins' records (even damaged ones) are skipped; a custom tag's later values,
    which carry no metadata, are found by the tag learnt from its first value."""
    from tensorboard.compat.proto import event_pb2, summary_pb2

    from tb_gradflow.format import metadata
    from tb_gradflow.reading.event_files import GradflowRecords

    def event(tag: str, step: int, with_metadata: bool = False) -> bytes:
        value = summary_pb2.Summary.Value(tag=tag)
        value.tensor.string_val.append(b"x")
        if with_metadata:
            value.metadata.CopyFrom(metadata.step_metadata(tag))
        return event_pb2.Event(step=step, summary=summary_pb2.Summary(value=[value])).SerializeToString()

    other, first, later, last = event("loss", 0), event("probe", 0, True), event("probe", 1), event("loss", 1)
    data = bytearray(b"".join(_framed(p) for p in (other, first, later, last)))
    data[12 + len(other) // 2] ^= 0x01  # damage the first, unwanted record
    path = tmp_path / "events.out.tfevents.1"
    path.write_bytes(bytes(data))
    assert list(read_records(str(path), GradflowRecords())) == [first, later]
