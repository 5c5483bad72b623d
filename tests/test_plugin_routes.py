"""The plugin's JSON routes over a real TensorBoard, under both loaders, on the shared logdir.

Ground truth is the reader over a local logdir and `tb-gradflow report --json`, which read the
same event files without TensorBoard's server.
"""
from __future__ import annotations

import contextlib
import gzip
import io
import json
import urllib.parse

import pytest

from support.plugin_logdirs import CUT_STEPS, PRISTINE_STEPS, RETRACE_STEPS, TAG, retrace_batch
from support.plugin_servers import LOADERS, plugin_logdir, plugin_tensorboard
from support.tensorboard_proc import fetch, fetch_json
from tb_gradflow import cli
from tb_gradflow.diagnosis import diagnosis_json
from tb_gradflow.format import metadata
from tb_gradflow.json_values import json_float as _json_norm
from tb_gradflow.plugin.views import NORM_DIGITS
from tb_gradflow.reading.local_logdir import local_provider
from tb_gradflow.reading.reader import GradflowReader

STATES = {"flowing", "zero", "none", "nonfinite"}
CAUSES = {None, "numpy_function", "stop_gradient", "integer_cast", "non_differentiable", "custom_gradient",
          "integer_variable", "detach", "numpy"}
OP_COLUMNS = {
    "name", "type", "scope", "inputs", "variable_inputs", "parent", "shape", "dtype", "source",
    "state", "norm", "measured", "cause", "cause_detail", "starved", "presence", "presence_at_input",
    "units", "dead_units", "iteration_norms",
}
GRAPH_KEYS = {
    "run", "tag", "step", "steps", "count", "graph_id", "graph_version", "graph_versions", "loss",
    "fallback_reason", "ops", "variables", "cut_points", "starved_variables", "zero_variables",
    "nonfinite_variables",
}


@pytest.fixture(scope="module", params=LOADERS, ids=[f"load_fast={v}" for v in LOADERS])
def tb(request):
    return plugin_tensorboard(request.param)


@pytest.fixture(scope="module")
def logdir() -> str:
    return plugin_logdir()[0]


@pytest.fixture(scope="module")
def expected() -> dict:
    return plugin_logdir()[1]


@pytest.fixture(scope="module")
def local(logdir):
    """Series read without a TensorBoard server: {(run, tag): TagSeries}."""
    reader = GradflowReader(local_provider(logdir), warn=lambda message: None)
    listing = reader.list()
    return {(run, tag): reader.read(run, tag, info) for run, tags in listing.items() for tag, info in tags.items()}


def get(tb, route: str, **params) -> tuple[int, dict]:
    query = urllib.parse.urlencode(params)
    return fetch_json(tb.plugin_url(f"{route}?{query}" if query else route))


def ok(tb, route: str, **params) -> dict:
    status, body = get(tb, route, **params)
    assert status == 200, (route, params, body)
    return body


def test_tab_is_listed_as_dynamic_plugin(tb):
    status, listing = fetch_json(tb.url + "/data/plugins_listing")
    entry = listing["gradflow"]
    assert entry["enabled"] is True
    assert entry["tab_name"] == "Gradient Flow"
    assert entry["loading_mechanism"] == {"type": "IFRAME", "module_path": "/data/plugin/gradflow/index.js"}


def test_runs_lists_every_logged_step_of_good_runs(tb, expected):
    runs = ok(tb, "runs")
    for run, tags in expected.items():
        if tags is None:
            continue
        for tag, steps in tags.items():
            entry = runs[run][tag]
            assert entry["steps"] == [steps[0], steps[-1]]
            assert entry["count"] == len(steps)
    assert runs["cut"][TAG]["count"] == CUT_STEPS
    assert runs["cut"][TAG]["description"] == "encoder starved by a numpy_function"
    assert runs["cut"][TAG]["graph_versions"] == 1
    assert runs["retrace"][TAG]["graph_versions"] == 2
    assert set(runs["keras/train"]) == {TAG}


def test_hostile_runs_are_skipped_with_a_warning_and_the_rest_served(tb):
    runs = ok(tb, "runs")
    assert "hostile/unknown_version" not in runs
    assert "hostile/corrupt_graph" not in runs
    assert set(runs["hostile/malformed"]) == {TAG}  # "all_bad" holds only malformed tensors
    log = tb.log().splitlines()
    for needle, what in [
        ("run 'hostile/unknown_version', tag 'gradflow'", f"format version {metadata.FORMAT_VERSION + 98}"),
        ("run 'hostile/corrupt_graph', tag 'gradflow/_graph/", "malformed gradflow graph"),
        ("run 'hostile/corrupt_graph', tag 'gradflow', step 0", "is missing"),
        ("run 'hostile/malformed', tag 'all_bad'", "not a scalar string"),
        ("run 'hostile/malformed', tag 'gradflow', step 11", "not a scalar string"),
    ]:
        assert any(needle in line and what in line for line in log), (needle, what, log[-40:])
    # Listings run at every request; each distinct warning is logged once.
    unknown = [line for line in log if "'hostile/unknown_version', tag 'gradflow':" in line]
    assert len(unknown) == 1, unknown
    for run in ("hostile/unknown_version", "hostile/corrupt_graph"):
        status, body = get(tb, "graph", run=run, tag=TAG)
        assert status == 404 and "error" in body


def test_damaged_event_files_serve_only_readable_steps(tb):
    runs = ok(tb, "runs")
    truncated = runs["hostile/truncated"][TAG]
    # A truncated file looks like one being written: every complete record up to the cut.
    assert truncated["steps"][0] == 0 and truncated["steps"][1] < PRISTINE_STEPS - 1
    assert truncated["count"] == truncated["steps"][1] + 1
    for run in ("hostile/truncated", "hostile/flipped"):
        if run not in runs:  # a loader may drop a file it cannot frame; nothing else may break
            continue
        history = ok(tb, "history", run=run, tag=TAG, variable="decoder/kernel")
        assert set(history["steps"]) <= set(range(PRISTINE_STEPS))
        graph = ok(tb, "graph", run=run, tag=TAG)
        assert graph["step"] == runs[run][TAG]["steps"][1]


def check_graph_shape(graph: dict) -> None:
    """The contract of docs/routes.md: keys, column lengths, index ranges, vocabularies."""
    assert set(graph) == GRAPH_KEYS
    ops, variables = graph["ops"], graph["variables"]
    assert set(ops) == OP_COLUMNS
    n_ops, n_vars = len(ops["name"]), len(variables["name"])
    assert all(len(column) == n_ops for column in ops.values())
    assert set(variables) == {"name", "layer", "shape", "state", "norm", "presence", "sparse_gradient"}
    assert all(len(column) == n_vars for column in variables.values())
    assert set(ops["state"]) | set(variables["state"]) <= STATES
    assert set(ops["cause"]) <= CAUSES
    for i in range(n_ops):
        assert all(0 <= j < n_ops for j in ops["inputs"][i])
        assert all(0 <= j < n_vars for j in ops["variable_inputs"][i] + ops["starved"][i])
        assert -1 <= ops["parent"][i] < n_ops
        assert ops["scope"][i] == ops["name"][i].rpartition("/")[0]
        assert isinstance(ops["measured"][i], bool)
        if ops["state"][i] == "none" or not ops["measured"][i]:
            assert ops["norm"][i] is None
    for cut in graph["cut_points"]:
        assert set(cut) == {"op", "op_name", "op_type", "cause", "source", "detail", "starved_variables",
                            "parallel_cuts", "library_source"}
        assert ops["name"][cut["op"]] == cut["op_name"] and ops["cause"][cut["op"]] == cut["cause"]
        assert cut["starved_variables"] == [variables["name"][j] for j in ops["starved"][cut["op"]]]
    for key, state in (("starved_variables", "none"), ("zero_variables", "zero"), ("nonfinite_variables", "nonfinite")):
        assert graph[key] == [n for n, s in zip(variables["name"], variables["state"], strict=False) if s == state]
    assert graph["steps"][0] <= graph["step"] <= graph["steps"][1]
    assert 1 <= graph["graph_version"] <= graph["graph_versions"]


def test_graph_shows_the_cut_and_what_it_starves(tb):
    graph = ok(tb, "graph", run="cut", tag=TAG)
    check_graph_shape(graph)
    assert graph["step"] == CUT_STEPS - 1 and graph["count"] == CUT_STEPS
    assert (graph["run"], graph["tag"], graph["graph_version"], graph["graph_versions"]) == ("cut", TAG, 1, 1)
    (cut,) = graph["cut_points"]
    assert (cut["op_type"], cut["cause"]) == ("PyFunc", "numpy_function")
    assert cut["source"].startswith("tests/support/plugin_logdirs.py:")
    assert cut["starved_variables"] == ["encoder/kernel", "encoder/bias"]
    assert graph["starved_variables"] == ["encoder/kernel", "encoder/bias"]
    assert graph["zero_variables"] == ["gate/kernel", "gate/bias"]
    assert graph["nonfinite_variables"] == []
    assert isinstance(graph["loss"], float) and graph["fallback_reason"] is None


@pytest.mark.parametrize("step", [0, 517, CUT_STEPS - 1])
def test_graph_values_match_the_reader_at_each_step(tb, local, step):
    graph = ok(tb, "graph", run="cut", tag=TAG, step=step)
    report = local[("cut", TAG)].report(step)
    assert graph["step"] == step
    assert graph["ops"]["name"] == [o.name for o in report.ops]
    assert graph["ops"]["state"] == [o.state for o in report.ops]
    assert graph["ops"]["norm"] == norms_json([o.norm for o in report.ops])
    assert graph["variables"]["norm"] == norms_json([v.norm for v in report.variables.values()])
    assert graph["loss"] == pytest.approx(report.loss)


def test_graph_versions_of_a_retraced_run(tb):
    by_step = {s: ok(tb, "graph", run="retrace", tag=TAG, step=s) for s in range(RETRACE_STEPS)}
    for graph in by_step.values():
        check_graph_shape(graph)
    ids = {retrace_batch(s): g["graph_id"] for s, g in by_step.items()}
    assert len(set(ids.values())) == 2
    # Numbered in order of first use: step 0 has batch 8, step 2 the first batch of 4.
    assert by_step[0]["graph_version"] == 1 and by_step[2]["graph_version"] == 2
    for s, graph in by_step.items():
        assert graph["graph_id"] == ids[retrace_batch(s)]
        assert graph["ops"]["shape"][graph["ops"]["type"].index("Placeholder")] == [f"{retrace_batch(s)}x3"]


def test_history_of_an_op_and_of_a_variable(tb, local):
    series = local[("cut", TAG)]
    history = ok(tb, "history", run="cut", tag=TAG, variable="decoder/kernel")
    assert set(history) == {"run", "tag", "variable", "steps", "states", "norms", "presences"}
    assert history["steps"] == list(range(CUT_STEPS))
    assert set(history["states"]) == {"flowing"}
    for step in (0, 333, CUT_STEPS - 1):
        assert history["norms"][step] == norms_json([series.report(step).variables["decoder/kernel"].norm])[0]
    starved = ok(tb, "history", run="cut", tag=TAG, variable="encoder/kernel")
    assert set(starved["states"]) == {"none"} and set(starved["norms"]) == {None}
    op = ok(tb, "history", run="cut", tag=TAG, op="PyFunc")
    assert set(op) == {"run", "tag", "op", "steps", "states", "norms", "presences"}
    assert op["op"] == "PyFunc" and len(op["steps"]) == len(op["states"]) == len(op["norms"]) == CUT_STEPS


def test_history_merges_interleaved_graph_versions(tb, local):
    history = ok(tb, "history", run="retrace", tag=TAG, variable="decoder/kernel")
    assert history["steps"] == list(range(RETRACE_STEPS))
    series = local[("retrace", TAG)]
    norms = [series.report(s).variables["decoder/kernel"].norm for s in range(RETRACE_STEPS)]
    assert history["norms"] == norms_json(norms)


def norms_json(norms: list) -> list:
    """Norms as the routes spell them: NORM_DIGITS significant digits, null, "inf", "nan"."""
    return [n if isinstance(n, str) or n is None else float(f"{n:.{NORM_DIGITS}g}") for n in map(_json_norm, norms)]


def cli_json(logdir: str, run: str) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        cli.main(["report", logdir, "--json", "--run", run])
    return json.loads(out.getvalue())["runs"][run]["tags"]


@pytest.mark.parametrize("run", ["cut", "keras/train"])
def test_diagnosis_is_what_the_cli_prints(tb, logdir, run):
    diagnosis = ok(tb, "diagnosis", run=run, tag=TAG)
    expected = cli_json(logdir, run)[TAG]
    assert diagnosis.pop("step") == expected["last_step"]
    # The CLI adds the layers over training, which the tab reads from the `layers` route.
    layers = ok(tb, "layers", run=run, tag=TAG, columns=10_000)
    assert expected.pop("layers") == {k: v for k, v in layers.items() if k not in ("run", "tag")}
    assert diagnosis == expected


def test_diagnosis_at_a_step(tb, local):
    diagnosis = ok(tb, "diagnosis", run="cut", tag=TAG, step=42)
    expected = diagnosis_json(local[("cut", TAG)], 42)
    assert diagnosis.pop("step") == 42
    assert diagnosis == json.loads(json.dumps(expected))
    assert diagnosis["last_step"] == CUT_STEPS - 1


BAD_REQUESTS = [
    ("graph", {"tag": TAG}, 400),
    ("graph", {"run": "cut"}, 400),
    ("graph", {"run": "", "tag": TAG}, 400),
    ("graph", {"run": "cut", "tag": TAG, "step": "last"}, 400),
    ("graph", {"run": "cut", "tag": TAG, "step": "1.5"}, 400),
    ("graph", {"run": "cut", "tag": TAG, "step": "99999999999999999999999"}, 400),
    ("diagnosis", {"run": "cut", "tag": TAG, "step": " 3"}, 400),
    ("history", {"run": "cut", "tag": TAG}, 400),
    ("history", {"run": "cut", "tag": TAG, "op": "PyFunc", "variable": "decoder/kernel"}, 400),
    ("graph", {"run": "nope", "tag": TAG}, 404),
    ("graph", {"run": "cut", "tag": "nope"}, 404),
    ("graph", {"run": "cut", "tag": TAG, "step": str(CUT_STEPS)}, 404),
    ("diagnosis", {"run": "cut", "tag": TAG, "step": "-1"}, 404),
    ("history", {"run": "cut", "tag": TAG, "op": "nope"}, 404),
    ("history", {"run": "cut", "tag": TAG, "variable": "PyFunc"}, 404),
    ("history", {"run": "hostile/malformed", "tag": "all_bad", "op": "PyFunc"}, 404),
]


@pytest.mark.parametrize("route,params,code", BAD_REQUESTS)
def test_bad_request_answers_json_error(tb, route, params, code):
    status, headers, body = fetch(tb.plugin_url(f"{route}?{urllib.parse.urlencode(params)}"))
    assert status == code
    assert headers["Content-Type"].startswith("application/json")
    assert isinstance(json.loads(body)["error"], str)


def test_repeated_parameter_is_a_bad_request(tb):
    status, body = fetch_json(tb.plugin_url(f"graph?run=cut&run=retrace&tag={TAG}"))
    assert status == 400 and "run" in body["error"]


def test_responses_are_gzipped_json_with_nosniff(tb):
    url = tb.plugin_url(f"graph?run=cut&tag={TAG}")
    status, headers, body = fetch(url, headers={"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Content-Type"].startswith("application/json")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert json.loads(gzip.decompress(body)) == fetch_json(url)[1]
