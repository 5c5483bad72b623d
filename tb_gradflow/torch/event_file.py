"""An event file of a logdir path, written without TensorFlow.

TensorBoard's `EventFileWriter` (and so torch's `SummaryWriter`) opens files through `tf.io.gfile`,
which imports TensorFlow whenever it is installed. This writer frames the records itself (length,
masked CRC-32C of the length, payload, masked CRC-32C of the payload) with the checksum the
reader uses, and flushes each event, since a path has no owner to flush or close it.
"""

from __future__ import annotations

import itertools
import os
import socket
import struct
import threading
import time

from tensorboard.compat.proto import event_pb2

from tb_gradflow.format.crc32c import masked_crc32c

_counter = itertools.count()


def record_bytes(payload: bytes) -> bytes:
    """One TFRecord: the framing TensorBoard and tb_gradflow's reader check."""
    header = struct.pack("<Q", len(payload))
    return (
        header
        + struct.pack("<I", masked_crc32c(header))
        + payload
        + struct.pack("<I", masked_crc32c(payload))
    )


class EventFile:
    """Appends events to a new `events.out.tfevents.*` file in `logdir`, each on disk at once."""

    def __init__(self, logdir: str):
        os.makedirs(logdir, exist_ok=True)
        name = (
            f"events.out.tfevents.{time.time():.6f}.{socket.gethostname()}.{os.getpid()}"
            f".{next(_counter)}.gradflow"
        )
        self.path = os.path.join(logdir, name)
        self._lock = threading.Lock()
        self._file = open(self.path, "ab")  # noqa: SIM115 - open for the life of the process
        self.add_event(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def add_event(self, event: event_pb2.Event) -> None:
        """Appends one event and flushes it to the file."""
        self.add_serialized(event.SerializeToString())

    def add_serialized(self, event: bytes) -> None:
        """Appends one serialized event, framed, in one write, and flushes it to the file."""
        data = record_bytes(event)
        with self._lock:
            self._file.write(data)
            self._file.flush()

    def close(self) -> None:
        """Closes the file; every event is on disk already, so nothing is lost."""
        with self._lock:
            self._file.close()
