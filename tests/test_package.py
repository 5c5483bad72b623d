"""The built package: wheel and sdist pass `twine check`; a viewer-only install (TensorBoard, no
TensorFlow) imports the package, loads the plugin in a real TensorBoard and runs the CLI; the
sdist carries its tests and they pass from it.

Slow (a build and a venv install, about a minute); everything else in the suite runs from the
editable install, so this is where packaging mistakes show.
"""
from __future__ import annotations

import glob
import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from support.crafted_logdir import CraftedOp, CraftedVariable, crafted_graph
from support.event_writer import write_steps
from support.tensorboard_proc import TensorBoardProcess, fetch_json
from tb_gradflow import vocabulary as V

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kwargs)


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("dist")
    built = _run([sys.executable, "-m", "build", "--outdir", str(out), ROOT])
    assert built.returncode == 0, built.stderr[-3000:]
    return {"wheel": glob.glob(f"{out}/*.whl")[0], "sdist": glob.glob(f"{out}/*.tar.gz")[0]}


@pytest.fixture(scope="module")
def viewer_venv(tmp_path_factory, dist) -> str:
    """A fresh venv with the wheel and its required dependencies only: no TensorFlow, no Keras."""
    venv = tmp_path_factory.mktemp("viewer-venv")
    assert _run([sys.executable, "-m", "venv", str(venv)]).returncode == 0
    done = _run([f"{venv}/bin/pip", "install", "-q", dist["wheel"]])
    assert done.returncode == 0, done.stderr[-3000:]
    return str(venv)


def cut_logdir(root: str) -> str:
    """A run with a numpy_function cut starving two variables, written without TensorFlow."""
    ops = [
        CraftedOp("x", "Placeholder", V.FLOWING),
        CraftedOp("enc/MatMul", "MatMul", V.FLOWING, inputs=[0], variable_inputs=[0]),
        CraftedOp("lookup/PyFunc", "PyFunc", V.FLOWING, inputs=[1], cause=V.NUMPY_FUNCTION, starved=[0, 1]),
        CraftedOp("dec/MatMul", "MatMul", V.FLOWING, inputs=[2], variable_inputs=[2]),
        CraftedOp("loss", "Mean", V.FLOWING, inputs=[3]),
    ]
    variables = [CraftedVariable("enc/kernel", V.NONE), CraftedVariable("enc/bias", V.NONE),
                 CraftedVariable("dec/kernel", V.FLOWING)]
    graph = crafted_graph("pkg-1", ops, variables)
    codes = lambda xs: np.array([V.STATE_CODE[x.state] for x in xs], np.uint8)  # noqa: E731
    write_steps(os.path.join(root, "broken"), graph, range(0, 50, 10), codes(ops), codes(variables))
    return root


def test_twine_check_passes(dist):
    done = _run([sys.executable, "-m", "twine", "check", "--strict", dist["wheel"], dist["sdist"]])
    assert done.returncode == 0, done.stdout + done.stderr


def test_wheel_metadata(dist):
    import zipfile

    with zipfile.ZipFile(dist["wheel"]) as wheel:
        names = wheel.namelist()
        meta = wheel.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "tb_gradflow/py.typed" in names and "tb_gradflow/plugin/static/index.js" in names
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert "Description-Content-Type: text/markdown" in meta and "## Install" in meta
    requires = [line for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    hard = [r for r in requires if "extra ==" not in r]
    assert not any("tensorflow" in r or "keras" in r for r in hard), hard
    assert any("keras" in r and 'extra == "cpu"' in r for r in requires)
    # The [torch] extra is torch alone, and torch is in no other requirement.
    torch_reqs = [r for r in requires if "torch" in r.split(";")[0]]
    assert torch_reqs == ['Requires-Dist: torch>=2.1; extra == "torch"'], torch_reqs


def test_viewer_only_install_imports_and_runs_the_cli(viewer_venv, tmp_path):
    python = f"{viewer_venv}/bin/python"
    probe = (
        "import importlib.util as u, tb_gradflow, tb_gradflow.plugin.plugin, tb_gradflow.cli\n"
        "assert u.find_spec('tensorflow') is None and u.find_spec('keras') is None\n"
        "try:\n    tb_gradflow.analyze\nexcept ModuleNotFoundError as e:\n    print('MESSAGE', e)\n"
    )
    done = _run([python, "-c", probe])
    assert done.returncode == 0, done.stderr
    assert 'pip install "tb_gradflow[cpu]"' in done.stdout
    logdir = cut_logdir(str(tmp_path))
    report = _run([f"{viewer_venv}/bin/tb-gradflow", "report", logdir])
    assert report.returncode == 1, report.stderr
    assert "lookup/PyFunc" in report.stdout and "enc/kernel, enc/bias" in report.stdout
    assert report.stderr == ""
    out = tmp_path / "gradflow.html"
    export = _run([f"{viewer_venv}/bin/tb-gradflow", "export", logdir, "-o", str(out)])
    assert export.returncode == 0, export.stderr
    assert 'id="gradflow-data"' in out.read_text(encoding="utf-8")


class _VenvTensorBoard(TensorBoardProcess):
    def __init__(self, python: str, logdir: str):
        super().__init__(logdir, load_fast="false")
        self.python = python

    def command(self) -> list[str]:
        return [self.python, *super().command()[1:]]


def test_viewer_only_tensorboard_serves_the_tab(viewer_venv, tmp_path):
    logdir = cut_logdir(str(tmp_path))
    with _VenvTensorBoard(f"{viewer_venv}/bin/python", logdir) as tb:
        status, body = fetch_json(tb.plugin_url("graph?run=broken&tag=gradflow"))
        assert status == 200 and body["starved_variables"] == ["enc/kernel", "enc/bias"]


def test_sdist_runs_its_own_tests(dist, tmp_path):
    with tarfile.open(dist["sdist"]) as tar:
        tar.extractall(tmp_path, filter="data")
    (unpacked,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    env = dict(os.environ, PYTHONPATH=str(unpacked))
    check = _run([sys.executable, "-c", "import tb_gradflow; print(tb_gradflow.__file__)"], cwd=unpacked, env=env)
    assert check.stdout.startswith(str(unpacked)), check.stdout
    done = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_cli.py",
                 "tests/test_format_units.py"],
                cwd=unpacked, env=env)
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout and "failed" not in done.stdout


@pytest.mark.parametrize("implementation", ["upb-or-cpp", "python"])
def test_generated_proto_loads_on_the_oldest_protobuf_allowed(tmp_path, implementation):
    """setup.py allows protobuf 3.20.3 (TensorFlow 2.16-2.19 need protobuf < 5 or < 6)."""
    target = tmp_path / "pb"
    done = _run([sys.executable, "-m", "pip", "install", "-q", "--target", str(target), "protobuf==3.20.3"])
    assert done.returncode == 0, done.stderr[-2000:]
    env = dict(os.environ, PYTHONPATH=f"{target}{os.pathsep}{ROOT}")
    if implementation == "python":
        env["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"
    probe = (
        "import google.protobuf as pb; assert pb.__version__ == '3.20.3', pb.__version__\n"
        "from tb_gradflow.proto import gradflow_pb2 as p\n"
        "g = p.Graph(graph_id='a'); g.ops.add(name='x', inputs=[1, 2], cause=p.NUMPY_FUNCTION)\n"
        "assert p.Graph.FromString(g.SerializeToString()) == g\n"
    )
    done = _run([sys.executable, "-W", "error", "-c", probe], env=env, cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
