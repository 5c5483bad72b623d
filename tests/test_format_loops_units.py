"""Issue 17's Step fields (dead units, iteration norms) through the format and the story, without
TensorFlow: encoded, checked against their graph, decoded into the report; exploding loops told."""
from __future__ import annotations

import numpy as np
import pytest

from tb_gradflow import vocabulary as V
from tb_gradflow.format.metadata import FormatError
from tb_gradflow.format.records import build_report, check_aligned, encode_step_arrays
from tb_gradflow.proto import gradflow_pb2
from tb_gradflow.story import story


def _graph() -> gradflow_pb2.Graph:
    graph = gradflow_pb2.Graph(graph_id="g", loss_op=3)
    graph.variables.add(name="w", shape="3", dtype="float32")
    graph.ops.add(name="a/Relu", type="Relu", parent=-1, measured=True, presence_at_input=True, units=8)
    graph.ops.add(name="rnn/while", type="While", inputs=[0], parent=-1, measured=True, has_iteration_norms=True)
    graph.ops.add(name="b/Relu", type="Relu", inputs=[1], parent=-1, measured=True, presence_at_input=True, units=4)
    graph.ops.add(name="Sum", type="Sum", inputs=[2], parent=-1, measured=True)
    return graph


def _step(dead, loops) -> gradflow_pb2.Step:
    codes = np.full(4, V.STATE_CODE[V.FLOWING], np.uint8)
    return encode_step_arrays(
        "g", codes, np.ones(4), np.array([1], np.uint8), np.ones(1), 0.5, dead_units=dead, iteration_norms=loops
    )


def test_dead_units_and_iteration_norms_round_trip_and_are_told():
    step = _step([5.0, 1.0], [np.array([3.0, 1e-2, 2e-3])])
    assert list(step.dead_units) == [5, 1] and list(step.iteration_counts) == [3]
    report = build_report(_graph(), gradflow_pb2.Step.FromString(step.SerializeToString()))
    ops = {op.name: op for op in report.ops}
    assert (ops["a/Relu"].units, ops["a/Relu"].dead_units) == (8, 5)
    assert (ops["b/Relu"].units, ops["b/Relu"].dead_units) == (4, 1)
    assert ops["rnn/while"].iteration_norms == pytest.approx((3.0, 1e-2, 2e-3))
    assert ops["Sum"].units is None and ops["Sum"].iteration_norms is None
    told = story(report)
    kinds = [n["kind"] for n in told["notes"]]
    # 5 of 8 is over half; 1 of 4 is not. First 3.0, last 2e-3: explodes through the loop.
    assert kinds.count(V.DEAD_UNITS) == 1 and V.LOOP_EXPLODING in kinds and told["tone"] == "warn"
    (loop,) = [n for n in told["notes"] if n["kind"] == V.LOOP_EXPLODING]
    assert loop["hint"] == V.LOOP_EXPLODING_HINT and "explodes through the loop's 3 iterations" in loop["text"]


def test_a_steady_loop_and_a_step_without_the_new_fields_say_nothing():
    report = build_report(_graph(), _step([], [np.array([1.0, 2.0])]))
    assert all(op.dead_units is None for op in report.ops)
    kinds = [n["kind"] for n in story(report)["notes"]]
    assert V.LOOP_EXPLODING not in kinds and V.LOOP_VANISHING not in kinds and V.DEAD_UNITS not in kinds


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.dead_units.append(1),  # three counts for two counted ops
        lambda s: s.iteration_counts.append(0),  # two loops for one
        lambda s: s.iteration_norms.append(1.0),  # more norms than counted
    ],
)
def test_misaligned_fields_are_a_format_error(mutate):
    step = _step([5.0, 1.0], [np.array([3.0, 1.0])])
    mutate(step)
    with pytest.raises(FormatError):
        check_aligned(_graph(), step)
