"""Dead units on the torch side (issue 17), checked against autograd: a unit is off for every
example when the ReLU's output is zero there and the gradient at its input is zero there. Units
are a Linear's last axis and a convolution's channels (axis 1, torch lays them first)."""

from __future__ import annotations

import torch
from torch import nn

import tb_gradflow.torch as gt
from tb_gradflow import cli
from tb_gradflow import vocabulary as V
from tb_gradflow.diagnosis import diagnosis_json
from tb_gradflow.story import story


def _dead_by_autograd(pre: torch.Tensor, post: torch.Tensor, grad: torch.Tensor, axis: int) -> int:
    """Units (along `axis`) where the output and the gradient at the input are zero for every
    example: the definition, written out."""
    g, o = (t.detach().movedim(axis, -1).reshape(-1, t.shape[axis]) for t in (grad, post))
    return int(((g == 0).all(0) & (o == 0).all(0)).sum())


def _kill(layer: nn.Module, units: list[int]) -> None:
    with torch.no_grad():
        layer.bias[units] = -1e3


def _traced(model: nn.Sequential, x: torch.Tensor, gates: tuple[type, ...], axis: int) -> list[int]:
    """The model's forward written out, the input of each gate kept, and autograd's count."""
    pre, post, h = [], [], x
    for layer in model:
        if isinstance(layer, gates):
            h.retain_grad()
            pre.append(h)
            h = layer(h.clone())  # an in-place ReLU would overwrite what it read
            post.append(h)
        else:
            h = layer(h)
    h.pow(2).mean().backward()
    model.zero_grad()
    return [_dead_by_autograd(p, q, p.grad, axis) for p, q in zip(pre, post, strict=True)]


def test_relu_mlp_dead_units_match_autograd():
    torch.manual_seed(3)
    model = nn.Sequential(
        nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 24), nn.ReLU(inplace=True), nn.Linear(24, 16),
        nn.ReLU6(), nn.Linear(16, 12), nn.LeakyReLU(0.0), nn.Linear(12, 1),
    )
    _kill(model[0], [0, 3, 5, 7, 11])
    _kill(model[2], [*range(0, 24, 2), 1, 3])
    _kill(model[6], [2, 4])
    x = torch.randn(64, 10)

    report = gt.analyze(lambda x: model(x).pow(2).mean(), x)

    gates = [op for op in report.ops if op.units]
    assert [(op.type, op.units) for op in gates] == [
        ("relu", 32), ("relu", 24), ("hardtanh", 16), ("leaky_relu", 12)
    ]
    expected = _traced(model, x, (nn.ReLU, nn.ReLU6, nn.LeakyReLU), axis=1)
    assert [op.dead_units for op in gates] == expected
    assert expected[0] >= 5 and expected[1] >= 14 and expected[3] >= 2
    told = [n for n in story(report)["notes"] if n["kind"] == V.DEAD_UNITS]
    assert [n["names"] for n in told] == [[op.name] for op in gates if op.dead_units > op.units / 2]
    assert any(f"{expected[1]} of 24 units dead" in n["text"] for n in told)


def test_bfloat16_units_under_autocast_are_counted():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 1))
    _kill(model[0], [1, 2, 3])
    x = torch.randn(16, 6)

    def loss_fn(x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return model(x).float().pow(2).mean()

    [relu] = [op for op in gt.analyze(loss_fn, x).ops if op.units]
    assert (relu.units, relu.dead_units) == (12, 3)


def test_conv_net_counts_channels_and_leaking_gates_are_not_counted():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 6, 3), nn.LeakyReLU(0.1), nn.Conv2d(6, 4, 3), nn.ELU(),
    )
    _kill(model[0], [1, 6])
    x = torch.randn(4, 3, 12, 12)

    report = gt.analyze(lambda x: model(x).pow(2).mean(), x)

    [relu] = [op for op in report.ops if op.units]
    assert (relu.type, relu.units) == ("relu", 8)  # channels, not the 10 columns of the last axis
    assert relu.dead_units == _traced(model, x, (nn.ReLU,), axis=1)[0] == 2
    assert all(op.units is None for op in report.ops if op.type in ("leaky_relu", "elu"))


def test_a_conv1d_relu_counts_channels_and_a_sequence_relu_its_features():
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv1d(4, 6, 3), nn.BatchNorm1d(6), nn.ReLU())
    sequence = nn.Sequential(nn.Linear(4, 5), nn.ReLU())
    x = torch.randn(8, 4, 10)

    [by_channel] = [op for op in gt.analyze(lambda x: conv(x).pow(2).mean(), x).ops if op.units]
    [by_feature] = [
        op for op in gt.analyze(lambda x: sequence(x.transpose(1, 2)).pow(2).mean(), x).ops if op.units
    ]

    assert (by_channel.units, by_feature.units) == (6, 5)


def test_dead_units_are_logged_and_read_back_with_their_streak(tmp_path):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 1))
    x, y = torch.randn(32, 6), torch.randn(32, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # the model stays as it is

    def loss_fn(x, y):
        return (model(x) - y).pow(2).mean()

    for step in range(3):
        if step == 1:
            _kill(model[0], list(range(12)))
        gt.gradflow(str(tmp_path), "gf", loss_fn, x, y, step=step, optimizer=opt, strict=True)

    series = next(iter(cli.load(str(tmp_path)).series.values()))
    dead = diagnosis_json(series)["dead_units"]
    [(name, entry)] = dead.items()
    assert name.endswith("relu")
    assert (entry["layer"], entry["units"], entry["dead_units"], entry["since"]) == ("0", 16, 12, 1)


def test_a_relu_before_an_eval_mode_dropout_keeps_its_units():
    """In eval mode dropout hands back its input object: the ReLU stays the tensor's maker, so
    its gradient, presence and dead units are still its own."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Dropout(0.5), nn.Linear(10, 1)).eval()
    _kill(model[0], [0, 1, 2, 3])
    x = torch.randn(16, 6)

    report = gt.analyze(lambda x: model(x).pow(2).mean(), x)

    [relu] = [op for op in report.ops if op.units]
    assert (relu.name, relu.units, relu.dead_units) == ("1/relu", 10, _traced(model, x, (nn.ReLU,), axis=1)[0])
    assert relu.dead_units >= 4 and relu.presence is not None
    assert not [op for op in report.ops if op.type == "dropout"]
