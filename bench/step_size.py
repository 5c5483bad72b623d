"""Bytes one logged gradflow step stores, for Keras' ResNet50 (target: <= 4 KB), in today's
format and as format version 1 stored the same values.

Run: .venv/bin/python bench/step_size.py
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from support.models import resnet50  # noqa: E402
from tb_gradflow.capture.analyze import run_probe  # noqa: E402
from tb_gradflow.format import metadata, records  # noqa: E402
from tb_gradflow.proto import gradflow_pb2  # noqa: E402

TARGET_BYTES = 4096


def main() -> None:
    _, loss_fn, args = resnet50()
    result = run_probe(loss_fn, args, {}, None, None)
    graph, step = result.graph, result.step
    n_ops, n_vars = len(graph.ops), len(graph.variables)
    op_codes, op_norms, var_codes, var_norms = records.step_arrays(step, n_ops, n_vars)
    version_1 = gradflow_pb2.Step(
        graph_id=step.graph_id, op_states=op_codes.tobytes(), op_norms=op_norms.tolist(),
        variable_states=var_codes.tobytes(), variable_norms=var_norms.tolist(), loss=step.loss,
    )
    size = len(step.SerializeToString())
    print(f"ResNet50: {n_ops} ops on the loss path, {n_vars} variables")
    print(f"bytes per step, format version {metadata.FORMAT_VERSION}: {size} (target <= {TARGET_BYTES}: "
          f"{'met' if size <= TARGET_BYTES else 'MISSED'})")
    presence = sum(len(getattr(step, f)) for f in (
        "op_presence_stored", "op_presence_codes", "variable_presence_stored", "variable_presence_codes"))
    print(f"  of which presence: {presence} ({len(step.op_presence_codes)} ops and "
          f"{len(step.variable_presence_codes)} variables whose state does not imply it)")
    print(f"bytes per step, format version 1 layout of the same values: {version_1.ByteSize()}")
    print(f"ratio: {size / version_1.ByteSize():.2f}")
    print(f"steps in 256 MiB (the Rust data server's reply limit): {(256 << 20) // (size + 48):,}")


if __name__ == "__main__":
    main()
