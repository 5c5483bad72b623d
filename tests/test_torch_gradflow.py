"""tb_gradflow.torch.gradflow: the training step it takes, the records it writes, and the readers
(CLI report, diff, export) that read a torch logdir as they read a TensorFlow one.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tensorboard.compat.proto import summary_pb2
from torch import nn
from torch.utils.tensorboard import SummaryWriter

import tb_gradflow.torch as gt
from support.torch_truth import truth
from tb_gradflow import cli
from tb_gradflow.reading.event_files import find_runs, read_run


class _Net(nn.Module):
    """Dropout, BatchNorm, a frozen layer and a head the loss never uses: what changes the step."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3)
        )
        self.unused = nn.Linear(3, 2)
        self.body[0].bias.requires_grad_(False)

    def forward(self, x):
        return self.body(x)


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-3),
        lambda ps: torch.optim.Adam(ps, lr=1e-2),
    ],
    ids=["sgd", "adam"],
)
def test_n_logged_steps_equal_n_plain_steps(tmp_path, make_opt):
    torch.manual_seed(0)
    model = _Net()
    twin = copy.deepcopy(model)
    opt, twin_opt = make_opt(model.parameters()), make_opt(twin.parameters())
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))

    def loss_fn(x, y):
        return F.cross_entropy(model(x), y)

    for step in range(5):
        torch.manual_seed(100 + step)  # dropout draws the same masks in both
        report = gt.gradflow(
            str(tmp_path), "gradflow", loss_fn, x, y, step=step, optimizer=opt, strict=True
        )
        torch.manual_seed(100 + step)
        twin_opt.zero_grad()
        F.cross_entropy(twin(x), y).backward()
        twin_opt.step()
    for (name, a), b in zip(model.state_dict().items(), twin.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        assert (a.grad is None) == (b.grad is None) and (
            a.grad is None or torch.equal(a.grad, b.grad)
        )
    assert report.starved_variables == ["unused.weight", "unused.bias"]
    assert report.frozen_variables == ("body.0.bias",)


def test_report_matches_autograd_and_logdir_quantizes_only_op_norms(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    x = torch.randn(5, 4)

    def loss_fn(x):
        return model(x).pow(2).mean()

    report = gt.gradflow(str(tmp_path), "gf", loss_fn, x, step=3, strict=True)
    assert {n: v.state for n, v in report.variables.items()} == truth(
        loss_fn, (x,), list(model.named_parameters())
    )
    grads = torch.autograd.grad(loss_fn(x), list(model.parameters()))
    for (name, _), g in zip(model.named_parameters(), grads, strict=True):
        assert report.variables[name].norm == pytest.approx(float(g.double().norm()), rel=1e-6)
    stored = next(iter(cli.load(str(tmp_path)).series.values())).report(3)
    assert type(stored) is type(report)
    assert [o.name for o in stored.ops] == [o.name for o in report.ops]
    for mine, back in zip(report.ops, stored.ops, strict=True):
        assert back.state == mine.state
        if mine.norm:
            assert back.norm == pytest.approx(mine.norm, rel=0.045)  # 8 levels per octave
    assert any(
        m.norm and m.norm != b.norm for m, b in zip(report.ops, stored.ops, strict=True)
    )  # in memory: exact
    for name, v in report.variables.items():
        assert stored.variables[name].norm == pytest.approx(v.norm, rel=1e-6)  # float32 on disk


def test_records_are_the_tf_sides(tmp_path):
    """Plugin name, tags and data classes as the TensorFlow side writes them."""
    torch.manual_seed(0)
    net = nn.Linear(3, 1)
    writer = SummaryWriter(str(tmp_path / "sw"))
    for step in range(3):
        gt.gradflow(
            writer, "grads", lambda x: net(x).sum(), torch.randn(2, 3), step=step, strict=True
        )
    writer.close()
    series = read_run(find_runs(str(tmp_path))["sw"], print, "sw")
    assert series["grads"].data_class == summary_pb2.DATA_CLASS_TENSOR
    graph_tags = [t for t in series if t.startswith("grads/_graph/")]
    assert "grads" in series and len(graph_tags) == 1
    assert [d.step for d in series["grads"].data] == [0, 1, 2]
    assert len(series[graph_tags[0]].data) == 1  # the graph once, while it does not change
    assert series[graph_tags[0]].data_class == summary_pb2.DATA_CLASS_BLOB_SEQUENCE


def test_a_head_replaced_between_steps_is_found_and_named_anew(tmp_path):
    """Fine-tuning swaps a head (`model[2] = nn.Linear(...)`) between logged steps: the next
    step names the new head's parameters and judges them, not the old head's (discovery is
    cached per model, and the cache must see the change)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    x = torch.randn(5, 4)

    def loss_fn(x):
        return model(x).logsumexp(-1).mean()

    gt.gradflow(str(tmp_path), "gf", loss_fn, x, step=0, strict=True)
    model[2] = nn.Linear(8, 3)
    report = gt.gradflow(str(tmp_path), "gf", loss_fn, x, step=1, strict=True)
    assert {n: v.state for n, v in report.variables.items()} == truth(
        loss_fn, (x,), list(model.named_parameters())
    ) == dict.fromkeys(["0.weight", "0.bias", "2.weight", "2.bias"], "flowing")
    assert report.variables["2.weight"].shape == "3x8"
    model[2].weight.requires_grad_(False)  # and frozen later: the same module, read anew
    report = gt.analyze(loss_fn, x)
    assert report.frozen_variables == ("2.weight",)


class _Agent:
    """A plain object holding the network (an RL agent, a trainer): not a module itself."""

    def __init__(self, net: nn.Module) -> None:
        self.net = net


def test_a_network_replaced_on_a_plain_object_is_found_anew(tmp_path):
    """`agent.net = new_net` between logged steps (a reset, a target network swapped in): the
    loss refers to `agent`, which stays the same object; the next step must judge the new
    network's parameters, not call the old ones starved."""
    torch.manual_seed(0)
    agent = _Agent(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)))
    x = torch.randn(5, 4)

    def loss_fn(x):
        return agent.net(x).logsumexp(-1).mean()

    gt.gradflow(str(tmp_path), "gf", loss_fn, x, step=0, strict=True)
    agent.net = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
    report = gt.gradflow(str(tmp_path), "gf", loss_fn, x, step=1, strict=True)
    expected = truth(loss_fn, (x,), list(agent.net.named_parameters()))
    assert {n: v.state for n, v in report.variables.items()} == expected
    assert set(expected.values()) == {"flowing"} and not report.starved_variables
    assert report.variables["0.weight"].shape == "6x4"


def test_event_bytes_joined_by_hand_equal_protobufs(tmp_path):
    """The logged step's event is joined from pieces serialized once (writing.py); the record
    on disk must be the one protobuf makes of the whole Event: first step (graph and scalars)
    and a later one, a description, a step 0 and a long name."""
    from tensorboard.compat.proto import event_pb2

    from tb_gradflow.torch import writing
    from tb_gradflow.torch.event_file import record_bytes

    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    for name, description, step in (("gradflow", "", 0), ("a/" + "n" * 300, "why", 7)):
        written: list[bytes] = []
        for k in range(2):
            result = gt.capture.capture(lambda x: net(x).sum(), (torch.randn(2, 3),), {})
            before = {(name, result.graph.graph_id)} if k else set()
            logdir = str(tmp_path / f"{name[:5]}{k}".replace("/", "_"))
            writing._path_writers.pop(os.path.abspath(logdir), None)
            writing._written_by_path[os.path.abspath(logdir)] = set(before)
            writing._write(logdir, name, result, step + k, description, scalars=not k)
            with open(writing._path_writers[os.path.abspath(logdir)].path, "rb") as f:
                written.append(f.read())
            first = 16 + int.from_bytes(written[-1][:8], "little")  # the file_version record
            event = event_pb2.Event.FromString(written[-1][first + 12 : -4])
            values = []
            if not k:
                values.append(summary_pb2.Summary.Value(
                    tag=f"{name}/_graph/{result.graph.graph_id}",
                    metadata=writing.metadata.graph_metadata(name, result.graph.graph_id),
                    tensor=writing._string_tensor(result.graph.SerializeToString(), [1]),
                ))
            values.append(summary_pb2.Summary.Value(
                tag=name, metadata=writing.metadata.step_metadata(name, description),
                tensor=writing._string_tensor(result.step.SerializeToString(), []),
            ))
            if not k:
                values.extend(writing.scalar_summary(name, result.graph, result.step).value)
            expected = event_pb2.Event(
                wall_time=event.wall_time, step=step + k, summary=summary_pb2.Summary(value=values)
            ).SerializeToString()
            assert written[-1][first:] == record_bytes(expected)


def _write_torch_runs(logdir: str) -> None:
    torch.manual_seed(0)
    enc, head = nn.Linear(4, 4), nn.Linear(4, 2)
    x = torch.randn(3, 4)

    def broken(x):
        return head(enc(x).detach()).sum()

    def fixed(x):
        return head(enc(x)).sum()

    for step in (0, 1):
        gt.gradflow(os.path.join(logdir, "broken"), "gradflow", broken, x, step=step, strict=True)
        gt.gradflow(os.path.join(logdir, "fixed"), "gradflow", fixed, x, step=step, strict=True)


def test_cli_report_diff_export_on_a_torch_logdir(tmp_path, capsys):
    logdir = str(tmp_path)
    _write_torch_runs(logdir)
    assert cli.main(["report", logdir, "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    tag = data["runs"]["broken"]["tags"]["gradflow"]
    assert tag["steps"] == [0, 1] and tag["cut_points"][0]["cause"] == "detach"
    assert tag["starved_variables"] == ["enc.weight", "enc.bias"]
    assert data["runs"]["fixed"]["tags"]["gradflow"]["starved_variables"] == []
    assert cli.main(["report", logdir, "--run", "broken"]) == 1
    out = capsys.readouterr().out
    assert "detach 'loss/detach' (detach) at" in out and "test_torch_gradflow.py:" in out
    assert cli.main(["diff", logdir, "--run", "broken", "--run", "fixed", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)["tags"]["gradflow"]
    assert [c["cause"] for c in d["cuts_only_in_a"]] == ["detach"] and d["starved_only_in_a"] == [
        "enc.weight",
        "enc.bias",
    ]
    out_file = str(tmp_path / "g.html")
    assert cli.main(["export", logdir, "-o", out_file]) == 0
    assert os.path.getsize(out_file) > 1000  # its content is checked in the browser test
    assert (
        len(gt.analyze(lambda x: x.detach().sum() * 2, torch.ones(2, requires_grad=True)).to_html())
        > 1000
    )


def test_logging_failure_warns_and_still_trains(tmp_path, caplog):
    torch.manual_seed(0)
    net = nn.Linear(2, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    before = net.weight.detach().clone()
    report = gt.gradflow(
        object(), "g", lambda x: net(x).sum(), torch.ones(1, 2), step=0, optimizer=opt
    )
    assert report is not None  # the capture worked; only the writing failed
    assert "writing gradflow summary 'g' failed" in caplog.text
    assert not torch.equal(before, net.weight)


def test_loss_fn_errors_propagate():
    def bad(x):
        raise ValueError("user bug")

    with pytest.raises(ValueError, match="user bug"):
        gt.gradflow("/nonexistent-unused", "g", bad, torch.ones(1), step=0)


def _python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_imports_no_tensorflow_and_tb_gradflow_no_torch(tmp_path):
    out = _python(
        "import sys, torch, tb_gradflow\n"
        "print('torch' in sys.modules and 'tb_gradflow.torch' not in sys.modules)\n"
        "import tb_gradflow.torch as gt\n"
        "m = torch.nn.Linear(2, 1)\n"
        f"gt.gradflow({str(tmp_path)!r}, 'g', lambda x: m(x).sum(), torch.ones(1, 2), step=0,"
        " strict=True, scalars=True)\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    assert out.splitlines() == ["True", "False False"]
    assert _python("import sys, tb_gradflow; print('torch' in sys.modules)") == "False"


def test_without_torch_the_error_names_the_extra():
    out = _python(
        "import sys; sys.modules['torch'] = None\n"
        "try:\n import tb_gradflow.torch\n"
        "except ModuleNotFoundError as e: print(e.name, '[torch]' in str(e))\n"
    )
    assert out == "torch True"


def test_compiled_module_is_refused_with_what_to_probe_instead(tmp_path):
    """torch.compile'd modules run as graphs a TorchFunctionMode does not see: a warning and a
    clear error say to probe the uncompiled module; gradflow warns and logs nothing.
    """
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    compiled = torch.compile(model)  # compiles lazily: never called here

    def loss_fn(x):
        return compiled(x).sum()

    with (
        pytest.warns(UserWarning, match="_orig_mod"),
        pytest.raises(gt.Unsupported, match="uncompiled module"),
    ):
        gt.analyze(loss_fn, torch.ones(2, 3))
    with pytest.warns(UserWarning, match="logs nothing"):
        assert gt.gradflow(str(tmp_path), "g", loss_fn, torch.ones(2, 3), step=0) is None
    # the uncompiled module is what to probe
    assert compiled._orig_mod is model
    assert (
        gt.analyze(lambda x: model(x).sum(), torch.ones(2, 3)).variables["weight"].state
        == "flowing"
    )


def test_autocast_with_grad_scaler_equals_the_plain_mixed_precision_loop(tmp_path):
    """Under torch.autocast with a GradScaler, N logged steps equal N plain ones, and the report's
    norms are the unscaled gradients'."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    twin = copy.deepcopy(model)
    opt, twin_opt = (torch.optim.SGD(m.parameters(), lr=0.05) for m in (model, twin))
    scaler, twin_scaler = (torch.amp.GradScaler("cpu", init_scale=2.0**10) for _ in range(2))
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))

    def loss_fn(x, y):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return F.cross_entropy(model(x).float(), y)

    for step in range(4):
        report = gt.gradflow(
            str(tmp_path), "g", loss_fn, x, y, step=step, optimizer=opt, scaler=scaler, strict=True
        )
        twin_opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = F.cross_entropy(twin(x).float(), y)
        twin_scaler.scale(loss).backward()
        twin_scaler.step(twin_opt)
        twin_scaler.update()
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(a, b)
    assert scaler.get_scale() == twin_scaler.get_scale()
    # scaler.step unscaled the twin's .grad in place: the last step's true gradients
    for name, p in twin.named_parameters():
        assert report.variables[name].norm == pytest.approx(float(p.grad.double().norm()), rel=1e-5)


def test_step_and_graph_metadata_equal_the_tensorflow_sides(tmp_path):
    """The same tag layout, plugin data and data classes as tb_gradflow.summary writes with
    TensorFlow (graph tags differ only by their graph id)."""
    import tensorflow as tf

    import tb_gradflow

    w = tf.Variable(tf.ones([3, 1]))
    writer = tf.summary.create_file_writer(str(tmp_path / "tf"))
    with writer.as_default():
        tb_gradflow.summary.gradflow(
            "gradflow", lambda x: tf.reduce_sum(x @ w), tf.ones([2, 3]), step=0, strict=True
        )
    writer.flush()
    net = nn.Linear(3, 1)
    gt.gradflow(
        str(tmp_path / "torch"),
        "gradflow",
        lambda x: net(x).sum(),
        torch.ones(2, 3),
        step=0,
        strict=True,
    )
    runs = find_runs(str(tmp_path))
    tf_series, torch_series = (read_run(runs[r], print, r) for r in ("tf", "torch"))
    assert tf_series["gradflow"].plugin_content == torch_series["gradflow"].plugin_content
    assert tf_series["gradflow"].data_class == torch_series["gradflow"].data_class
    [tf_graph] = [t for t in tf_series if t != "gradflow"]
    [torch_graph] = [t for t in torch_series if t != "gradflow"]
    assert tf_graph.rsplit("/", 1)[0] == torch_graph.rsplit("/", 1)[0] == "gradflow/_graph"
    assert tf_series[tf_graph].data_class == torch_series[torch_graph].data_class
    from tb_gradflow.format.metadata import parse_plugin_data

    a, b = (
        parse_plugin_data(s[t].plugin_content)
        for s, t in ((tf_series, tf_graph), (torch_series, torch_graph))
    )
    assert (a.version, a.kind, a.name) == (b.version, b.kind, b.name)


def test_layers_over_training_group_a_torch_run_by_module(tmp_path, capsys):
    """The CLI's layers over training (the heatmap's rows) group parameters by module path."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    for step in range(2):
        gt.gradflow(
            str(tmp_path), "g", lambda x: model(x).sum(), torch.ones(2, 3), step=step, strict=True
        )
    assert cli.main(["report", str(tmp_path), "--json"]) == 0
    tag = next(iter(json.loads(capsys.readouterr().out)["runs"].values()))["tags"]["g"]
    assert [row["name"] for row in tag["layers"]["layers"]] == ["0", "2"]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_presence_counts_match_count_nonzero(dtype):
    """The nonzero count (a sum of |sign|, for speed) equals count_nonzero in every float dtype,
    including a 70,000-element half-zero gradient whose count a float16 sum could not hold, and
    tells all-zero from a gradient whose L2 norm underflows to 0."""
    from tb_gradflow import vocabulary as V
    from tb_gradflow.torch.measure import values

    torch.manual_seed(0)
    masked = torch.randn(70_000).relu().to(dtype)  # a ReLU gradient: about half zeros
    tiny = torch.full((4,), 1e-30, dtype=torch.float32)  # its squares underflow: norm 0
    grads = [masked, torch.zeros(5, dtype=dtype), tiny, None]
    got = values(grads)
    assert [V.STATES[c] for c in got.codes] == [V.FLOWING, V.ZERO, V.FLOWING, V.NONE]
    assert got.norms[2] == 0.0  # flowing by its count, not by its norm
    assert got.presence[0] == int(torch.count_nonzero(masked)) / masked.numel()
    assert got.presence[1] == 0.0 and got.presence[2] == 1.0


@pytest.mark.parametrize("trained", ["all", "head"])
def test_gradients_reduced_in_the_pass_equal_autograd_grad(trained):
    """Activation gradients of 256 KB and more are reduced by hooks as the pass computes them,
    not held to its end: states, norms and presence equal those of one `autograd.grad` over the
    parameters and the tensors, for a NaN gradient (the torch.where trap) and, with only the head
    trained, for tensors below which no trained parameter lies (their gradients asked for)."""
    from tb_gradflow.torch import measure

    torch.manual_seed(0)
    conv, head = nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(16, 4, 3, padding=1)
    params = list(conv.parameters()) + list(head.parameters())
    if trained == "head":
        params = list(head.parameters())
    x = torch.randn(4, 3, 32, 32, requires_grad=True)  # an input that requires grad: not trained

    def forward():
        h = conv(x)  # 4x16x32x32 float32: 256 KB
        r = h.relu()
        masked = torch.where(h > 0, torch.sqrt(h), 0.0)  # NaN gradient into h where h < 0
        out = head(r + masked)
        loss = out.square().mean()
        return loss, [h, r, masked, out, loss]

    counted = [True, False, True, False, False]
    loss, tensors = forward()
    assert tensors[0].numel() * 4 >= measure.HOOKED_BYTES > tensors[3].numel() * 4
    grads, reduced = measure.measured_pass(loss, params, tensors, counted)
    got = measure.values([*grads, *reduced], [True] * len(params) + counted)
    loss, tensors = forward()
    want = measure.values(
        measure.gradients(loss, params + tensors), [True] * len(params) + counted
    )
    assert isinstance(reduced[1], measure.Reduced) == (trained == "all")
    assert isinstance(reduced[3], torch.Tensor)  # small: asked for
    assert got.codes.tolist() == want.codes.tolist()
    assert got.codes[len(params)] == measure._NONFINITE
    np.testing.assert_allclose(got.norms, want.norms, rtol=1e-6)
    np.testing.assert_array_equal(got.presence, want.presence)
