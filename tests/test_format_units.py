"""Pure logic: gradient states from reductions, the report's text and JSON, format checks."""
from __future__ import annotations

import json
import math

import pytest

from tb_gradflow.capture.reductions import combine, tensor_state
from tb_gradflow.format import metadata
from tb_gradflow.format.metadata import FormatError
from tb_gradflow.format.records import build_report, decode_graph, decode_step, encode_step
from tb_gradflow.proto import gradflow_pb2


@pytest.mark.parametrize(
    "args, state, norm",
    [
        ((False,), "none", None),
        ((True, 12.5, 3.0, -4.0), "flowing", 5.0),
        ((True, 0.0, 0.0, 0.0), "zero", 0.0),
        ((True, 0.0, -math.inf, math.inf), "zero", 0.0),  # empty gradient
        ((True, 0.0, 1e-30, -1e-30), "flowing", 1e-30),  # squares underflowed
        ((True, 0.0), "zero", 0.0),  # op tensors: the sum alone
        ((True, 8.0), "flowing", 4.0),
        ((True, math.inf), "nonfinite", math.inf),
        ((True, math.inf, 3e30, 0.0), "flowing", 3e30),  # squares overflowed, values finite
        ((True, math.inf, math.inf, 0.0), "nonfinite", math.inf),
        ((True, math.inf, 0.0, -math.inf), "nonfinite", math.inf),
    ],
)
def test_tensor_state(args, state, norm):
    got_state, got_norm = tensor_state(*args)
    assert got_state == state
    assert got_norm == norm


def test_tensor_state_nan():
    state, norm = tensor_state(True, math.nan, 1.0, 0.0)
    assert state == "nonfinite" and math.isnan(norm)


def test_combine_outputs_of_one_op():
    assert combine([("flowing", 3.0), ("flowing", 4.0)]) == ("flowing", 5.0)
    assert combine([("zero", 0.0), ("none", None)]) == ("zero", 0.0)
    assert combine([("none", None), ("none", None)]) == ("none", None)
    assert combine([("flowing", 1.0), ("nonfinite", math.inf)]) == ("nonfinite", math.inf)


def _graph() -> gradflow_pb2.Graph:
    graph = gradflow_pb2.Graph(graph_id="g1", loss_op=2)
    graph.variables.add(name="enc/kernel", shape="3x4", dtype="float32")
    graph.variables.add(name="head", shape="4", dtype="float32")
    graph.ops.add(name="enc/MatMul", type="MatMul", source="m.py:3", parent=-1, measured=True)
    graph.ops.add(name="PyFunc", type="PyFunc", inputs=[0], source="m.py:4", cause=1,
                  cause_detail="tf.numpy_function has no gradient", starved_variables=[0],
                  parent=-1, measured=True)
    graph.ops.add(name="Sum", type="Sum", inputs=[1], source="m.py:5", parent=-1, measured=True)
    return graph


def test_report_from_protos_text_and_json():
    step = encode_step("g1", ["none", "flowing", "flowing"], [None, 2.0, 1.0],
                       ["none", "nonfinite"], [None, math.inf], 0.5)
    report = build_report(_graph(), decode_step(step.SerializeToString()), 7)
    assert report.starved_variables == ["enc/kernel"]
    assert report.cut_points[0].starved_variables == ("enc/kernel",)
    assert report.ops[1].inputs == ("enc/MatMul",)
    text = str(report)
    assert "gradflow at step 7" in text
    assert "cut 1: PyFunc 'PyFunc' (numpy_function) at m.py:4" in text
    assert "starves: enc/kernel" in text
    assert "1 variable has a NaN or Inf gradient: head" in text
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    unknown = {"presence": None, "sparse_gradient": False}  # this step stores no presence
    assert data["variables"]["head"] == {"state": "nonfinite", "norm": "inf", **unknown}
    assert data["variables"]["enc/kernel"] == {"state": "none", "norm": None, **unknown}


def test_a_reports_values_are_decoded_on_first_read_and_behave_as_plain_containers():
    import pickle

    step = encode_step("g1", ["none", "flowing", "zero"], [None, 2.0, 0.0], ["none", "flowing"], [None, 1.5], 0.5)
    report = build_report(_graph(), step, 3)
    assert report.variables._records is None and report.ops._records is None  # nothing decoded yet
    assert report.variables["head"].norm == 1.5 and report.variables["enc/kernel"].state == "none"
    assert list(report.variables) == ["enc/kernel", "head"] and len(report.variables) == 2
    assert report.variables == dict(report.variables.items()) and report.variables != {}
    assert [o.state for o in report.ops] == ["none", "flowing", "zero"]
    copy = pickle.loads(pickle.dumps(report))
    assert type(copy.variables) is dict and copy.variables == report.variables
    assert tuple(copy.ops) == tuple(report.ops)


def test_report_of_a_healthy_step():
    graph = _graph()
    graph.ops[1].cause = 0
    del graph.ops[1].starved_variables[:]
    step = encode_step("g1", ["flowing"] * 3, [1.0] * 3, ["flowing"] * 2, [1.0, 2.0], 0.5)
    assert "Gradient reaches every trainable variable." in str(build_report(graph, step))


def test_misaligned_or_malformed_steps_are_format_errors():
    with pytest.raises(FormatError):
        build_report(_graph(), encode_step("other", ["none"] * 3, [None] * 3, ["none"] * 2, [None] * 2, 0.0))
    with pytest.raises(FormatError):
        build_report(_graph(), encode_step("g1", ["none"] * 2, [None] * 2, ["none"] * 2, [None] * 2, 0.0))
    bad_state = encode_step("g1", ["none"] * 3, [None] * 3, ["none"] * 2, [None] * 2, 0.0)
    bad_state.op_states = b"\x00\x09\x00"
    with pytest.raises(FormatError):
        build_report(_graph(), bad_state)
    with pytest.raises(FormatError):
        decode_step(b"\xff\xff\xff")
    with pytest.raises(FormatError):
        decode_graph(b"\x12\x05abc")


def test_plugin_data_versions():
    meta = metadata.step_metadata("flow", "desc")
    data = metadata.parse_plugin_data(meta.plugin_data.content)
    assert (data.version, data.kind, data.name) == (metadata.FORMAT_VERSION, gradflow_pb2.PluginData.STEP, "flow")
    future = gradflow_pb2.PluginData(version=metadata.FORMAT_VERSION + 1, kind=1, name="flow")
    with pytest.raises(FormatError, match="version"):
        metadata.parse_plugin_data(future.SerializeToString())
    with pytest.raises(FormatError):
        metadata.parse_plugin_data(b"\xff\xff")
    graph_meta = metadata.graph_metadata("flow", "abc")
    assert metadata.parse_plugin_data(graph_meta.plugin_data.content).graph_id == "abc"
    assert metadata.graph_tag("flow", "abc") == "flow/_graph/abc"


def test_harmless_blockers_do_not_bury_the_cut_that_starves():
    from tb_gradflow.report import CutPoint, Report, VariableRecord

    harmless = tuple(
        CutPoint(f"bn{i}/moments/StopGradient", "StopGradient", "stop_gradient", f"m.py:{i}", ())
        for i in range(12)
    )
    real = CutPoint("PyFunc", "PyFunc", "numpy_function", "m.py:99", ("enc/kernel",))
    report = Report(
        variables={"enc/kernel": VariableRecord("enc/kernel", "none", None)},
        ops=(), cut_points=harmless[:5] + (real,) + harmless[5:],
    )
    lines = str(report).splitlines()
    assert lines[2].startswith("  cut 1: PyFunc 'PyFunc' (numpy_function) at m.py:99")
    assert "  12 blocking ops starve nothing: another path still carries the gradient" in lines
    assert sum("moments/StopGradient" in line for line in lines) == 10
    assert "    ... and 2 more (report.cut_points)" in lines
    assert sum(line.startswith("    hint (stop_gradient)") for line in lines) == 1

    healthy = Report(variables={"w": VariableRecord("w", "flowing", 1.0)}, ops=(), cut_points=harmless[:1])
    assert "Gradient reaches every trainable variable." in str(healthy)
