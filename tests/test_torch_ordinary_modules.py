"""Ordinary torch building blocks, each healthy or cut in the way users report, against autograd.

The cases of test_torch_cases.py are minimal reproductions of public reports; these are the
modules those reports sit in: packed sequences through an LSTM, a TransformerEncoder in training
and in eval mode (its fast path), MultiheadAttention, a two-layer bidirectional GRU, weight norm
through parametrizations, BatchNorm in a conv net, and two silent cuts seen in user code (`.data`
inside a forward, a tensor rebuilt from `.tolist()`). Each report's parameter states must equal
`torch.autograd.grad(..., allow_unused=True)`, and a cut must be named with its cause.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import tb_gradflow.torch as gt
from support.torch_truth import truth


class PackedClassifier(nn.Module):
    """Embedding -> packed LSTM -> last step: the usual variable-length text classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(20, 8, padding_idx=0)
        self.lstm = nn.LSTM(8, 16, batch_first=True)
        self.out = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(self.emb(x), lengths, batch_first=True, enforce_sorted=False)
        seq, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True)
        return self.out(seq[:, -1])


def _packed():
    model = PackedClassifier()
    x, lengths = torch.randint(1, 20, (4, 6)), torch.tensor([6, 3, 5, 2])
    return model, lambda: F.cross_entropy(model(x, lengths), torch.tensor([0, 1, 2, 0]))


def _encoder(train: bool):
    def make():
        layer = nn.TransformerEncoderLayer(16, 4, 32, batch_first=True)
        enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).train(train)
        x = torch.randn(3, 5, 16)
        return enc, lambda: enc(x).pow(2).mean()

    return make


def _attention():
    mha = nn.MultiheadAttention(16, 4, batch_first=True)
    x = torch.randn(3, 5, 16)
    return mha, lambda: mha(x, x, x)[0].sum()


def _bigru():
    gru = nn.GRU(8, 16, num_layers=2, bidirectional=True)
    x = torch.randn(7, 2, 8)
    return gru, lambda: gru(x)[0].sum()


def _weight_norm():
    lin = nn.utils.parametrizations.weight_norm(nn.Linear(4, 4))
    x = torch.randn(2, 4)
    return lin, lambda: lin(x).sum()


def _conv_bn():
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(8, 2))
    x = torch.randn(4, 3, 8, 8)
    return net, lambda: net(x).sum()


class Head(nn.Module):
    """An encoder and a head, joined as the forward says."""

    def __init__(self, join) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
        self.head = nn.Linear(4, 1)
        self.join = join

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.join(self.enc(x)))


def _joined(join):
    def make():
        model = Head(join)
        x = torch.randn(5, 8)
        return model, lambda: model(x).pow(2).mean()

    return make


HEALTHY = {
    "packed LSTM": _packed,
    "TransformerEncoder, train": _encoder(True),
    "TransformerEncoder, eval": _encoder(False),
    "MultiheadAttention": _attention,
    "bidirectional 2-layer GRU": _bigru,
    "weight norm": _weight_norm,
    "conv + BatchNorm": _conv_bn,
}


@pytest.mark.parametrize("case", list(HEALTHY))
def test_ordinary_modules_flow_as_autograd_says(case):
    torch.manual_seed(0)
    module, loss_fn = HEALTHY[case]()
    named = list(module.named_parameters())
    expected = truth(loss_fn, (), named)
    report = gt.analyze(loss_fn)
    assert {n: v.state for n, v in report.variables.items()} == expected
    assert set(expected.values()) == {"flowing"} and not report.starving_cut_points


@pytest.mark.parametrize(
    "join, cause, op",
    [
        (lambda h: h.data, "detach", "data"),  # .data: a detach that autograd never sees
        (lambda h: torch.tensor(h.tolist()), "numpy", "tolist"),  # rebuilt from Python numbers
    ],
    ids=["Tensor.data", "torch.tensor(h.tolist())"],
)
def test_silent_cuts_inside_a_forward_starve_the_encoder(join, cause, op):
    torch.manual_seed(0)
    model, loss_fn = _joined(join)()
    named = list(model.named_parameters())
    expected = truth(loss_fn, (), named)
    report = gt.analyze(loss_fn)
    assert {n: v.state for n, v in report.variables.items()} == expected
    [cut] = report.starving_cut_points
    assert (cut.cause, cut.op_type) == (cause, op)
    assert sorted(cut.starved_variables) == sorted(n for n, s in expected.items() if s == "none")
    assert all(n.startswith("enc.") for n in cut.starved_variables)
