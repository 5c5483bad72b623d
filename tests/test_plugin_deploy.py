"""The plugin in the ways TensorBoard is deployed: --logdir_spec, --path_prefix, a data provider
reached over gRPC, and an explicit --samples_per_plugin from the user."""
from __future__ import annotations

import urllib.parse

import pytest

from support.plugin_logdirs import CUT_STEPS, RETRACE_STEPS, TAG
from support.plugin_servers import LOADERS, plugin_logdir
from support.static_placeholder import static_index
from support.tensorboard_proc import TensorBoardProcess, fetch, fetch_json, running_data_server


def graph(tb: TensorBoardProcess, run: str) -> dict:
    status, body = fetch_json(tb.plugin_url(f"graph?run={urllib.parse.quote(run, safe='')}&tag={TAG}"))
    assert status == 200, body
    return body


def test_logdir_spec_names_runs_by_spec():
    logdir, _ = plugin_logdir()
    spec = f"broken:{logdir}/cut,twice:{logdir}/retrace,nested:{logdir}/keras"
    with TensorBoardProcess(None, extra_args=["--logdir_spec", spec]) as tb:
        # TensorBoard names a run by its spec name and its path under that directory.
        runs = tb.wait_for_runs({"broken/.": {TAG: CUT_STEPS}, "twice/.": {TAG: RETRACE_STEPS},
                                 "nested/train": {TAG: 4}})
        assert set(runs) == {"broken/.", "twice/.", "nested/train"}
        assert graph(tb, "broken/.")["starved_variables"] == ["encoder/kernel", "encoder/bias"]
        assert graph(tb, "twice/.")["graph_versions"] == 2


@pytest.mark.parametrize("load_fast", LOADERS)
def test_path_prefix(load_fast):
    logdir, _ = plugin_logdir()
    with static_index() as index, TensorBoardProcess(logdir, load_fast=load_fast, path_prefix="/tb/x") as tb:
        assert tb.url.endswith("/tb/x")
        tb.wait_for_runs({"cut": {TAG: CUT_STEPS}})
        assert graph(tb, "cut")["step"] == CUT_STEPS - 1
        status, headers, body = fetch(tb.url + "/data/plugin_entry.html?name=gradflow")
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        status, headers, body = fetch(tb.plugin_url("index.js"))
        assert status == 200 and headers["Content-Type"].startswith("text/javascript")
        with open(index, "rb") as f:
            assert body == f.read()
        status, _, _ = fetch(tb.url.rsplit("/tb/x", 1)[0] + "/data/plugin/gradflow/runs")
        assert status == 404  # nothing is served outside the prefix


def test_remote_data_provider_over_grpc():
    logdir, _ = plugin_logdir()
    with running_data_server(logdir) as address:
        with TensorBoardProcess(None, extra_args=["--grpc_data_provider", address]) as tb:
            runs = tb.wait_for_runs({"cut": {TAG: CUT_STEPS}, "retrace": {TAG: RETRACE_STEPS}})
            assert "hostile/unknown_version" not in runs
            assert graph(tb, "cut")["cut_points"][0]["cause"] == "numpy_function"
            status, history = fetch_json(tb.plugin_url(f"history?run=retrace&tag={TAG}&variable=decoder%2Fkernel"))
            assert status == 200 and history["steps"] == list(range(RETRACE_STEPS))


@pytest.mark.parametrize("load_fast", LOADERS)
def test_explicit_samples_per_plugin_is_respected(load_fast):
    logdir, _ = plugin_logdir()
    with TensorBoardProcess(logdir, load_fast=load_fast, extra_args=["--samples_per_plugin", "gradflow=50"]) as tb:
        tb.wait_for_runs({"retrace": {TAG: RETRACE_STEPS}, "cut": {TAG: 1}})

        def cut_loaded() -> dict | None:
            cut = fetch_json(tb.plugin_url("runs"))[1]["cut"][TAG]
            return cut if cut["steps"][1] == CUT_STEPS - 1 else None  # both loaders keep the last

        assert tb.wait_until(cut_loaded, what="the last step of run cut")["count"] == 50
        assert graph(tb, "cut")["count"] == 50
